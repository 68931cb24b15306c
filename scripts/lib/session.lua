-- session: a session kept in a signed cookie.
--
-- The cookie is  base64url(payload) "." hmac  where payload is JSON
--   { "id": 32 hex digits, "exp": seconds since the epoch, "flash": [[message, category], ...],
--     "data": { ... } }
-- and hmac = h2lua.hmac_sha256("session\0" .. base64url(payload)) (keyed with SECRET_KEY), compared
-- in constant time. A cookie that is missing, malformed, forged or past its expiry gives a new,
-- empty session with a fresh random id. The session is readable by its holder (it is signed, not
-- encrypted): keep no secrets in it.
--
--   local sessions = session.new { name = "session", max_age = 604800 }
--   local s = sessions.load(req)         -- always a session: s.id, s.is_new
--   s:flash("Saved.", "success")          -- messages shown once, on the next page
--   s:take_flashes()                      -- -> { { message =, category = }, ... }, emptied
--   s:get(key), s:set(key, value)         -- application values (JSON-encodable)
--   res = sessions.save(s, req, res)      -- adds Set-Cookie to res when s changed; returns res
--
-- The cookie is HttpOnly, SameSite=Lax, Path=/, with Max-Age; Secure when the request came over
-- HTTPS (req.scheme, or X-Forwarded-Proto from the load balancer). It is written again when the
-- session changed, is new, or has less than half of max_age left.

local cjson = require "cjson.safe"
local h2lua = require "h2lua"
local base64 = require "lib.base64"

local session = {}

local find, format, match, floor = string.find, string.format, string.match, math.floor
local type, setmetatable = type, setmetatable

local MAX_COOKIE = 4000 -- browsers keep at most about 4096 bytes per cookie

local json = cjson.new()
json.decode_invalid_numbers(false)
json.decode_max_depth(8)

local Session = {}
Session.__index = Session

-- Adds a flash message (a string) shown once on a later page; category is free text for the
-- view (e.g. "success", "danger"), default "info". Keeps the newest max_flashes.
function Session:flash(message, category)
    local f = self.flashes
    f[#f + 1] = { message = tostring(message), category = category or "info" }
    while #f > self.max_flashes do table.remove(f, 1) end
    self.changed = true
end

-- Returns the flash messages (an array of { message, category }) and forgets them.
function Session:take_flashes()
    local f = self.flashes
    if #f == 0 then return f end
    self.flashes = {}
    self.changed = true
    return f
end

function Session:get(key)
    return self.data[key]
end

function Session:set(key, value)
    self.data[key] = value
    self.changed = true
end

local function now()
    return floor(h2lua.now())
end

local function sign(payload)
    return h2lua.hmac_sha256("session\0" .. payload)
end

local function new_session(opts)
    return setmetatable({
        id = h2lua.random_hex(16), flashes = {}, data = {}, is_new = true, changed = true,
        max_flashes = opts.max_flashes,
    }, Session)
end

-- The payload of a valid cookie value, decoded and checked, or nil.
local function decode(value, t)
    if type(value) ~= "string" or #value > MAX_COOKIE then return nil end
    local payload, mac = match(value, "^([%w%-_]+)%.(%x+)$")
    if not payload or #mac ~= 64 or not h2lua.equal(sign(payload), mac) then return nil end
    local p = json.decode(base64.url_decode(payload) or "")
    if type(p) ~= "table" or type(p.id) ~= "string" or not find(p.id, "^%x+$") or #p.id ~= 32 then
        return nil
    end
    if type(p.exp) ~= "number" or p.exp <= t then return nil end
    local flashes = {}
    if p.flash ~= nil then
        if type(p.flash) ~= "table" then return nil end
        for i, f in ipairs(p.flash) do
            if type(f) ~= "table" or type(f[1]) ~= "string" or type(f[2]) ~= "string" then return nil end
            flashes[i] = { message = f[1], category = f[2] }
        end
    end
    if p.data ~= nil and type(p.data) ~= "table" then return nil end
    return p, flashes
end

local is_https = h2lua.is_https

local function add_header(headers, name, value)
    local old = headers[name]
    if old == nil then
        headers[name] = value
    elseif type(old) == "table" then
        old[#old + 1] = value
    else
        headers[name] = { old, value }
    end
end

-- opts.name  cookie name (default "session"); opts.max_age  seconds a session lives without
-- being written again (default 7 days); opts.max_flashes  (default 10).
function session.new(opts)
    opts = opts or {}
    local name = opts.name or "session"
    local max_age = opts.max_age or 7 * 24 * 3600
    local cfg = { max_flashes = opts.max_flashes or 10 }
    assert(find(name, "^[%w_%-]+$"), "session.new: the cookie name must be a token")
    assert(math.type(max_age) == "integer" and max_age > 0, "session.new: max_age must be a positive integer")

    local sessions = { name = name, max_age = max_age }

    -- The request's session (from its cookie), or a new one.
    function sessions.load(req)
        local cookies = req.cookies
        local value = cookies and cookies[name]
        if value == nil then return new_session(cfg) end
        local t = now()
        local p, flashes = decode(value, t)
        if not p then return new_session(cfg) end
        return setmetatable({
            id = p.id, flashes = flashes, data = p.data or {}, is_new = false,
            changed = p.exp - t < max_age / 2, max_flashes = cfg.max_flashes,
        }, Session)
    end

    -- The Set-Cookie value that stores s (valid max_age seconds from now).
    function sessions.cookie(s, req)
        local p = { id = s.id, exp = now() + max_age }
        if #s.flashes > 0 then
            local f = {}
            for i, m in ipairs(s.flashes) do f[i] = { m.message, m.category } end
            p.flash = f
        end
        if next(s.data) ~= nil then p.data = s.data end
        local payload = base64.url_encode(json.encode(p))
        local value = payload .. "." .. sign(payload)
        if #value > MAX_COOKIE then
            error(format("session: the cookie would be %d bytes (at most %d)", #value, MAX_COOKIE), 2)
        end
        return format("%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s", name, value, max_age,
            is_https(req) and "; Secure" or "")
    end

    -- Adds the session's Set-Cookie header to res when the session needs writing. Returns res.
    function sessions.save(s, req, res)
        if s.changed and type(res) == "table" then
            res.headers = res.headers or {}
            add_header(res.headers, "set-cookie", sessions.cookie(s, req))
            s.changed = false
        end
        return res
    end

    return sessions
end

return session
