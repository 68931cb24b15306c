-- base64: the URL-safe alphabet of RFC 4648 section 5 ("-" and "_"), without padding: the core's
-- (h2lua.base64url_encode / base64url_decode, core/util.c); the specs' fake core has the same in Lua.

local h2lua = require "h2lua"
local type = type

local base64 = {}

-- Returns s encoded with the URL-safe alphabet, without "=" padding.
base64.url_encode = h2lua.base64url_encode

-- Decodes what url_encode makes. Returns the bytes, or nil for anything else (another alphabet,
-- padding, a length no encoding has, bits set past the end, a value that is not a string).
function base64.url_decode(s)
    if type(s) ~= "string" then return nil end
    return h2lua.base64url_decode(s)
end

return base64
