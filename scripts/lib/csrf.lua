-- csrf: tokens that tie a form to the session that was shown it.
--
-- A token is  expiry "." hmac  with hmac = h2lua.hmac_sha256("csrf\0" .. session.id .. "\0" .. expiry)
-- (keyed with SECRET_KEY): it cannot be made without the key, is worth nothing with another
-- session, and stops being accepted at its expiry (seconds since the epoch). Forms carry it in a
-- hidden field named csrf.field ("csrf_token").
--
--   csrf.token(session [, max_age])   -> a token valid max_age seconds (default csrf.max_age)
--   csrf.verify(session, token)       -> true | false
--   csrf.check(req, session)          raises HTTP 403 unless req.form.csrf_token verifies

local h2lua = require "h2lua"
local http = require "lib.http"

local csrf = {
    field = "csrf_token",
    max_age = 8 * 3600, -- a page left open for a working day can still be submitted
}

local floor, match, type = math.floor, string.match, type

local function mac(id, expiry)
    return h2lua.hmac_sha256("csrf\0" .. id .. "\0" .. expiry)
end

local function session_id(s)
    local id = type(s) == "table" and s.id
    if type(id) ~= "string" or id == "" then return nil end
    return id
end

function csrf.token(s, max_age)
    local id = session_id(s)
    assert(id, "csrf.token: a session with an id is required")
    local expiry = tostring(floor(h2lua.now()) + (max_age or csrf.max_age))
    return expiry .. "." .. mac(id, expiry)
end

function csrf.verify(s, token)
    local id = session_id(s)
    if not id or type(token) ~= "string" then return false end
    local expiry, m = match(token, "^([1-9]%d*)%.(%x+)$")
    if not expiry or #expiry > 12 or #m ~= 64 or tonumber(expiry) < h2lua.now() then return false end
    return h2lua.equal(mac(id, expiry), m)
end

function csrf.check(req, s)
    if not csrf.verify(s, req.form[csrf.field]) then
        http.error(403, "This form has expired or did not come from this site. Reload the page and try again.")
    end
end

return csrf
