-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local cjson = require "cjson"

describe("http", function()
    local http

    before_each(function()
        package.loaded["lib.http"] = nil
        http = require "lib.http"
    end)

    describe("responses", function()
        it("html sets status, content-type and body", function()
            assert.same({ status = 200, headers = { ["content-type"] = "text/html; charset=utf-8" }, body = "<p>" },
                http.html("<p>"))
            assert.same({ status = 201, body = "", headers = {
                ["content-type"] = "text/html; charset=utf-8", ["x-a"] = "1" } },
                http.html(nil, 201, { ["x-a"] = "1" }))
        end)

        it("text uses text/plain and lets headers override content-type", function()
            assert.equal("text/plain; charset=utf-8", http.text("x").headers["content-type"])
            local headers = { ["content-type"] = "text/csv" }
            local res = http.text("a,b", 200, headers)
            assert.equal("text/csv", res.headers["content-type"])
            res.headers.extra = "y"
            assert.is_nil(headers.extra)
        end)

        it("json encodes the value", function()
            local res = http.json({ a = 1, list = { 1, 2 } }, 202)
            assert.equal(202, res.status)
            assert.equal("application/json; charset=utf-8", res.headers["content-type"])
            assert.same({ a = 1, list = { 1, 2 } }, cjson.decode(res.body))
        end)

        it("json encodes http.array() as an array even when empty", function()
            assert.equal('{"list":[]}', http.json({ list = http.array({}) }).body)
            assert.equal('[[],{}]', http.json({ http.array({}), {} }).body)
            assert.equal('[1,2]', http.json(http.array({ 1, 2 })).body)
        end)

        it("json raises on a value JSON cannot hold", function()
            assert.has_error(function() http.json({ f = print }) end)
        end)

        it("redirect answers 303 by default", function()
            assert.same({ status = 303, headers = { location = "/entries" }, body = "" }, http.redirect("/entries"))
            assert.equal(301, http.redirect("/x", 301).status)
        end)
    end)

    describe("errors without the server", function()
        it("raise a {status, message} object recognised by is_error", function()
            local ok, e = pcall(http.error, 418, "teapot")
            assert.is_false(ok)
            assert.is_true(http.is_error(e))
            assert.equal(418, e.status)
            assert.equal("teapot", e.message)
            assert.equal("HTTP 418: teapot", tostring(e))
        end)

        it("default the message to the status text", function()
            local _, e = pcall(http.error, 404)
            assert.equal("Not Found", e.message)
        end)

        it("are not confused with other values", function()
            assert.is_false(http.is_error({ status = 404, message = "x" }))
            assert.is_false(http.is_error("HTTP 404"))
            assert.is_false(http.is_error(nil))
        end)
    end)

    describe("errors in the server", function()
        local fake_error = {}

        before_each(function()
            package.loaded.h2lua = {
                http_error = function(status, message)
                    error(setmetatable({ status = status, message = message }, fake_error))
                end,
                is_http_error = function(v) return getmetatable(v) == fake_error end,
            }
            package.loaded["lib.http"] = nil
            http = require "lib.http"
        end)

        after_each(function()
            package.loaded.h2lua = nil
            package.loaded["lib.http"] = nil
        end)

        it("use h2lua.http_error and h2lua.is_http_error", function()
            local _, e = pcall(http.error, 400, "bad form")
            assert.equal(fake_error, getmetatable(e))
            assert.is_true(http.is_error(e))
            assert.same({ status = 400, message = "bad form" }, { status = e.status, message = e.message })
        end)
    end)
end)
