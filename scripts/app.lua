-- The entries application: its routes. Loaded by the server into each worker; returns handle(req).

local h2lua = require "h2lua"
local csrf = require "lib.csrf"
local router = require "lib.router"
local session = require "lib.session"
local view = require "lib.view"
local web = require "lib.web"
local devreload = require "lib.devreload"
local api = require "handlers.api"
local entries = require "handlers.entries"
local entry = require "models.entry"
local limits = require "handlers.limits"

local views = view.load(h2lua.config.views_dir)
local sessions = session.new { name = "session" }

-- An HTML page: the handler runs with req.session, which is saved into the response.
local function page(fn)
    return function(req)
        local s = sessions.load(req)
        req.session = s
        return sessions.save(s, req, fn(req))
    end
end

-- An HTML form post: a page whose form must carry the session's CSRF token, else 403 and the
-- handler does not run.
local function form(fn)
    return page(function(req)
        csrf.check(req, req.session)
        return fn(req)
    end)
end

-- every change of an entry, delivered as a signed event to WEBHOOK_URL (see lib.webhook)
if h2lua.config.webhook then entry.deliver_events(require("lib.webhook").new(h2lua.config.webhook):start()) end
-- Writes per client (WRITE_LIMIT): past it 429 with Retry-After, before anything else runs.
local limited = limits.writes()

local r = router.new()
r:get("/", page(entries.index))
r:get("/index", page(entries.index))
r:post("/add", limited(form(entries.add)))
r:get("/update/:id[%d]", page(entries.edit))
r:post("/update/:id[%d]", limited(form(entries.update)))
r:post("/turn/:id[%d]", limited(form(entries.toggle)))
r:post("/delete/:id[%d]", limited(form(entries.delete)))

r:get("/api/entries", api.list)
r:post("/api/entries", limited(api.create))
r:get("/api/entries/:id[%d]", api.show)
r:patch("/api/entries/:id[%d]", limited(api.update))
r:delete("/api/entries/:id[%d]", limited(api.delete))

-- development: open pages reload themselves on a new version (/_dev/reload.js, /_dev/events)
if h2lua.config.app_env == "development" then devreload.mount(r, views) end

return web.new {
    router = r,
    view = views,
    env = h2lua.config.app_env,
    log_error = h2lua.log_error,
    error_response = api.error_response,
    -- what every page's views get: the CSRF token of its forms and the flashes to show
    locals = function(req)
        if not req.session then return nil end
        return { csrf_token = csrf.token(req.session), flashes = req.session:take_flashes() }
    end,
}
