-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local router = require "lib.router"
local view = require "lib.view"
local http = require "lib.http"
local web = require "lib.web"

local DIR = "spec/lua/fixtures/web_views"

local function request(method, path)
    return { method = method, path = path, id = "00000000000000ab" }
end

describe("web", function()
    local r, views, logged

    local function app(env, v)
        return web.new {
            router = r,
            view = v == nil and views or v or nil,
            env = env or "production",
            log_error = function(message, fields) logged[#logged + 1] = { message = message, fields = fields } end,
        }
    end

    before_each(function()
        logged = {}
        views = view.load(DIR)
        r = router.new()
        r:get("/", function() return http.html(views.render("page", { text = "home" })) end)
        r:get("/items/:id[%d]", function(req)
            return http.text("item " .. req.params.id .. " " .. math.type(req.params.id))
        end)
        r:post("/items", function() return http.text("created", 201) end)
        r:get("/teapot", function() http.error(418, "short and <stout>") end)
        r:get("/boom", function() error("kaboom") end)
        r:get("/nothing", function() end)
        r:get("/broken", function() return http.html(views.render("broken")) end)
        r:get("/yield", function(req)
            local v = coroutine.yield("waiting")
            return http.text(req.path .. " " .. v)
        end)
    end)

    it("calls the handler with req.params and returns its response", function()
        local res = app()(request("GET", "/"))
        assert.same({ status = 200, headers = { ["content-type"] = "text/html; charset=utf-8" },
                      body = "<main><p>home</p>\n</main>\n", route = "/" }, res)
        local req = request("GET", "/items/12")
        local item = app()(req)
        assert.equal("item 12 integer", item.body)
        assert.equal("/items/:id", item.route)
        assert.same({ id = 12 }, req.params)
    end)

    it("gives each request req.render: the view in its layout with the app's locals, as HTML", function()
        r:get("/rendered", function(req) return req.render("page", { text = "rendered" }, 201) end)
        local handle = web.new { router = r, view = views, locals = function(req) return { text = req.id } end }
        local res = handle(request("GET", "/rendered"))
        assert.same({ 201, "text/html; charset=utf-8", "<main><p>rendered</p>\n</main>\n" },
            { res.status, res.headers["content-type"], res.body })
        r:get("/from-locals", function(req) return req.render("page") end)
        assert.equal("<main><p>00000000000000ab</p>\n</main>\n", handle(request("GET", "/from-locals")).body)
    end)

    it("answers HEAD with the GET handler", function()
        assert.equal("item 3 integer", app()(request("HEAD", "/items/3")).body)
    end)

    it("renders view 404 when no route matches", function()
        for _, path in ipairs { "/nope", "/items/0", "/items/007", "/items/99999999999999999999" } do
            local res = app()(request("GET", path))
            assert.equal(404, res.status)
            assert.equal('<main><h1 id="nf">404 Not Found</h1>\n</main>\n', res.body)
        end
        assert.same({}, logged)
    end)

    it("answers 405 with Allow and the error view", function()
        r:get("/items", function() return http.text("list") end)
        local res = app()(request("DELETE", "/items"))
        assert.equal(405, res.status)
        assert.equal("GET, HEAD, POST", res.headers.allow)
        assert.matches("<h1>405 Method Not Allowed</h1>", res.body, 1, true)
    end)

    it("maps an HTTP error to its status and the error view", function()
        local res = app()(request("GET", "/teapot"))
        assert.equal(418, res.status)
        assert.matches("<h1>418 I&#39;m a teapot</h1><p>short and &lt;stout&gt;</p><i>00000000000000ab</i>",
            res.body, 1, true)
        assert.same({}, logged)
    end)

    it("maps an HTTP error raised while a template renders", function()
        local base_views = views
        r:get("/deny", function()
            return http.html(base_views.render("page", setmetatable({}, {
                __pairs = function() http.error(403, "no") end,
            })))
        end)
        assert.equal(403, app()(request("GET", "/deny")).status)
    end)

    describe("other errors", function()
        it("give 500 without details in production, and are logged", function()
            local res = app("production")(request("GET", "/boom"))
            assert.equal(500, res.status)
            assert.matches("<p>Internal Server Error</p><i>", res.body, 1, true)
            assert.not_matches("kaboom", res.body, 1, true)
            assert.not_matches("traceback", res.body, 1, true)
            assert.equal(1, #logged)
            assert.matches("web_spec%.lua:%d+: kaboom$", logged[1].message)
            assert.matches("stack traceback:", logged[1].fields.traceback, 1, true)
            assert.same({ "00000000000000ab", "/boom", "GET" },
                { logged[1].fields.request_id, logged[1].fields.path, logged[1].fields.method })
        end)

        it("give 500 with the message and traceback in development", function()
            local res = app("development")(request("GET", "/boom"))
            assert.equal(500, res.status)
            assert.matches("kaboom</p><pre>stack traceback:", res.body, 1, true)
            assert.equal(1, #logged)
        end)

        it("name the template file and line in development", function()
            local res = app("development")(request("GET", "/broken"))
            assert.equal(500, res.status)
            assert.matches(DIR .. "/broken.etlua:2: attempt to index a nil value (global &#39;nope&#39;)",
                res.body, 1, true)
        end)

        it("give 500 when a handler returns no response table", function()
            local res = app()(request("GET", "/nothing"))
            assert.equal(500, res.status)
            assert.equal("handler for GET /nothing returned nil, not a response table", logged[1].message)
        end)
    end)

    describe("error pages", function()
        it("fall back to plain text when the error view fails", function()
            local failing = {
                has = function() return true end,
                render = function() error("view broken") end,
            }
            local res = app("production", failing)(request("GET", "/boom"))
            assert.equal(500, res.status)
            assert.equal("text/plain; charset=utf-8", res.headers["content-type"])
            assert.equal("500 Internal Server Error\nInternal Server Error\n", res.body)
            assert.equal(2, #logged)
            assert.matches("view broken", logged[2].message, 1, true)
        end)

        it("are plain text without views", function()
            local res = app("production", false)(request("GET", "/nope"))
            assert.equal(404, res.status)
            assert.equal("404 Not Found\nNot Found\n", res.body)
            res = app("production", false)(request("POST", "/"))
            assert.equal(405, res.status)
            assert.equal("GET, HEAD", res.headers.allow)
        end)
    end)

    describe("error_response", function()
        local function json_app(hook)
            return web.new {
                router = r, view = views, env = "production", error_response = hook,
                log_error = function(message, fields) logged[#logged + 1] = { message = message, fields = fields } end,
            }
        end
        local function json_errors(req, status, message, headers)
            if req.path:sub(1, 7) ~= "/items/" then return nil end
            return http.text(status .. " " .. tostring(message), status, headers)
        end

        it("answers errors it takes: router 404 and 405, HTTP errors, 500s", function()
            r:get("/items/:id[%d]/boom", function() error("kaboom") end)
            r:get("/items/:id[%d]/gone", function() http.error(410, "gone away") end)
            local handle = json_app(json_errors)
            assert.equal("404 Not Found", handle(request("GET", "/items/0")).body)
            local res = handle(request("PUT", "/items/1"))
            assert.equal("405 Method Not Allowed", res.body)
            assert.equal("GET, HEAD", res.headers.allow)
            assert.equal("410 gone away", handle(request("GET", "/items/1/gone")).body)
            res = handle(request("GET", "/items/1/boom"))
            assert.equal("500 Internal Server Error", res.body)
            assert.equal("/items/:id/boom", res.route)
            assert.equal(1, #logged)
        end)

        it("leaves the others to the error views", function()
            local res = json_app(json_errors)(request("GET", "/nope"))
            assert.equal('<main><h1 id="nf">404 Not Found</h1>\n</main>\n', res.body)
        end)

        it("falls back to the error views when it fails", function()
            local res = json_app(function() error("hook broken") end)(request("GET", "/nope"))
            assert.equal(404, res.status)
            assert.matches("404 Not Found", res.body, 1, true)
            assert.matches("hook broken", logged[1].message, 1, true)
        end)
    end)

    it("lets the handler's coroutine yield and resume", function()
        local co = coroutine.create(app())
        local ok, v = coroutine.resume(co, request("GET", "/yield"))
        assert.is_true(ok)
        assert.equal("waiting", v)
        local ok2, res = coroutine.resume(co, "done")
        assert.is_true(ok2)
        assert.equal("/yield done", res.body)
        assert.equal("dead", coroutine.status(co))
    end)
end)
