-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
-- Loads the end-to-end fixture app (spec/e2e/fixtures) with a stand-in for the server's `h2lua`
-- module, so a broken fixture shows up here before the end-to-end run.
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local cjson = require "cjson"

local slept, logged

local function load_fixture(env)
    slept, logged = {}, {}
    local fake = dofile("spec/lua/support/fake_h2lua.lua").new()
    fake.config = { views_dir = "spec/e2e/fixtures/views", app_env = env or "development" }
    fake.log_error = function(message, fields) logged[#logged + 1] = { message, fields } end
    fake.sleep = function(s) slept[#slept + 1] = s end
    package.loaded.h2lua = fake
    for name in pairs(package.loaded) do
        if name:find("^lib%.") then package.loaded[name] = nil end
    end
    local handle = dofile("spec/e2e/fixtures/scripts/app.lua")
    package.loaded.h2lua = nil
    return handle
end

local function request(method, path, fields)
    local req = { method = method, path = path, id = "0123456789abcdef", query = {}, headers = {},
                  cookies = {}, form = {}, remote_addr = "127.0.0.1", worker = 0, version = "HTTP/1.1" }
    for k, v in pairs(fields or {}) do req[k] = v end
    return req
end

describe("e2e fixture app", function()
    local handle

    before_each(function()
        handle = load_fixture()
    end)

    it("answers /hello", function()
        local res = handle(request("GET", "/hello"))
        assert.same({ 200, "hello", "text/plain; charset=utf-8" },
            { res.status, res.body, res.headers["content-type"] })
    end)

    it("echoes the request as JSON", function()
        local res = handle(request("GET", "/echo", { query = { a = "1" } }))
        local echo = cjson.decode(res.body)
        assert.same({ "GET", "/echo", "1", "0123456789abcdef", "HTTP/1.1" },
            { echo.method, echo.path, echo.query.a, echo.id, echo.version })
    end)

    it("escapes and does not escape side by side", function()
        local res = handle(request("GET", "/escape", { query = { s = "<b>&" } }))
        assert.matches('<p id="escaped">&lt;b&gt;&amp;</p>\n<p id="raw"><b>&</p>', res.body, 1, true)
    end)

    it("maps errors", function()
        assert.equal(500, handle(request("GET", "/boom")).status)
        assert.equal(418, handle(request("GET", "/http-error")).status)
        local res = handle(request("GET", "/bad-template"))
        assert.equal(500, res.status)
        assert.matches("spec/e2e/fixtures/views/bad.etlua:3: attempt to index a nil value", res.body, 1, true)
    end)

    it("routes typed params and methods", function()
        assert.equal("user 42 integer", handle(request("GET", "/users/42")).body)
        assert.equal(404, handle(request("GET", "/users/042")).status)
        assert.equal(201, handle(request("POST", "/things")).status)
        assert.equal("deleted 7", handle(request("DELETE", "/things/7")).body)
        assert.equal("DELETE", handle(request("GET", "/things/7")).headers.allow)
    end)

    it("sets cookies, redirects, sleeps and encodes JSON", function()
        assert.same({ "a=1; Path=/; HttpOnly", "b=2; Path=/" },
            handle(request("GET", "/cookies")).headers["set-cookie"])
        local res = handle(request("GET", "/redirect"))
        assert.same({ 303, "/hello" }, { res.status, res.headers.location })
        assert.equal("slept", handle(request("GET", "/sleep", { query = { ms = "250" } })).body)
        assert.same({ 0.25 }, slept)
        assert.equal(400, handle(request("GET", "/sleep", { query = { ms = "x" } })).status)
        local json = cjson.decode(handle(request("GET", "/json")).body)
        assert.same({ true, 42 }, { json.ok, json.n })
    end)
end)
