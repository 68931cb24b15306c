-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
-- Loads scripts/app.lua with stand-ins for the server's `h2lua` and `h2lua.db` modules (the
-- end-to-end tests in spec/e2e run it on the real server and MariaDB).
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local cjson = require "cjson"
local fake_h2lua = dofile("spec/lua/support/fake_h2lua.lua")
local fake_db = dofile("spec/lua/support/fake_db.lua")

local function load_app(env)
    local fake = fake_h2lua.new()
    fake.config.app_env = env or "production"
    local db = fake_db.new()
    package.loaded["h2lua.db"] = db
    local handle = fake_h2lua.require_with(fake, "app")
    package.loaded.app = nil
    package.loaded["h2lua.db"] = nil
    return handle, db, fake
end

-- A client that keeps the session cookie, as a browser does.
local function client(handle)
    local c = { cookies = {} }
    function c.request(method, path, fields)
        local query = {}
        local p, qs = path:match("^([^?]*)%??(.*)$")
        for k, v in qs:gmatch("([^&=]+)=([^&]*)") do query[k] = v end
        local req = { method = method, path = p, query = query, headers = {}, cookies = {}, form = {},
                      body = "", id = "0123456789abcdef", scheme = "http" }
        for k, v in pairs(c.cookies) do req.cookies[k] = v end
        for k, v in pairs(fields or {}) do req[k] = v end
        local res = handle(req)
        local sc = res.headers and res.headers["set-cookie"]
        for _, line in ipairs(type(sc) == "table" and sc or { sc }) do
            local name, value = line:match("^([^=]+)=([^;]*)")
            c.cookies[name] = value
        end
        return res
    end
    function c.get(path, fields) return c.request("GET", path, fields) end
    function c.token()
        return c.get("/").body:match('name="csrf_token" value="([^"]+)"')
    end
    function c.post(path, form) return c.request("POST", path, { form = form }) end
    function c.json(method, path, value, content_type)
        local body = type(value) == "string" and value or cjson.encode(value)
        return c.request(method, path, { body = body,
                                         headers = { ["content-type"] = content_type or "application/json" } })
    end
    return c
end

local function decode(res)
    assert.equal("application/json; charset=utf-8", res.headers["content-type"])
    return cjson.decode(res.body)
end

