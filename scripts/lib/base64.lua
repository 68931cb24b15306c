-- base64: the URL-safe alphabet of RFC 4648 section 5 ("-" and "_"), without padding.

local base64 = {}

local byte, char, concat, find, sub, floor = string.byte, string.char, table.concat, string.find, string.sub, math.floor

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local ENC, DEC = {}, {}
for i = 1, 64 do
    local c = sub(ALPHABET, i, i)
    ENC[i - 1] = c
    DEC[byte(c)] = i - 1
end

-- Arithmetic on 6-bit groups rather than bit operators: the same code runs on Lua 5.4 and LuaJIT.

-- Returns s encoded with the URL-safe alphabet, without "=" padding.
function base64.url_encode(s)
    local out, n = {}, 0
    for i = 1, #s - 2, 3 do
        local a, b, c = byte(s, i, i + 2)
        n = n + 1
        out[n] = ENC[floor(a / 4)] .. ENC[a % 4 * 16 + floor(b / 16)] .. ENC[b % 16 * 4 + floor(c / 64)] .. ENC[c % 64]
    end
    local rest = #s % 3
    if rest == 1 then
        local a = byte(s, #s)
        out[n + 1] = ENC[floor(a / 4)] .. ENC[a % 4 * 16]
    elseif rest == 2 then
        local a, b = byte(s, #s - 1, #s)
        out[n + 1] = ENC[floor(a / 4)] .. ENC[a % 4 * 16 + floor(b / 16)] .. ENC[b % 16 * 4]
    end
    return concat(out)
end

-- Decodes what url_encode makes. Returns the bytes, or nil for anything else (another alphabet,
-- padding, a length no encoding has, bits set past the end).
function base64.url_decode(s)
    if type(s) ~= "string" or find(s, "[^%w%-_]") or #s % 4 == 1 then return nil end
    local out, n = {}, 0
    for i = 1, #s - 3, 4 do
        local a, b, c, d = byte(s, i, i + 3)
        a, b, c, d = DEC[a], DEC[b], DEC[c], DEC[d]
        n = n + 1
        out[n] = char(a * 4 + floor(b / 16), b % 16 * 16 + floor(c / 4), c % 4 * 64 + d)
    end
    local rest = #s % 4
    if rest == 2 then
        local a, b = DEC[byte(s, -2)], DEC[byte(s, -1)]
        if b % 16 ~= 0 then return nil end
        out[n + 1] = char(a * 4 + floor(b / 16))
    elseif rest == 3 then
        local a, b, c = DEC[byte(s, -3)], DEC[byte(s, -2)], DEC[byte(s, -1)]
        if c % 4 ~= 0 then return nil end
        out[n + 1] = char(a * 4 + floor(b / 16), b % 16 * 16 + floor(c / 4))
    end
    return concat(out)
end

return base64
