-- model: the statements of a table with an integer primary key, generated from its declaration.
--
--   local m = model.new {
--       table = "note",            -- the table's name (a plain SQL name: letters, digits, _)
--       primary_key = "id",        -- an integer AUTO_INCREMENT column (default "id")
--       columns = {                -- the other columns, in order; each is also a lib.form field
--           { name = "body", label = "Note", required = true, max = 200, default = "" },
--           { name = "done", type = "boolean", default = false },
--       },
--       timestamps = true,         -- created_at and updated_at DATETIME columns (see below)
--   }
--
-- A column: name, type = "string" (default) | "integer" | "number" | "boolean", default = the
-- value create stores when values lack the column and the value a NULL reads as (without one,
-- NULL reads as nil: the record lacks the key; a boolean reads 0/1/NULL as false/true/false). To
-- store NULL, give db.null as the value. The other keys (label,
-- required, min, max, pattern, one_of, email, check, messages, message) are lib.form's.
-- timestamps: the table has `created_at` and `updated_at` (DATETIME, DEFAULT CURRENT_TIMESTAMP);
-- create leaves them to the database, update sets updated_at; both read them back (strings
-- "YYYY-MM-DD HH:MM:SS").
--
-- Records are plain tables keyed by column. Reads go through db.read (the replica when there is
-- one; the core sends a client that just wrote to the primary), writes through db.query and
-- db.transaction (the primary):
--   m.find(id)                  the record, or nil
--   m.after(after, limit)       at most limit records with a key above after, by key
--   m.first_page(limit)         -> records, has_before (false), has_after
--   m.page_after(after, limit)  -> records (the first limit above after), has_before, has_after
--   m.page_before(before, limit)-> records (the last limit below before, by key), has_before, has_after
--   m.create(values)            inserts; returns the record
--   m.update(id, values)        changes the columns present in values (in a transaction, the row
--                               locked); returns the record as saved, or nil when there is none
--   m.delete(id)                false when there was no such row
--   m.validate(input [, opts])  lib.form.validate over m.fields (opts.partial for PATCH)
--   m.fields                    the columns, as lib.form fields; m.fields_of(name, ...) a few
--   m.from_row(row)             a row of a SELECT of m.COLUMNS as a record (in place)
--   m.table, m.primary_key, m.COLUMNS (the select list, for statements of your own)
--   m.on_change                 nil, or function(tx, kind, record) called inside the transaction of
--                               every change create/update/delete make (kind "created", "updated",
--                               "deleted"; a deleted record is { [primary_key] = id }): what it writes
--                               on tx commits or rolls back with the change (an outbox, an audit
--                               log). With it, create and delete run in a transaction too.
-- Keyset pages cost one statement each, the same however large the table is, and no statement
-- counts the table: has_before / has_after tell whether a row exists before the first record /
-- after the last (for an empty page: beyond the bound asked for).

local db = require "lib.db"
local form = require "lib.form"

local model = {}

local concat, remove, rep = table.concat, table.remove, string.rep
local find, error, ipairs, type = string.find, error, ipairs, type

local function name_ok(s)
    return type(s) == "string" and find(s, "^[%a_][%w_]*$") ~= nil
end

