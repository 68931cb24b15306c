-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local router = require "lib.router"

local function handler(name)
    return function() return name end
end

describe("router", function()
    local r

    before_each(function()
        r = router.new()
        r:get("/", handler("root"))
        r:get("/entries", handler("list"))
        r:post("/entries", handler("create"))
        r:get("/entries/new", handler("new"))
        r:get("/entries/:id[%d]", handler("show"))
        r:put("/entries/:id[%d]", handler("replace"))
        r:patch("/entries/:id[%d]", handler("update"))
        r:delete("/entries/:id[%d]", handler("destroy"))
        r:get("/tags/:name", handler("tag"))
        r:get("/users/:user_id[%d]/posts/:post_id[%d]", handler("post"))
        r:route("OPTIONS", "/entries", handler("options"))
    end)

    describe("literal routes", function()
        it("match exactly and give empty params", function()
            local h, params = r:match("GET", "/")
            assert.equal("root", h())
            assert.same({}, params)
            h = r:match("GET", "/entries")
            assert.equal("list", h())
            h = r:match("POST", "/entries")
            assert.equal("create", h())
            h = r:match("OPTIONS", "/entries")
            assert.equal("options", h())
        end)

        it("win over parameter routes", function()
            local h, params = r:match("GET", "/entries/new")
            assert.equal("new", h())
            assert.same({}, params)
        end)

        it("give read-only params", function()
            local _, params = r:match("GET", "/")
            assert.has_error(function() params.x = 1 end)
        end)

        it("treat pattern characters in literal segments literally", function()
            r:get("/a.b/(c)%/:name", handler("odd"))
            assert.equal("odd", (r:match("GET", "/a.b/(c)%/x"))())
            assert.is_nil((r:match("GET", "/aXb/(c)%/x")))
        end)
    end)

    describe("string params", function()
        it("match one non-empty segment", function()
            local h, params = r:match("GET", "/tags/lua-5.4")
            assert.equal("tag", h())
            assert.same({ name = "lua-5.4" }, params)
        end)

        it("do not match an empty segment or several segments", function()
            assert.same({ nil, 404 }, { r:match("GET", "/tags/") })
            assert.same({ nil, 404 }, { r:match("GET", "/tags/a/b") })
        end)
    end)

    describe("typed integer params", function()
        it("match :id[%d] as a Lua integer", function()
            local h, params = r:match("GET", "/entries/42")
            assert.equal("show", h())
            assert.equal(42, params.id)
            assert.equal("integer", math.type(params.id))
        end)

        it("match every :<name>[%d] as an integer", function()
            local h, params = r:match("GET", "/users/7/posts/9007199254740991")
            assert.equal("post", h())
            assert.same({ user_id = 7, post_id = 9007199254740991 }, params)
            assert.equal("integer", math.type(params.post_id))
        end)

        it("do not match zero, leading zeros, signs, non-digits or values above 2^53-1", function()
            for _, id in ipairs { "0", "00", "042", "-1", "+1", "1.0", "1e3", "abc", "12a", " 1",
                                  "9007199254740992", "99999999999999999", "123456789012345678901234567890" } do
                assert.same({ nil, 404 }, { r:match("GET", "/entries/" .. id) }, "id " .. id)
            end
        end)

        it("are typed by the pattern, not by the name: :id alone is a string", function()
            r:get("/plain/:id", handler("plain"))
            local h, params, pattern = r:match("GET", "/plain/007")
            assert.equal("plain", h())
            assert.same({ id = "007" }, params)
            assert.equal("/plain/:id", pattern)
        end)

        it("give the route's pattern without its types as the third result", function()
            assert.equal("/entries/:id", select(3, r:match("GET", "/entries/42")))
            assert.equal("/entries", select(3, r:match("GET", "/entries")))
        end)

        it("reject a type other than [%d]", function()
            assert.has_error(function() r:get("/x/:a[%w]", handler("x")) end)
            assert.has_error(function() r:get("/x/:a[", handler("x")) end)
        end)

        it("accept the bounds", function()
            assert.equal(1, select(2, r:match("GET", "/entries/1")).id)
            assert.equal(9007199254740991, select(2, r:match("GET", "/entries/9007199254740991")).id)
        end)
    end)

    describe("misses", function()
        it("give 404 when no route matches the path", function()
            assert.same({ nil, 404 }, { r:match("GET", "/nope") })
            assert.same({ nil, 404 }, { r:match("POST", "/nope") })
        end)

        it("are strict about trailing slashes", function()
            assert.same({ nil, 404 }, { r:match("GET", "/entries/") })
            assert.same({ nil, 404 }, { r:match("GET", "/entries/42/") })
            r:get("/slash/", handler("slash"))
            assert.same({ nil, 404 }, { r:match("GET", "/slash") })
            assert.equal("slash", (r:match("GET", "/slash/"))())
        end)

        it("give 405 with the sorted Allow list when the path matches another method", function()
            assert.same({ nil, 405, "DELETE, GET, HEAD, PATCH, PUT" }, { r:match("POST", "/entries/42") })
            assert.same({ nil, 405, "GET, HEAD, OPTIONS, POST" }, { r:match("DELETE", "/entries") })
            assert.same({ nil, 405, "GET, HEAD" }, { r:match("POST", "/") })
        end)

        it("collect Allow from every route matching the path", function()
            r:post("/entries/:name", handler("by name"))
            assert.same({ nil, 405, "DELETE, GET, HEAD, PATCH, POST, PUT" }, { r:match("TRACE", "/entries/5") })
        end)

        it("do not list HEAD without GET", function()
            r:post("/only-post", handler("p"))
            assert.same({ nil, 405, "POST" }, { r:match("GET", "/only-post") })
        end)
    end)

    describe("HEAD", function()
        it("is answered by the GET handler", function()
            assert.equal("root", (r:match("HEAD", "/"))())
            local h, params = r:match("HEAD", "/entries/3")
            assert.equal("show", h())
            assert.equal(3, params.id)
        end)

        it("uses an explicit HEAD route when there is one", function()
            r:route("HEAD", "/entries", handler("head"))
            assert.equal("head", (r:match("HEAD", "/entries"))())
        end)
    end)

    describe("definitions", function()
        it("reject a route added twice", function()
            assert.has_error(function() r:get("/entries/:id[%d]", handler("again")) end,
                "router: route GET /entries/:id[%d] added twice")
        end)

        it("reject bad patterns, methods and handlers", function()
            assert.has_error(function() r:get("entries", handler("x")) end)
            assert.has_error(function() r:get("/x/:", handler("x")) end)
            assert.has_error(function() r:get("/x/:1a", handler("x")) end)
            assert.has_error(function() r:get("/x/:a/:a", handler("x")) end)
            assert.has_error(function() r:route("get", "/x", handler("x")) end)
            assert.has_error(function() r:get("/x", "not a function") end)
        end)

        it("return the router so calls chain", function()
            local r2 = router.new():get("/a", handler("a")):post("/b", handler("b"))
            assert.equal("a", (r2:match("GET", "/a"))())
            assert.equal("b", (r2:match("POST", "/b"))())
        end)
    end)
end)
