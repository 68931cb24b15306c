-- A pure-Lua stand-in for the server's `h2lua` module (core/lua_api.c, documented in
-- core/lua_host.h): the libraries in scripts/lib require the core and have no copy of it, so every
-- spec runs them on this. hmac_sha256 is the real HMAC-SHA256 (in Lua), the clock is a field specs
-- move, random_hex counts, status_text is read from the core's own table (core/http_status.c).
-- `require "h2lua"` finds a default instance (spec/lua/support/h2lua.lua) when
-- spec/lua/support is on the path, as ops/test puts it. Usage (from a spec, run at the
-- repository root):
--
--   local fake = dofile("spec/lua/support/fake_h2lua.lua").new { secret_key = "..." }
--   package.loaded.h2lua = fake
--   fake.clock = fake.clock + 3600

local fake_h2lua = {}

-- base64url, as core/util.c does it (arithmetic on 6-bit groups: no bit operators)
local b64_byte, b64_char, b64_concat, b64_find, b64_sub, floor =
    string.byte, string.char, table.concat, string.find, string.sub, math.floor

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local ENC, DEC = {}, {}
for i = 1, 64 do
    local c = b64_sub(ALPHABET, i, i)
    ENC[i - 1] = c
    DEC[b64_byte(c)] = i - 1
end

-- Arithmetic on 6-bit groups rather than bit operators: the same code runs on Lua 5.4 and LuaJIT.

