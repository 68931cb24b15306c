-- entry: the `entry` table (the Flask service's schema: id, title VARCHAR(64),
-- description VARCHAR(120), status BOOLEAN) — its queries and its validation.
--
-- An entry is { id = integer, title = string, description = string, status = boolean }. Rows the
-- Flask app left with NULLs read as "" and false. Lists and single reads use db.read (the replica
-- when there is one); writes use the primary.

local db = require "lib.db"
local form = require "lib.form"

local entry = {}

entry.FIELDS = {
    { name = "title", label = "Title", required = true, max = 64 },
    { name = "description", label = "Description", required = true, max = 120 },
}
local WITH_STATUS = {
    entry.FIELDS[1], entry.FIELDS[2],
    { name = "status", label = "Status", type = "boolean" },
}

local COLUMNS = "id, title, description, status"
local null = db.null

-- Turns a row of the database into an entry, in place (the row is the query's own table).
local function from_row(row)
    local title, description, status = row.title, row.description, row.status
    if title == null then row.title = "" end
    if description == null then row.description = "" end
    row.status = status ~= null and status ~= 0
    return row
end

local function from_rows(rows)
    for i = 1, #rows do rows[i] = from_row(rows[i]) end
    return rows
end

-- Checks input (a form or a JSON object): title and description. opts.status: a boolean status
-- may be given too; opts.partial: only the fields present are checked (PATCH). Returns values,
-- errors (nil when valid); see lib.form.
function entry.validate(input, opts)
    return form.validate(input, opts and opts.status and WITH_STATUS or entry.FIELDS, opts)
end

-- At most limit entries with an id above after, by id.
function entry.after(after, limit)
    return from_rows(db.read("SELECT " .. COLUMNS .. " FROM entry WHERE id > ? ORDER BY id LIMIT ?", after, limit))
end

-- Pages of the list by id (keyset pages: each costs the same however large the table is, and no
-- statement counts the table). Each function runs one statement and returns
--   rows (at most limit entries, by id), has_before, has_after
-- where has_before / has_after tell whether any entry has a smaller id than the first row / a
-- larger id than the last (for an empty page: than the bound asked for).

-- The entries with the smallest ids.
function entry.first_page(limit)
    local rows = db.read("SELECT " .. COLUMNS .. " FROM entry ORDER BY id LIMIT ?", limit + 1)
    local more = #rows > limit
    if more then rows[limit + 1] = nil end
    return from_rows(rows), false, more
end

-- Splits the rows of a probed page: rows with probe = 1 only tell that an entry exists there.
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

local PAGE_AFTER = "(SELECT 0 AS probe, " .. COLUMNS .. " FROM entry WHERE id > ? ORDER BY id LIMIT ?)"
    .. " UNION ALL (SELECT 1, id, NULL, NULL, NULL FROM entry WHERE id <= ? ORDER BY id DESC LIMIT 1)"
    .. " ORDER BY probe, id"
local PAGE_BEFORE = "(SELECT 0 AS probe, " .. COLUMNS .. " FROM entry WHERE id < ? ORDER BY id DESC LIMIT ?)"
    .. " UNION ALL (SELECT 1, id, NULL, NULL, NULL FROM entry WHERE id >= ? ORDER BY id LIMIT 1)"
    .. " ORDER BY probe, id"

-- The first limit entries with an id above after.
function entry.page_after(after, limit)
    local rows, before = split(db.read(PAGE_AFTER, after, limit + 1, after))
    local more = #rows > limit
    if more then rows[limit + 1] = nil end
    return rows, before, more
end

-- The last limit entries with an id below before (in id order).
function entry.page_before(before, limit)
    local rows, after = split(db.read(PAGE_BEFORE, before, limit + 1, before))
    local more = #rows > limit
    if more then table.remove(rows, 1) end
    return rows, more, after
end

-- The entry with this id, or nil.
function entry.get(id)
    local row = db.read("SELECT " .. COLUMNS .. " FROM entry WHERE id = ?", id)[1]
    return row and from_row(row)
end

-- The webhook outbox (lib.webhook), when the application delivers events (WEBHOOK_URL): then
-- every change below writes its event in the change's own transaction.
local hooks
function entry.deliver_events(h) hooks = h end

local function no_event() end

-- Runs fn(query, emit): query(sql, ...) runs a statement of one change and emit(e, type) records
-- its event — both in one transaction when events are delivered, else query is db.query and emit
-- does nothing. Returns fn's results.
local function change(fn)
    if not hooks then return fn(db.query, no_event) end
    local results = table.pack(db.transaction(function(tx)
        return fn(function(sql, ...) return tx:query(sql, ...) end,
            function(e, type) hooks:enqueue(tx, "entry:" .. e.id, type, e) end)
    end))
    hooks:kick()
    return table.unpack(results, 1, results.n)
end

-- Inserts a validated entry (values.title, values.description, values.status or false);
-- returns the new entry.
function entry.create(values)
    return change(function(query, emit)
        local status = values.status == true
        local res = query("INSERT INTO entry (title, description, status) VALUES (?, ?, ?)",
            values.title, values.description, status)
        local e = { id = res.insert_id, title = values.title, description = values.description, status = status }
        emit(e, "entry.created")
        return e
    end)
end

-- Changes the fields present in values (validated); returns the entry as saved, or nil when
-- there is no such entry.
function entry.update(id, values)
    local e = db.transaction(function(tx)
        local row = tx:query("SELECT " .. COLUMNS .. " FROM entry WHERE id = ? FOR UPDATE", id)[1]
        if not row then return nil end
        local e = from_row(row)
        for _, k in ipairs { "title", "description", "status" } do
            if values[k] ~= nil then e[k] = values[k] end
        end
        tx:query("UPDATE entry SET title = ?, description = ?, status = ? WHERE id = ?",
            e.title, e.description, e.status, id)
        if hooks then hooks:enqueue(tx, "entry:" .. id, "entry.updated", e) end
        return e
    end)
    if hooks and e then hooks:kick() end
    return e
end

-- Flips the status (NULL counts as false); false when there is no such entry.
function entry.toggle(id)
    return change(function(query, emit)
        local done = query("UPDATE entry SET status = NOT COALESCE(status, FALSE) WHERE id = ?", id).affected_rows > 0
        if done and hooks then
            emit(from_row(query("SELECT " .. COLUMNS .. " FROM entry WHERE id = ?", id)[1]), "entry.toggled")
        end
        return done
    end)
end

-- Deletes the entry; false when there was none.
function entry.delete(id)
    return change(function(query, emit)
        local done = query("DELETE FROM entry WHERE id = ?", id).affected_rows > 0
        if done then emit({ id = id }, "entry.deleted") end
        return done
    end)
end

return entry