function model.new(def)
    local tbl, pk = def.table, def.primary_key or "id"
    if not name_ok(tbl) then error("model: table must be a plain SQL name", 2) end
    if not name_ok(pk) then error("model: primary_key must be a plain SQL name", 2) end
    local columns = def.columns or {}
    local names = {}
    for i, c in ipairs(columns) do
        if not name_ok(c.name) then error("model: column " .. i .. " needs a plain SQL name", 2) end
        if c.name == pk then error("model: the primary key is not one of the columns", 2) end
        names[i] = c.name
    end
    local stamps = def.timestamps and { "created_at", "updated_at" } or {}
    local null = db.null

    local m = { table = tbl, primary_key = pk, fields = columns }
    local all = { pk }
    for _, n in ipairs(names) do all[#all + 1] = n end
    for _, n in ipairs(stamps) do all[#all + 1] = n end
    local COLUMNS = concat(all, ", ")
    m.COLUMNS = COLUMNS
    local FROM = " FROM " .. tbl

    -- statements
    local SELECT = "SELECT " .. COLUMNS .. FROM
    local FIND = SELECT .. " WHERE " .. pk .. " = ?"
    local LOCK = FIND .. " FOR UPDATE"
    local AFTER = SELECT .. " WHERE " .. pk .. " > ? ORDER BY " .. pk .. " LIMIT ?"
    local FIRST = SELECT .. " ORDER BY " .. pk .. " LIMIT ?"
    local probe_row = "(SELECT 1, " .. pk .. rep(", NULL", #all - 1) .. FROM
    local PAGE_AFTER = "(SELECT 0 AS probe, " .. COLUMNS .. FROM .. " WHERE " .. pk .. " > ? ORDER BY " .. pk
        .. " LIMIT ?) UNION ALL " .. probe_row .. " WHERE " .. pk .. " <= ? ORDER BY " .. pk .. " DESC LIMIT 1)"
        .. " ORDER BY probe, " .. pk
    local PAGE_BEFORE = "(SELECT 0 AS probe, " .. COLUMNS .. FROM .. " WHERE " .. pk .. " < ? ORDER BY " .. pk
        .. " DESC LIMIT ?) UNION ALL " .. probe_row .. " WHERE " .. pk .. " >= ? ORDER BY " .. pk .. " LIMIT 1)"
        .. " ORDER BY probe, " .. pk
    local INSERT = "INSERT INTO " .. tbl .. " (" .. concat(names, ", ") .. ") VALUES ("
        .. concat(names, ", "):gsub("[^,%s]+", "?") .. ")"
    local sets = {}
    for i, n in ipairs(names) do sets[i] = n .. " = ?" end
    if def.timestamps then sets[#sets + 1] = "updated_at = CURRENT_TIMESTAMP" end
    local UPDATE = "UPDATE " .. tbl .. " SET " .. concat(sets, ", ") .. " WHERE " .. pk .. " = ?"
    local DELETE = "DELETE" .. FROM .. " WHERE " .. pk .. " = ?"

    -- A row of the database as a record, in place (the row is the query's own table).
    local function from_row(row)
        for _, c in ipairs(columns) do
            local v = row[c.name]
            if c.type == "boolean" then
                row[c.name] = v ~= null and v ~= 0 and v ~= nil
            elseif v == null then
                row[c.name] = c.default
            end
        end
        return row
    end
    m.from_row = from_row

    local function from_rows(rows)
        for i = 1, #rows do rows[i] = from_row(rows[i]) end
        return rows
    end

    -- The rows of a probed page: rows with probe = 1 only tell that a row exists there.
    local function split(rows)
        local out, probed = {}, false
        for i = 1, #rows do
            local r = rows[i]
            if r.probe == 1 then
                probed = true
            else
                r.probe = nil
                out[#out + 1] = from_row(r)
            end
        end
        return out, probed
    end

    function m.find(id)
        local row = db.read(FIND, id)[1]
        return row and from_row(row)
    end

    function m.after(after, limit)
        return from_rows(db.read(AFTER, after, limit))
    end

    function m.first_page(limit)
        local rows = db.read(FIRST, limit + 1)
        local more = #rows > limit
        if more then rows[limit + 1] = nil end
        return from_rows(rows), false, more
    end

    function m.page_after(after, limit)
        local rows, before = split(db.read(PAGE_AFTER, after, limit + 1, after))
        local more = #rows > limit
        if more then rows[limit + 1] = nil end
        return rows, before, more
    end

    function m.page_before(before, limit)
        local rows, after = split(db.read(PAGE_BEFORE, before, limit + 1, before))
        local more = #rows > limit
        if more then remove(rows, 1) end
        return rows, more, after
    end

    -- The value stored for column c from values.
    local function value_of(c, values)
        local v = values[c.name]
        if v == nil then v = c.default end
        if c.type == "boolean" then v = v == true end
        return v
    end

    local function insert_args(values)
        local args = {}
        for i, c in ipairs(columns) do args[i] = value_of(c, values) end
        return args
    end

    -- The record create stored under id, from its arguments.
    local function record_of(id, args)
        local rec = { [pk] = id }
        for i, c in ipairs(columns) do
            local v = args[i]
            if v == null then v = c.default end
            rec[c.name] = v
        end
        return rec
    end

    function m.create(values)
        local args = insert_args(values)
        if def.timestamps or m.on_change then
            return db.transaction(function(tx)
                local id = tx:query(INSERT, table.unpack(args, 1, #columns)).insert_id
                local rec = def.timestamps and from_row(tx:query(FIND, id)[1]) or record_of(id, args)
                if m.on_change then m.on_change(tx, "created", rec) end
                return rec
            end)
        end
        return record_of(db.query(INSERT, table.unpack(args, 1, #columns)).insert_id, args)
    end

    function m.update(id, values)
        return db.transaction(function(tx)
            local row = tx:query(LOCK, id)[1]
            if not row then return nil end
            local rec = from_row(row)
            local args = {}
            for i, c in ipairs(columns) do
                local v = values[c.name]
                if v ~= nil then rec[c.name] = v end
                args[i] = rec[c.name]
                if v == null then rec[c.name] = c.default end
            end
            args[#columns + 1] = id
            tx:query(UPDATE, table.unpack(args, 1, #columns + 1))
            if def.timestamps then rec = from_row(tx:query(FIND, id)[1]) end
            if m.on_change then m.on_change(tx, "updated", rec) end
            return rec
        end)
    end

    function m.delete(id)
        if m.on_change then
            return db.transaction(function(tx)
                local done = tx:query(DELETE, id).affected_rows > 0
                if done then m.on_change(tx, "deleted", { [pk] = id }) end
                return done
            end)
        end
        return db.query(DELETE, id).affected_rows > 0
    end

    function m.validate(input, opts)
        return form.validate(input, columns, opts)
    end

    function m.fields_of(...)
        local out = {}
        for i = 1, select("#", ...) do
            local want = select(i, ...)
            for _, c in ipairs(columns) do
                if c.name == want then out[#out + 1] = c end
            end
        end
        return out
    end

    return m
end

return model
