-- The entries application: its routes. Loaded by the server into each worker; returns handle(req).

local h2lua = require "h2lua"
local router = require "lib.router"
local view = require "lib.view"
local web = require "lib.web"
local http = require "lib.http"

local views = view.load(h2lua.config.views_dir)
local r = router.new()

r:get("/", function()
    return http.html(views.render("index", { title = "Entries", entries = {} }))
end)

return web.new {
    router = r,
    view = views,
    env = h2lua.config.app_env,
    log_error = h2lua.log_error,
}
