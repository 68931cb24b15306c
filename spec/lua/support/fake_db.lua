-- An in-memory stand-in for the server's `h2lua.db`, answering exactly the statements of
-- scripts/models/entry.lua, as lib.model generates them (any other statement is an error, so a
-- changed query shows up here).
--
--   local db = dofile("spec/lua/support/fake_db.lua").new()
--   package.preload / package.loaded["h2lua.db"] = db
--   db.rows        the `entry` table: an array of { id, title, description, status (0/1/NULL) }
--   db.log         the statements run, in order
--   db.down = fn   while set, every call raises fn() (e.g. an HTTP 503 error)

local fake_db = {}

local null = setmetatable({}, { __name = "db.null", __tostring = function() return "NULL" end })

local COLUMNS = "id, title, description, status"

function fake_db.new()
    local db = { rows = {}, log = {}, null = null, next_id = 1, down = nil }

    local function copy(r)
        return { id = r.id, title = r.title, description = r.description, status = r.status }
    end

    local function find(id)
        for i, r in ipairs(db.rows) do
            if r.id == id then return r, i end
        end
    end

    local function bool(v) return v and 1 or 0 end

    local statements = {
        ["SELECT " .. COLUMNS .. " FROM entry WHERE id > ? ORDER BY id LIMIT ?"] = function(after, limit)
            local out = {}
            for _, r in ipairs(db.rows) do
                if r.id > after and #out < limit then out[#out + 1] = copy(r) end
            end
            return out
        end,
        ["SELECT " .. COLUMNS .. " FROM entry ORDER BY id LIMIT ?"] = function(limit)
            local out = {}
            for i = 1, math.min(#db.rows, limit) do out[#out + 1] = copy(db.rows[i]) end
            return out
        end,
        -- keyset pages: the rows of the page (probe 0) and one row beyond its start (probe 1),
        -- ordered by probe, id
        ["(SELECT 0 AS probe, " .. COLUMNS .. " FROM entry WHERE id > ? ORDER BY id LIMIT ?)"
            .. " UNION ALL (SELECT 1, id, NULL, NULL, NULL FROM entry WHERE id <= ? ORDER BY id DESC LIMIT 1)"
            .. " ORDER BY probe, id"] = function(after, limit, bound)
            local out, probe = {}, nil
            for _, r in ipairs(db.rows) do
                if r.id > after and #out < limit then
                    local c = copy(r)
                    c.probe = 0
                    out[#out + 1] = c
                end
                if r.id <= bound then probe = { probe = 1, id = r.id, title = null, description = null } end
            end
            out[#out + 1] = probe
            return out
        end,
        ["(SELECT 0 AS probe, " .. COLUMNS .. " FROM entry WHERE id < ? ORDER BY id DESC LIMIT ?)"
            .. " UNION ALL (SELECT 1, id, NULL, NULL, NULL FROM entry WHERE id >= ? ORDER BY id LIMIT 1)"
            .. " ORDER BY probe, id"] = function(before, limit, bound)
            local out, probe = {}, nil
            for i = #db.rows, 1, -1 do
                local r = db.rows[i]
                if r.id < before and #out < limit then
                    local c = copy(r)
                    c.probe = 0
                    table.insert(out, 1, c)
                end
                if r.id >= bound then probe = { probe = 1, id = r.id, title = null, description = null } end
            end
            out[#out + 1] = probe
            return out
        end,
        ["SELECT " .. COLUMNS .. " FROM entry WHERE id = ?"] = function(id)
            local r = find(id)
            return { r and copy(r) }
        end,
        ["SELECT " .. COLUMNS .. " FROM entry WHERE id = ? FOR UPDATE"] = function(id)
            local r = find(id)
            return { r and copy(r) }
        end,
        ["INSERT INTO entry (title, description, status) VALUES (?, ?, ?)"] = function(title, description, status)
            local id = db.next_id
            db.next_id = id + 1
            db.rows[#db.rows + 1] = { id = id, title = title, description = description, status = bool(status) }
            return { affected_rows = 1, insert_id = id }
        end,
        ["UPDATE entry SET title = ?, description = ?, status = ? WHERE id = ?"] = function(t, d, s, id)
            local r = find(id)
            if not r then return { affected_rows = 0, insert_id = 0 } end
            r.title, r.description, r.status = t, d, bool(s)
            return { affected_rows = 1, insert_id = 0 }
        end,
        ["UPDATE entry SET status = NOT COALESCE(status, FALSE) WHERE id = ?"] = function(id)
            local r = find(id)
            if not r then return { affected_rows = 0, insert_id = 0 } end
            r.status = (r.status == null or r.status == 0) and 1 or 0
            return { affected_rows = 1, insert_id = 0 }
        end,
        ["DELETE FROM entry WHERE id = ?"] = function(id)
            local _, i = find(id)
            if not i then return { affected_rows = 0, insert_id = 0 } end
            table.remove(db.rows, i)
            return { affected_rows = 1, insert_id = 0 }
        end,
    }

    local function run(kind, sql, ...)
        if db.down then error(db.down(), 0) end
        db.log[#db.log + 1] = { kind, sql, ... }
        local fn = statements[sql]
        if not fn then error("db: (1064) fake_db does not know: " .. sql, 0) end
        return fn(...)
    end

    function db.query(sql, ...) return run("query", sql, ...) end
    function db.read(sql, ...) return run("read", sql, ...) end
    function db.begin()
        if db.down then error(db.down(), 0) end
        db.log[#db.log + 1] = { "begin" }
        local tx = {}
        function tx.query(_, sql, ...) return run("tx", sql, ...) end
        function tx.commit() db.log[#db.log + 1] = { "commit" } end
        function tx.rollback() db.log[#db.log + 1] = { "rollback" } end
        return tx
    end
    function db.escape(v) return "'" .. tostring(v) .. "'" end
    function db.ready() return true end

    -- Adds n rows fn(i) -> title, description, status (0, 1 or db.null), as the database holds them.
    function db.seed(n, fn)
        for i = 1, n do
            local t, d, s = fn(i)
            db.rows[#db.rows + 1] = { id = db.next_id, title = t, description = d, status = s }
            db.next_id = db.next_id + 1
        end
    end

    return db
end

return fake_db
