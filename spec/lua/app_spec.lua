-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua' spec/lua
-- Loads scripts/app.lua with a stand-in for the server's `h2lua` module.
package.path = "./scripts/?.lua;./scripts/?/init.lua;" .. package.path

local function load_app(env)
    local logged = {}
    package.loaded.h2lua = {
        config = { views_dir = "views", app_env = env or "production" },
        log_error = function(message, fields) logged[#logged + 1] = { message, fields } end,
    }
    for name in pairs(package.loaded) do
        if name:find("^lib%.") then package.loaded[name] = nil end
    end
    local handle = dofile("scripts/app.lua")
    package.loaded.h2lua = nil
    return handle, logged
end

describe("app", function()
    it("returns a handle function", function()
        assert.is_function(load_app())
    end)

    it("renders the index page with Bootstrap and an empty state", function()
        local res = load_app()({ method = "GET", path = "/", id = "1" })
        assert.equal(200, res.status)
        assert.equal("text/html; charset=utf-8", res.headers["content-type"])
        local body = res.body
        assert.matches("^<!doctype html>\n<html lang=\"en\">", body)
        assert.matches("<title>Entries</title>", body, 1, true)
        assert.matches('<link rel="stylesheet" href="/static/bootstrap/css/bootstrap.min.css">', body, 1, true)
        assert.matches('<link rel="stylesheet" href="/static/app.css">', body, 1, true)
        assert.matches('<a class="navbar-brand" href="/">h2lua</a>', body, 1, true)
        assert.matches("No entries yet", body, 1, true)
    end)

    it("answers an unknown path with the 404 page inside the layout", function()
        local res = load_app()({ method = "GET", path = "/nope", id = "1" })
        assert.equal(404, res.status)
        assert.matches("<title>404 Not Found</title>", res.body, 1, true)
    end)

    it("answers a wrong method with 405 and Allow", function()
        local res = load_app()({ method = "POST", path = "/", id = "1" })
        assert.equal(405, res.status)
        assert.equal("GET, HEAD", res.headers.allow)
    end)
end)
