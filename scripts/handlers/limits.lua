-- The entries app's limit on writes: WRITE_LIMIT (h2lua.config.write_limit writes per
-- write_limit_window seconds, sliding) per client address (req.client_addr: the peer, or the
-- client a trusted proxy names), counted by every worker of the process in the shared store
-- `limits` (SHARED_STORES declares it by default). Each process counts alone: behind a load
-- balancer a client may make up to the limit on each app server.
--
-- Past the limit: 429 with Retry-After (whole seconds, at least 1) — the page views/429.etlua, or
-- {"error": message} under /api/ — before the session or the CSRF token is read. /metrics counts
-- them as h2lua_requests_total{route=<the write's route>,status="429"}.

local h2lua = require "h2lua"
local shared = require "h2lua.shared"
local limit = require "lib.limit"
local api = require "handlers.api"

local limits = {}

local format, tostring = string.format, tostring

local function unlimited(fn) return fn end

local function too_many(req, retry)
    local headers = { ["retry-after"] = tostring(retry) }
    local message = format("Too many changes from your address: try again in %d second%s.", retry,
        retry == 1 and "" or "s")
    local res = api.error_response(req, 429, message, headers)
    if res then return res end
    res = req.render("429", { title = "429 Too Many Requests", message = message, request_id = req.id }, 429)
    res.headers["retry-after"] = headers["retry-after"]
    return res
end

-- Returns wrap(handler) -> handler that counts each call against the client's writes. When
-- WRITE_LIMIT=off, wrap returns the handler itself; likewise when SHARED_STORES declares no store
-- `limits` (logged at load by the first worker: the operator chose the stores, the app does not
-- refuse to start over a guard).
function limits.writes()
    local n, window = h2lua.config.write_limit or 0, h2lua.config.write_limit_window or 0
    if n == 0 then return unlimited end
    local store = shared.limits
    if not store then
        if h2lua.worker == 0 then
            h2lua.log_error("WRITE_LIMIT is set but SHARED_STORES declares no store 'limits': writes are not limited")
        end
        return unlimited
    end
    local writes = limit.new { store = store, limit = n, window = window, sliding = true, prefix = "writes:" }
    return function(fn)
        return function(req)
            local ok, _, retry = writes:take(req.client_addr)
            if ok then return fn(req) end
            return too_many(req, retry)
        end
    end
end

return limits