-- Returns s encoded with the URL-safe alphabet, without "=" padding.
local function base64url_encode(s)
    local out, n = {}, 0
    for i = 1, #s - 2, 3 do
        local a, b, c = b64_byte(s, i, i + 2)
        n = n + 1
        out[n] = ENC[floor(a / 4)] .. ENC[a % 4 * 16 + floor(b / 16)] .. ENC[b % 16 * 4 + floor(c / 64)] .. ENC[c % 64]
    end
    local rest = #s % 3
    if rest == 1 then
        local a = b64_byte(s, #s)
        out[n + 1] = ENC[floor(a / 4)] .. ENC[a % 4 * 16]
    elseif rest == 2 then
        local a, b = b64_byte(s, #s - 1, #s)
        out[n + 1] = ENC[floor(a / 4)] .. ENC[a % 4 * 16 + floor(b / 16)] .. ENC[b % 16 * 4]
    end
    return b64_concat(out)
end

-- Decodes what url_encode makes. Returns the bytes, or nil for anything else (another alphabet,
-- padding, a length no encoding has, bits set past the end).
local function base64url_decode(s)
    if type(s) ~= "string" or b64_find(s, "[^%w%-_]") or #s % 4 == 1 then return nil end
    local out, n = {}, 0
    for i = 1, #s - 3, 4 do
        local a, b, c, d = b64_byte(s, i, i + 3)
        a, b, c, d = DEC[a], DEC[b], DEC[c], DEC[d]
        n = n + 1
        out[n] = b64_char(a * 4 + floor(b / 16), b % 16 * 16 + floor(c / 4), c % 4 * 64 + d)
    end
    local rest = #s % 4
    if rest == 2 then
        local a, b = DEC[b64_byte(s, -2)], DEC[b64_byte(s, -1)]
        if b % 16 ~= 0 then return nil end
        out[n + 1] = b64_char(a * 4 + floor(b / 16))
    elseif rest == 3 then
        local a, b, c = DEC[b64_byte(s, -3)], DEC[b64_byte(s, -2)], DEC[b64_byte(s, -1)]
        if c % 4 ~= 0 then return nil end
        out[n + 1] = b64_char(a * 4 + floor(b / 16), b % 16 * 16 + floor(c / 4))
    end
    return b64_concat(out)
end



local byte, char, format, pack, rep, unpack = string.byte, string.char, string.format, string.pack, string.rep,
    string.unpack
local concat = table.concat

local M32 = 0xffffffff
local K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function rotr(x, n)
    return ((x >> n) | (x << (32 - n))) & M32
end

-- SHA-256 of msg, 32 raw bytes.
function fake_h2lua.sha256(msg)
    local h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
    msg = msg .. "\128" .. rep("\0", (55 - #msg) % 64) .. pack(">I8", #msg * 8)
    local w = {}
    for chunk = 1, #msg, 64 do
        for j = 1, 16 do w[j] = unpack(">I4", msg, chunk + (j - 1) * 4) end
        for j = 17, 64 do
            local a, b = w[j - 15], w[j - 2]
            local s0 = rotr(a, 7) ~ rotr(a, 18) ~ (a >> 3)
            local s1 = rotr(b, 17) ~ rotr(b, 19) ~ (b >> 10)
            w[j] = (w[j - 16] + s0 + w[j - 7] + s1) & M32
        end
        local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
        for j = 1, 64 do
            local t1 = (hh + (rotr(e, 6) ~ rotr(e, 11) ~ rotr(e, 25)) + ((e & f) ~ (~e & g)) + K[j] + w[j]) & M32
            local t2 = ((rotr(a, 2) ~ rotr(a, 13) ~ rotr(a, 22)) + ((a & b) ~ (a & c) ~ (b & c))) & M32
            hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & M32, c, b, a, (t1 + t2) & M32
        end
        h[1], h[2], h[3], h[4] = (h[1] + a) & M32, (h[2] + b) & M32, (h[3] + c) & M32, (h[4] + d) & M32
        h[5], h[6], h[7], h[8] = (h[5] + e) & M32, (h[6] + f) & M32, (h[7] + g) & M32, (h[8] + hh) & M32
    end
    return pack(">I4I4I4I4I4I4I4I4", h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8])
end

local function xor_pad(key, v)
    local out = {}
    for i = 1, 64 do out[i] = char((byte(key, i) or 0) ~ v) end
    return concat(out)
end

local function hex(s)
    return (s:gsub(".", function(c) return format("%02x", byte(c)) end))
end
fake_h2lua.hex = hex

-- HMAC-SHA256 of data keyed with key, as 64 hex digits.
function fake_h2lua.hmac_sha256(key, data)
    if #key > 64 then key = fake_h2lua.sha256(key) end
    local inner = fake_h2lua.sha256(xor_pad(key, 0x36) .. data)
    return hex(fake_h2lua.sha256(xor_pad(key, 0x5c) .. inner))
end

-- The reason phrases of core/http_status.c, the one table the core exports as h2lua.status_text.
local function read_status_text()
    local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
    local f = assert(io.open(here .. "/../../../core/http_status.c", "rb"))
    local src = f:read("a")
    f:close()
    local t = {}
    for code, reason in src:gmatch('{(%d%d%d), "([^"]*)"}') do t[tonumber(code)] = reason end
    return t
end
local STATUS_TEXT = read_status_text()

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

-- A fake module. opts.secret_key (default a fixed test key), opts.clock (default 1.7e9).
function fake_h2lua.new(opts)
    opts = opts or {}
    local key = opts.secret_key or "spec-secret-key-0123456789"
    local counter = 0
    local fake = {
        clock = opts.clock or 1700000000.25,
        config = { app_env = "production", views_dir = "views" },
        logged = {},
    }
    function fake.hmac_sha256(data)
        assert(type(data) == "string", "hmac_sha256: a string is required")
        return fake_h2lua.hmac_sha256(key, data)
    end
    function fake.random_hex(n)
        counter = counter + 1
        return format("%0" .. (2 * n) .. "x", counter)
    end
    function fake.equal(a, b)
        assert(type(a) == "string" and type(b) == "string", "equal: two strings are required")
        return a == b
    end
    function fake.now() return fake.clock end
    function fake.log_error(message, fields) fake.logged[#fake.logged + 1] = { message, fields } end
    function fake.utf8_valid(s) return utf8.len(s) ~= nil end
    fake.status_text = STATUS_TEXT
    local HttpError = {}
    HttpError.__tostring = function(e) return format("HTTP %d: %s", e.status, tostring(e.message)) end
    fake.HttpError = HttpError
    function fake.http_error(status, message)
        error(setmetatable({ status = status, message = message or "" }, HttpError))
    end
    function fake.is_http_error(v) return getmetatable(v) == HttpError end
    function fake.escape_html(v)
        if v == nil then return "" end
        return (tostring(v):gsub("[&<>\"']", ESCAPES))
    end
    fake.base64url_encode = base64url_encode
    function fake.base64url_decode(s)
        if b64_find(s, "[^%w%-_]") or #s % 4 == 1 then return nil end
        return base64url_decode(s)
    end
    function fake.concat(t, n) return concat(t, "", 1, n) end
    function fake.is_https(req)
        if req.scheme == "https" then return true end
        local proto = req.headers and req.headers["x-forwarded-proto"]
        return type(proto) == "string" and proto:match("^[ \t]*([^,%s]*)") == "https"
    end
    return fake
end

-- Loads module `name` afresh with `fake` as require "h2lua" (and the scripts' libraries reloaded).
function fake_h2lua.require_with(fake, name)
    package.loaded.h2lua = fake
    for loaded in pairs(package.loaded) do
        if loaded:find("^lib%.") or loaded:find("^models%.") or loaded:find("^handlers%.") then
            package.loaded[loaded] = nil
        end
    end
    local m = require(name)
    package.loaded.h2lua = nil
    return m
end

return fake_h2lua
