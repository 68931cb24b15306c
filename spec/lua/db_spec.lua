-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
-- lib.db over a recording stand-in for the server's h2lua.db.
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

describe("db", function()
    local db, calls, fail_commit, fail_rollback

    before_each(function()
        calls, fail_commit, fail_rollback = {}, false, false
        local tx = {}
        function tx.query(_, sql, ...)
            calls[#calls + 1] = { "query", sql, ... }
            return { affected_rows = 1, insert_id = 7 }
        end
        function tx.commit()
            calls[#calls + 1] = { "commit" }
            if fail_commit then error("db: (1213) Deadlock found", 0) end
        end
        function tx.rollback()
            calls[#calls + 1] = { "rollback" }
            if fail_rollback then error("db: (2013) Lost connection", 0) end
        end
        package.loaded["h2lua.db"] = {
            query = function() return "query" end,
            read = function() return "read" end,
            begin = function()
                calls[#calls + 1] = { "begin" }
                return tx
            end,
            null = "NULL-SENTINEL",
            escape = function(v) return "'" .. tostring(v) .. "'" end,
            ready = function() return true end,
        }
        package.loaded["lib.db"] = nil
        db = require "lib.db"
        package.loaded["h2lua.db"] = nil
    end)

    it("re-exports the server's functions", function()
        assert.equal("query", db.query())
        assert.equal("read", db.read())
        assert.equal("NULL-SENTINEL", db.null)
        assert.equal("'x'", db.escape("x"))
        assert.is_true(db.ready())
    end)

    it("commits when fn returns, and returns fn's results", function()
        local a, b, c = db.transaction(function(tx, x)
            local r = tx:query("INSERT INTO t VALUES (?)", x)
            return r.insert_id, nil, "done"
        end, 42)
        assert.same({ 7, nil, "done" }, { a, b, c })
        assert.same({ { "begin" }, { "query", "INSERT INTO t VALUES (?)", 42 }, { "commit" } }, calls)
    end)

    it("rolls back when fn raises, and raises the same value again", function()
        local err = setmetatable({ status = 404 }, {})
        local ok, got = pcall(db.transaction, function(tx)
            tx:query("UPDATE t SET x = 1")
            error(err)
        end)
        assert.is_false(ok)
        assert.equal(err, got)
        assert.same({ { "begin" }, { "query", "UPDATE t SET x = 1" }, { "rollback" } }, calls)

        local ok2, msg = pcall(db.transaction, function() error("boom", 0) end)
        assert.is_false(ok2)
        assert.equal("boom", msg)
    end)

    it("raises fn's error even when the rollback fails", function()
        fail_rollback = true
        local ok, got = pcall(db.transaction, function() error("first", 0) end)
        assert.is_false(ok)
        assert.equal("first", got)
    end)

    it("raises when the commit fails", function()
        fail_commit = true
        local ok, got = pcall(db.transaction, function() return 1 end)
        assert.is_false(ok)
        assert.matches("Deadlock", got)
    end)
end)
