-- The entries pages, as a browser uses them: a real h2lua and a real MariaDB (h2lua.test).
-- From the repository root, after ops/build:  ops/test app   (see docs/testing.md)

local test = require "h2lua.test"

-- The rows of the list page: { id, title, description, status } in page order.
local function rows(res)
    local out = {}
    for _, tr in ipairs(res:html():find("#entries tbody tr")) do
        out[#out + 1] = {
            id = tonumber(tr:first(".entry-id"):text()),
            title = tr:first(".entry-title"):text(),
            description = tr:first(".entry-description"):text(),
            status = tr:first(".entry-status"):text(),
        }
    end
    return out
end

local function flashes(res)
    local out = {}
    for _, el in ipairs(res:html():find(".flash")) do out[#out + 1] = el:text() end
    return out
end

describe("the entries pages", function()
    local client

    before_each(function()
        client = test.client() -- an empty database, no cookies
    end)

    it("show the empty state on an empty database", function()
        local res = client:get("/")
        assert.equal(200, res.status)
        assert.matches("^text/html", res.headers["content-type"])
        assert.equal("No entries yet", res:html():first(".empty-state h2"):text())
        assert.equal("0 entries", res:html():first("#entry-count"):text())
    end)

    it("list the entries in the database, escaped", function()
        test.query("INSERT INTO entry (title, description, status) VALUES (?, ?, ?), (?, ?, ?)",
            "<b>first</b>", "one", false, "second", "two", true)
        local res = client:get("/")
        assert.same({
            { id = 1, title = "<b>first</b>", description = "one", status = "Pending" },
            { id = 2, title = "second", description = "two", status = "Done" },
        }, rows(res))
        assert.matches("&lt;b&gt;first&lt;/b&gt;", res.body, 1, true)
        assert.equal("2 entries", res:html():first("#entry-count"):text())
    end)

    it("add an entry and say so once", function()
        local res = client:post("/add", { title = "  Buy milk ", description = "two litres" })
        assert.equal(303, res.status)
        assert.equal("/", res.headers.location)
        local page = client:follow(res)
        assert.same({ { id = 1, title = "Buy milk", description = "two litres", status = "Pending" } }, rows(page))
        assert.same({ "Entry added." }, flashes(page))
        assert.same({}, flashes(client:get("/")))
        assert.same({ { title = "Buy milk" } }, test.query("SELECT title FROM entry"))
    end)

    it("refuse an invalid entry with 422, the messages and what was typed", function()
        local res = client:post("/add", { title = "", description = string.rep("é", 121) })
        assert.equal(422, res.status)
        local doc = res:html()
        assert.equal("Title is required.", doc:first("#add-form .invalid-feedback"):text())
        local invalid = doc:find("#add-form input.is-invalid")
        assert.equal(2, #invalid)
        assert.equal(string.rep("é", 121), doc:first("#add-form input[name=description]").attrs.value)
        assert.matches("Description must be at most 120 characters long (it has 121).",
            doc:first("#add-form"):text(), 1, true)
        assert.same({}, test.query("SELECT id FROM entry"))
    end)

    it("refuse a form post without the session's CSRF token with 403", function()
        local res = client:post("/add", { title = "x", description = "y" }, { csrf = false })
        assert.equal(403, res.status)
        local other = test.client()
        other:get("/")
        res = client:post("/add", { title = "x", description = "y", csrf_token = other.csrf_token })
        assert.equal(403, res.status)
        assert.same({}, test.query("SELECT id FROM entry"))
    end)

    it("edit an entry: the form shows it, a save changes it", function()
        test.query("INSERT INTO entry (title, description, status) VALUES ('old', 'text', 1)")
        local form = client:get("/update/1"):html():first("#update-form")
        assert.equal("/update/1", form.attrs.action)
        assert.equal("old", form:first("input[name=title]").attrs.value)
        local res = client:post("/update/1", { title = "new", description = "words" })
        assert.equal(303, res.status)
        local page = client:follow(res)
        assert.same({ { id = 1, title = "new", description = "words", status = "Done" } }, rows(page))
        assert.same({ "Entry saved." }, flashes(page))
    end)

    it("refuse an invalid edit with 422 and leave the entry as it was", function()
        test.query("INSERT INTO entry (title, description) VALUES ('kept', 'as is')")
        local res = client:post("/update/1", { title = string.rep("x", 65), description = "d" },
            { csrf_from = "/update/1" })
        assert.equal(422, res.status)
        assert.equal("Title must be at most 64 characters long (it has 65).",
            res:html():first("#update-form .invalid-feedback"):text())
        assert.same({ { title = "kept" } }, test.query("SELECT title FROM entry"))
    end)

    it("answer 404 for an entry that does not exist", function()
        assert.equal(404, client:get("/update/7").status)
        assert.equal(404, client:post("/turn/7", {}).status)
        assert.equal(404, client:post("/delete/7", {}).status)
    end)

    it("toggle an entry's status both ways", function()
        test.query("INSERT INTO entry (title, description, status) VALUES ('t', 'd', NULL)")
        local res = client:post("/turn/1", {})
        assert.equal(303, res.status)
        assert.equal("Done", rows(client:follow(res))[1].status)
        client:post("/turn/1", {})
        assert.same({ { status = "0" } }, test.query("SELECT status FROM entry"))
    end)

    it("delete an entry and go back to the page it was on", function()
        for i = 1, 3 do test.query("INSERT INTO entry (title, description) VALUES (?, 'd')", "e" .. i) end
        local res = client:post("/delete/2?after=1", {})
        assert.equal(303, res.status)
        assert.equal("/?after=1", res.headers.location)
        local page = client:follow(res)
        assert.same({ "e3" }, { rows(page)[1].title })
        assert.same({ "Entry deleted." }, flashes(page))
        assert.same({ { n = "2" } }, test.query("SELECT COUNT(*) AS n FROM entry"))
    end)

    it("page the list 50 entries at a time", function()
        test.query("INSERT INTO entry (title, description) SELECT CONCAT('e', seq), 'd' FROM seq_1_to_120")
        local first = client:get("/")
        assert.equal(50, #rows(first))
        local next_link = first:html():first(".pagination a[rel=next]")
        local href = next_link and next_link.attrs.href
        assert.equal("/?after=50", href)
        local second = client:get(href)
        assert.equal(51, rows(second)[1].id)
        local last = client:get("/?before=2147483648")
        assert.equal(120, rows(last)[#rows(last)].id)
        assert.equal(404, client:get("/?after=120").status)
    end)

    teardown(function()
        assert.is_nil(test.sanitizer_report())
    end)
end)
