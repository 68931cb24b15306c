-- base64: the URL-safe alphabet of RFC 4648 section 5 ("-" and "_"), without padding.

local base64 = {}

local byte, char, concat, find, sub = string.byte, string.char, table.concat, string.find, string.sub

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local ENC, DEC = {}, {}
for i = 1, 64 do
    local c = sub(ALPHABET, i, i)
    ENC[i - 1] = c
    DEC[byte(c)] = i - 1
end

-- Returns s encoded with the URL-safe alphabet, without "=" padding.
function base64.url_encode(s)
    local out, n = {}, 0
    for i = 1, #s - 2, 3 do
        local a, b, c = byte(s, i, i + 2)
        local v = a << 16 | b << 8 | c
        n = n + 1
        out[n] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. ENC[v >> 6 & 63] .. ENC[v & 63]
    end
    local rest = #s % 3
    if rest == 1 then
        local v = byte(s, #s) << 16
        out[n + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63]
    elseif rest == 2 then
        local a, b = byte(s, #s - 1, #s)
        local v = a << 16 | b << 8
        out[n + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. ENC[v >> 6 & 63]
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
        local v = DEC[a] << 18 | DEC[b] << 12 | DEC[c] << 6 | DEC[d]
        n = n + 1
        out[n] = char(v >> 16, v >> 8 & 255, v & 255)
    end
    local rest = #s % 4
    if rest == 2 then
        local v = DEC[byte(s, -2)] << 18 | DEC[byte(s, -1)] << 12
        if v & 0xffff ~= 0 then return nil end
        out[n + 1] = char(v >> 16)
    elseif rest == 3 then
        local v = DEC[byte(s, -3)] << 18 | DEC[byte(s, -2)] << 12 | DEC[byte(s, -1)] << 6
        if v & 0xff ~= 0 then return nil end
        out[n + 1] = char(v >> 16, v >> 8 & 255)
    end
    return concat(out)
end

-- Inside the server the core does both (a byte loop in C, about 10x faster than these); the Lua
-- versions serve plain Lua (specs, tools) and define what the core's must do.
do
    local ok, h2lua = pcall(require, "h2lua")
    if ok and type(h2lua) == "table" and h2lua.base64url_encode then
        local encode, decode = h2lua.base64url_encode, h2lua.base64url_decode
        base64.url_encode = encode
        function base64.url_decode(s)
            if type(s) ~= "string" then return nil end
            return decode(s)
        end
    end
end

return base64
