-- limit: rate limits per key (a client's address, a user, an API token) on a store of
-- h2lua.shared, so that every worker of the process counts together.
--
--   local limit = require "lib.limit"
--   local writes = limit.new { store = require("h2lua.shared").limits, limit = 30, window = 60,
--                              sliding = true, prefix = "writes:" }
--   local allowed, remaining, retry_after = writes:take(req.client_addr)      -- n = 1
--   local allowed, remaining, retry_after = writes:take(key, n)
--
-- A fixed window counts the takes of each `window` seconds (10:00:00-10:00:59, then from zero);
-- a sliding window adds the previous window's count weighted by how much of it is still within
-- `window` seconds (the estimate Cloudflare and lua-resty-limit-traffic's sliding count use), so
-- a burst at a window's end does not earn a second full allowance at the next one's start.
--
-- take(key, n) counts n against key and returns:
--   true, remaining, 0            within the limit (remaining: what is left in the window)
--   false, 0, retry_after         past it: nothing is counted; retry after that many seconds (an
--                                 integer >= 1: a Retry-After header's value)
-- Counting is one atomic `incr` of the store (created at 0 with a TTL of the window, two for a
-- sliding one), so concurrent takes on every worker each see their own total: no read-modify-write.
-- A take that is refused gives its n back with a second `incr`.
--
-- The store's failures fail OPEN: when it refuses a write (a value it cannot hold), the take is
-- allowed and one line is logged (at most one a minute per limiter). A limit is a guard against
-- abuse, not an access rule: a broken limiter must not take the site down with it. A full store
-- evicts its least recently used counters (a client seen long ago starts from zero again), which
-- is logged the same way: make the store larger.
--
-- Keys longer than 200 bytes are replaced by their HMAC (h2lua.hmac_sha256), so that any key fits
-- the store's 250 bytes. Each process has its own stores: with several app servers behind a load
-- balancer each counts alone (a client may get up to limit x servers).

local h2lua = require "h2lua"

local limit = {}
local Limiter = {}
Limiter.__index = Limiter

local floor, ceil, format, type, tostring = math.floor, math.ceil, string.format, type, tostring
local LOG_EVERY = 60 -- seconds between two log lines of one limiter

local function whole(v) return type(v) == "number" and v == floor(v) end

-- A limiter. opts.store: a store of h2lua.shared (required); opts.limit: the takes allowed per
-- window (an integer >= 1); opts.window: its length in seconds (> 0, fractions allowed);
-- opts.sliding: a sliding window (default fixed); opts.prefix: put before every key (default
-- ""; limiters sharing a store need different ones); opts.clock: a function returning the time
-- in seconds (default h2lua.now); opts.log: function(message, fields) (default h2lua.log_error).
-- Raises on a bad option.
function limit.new(opts)
    assert(type(opts) == "table", "limit.new: options table expected")
    local store = opts.store
    assert(type(store) == "table" or type(store) == "userdata", "limit.new: store must be a store of h2lua.shared")
    assert(whole(opts.limit) and opts.limit >= 1, "limit.new: limit must be an integer >= 1")
    assert(type(opts.window) == "number" and opts.window > 0, "limit.new: window must be a number of seconds > 0")
    assert(opts.prefix == nil or type(opts.prefix) == "string", "limit.new: prefix must be a string")
    return setmetatable({
        store = store,
        limit = opts.limit,
        window = opts.window,
        sliding = opts.sliding and true or false,
        prefix = opts.prefix or "",
        clock = opts.clock or h2lua.now,
        log = opts.log or h2lua.log_error,
        logged_at = {},
    }, Limiter)
end

-- One log line per kind per LOG_EVERY seconds.
function Limiter:complain(kind, message, now)
    local last = self.logged_at[kind]
    if last and now - last < LOG_EVERY then return end
    self.logged_at[kind] = now
    self.log(message, { prefix = self.prefix, limit = self.limit, window = self.window })
end

-- See the top of this file.
function Limiter:take(key, n)
    n = n or 1
    assert(type(key) == "string", "limit: key must be a string")
    assert(whole(n) and n >= 1 and n <= self.limit, "limit: n must be an integer from 1 to the limit")
    if #key > 200 then key = "#" .. h2lua.hmac_sha256(key) end
    local now, w, max, store = self.clock(), self.window, self.limit, self.store
    local window = floor(now / w)
    local elapsed = now - window * w
    local base = self.prefix .. key .. ":"
    local k = base .. format("%d", window)
    local count, err, forcible = store:incr(k, n, 0, self.sliding and 2 * w or w)
    if not count then
        self:complain("failed", "limit: the store failed (" .. tostring(err) .. "); requests are let through", now)
        return true, max - n, 0
    end
    if forcible then
        self:complain("full", "limit: the store is full and evicts counters; make it larger", now)
    end
    local previous = 0
    if self.sliding then
        previous = tonumber(store:get(base .. format("%d", window - 1))) or 0
    end
    local used = previous * (1 - elapsed / w) + count
    if used <= max then return true, floor(max - used), 0 end

    store:incr(k, -n) -- refused: nothing counted (a failure here only over-counts until the TTL)
    count = count - n
    local wait
    if not self.sliding then
        wait = w - elapsed
    elseif count + n <= max then
        -- this window alone has room: wait until enough of the previous one has slid out
        wait = w * (1 - (max - count - n) / previous) - elapsed
    else
        -- the next window, once enough of this one (its previous then) has slid out
        wait = (w - elapsed) + w * (1 - (max - n) / count)
    end
    wait = ceil(wait)
    return false, 0, wait >= 1 and wait or 1
end

return limit