describe("app", function()
    local handle, db, c

    before_each(function()
        handle, db = load_app()
        c = client(handle)
    end)

    it("returns a handle function", function()
        assert.is_function(handle)
    end)

    describe("the list", function()
        it("renders the empty state, the add form and a session cookie", function()
            local res = c.get("/")
            assert.equal(200, res.status)
            assert.equal("text/html; charset=utf-8", res.headers["content-type"])
            assert.matches("^<!doctype html>", res.body)
            assert.matches('<link rel="stylesheet" href="/static/bootstrap/css/bootstrap.min.css">', res.body, 1, true)
            assert.matches("No entries yet", res.body, 1, true)
            assert.matches('<form method="post" action="/add" id="add-form">', res.body, 1, true)
            assert.matches('<input type="hidden" name="csrf_token" value="%d+%.%x+">', res.body)
            assert.matches('class="col%-md%-8"', res.body)
            assert.matches('class="col%-md%-4"', res.body)
            assert.matches("^session=.*HttpOnly; SameSite=Lax$", res.headers["set-cookie"])
            assert.same({ { "read", "SELECT id, title, description, status FROM entry ORDER BY id LIMIT ?",
                            51 } }, db.log, "one query for page 1, no count")
        end)

        it("is also at /index", function()
            assert.equal(200, c.get("/index").status)
        end)

        it("shows entries escaped, with their status and row actions", function()
            db.seed(2, function(i) return "<b>t" .. i .. "</b>", "d" .. i, i - 1 end)
            db.rows[2].status = db.null
            db.rows[1].status = 1
            local body = c.get("/").body
            assert.matches("&lt;b&gt;t1&lt;/b&gt;", body, 1, true)
            assert.not_matches("<b>t1", body, 1, true)
            assert.matches('<span class="badge text-bg-success">Done</span>', body, 1, true)
            assert.matches('<span class="badge text-bg-secondary">Pending</span>', body, 1, true)
            assert.matches('<a class="btn btn-sm btn-outline-primary" href="/update/1">Edit</a>', body, 1, true)
            assert.matches('<form method="post" id="entries-form"><input type="hidden" name="csrf_token" value="',
                body, 1, true)
            assert.matches('<button class="btn btn-sm btn-outline-secondary" formaction="/turn/2">Mark done</button>',
                body, 1, true)
            assert.matches('<button class="btn btn-sm btn-outline-danger" formaction="/delete/2">Delete</button>',
                body, 1, true)
            local _, forms = body:gsub('name="csrf_token"', "")
            assert.equal(2, forms, "one form around the table (its buttons post to their rows) and the add form")
        end)

        it("pages by 50 with keyset links, one query a page", function()
            db.seed(101, function(i) return "t" .. i, "d", 0 end)
            local first = c.get("/").body
            assert.matches('id="entry-50"', first, 1, true)
            assert.not_matches('id="entry-51"', first, 1, true)
            assert.matches('<a class="page-link" href="/?after=50" rel="next">Next</a>', first, 1, true)
            assert.matches('<span class="page-link">Previous</span>', first, 1, true)
            assert.matches('50 on this page', first, 1, true)
            db.log = {}
            local second = c.get("/?after=50")
            assert.equal(200, second.status)
            assert.equal(1, #db.log)
            assert.matches('id="entry-51"', second.body, 1, true)
            assert.matches('id="entry-100"', second.body, 1, true)
            assert.matches('action="/turn/51?after=50"', second.body, 1, true)
            assert.matches('<a class="page-link" href="/?before=51" rel="prev">Previous</a>', second.body, 1, true)
            assert.matches('<a class="page-link" href="/?after=100" rel="next">Next</a>', second.body, 1, true)
            local last = c.get("/?before=2147483648").body
            assert.matches('id="entry-52"', last, 1, true)
            assert.matches('id="entry-101"', last, 1, true)
            assert.not_matches('id="entry-51"', last, 1, true)
            assert.matches('<span class="page-link">Next</span>', last, 1, true)
            local back = c.get("/?before=52").body
            assert.matches('id="entry-2"', back, 1, true)
            assert.matches('id="entry-51"', back, 1, true)
            assert.matches('<a class="page-link" href="/?before=2" rel="prev">Previous</a>', back, 1, true)
            assert.equal(404, c.get("/?after=101").status)
            assert.equal(404, c.get("/?before=1").status)
        end)

        it("answers 404 for an after or before that is not an id", function()
            db.seed(3, function(i) return "t" .. i, "d", 0 end)
            for _, p in ipairs { "after=-", "after=abc", "after=1.5", "after=01", "after=", "after=99999999999",
                                 "before=-0", "after=1&before=3" } do
                assert.equal(404, c.get("/?" .. p).status, p)
            end
            assert.equal(200, c.get("/?after=0").status)
            assert.equal(200, c.get("/?after=-5").status)
        end)
    end)

    describe("form posts", function()
        it("refuse a post without the session's token with 403, writing nothing", function()
            local other = client(handle)
            local foreign = other.token()
            c.get("/")
            for _, form in ipairs { { title = "a", description = "b" },
                                     { title = "a", description = "b", csrf_token = "1.00" },
                                     { title = "a", description = "b", csrf_token = foreign } } do
                local res = c.post("/add", form)
                assert.equal(403, res.status)
                assert.matches("did not come from this site", res.body, 1, true)
            end
            db.seed(1, function() return "t", "d", 0 end)
            assert.equal(403, c.post("/turn/1", {}).status)
            assert.equal(403, c.post("/delete/1", {}).status)
            assert.equal(403, c.post("/update/1", { title = "x", description = "y" }).status)
            for _, entry in ipairs(db.log) do assert.equal("read", entry[1]) end
            assert.same({ id = 1, title = "t", description = "d", status = 0 }, db.rows[1])
        end)

        it("add an entry, redirect to / and flash a message once", function()
            local token = c.token()
            local res = c.post("/add", { title = "  Hello 😀 ", description = "中文", csrf_token = token })
            assert.equal(303, res.status)
            assert.equal("/", res.headers.location)
            assert.same({ id = 1, title = "Hello 😀", description = "中文", status = 0 }, db.rows[1])
            local page = c.get("/").body
            assert.matches("Entry added.", page, 1, true)
            assert.not_matches("Entry added.", c.get("/").body, 1, true)
        end)

        it("show the page again with messages and the typed values, 422", function()
            local token = c.token()
            local res = c.post("/add", { title = string.rep("é", 65), description = " ", csrf_token = token })
            assert.equal(422, res.status)
            assert.matches("Title must be at most 64 characters long (it has 65).", res.body, 1, true)
            assert.matches("Description is required.", res.body, 1, true)
            assert.matches('value="' .. string.rep("é", 65) .. '"', res.body, 1, true)
            assert.equal(0, #db.rows)
            local ok = c.post("/add", { title = string.rep("é", 64), description = "x", csrf_token = token })
            assert.equal(303, ok.status)
        end)

        it("edit, save, toggle and delete", function()
            local token = c.token()
            db.seed(1, function() return "old", "d", 0 end)
            local form = c.get("/update/1")
            assert.equal(200, form.status)
            assert.matches('action="/update/1"', form.body, 1, true)
            assert.matches('value="old"', form.body, 1, true)
            assert.equal(422, c.post("/update/1", { title = "", description = "d", csrf_token = token }).status)
            assert.equal(303, c.post("/update/1", { title = "new", description = "e", csrf_token = token }).status)
            assert.same({ id = 1, title = "new", description = "e", status = 0 }, db.rows[1])
            assert.equal(303, c.post("/turn/1", { csrf_token = token }).status)
            assert.equal(1, db.rows[1].status)
            assert.equal(303, c.post("/turn/1", { csrf_token = token }).status)
            assert.equal(0, db.rows[1].status)
            local del = c.post("/delete/1", { csrf_token = token })
            assert.equal(303, del.status)
            assert.equal("/", del.headers.location)
            assert.equal(0, #db.rows)
        end)

        it("answer 404 for a missing entry", function()
            local token = c.token()
            assert.equal(404, c.get("/update/9").status)
            assert.equal(404, c.post("/update/9", { title = "a", description = "b", csrf_token = token }).status)
            assert.equal(404, c.post("/update/9", { title = "", description = "b", csrf_token = token }).status)
            assert.equal(404, c.post("/turn/9", { csrf_token = token }).status)
            local res = c.post("/delete/9", { csrf_token = token })
            assert.equal(404, res.status)
            assert.matches("There is no such entry.", res.body, 1, true)
        end)

        it("are 405 on GET", function()
            for _, p in ipairs { "/add", "/turn/1", "/delete/1" } do
                local res = c.get(p)
                assert.equal(405, res.status, p)
                assert.equal("POST", res.headers.allow)
            end
        end)
    end)

    it("answers a wrong method with 405 and Allow", function()
        local res = c.request("POST", "/")
        assert.equal(405, res.status)
        assert.equal("GET, HEAD", res.headers.allow)
    end)

    it("answers an unknown path with the 404 page inside the layout", function()
        local res = c.get("/nope")
        assert.equal(404, res.status)
        assert.matches("<title>404 Not Found</title>", res.body, 1, true)
    end)

    it("shows the 503 page when the database is unavailable", function()
        local http = package.loaded["lib.http"]
        local token = c.token()
        db.down = function() return setmetatable({ status = 503, message = "database unavailable" }, http.HttpError) end
        for _, res in ipairs { c.get("/"), c.post("/add", { title = "a", description = "b", csrf_token = token }) } do
            assert.equal(503, res.status)
            assert.matches("The database is unavailable, try again shortly", res.body, 1, true)
        end
        local api = c.get("/api/entries")
        assert.equal(503, api.status)
        assert.same({ error = "The database is unavailable, try again shortly." }, decode(api))
    end)

    describe("the API", function()
        it("lists entries with a next cursor", function()
            db.seed(3, function(i) return "t" .. i, "d" .. i, i == 2 and 1 or 0 end)
            local res = c.get("/api/entries?limit=2")
            assert.equal(200, res.status)
            local v = decode(res)
            assert.same({ { id = 1, title = "t1", description = "d1", status = false },
                          { id = 2, title = "t2", description = "d2", status = true } }, v.entries)
            assert.equal(2, v.next)
            v = decode(c.get("/api/entries?after=2"))
            assert.equal(1, #v.entries)
            assert.equal(cjson.null, v.next)
            assert.matches('"entries":%[%]', c.get("/api/entries?after=3").body)
        end)

        it("refuses a bad limit or after with 400", function()
            for _, q in ipairs { "limit=0", "limit=101", "limit=x", "after=-1", "after=1.5" } do
                local res = c.get("/api/entries?" .. q)
                assert.equal(400, res.status, q)
                assert.is_string(decode(res).error)
            end
        end)

        it("creates, shows, patches and deletes", function()
            local res = c.json("POST", "/api/entries", { title = "a", description = "b" })
            assert.equal(201, res.status)
            assert.equal("/api/entries/1", res.headers.location)
            assert.same({ id = 1, title = "a", description = "b", status = false }, decode(res))
            assert.same({ id = 1, title = "a", description = "b", status = false }, decode(c.get("/api/entries/1")))
            res = c.json("PATCH", "/api/entries/1", { status = true, description = " c " })
            assert.equal(200, res.status)
            assert.same({ id = 1, title = "a", description = "c", status = true }, decode(res))
            res = c.request("DELETE", "/api/entries/1")
            assert.equal(204, res.status)
            assert.equal("", res.body)
            assert.equal(404, c.get("/api/entries/1").status)
        end)

        it("answers errors in JSON", function()
            local function is(status, res, field)
                assert.equal(status, res.status)
                local v = decode(res)
                if field then assert.is_string(v.errors[field]) else assert.is_string(v.error) end
            end
            is(415, c.json("POST", "/api/entries", { title = "a", description = "b" }, "text/plain"))
            is(415, c.json("POST", "/api/entries", "title=a", "application/x-www-form-urlencoded"))
            is(415, c.json("POST", "/api/entries", { title = "a" }, "application/json; charset=latin1"))
            is(400, c.json("POST", "/api/entries", "{"))
            is(400, c.json("POST", "/api/entries", ""))
            is(400, c.json("POST", "/api/entries", "[]"))
            is(400, c.json("POST", "/api/entries", "NaN"))
            is(400, c.json("POST", "/api/entries", '{"title":"\xff","description":"b"}'))
            is(422, c.json("POST", "/api/entries", { description = "b" }), "title")
            is(422, c.json("POST", "/api/entries", { title = 5, description = "b" }), "title")
            is(422, c.json("POST", "/api/entries", { title = "a", description = "b", status = "yes" }), "status")
            is(404, c.get("/api/entries/7"))
            is(404, c.json("PATCH", "/api/entries/7", { title = "x" }))
            is(404, c.request("DELETE", "/api/entries/7"))
            is(404, c.get("/api/nothing"))
            local res = c.request("PUT", "/api/entries/1")
            is(405, res)
            assert.equal("DELETE, GET, HEAD, PATCH", res.headers.allow)
            assert.equal(0, #db.rows)
        end)

        it("accepts application/json with a charset", function()
            assert.equal(201, c.json("POST", "/api/entries", { title = "a", description = "b" },
                "Application/JSON; charset=UTF-8").status)
        end)
    end)
end)
