-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
-- lib.model's statements, on a stand-in for `h2lua.db` that records them and answers from a list.
-- (The entries model on it runs against spec/lua/support/fake_db.lua in app_spec.lua, and on the
-- real server and MariaDB in spec/e2e and spec/app.)
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local null = setmetatable({}, { __name = "db.null" })

-- h2lua.db recording { kind, sql, args... }; each call returns the next of `answers`.
local function recorder(answers)
    local rec = { log = {}, null = null }
    local function run(kind, sql, ...)
        rec.log[#rec.log + 1] = { kind, sql, ... }
        return table.remove(answers, 1) or {}
    end
    function rec.query(sql, ...) return run("query", sql, ...) end
    function rec.read(sql, ...) return run("read", sql, ...) end
    function rec.begin()
        rec.log[#rec.log + 1] = { "begin" }
        return {
            query = function(_, sql, ...) return run("tx", sql, ...) end,
            commit = function() rec.log[#rec.log + 1] = { "commit" } end,
            rollback = function() rec.log[#rec.log + 1] = { "rollback" } end,
        }
    end
    return rec
end

local function load_model(answers)
    local rec = recorder(answers)
    package.loaded["h2lua.db"] = rec
    package.loaded["lib.db"] = nil
    package.loaded["lib.model"] = nil
    local model = require "lib.model"
    return model, rec
end

local NOTE = {
    table = "note",
    columns = {
        { name = "body", label = "Note", required = true, max = 200, default = "" },
        { name = "stars", label = "Stars", type = "integer", min = 0, max = 5, default = 0 },
        { name = "done", type = "boolean", default = false },
    },
    timestamps = true,
}

describe("lib.model", function()
    after_each(function()
        package.loaded["h2lua.db"] = nil
        package.loaded["lib.db"] = nil
        package.loaded["lib.model"] = nil
    end)

    it("finds a record with db.read and reads NULLs as the defaults", function()
        local model, rec = load_model { { { id = 3, body = null, stars = null, done = 1,
            created_at = "2026-01-01 00:00:00", updated_at = "2026-01-02 00:00:00" } }, {} }
        local note = model.new(NOTE)
        assert.same({ id = 3, body = "", stars = 0, done = true, created_at = "2026-01-01 00:00:00",
            updated_at = "2026-01-02 00:00:00" }, note.find(3))
        assert.is_nil(note.find(4))
        assert.same({ "read", "SELECT id, body, stars, done, created_at, updated_at FROM note WHERE id = ?", 3 },
            rec.log[1])
    end)

    it("creates in a transaction that reads the timestamps back; without them, one INSERT", function()
        local model, rec = load_model { { insert_id = 9, affected_rows = 1 },
            { { id = 9, body = "hi", stars = 0, done = 0, created_at = "c", updated_at = "u" } } }
        local note = model.new(NOTE)
        assert.same({ id = 9, body = "hi", stars = 0, done = false, created_at = "c", updated_at = "u" },
            note.create { body = "hi" })
        assert.same({
            { "begin" },
            { "tx", "INSERT INTO note (body, stars, done) VALUES (?, ?, ?)", "hi", 0, false },
            { "tx", "SELECT id, body, stars, done, created_at, updated_at FROM note WHERE id = ?", 9 },
            { "commit" },
        }, rec.log)

        local model2, rec2 = load_model { { insert_id = 4, affected_rows = 1 } }
        local tag = model2.new { table = "tag", primary_key = "tag_id", columns = { { name = "name" } } }
        assert.same({ tag_id = 4, name = "lua" }, tag.create { name = "lua", extra = "ignored" })
        assert.same({ { "query", "INSERT INTO tag (name) VALUES (?)", "lua" } }, rec2.log)

        local model3, rec3 = load_model { { insert_id = 5, affected_rows = 1 } }
        local tag3 = model3.new { table = "tag", columns = { { name = "name" } } }
        assert.same({ id = 5 }, tag3.create { name = null }) -- stored as NULL, read as nil
        assert.equal(null, rec3.log[1][3])
    end)

    it("updates the columns given, the row locked, and sets updated_at", function()
        local model, rec = load_model {
            { { id = 2, body = "old", stars = 1, done = 0, created_at = "c", updated_at = "u" } },
            { affected_rows = 1 },
            { { id = 2, body = "old", stars = 4, done = 0, created_at = "c", updated_at = "u2" } },
        }
        local note = model.new(NOTE)
        assert.same({ id = 2, body = "old", stars = 4, done = false, created_at = "c", updated_at = "u2" },
            note.update(2, { stars = 4 }))
        assert.same({
            { "begin" },
            { "tx", "SELECT id, body, stars, done, created_at, updated_at FROM note WHERE id = ? FOR UPDATE", 2 },
            { "tx", "UPDATE note SET body = ?, stars = ?, done = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
                "old", 4, false, 2 },
            { "tx", "SELECT id, body, stars, done, created_at, updated_at FROM note WHERE id = ?", 2 },
            { "commit" },
        }, rec.log)
    end)

    it("updates nothing and commits when there is no such row", function()
        local model, rec = load_model { {} }
        assert.is_nil(model.new(NOTE).update(5, { body = "x" }))
        assert.equal(3, #rec.log)
        assert.same({ "commit" }, rec.log[3])
    end)

    it("rolls the update back when a statement fails", function()
        local model, rec = load_model { { { id = 2, body = "old", stars = 1, done = 0 } } }
        rec.begin = function()
            rec.log[#rec.log + 1] = { "begin" }
            return {
                query = function(_, sql)
                    if sql:find("^UPDATE") then error("db: (1205) Lock wait timeout exceeded", 0) end
                    return { { id = 2, body = "old", stars = 1, done = 0 } }
                end,
                commit = function() rec.log[#rec.log + 1] = { "commit" } end,
                rollback = function() rec.log[#rec.log + 1] = { "rollback" } end,
            }
        end
        local ok, err = pcall(model.new(NOTE).update, 2, { body = "new" })
        assert.is_false(ok)
        assert.equal("db: (1205) Lock wait timeout exceeded", err)
        assert.same({ { "begin" }, { "rollback" } }, rec.log)
    end)

    it("deletes, and says whether a row went", function()
        local model, rec = load_model { { affected_rows = 1 }, { affected_rows = 0 } }
        local note = model.new(NOTE)
        assert.is_true(note.delete(1))
        assert.is_false(note.delete(1))
        assert.same({ "query", "DELETE FROM note WHERE id = ?", 1 }, rec.log[1])
    end)

    it("writes keyset pages with a probe row per column", function()
        local model, rec = load_model {
            { { probe = 0, id = 4, body = "a", stars = 0, done = 0 },
              { probe = 0, id = 5, body = "b", stars = 0, done = 0 },
              { probe = 0, id = 6, body = "c", stars = 0, done = 0 },
              { probe = 1, id = 3, body = null, stars = null } },
        }
        local note = model.new(NOTE)
        local rows, before, after = note.page_after(3, 2)
        assert.same({ 4, 5 }, { rows[1].id, rows[2].id })
        assert.is_nil(rows[1].probe)
        assert.is_true(before)
        assert.is_true(after)
        assert.same({ "read", "(SELECT 0 AS probe, id, body, stars, done, created_at, updated_at FROM note"
            .. " WHERE id > ? ORDER BY id LIMIT ?) UNION ALL (SELECT 1, id, NULL, NULL, NULL, NULL, NULL FROM note"
            .. " WHERE id <= ? ORDER BY id DESC LIMIT 1) ORDER BY probe, id", 3, 3, 3 }, rec.log[1])
    end)

    it("validates with its columns as lib.form fields", function()
        local model = load_model {}
        local note = model.new(NOTE)
        local values, errors = note.validate { body = " x ", stars = "9" }
        assert.same({ body = "x" }, values)
        assert.same({ stars = "Stars must be at most 5." }, errors)
        local some = note.fields_of("stars", "body")
        assert.same({ "stars", "body" }, { some[1].name, some[2].name })
    end)

    it("refuses names that are not plain SQL names", function()
        local model = load_model {}
        assert.has_error(function() model.new { table = "note; DROP TABLE x" } end,
            "model: table must be a plain SQL name")
        assert.has_error(function() model.new { table = "note", columns = { { name = "a b" } } } end,
            "model: column 1 needs a plain SQL name")
        assert.has_error(function() model.new { table = "note", columns = { { name = "id" } } } end,
            "model: the primary key is not one of the columns")
    end)
end)
