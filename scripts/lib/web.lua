-- web: the application's handle(req) built from a router and views.
--
-- Per request: match the route (req.params = the route's params), call the handler, return its
-- response. What goes wrong becomes a page:
--   no route for the path               404, view "404" (else "error")
--   routes for the path, not the method 405 with an Allow header, view "405" (else "error")
--   an HTTP error raised (http.error)   its status, view "<status>" (else "error")
--   any other error, or a handler that
--   does not return a table             500, view "error"; logged with log_error; the message
--                                       and traceback are on the page only in development
-- Error views get: status, title ("404 Not Found"), message, traceback (development 500s only),
-- request_id. When the error view itself fails, the body is plain text.
-- Every response gets `route`: the matched pattern without its types ("/update/:id"), or
-- "404"/"405" — the server counts requests by route and status in /metrics (a bounded set, unlike
-- raw paths).
-- The handler runs under xpcall, which lets C functions of the server yield the coroutine.
--
-- Each request also gets req.render(name, data, status) -> response: the view `name` rendered with
-- data inside the layout (lib.view), as an HTML response with status (default 200). The values of
-- opts.locals(req) (when given; e.g. the CSRF token and the flashes) are added to data once, at
-- render time, without replacing what data holds.

local http = require "lib.http"

local web = {}

local traceback, xpcall, pcall, type, tostring, gsub = debug.traceback, xpcall, pcall, type, tostring, string.gsub
local format = string.format

local Failure = {} -- metatable of the error record made by on_error for non-HTTP errors

local function on_error(e)
    if http.is_error(e) then return e end
    -- traceback("", 2) rather than (nil, 2): LuaJIT returns a nil message as it is
    return setmetatable({ message = tostring(e), traceback = (gsub(traceback("", 2), "^\n", "")) }, Failure)
end

local function log_to_stderr(message, fields)
    io.stderr:write(format("error: %s %s %s (request %s)\n%s\n", tostring(fields.method),
        tostring(fields.path), message, tostring(fields.request_id), tostring(fields.traceback)))
end

-- opts.router  a lib.router (required)
-- opts.view    views from lib.view (optional: without them error pages are plain text)
-- opts.env     "development" shows 500 details on the page; anything else does not
-- opts.log_error  function(message, fields) (default: a line on stderr); fields has traceback,
--              request_id, path, method
-- opts.error_response  function(req, status, message, headers) -> response | nil, tried before
--              the error views (e.g. JSON errors under /api/); nil falls back to the views
-- opts.locals  function(req) -> table | nil: values every view rendered by req.render gets
-- Returns handle(req) -> response table. handle does not raise.
function web.new(opts)
    local router = assert(opts.router, "web.new: router required")
    local views = opts.view
    local development = opts.env == "development"
    local log_error = opts.log_error or log_to_stderr
    local error_response = opts.error_response
    local locals = opts.locals

    local function render(req, name, data, status)
        data = data or {}
        local extra = locals and locals(req)
        if extra then
            for k, v in pairs(extra) do
                if data[k] == nil then data[k] = v end
            end
        end
        return http.html(views.render(name, data), status)
    end

    local function fields(req, tb)
        return { traceback = tb, request_id = req.id, path = req.path, method = req.method }
    end

    local function error_page(req, status, message, headers, tb)
        if error_response then
            local ok, res = pcall(error_response, req, status, message, headers)
            if ok and type(res) == "table" then return res end
            if not ok then log_error("error_response failed: " .. tostring(res), fields(req)) end
        end
        local title = format("%d %s", status, http.status_text[status] or "Error")
        if views then
            local name = views.has(tostring(status)) and tostring(status) or "error"
            if views.has(name) then
                local ok, body = pcall(views.render, name, {
                    status = status, title = title, message = message, traceback = tb,
                    request_id = req.id,
                })
                if ok then return http.html(body, status, headers) end
                log_error("error page " .. name .. " failed: " .. tostring(body), fields(req))
            end
        end
        local body = title .. "\n"
        if message and message ~= title then body = body .. message .. "\n" end
        if tb then body = body .. tb .. "\n" end
        return http.text(body, status, headers)
    end

    local function internal_error(req, message, tb)
        log_error(message, fields(req, tb))
        if development then return error_page(req, 500, message, nil, tb) end
        return error_page(req, 500, "Internal Server Error")
    end

    return function(req)
        local handler, params, pattern = router:match(req.method, req.path)
        if not handler then
            local status, allow = params, pattern
            local res
            if status == 405 then
                res = error_page(req, 405, "Method Not Allowed", { allow = allow })
            else
                res = error_page(req, 404, "Not Found")
            end
            res.route = tostring(status)
            return res
        end
        req.params = params
        if views then
            req.render = function(name, data, status) return render(req, name, data, status) end
        end
        local ok, res = xpcall(handler, on_error, req)
        if ok then
            if type(res) ~= "table" then
                res = internal_error(req, format("handler for %s %s returned %s, not a response table",
                    req.method, req.path, type(res)))
            end
        elseif getmetatable(res) == Failure then
            res = internal_error(req, res.message, res.traceback)
        else
            local status = res.status
            if math.type(status) ~= "integer" or status < 100 or status > 599 then
                res = internal_error(req, "HTTP error with a bad status: " .. tostring(status))
            else
                res = error_page(req, status, res.message and tostring(res.message))
            end
        end
        res.route = pattern
        return res
    end
end

return web
