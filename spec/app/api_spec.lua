-- The JSON API over the entries, on a real h2lua and a real MariaDB (h2lua.test).

local test = require "h2lua.test"
local cjson = require "cjson"

describe("the entries API", function()
    local client

    before_each(function()
        client = test.client()
    end)

    it("creates an entry: 201, its Location and the entry", function()
        local res = client:post("/api/entries", nil,
            { json = { title = " API ", description = "made", status = true } })
        assert.equal(201, res.status)
        assert.equal("/api/entries/1", res.headers.location)
        assert.matches("^application/json", res.headers["content-type"])
        assert.same({ id = 1, title = "API", description = "made", status = true }, res:json())
        assert.same({ id = 1, title = "API", description = "made", status = true }, client:get("/api/entries/1"):json())
    end)

    it("lists entries by pages with next", function()
        for i = 1, 3 do
            test.query("INSERT INTO entry (title, description, status) VALUES (?, 'd', ?)", "e" .. i, i == 2)
        end
        local page = client:get("/api/entries?limit=2"):json()
        assert.same({ "e1", "e2" }, { page.entries[1].title, page.entries[2].title })
        assert.same({ false, true }, { page.entries[1].status, page.entries[2].status })
        assert.equal(2, page.next)
        local last = client:get("/api/entries?limit=2&after=2"):json()
        assert.equal(1, #last.entries)
        assert.equal(cjson.null, last.next)
        assert.equal("[]", client:get("/api/entries?after=3").body:match('"entries":(%b[])'))
    end)

    it("patches the fields given and keeps the others", function()
        test.query("INSERT INTO entry (title, description, status) VALUES ('t', 'd', 0)")
        local res = client:patch("/api/entries/1", { json = { status = true } })
        assert.equal(200, res.status)
        assert.same({ id = 1, title = "t", description = "d", status = true }, res:json())
        assert.same({ { title = "t", status = "1" } }, test.query("SELECT title, status FROM entry"))
    end)

    it("deletes with 204, then 404 as JSON", function()
        test.query("INSERT INTO entry (title, description) VALUES ('t', 'd')")
        local res = client:delete("/api/entries/1")
        assert.equal(204, res.status)
        assert.equal("", res.body)
        res = client:delete("/api/entries/1")
        assert.equal(404, res.status)
        assert.same({ error = "There is no such entry." }, res:json())
    end)

    it("answers invalid fields with 422 and a message per field", function()
        local res = client:post("/api/entries", nil, { json = { title = "", description = 5, status = "yes" } })
        assert.equal(422, res.status)
        assert.same({ errors = {
            title = "Title is required.",
            description = "Description must be text.",
            status = "Status must be true or false.",
        } }, res:json())
        assert.same({}, test.query("SELECT id FROM entry"))
    end)

    it("refuses bodies that are not JSON objects (415, 400)", function()
        local res = client:post("/api/entries", nil,
            { body = "title=x", headers = { ["content-type"] = "application/x-www-form-urlencoded" } })
        assert.equal(415, res.status)
        res = client:post("/api/entries", nil, { body = "[1]", headers = { ["content-type"] = "application/json" } })
        assert.equal(400, res.status)
        assert.same({ error = "The body must be a JSON object." }, res:json())
    end)

    teardown(function()
        assert.is_nil(test.sanitizer_report())
    end)
end)
