-- The entries pages: the list with its add form, the edit form, and the form posts that add, save,
-- toggle and delete. Each handler gets req.session (app.lua loads it, and checks the CSRF token of
-- every form post before the handler runs) and renders with req.render, which adds the layout,
-- the CSRF token and the flashes.
--
-- Pages of the list, 50 entries a page by id (keyset pages: no page costs more because the table
-- is large): / is the first page, /?after=ID the entries after that id, /?before=ID the entries
-- before it. ID is an integer (no sign but "-", no leading zero, at most 10 digits); any other
-- value, both at once, or a page with no entry is a 404. Page 1 always exists (it shows the empty
-- state when there are no entries).

local http = require "lib.http"
local entry = require "models.entry"

local PER_PAGE = 50
-- Above every id (the column is an INT): /?before=LAST is the last page.
local LAST = 2147483648

local find, tonumber = string.find, tonumber

local function not_found()
    http.error(404, "There is no such entry.")
end

-- An id in the query string: nil when absent, false when not an id as the pages write them.
local function id_param(v)
    if v == nil then return nil end
    local digits = find(v, "^%-") and #v - 1 or #v
    if digits > 10 or not (v == "0" or find(v, "^%-?[1-9]%d*$")) then return false end
    return tonumber(v)
end

-- The page asked for: "after", id | "before", id | nil for the first page | false when invalid.
local function page_of(req)
    local after, before = id_param(req.query.after), id_param(req.query.before)
    if after == false or before == false or (after and before) then return false end
    if after then return "after", after end
    if before then return "before", before end
    return nil
end

-- Where a row's form sends the browser back to: the list page it was on (its form action carries
-- the page's ?after= or ?before=), or, once a delete left that page empty, its neighbour.
local function back(req, deleted)
    local kind, id = page_of(req)
    if not kind then return "/" end
    if deleted then
        local rows, before, after
        if kind == "after" then
            rows, before, after = entry.page_after(id, 1)
        else
            rows, before, after = entry.page_before(id, 1)
        end
        if #rows == 0 then
            if before then return "/?before=" .. (id + 1) end
            if after then return "/?after=" .. (id - 1) end
            return "/"
        end
    end
    return "/?" .. kind .. "=" .. id
end

-- What the user typed, shown again in a form that did not validate.
local function typed(req)
    return { title = req.form.title, description = req.form.description }
end

local h = {}

-- The list page asked for by the request (see page_of), with the add form (values and errors when
-- given). One statement.
local function list(req, kind, id, status, values, errors)
    local rows, before, after
    if kind == "after" then
        rows, before, after = entry.page_after(id, PER_PAGE)
    elseif kind == "before" then
        rows, before, after = entry.page_before(id, PER_PAGE)
    else
        rows, before, after = entry.first_page(PER_PAGE)
    end
    if #rows == 0 and kind then http.error(404, "There is no such page of entries.") end
    local first, last = rows[1], rows[#rows]
    return req.render("index", {
        title = "Entries", entries = rows,
        -- the count of all entries is known (and shown) when they fit on one page
        total = not before and not after and #rows or nil,
        first_href = before and "/" or nil,
        prev_href = before and "/?before=" .. first.id or nil,
        next_href = after and "/?after=" .. last.id or nil,
        last_href = after and "/?before=" .. LAST or nil,
        back = kind and "?" .. kind .. "=" .. id or "",
        values = values or {}, errors = errors or {}, fields = entry.FIELDS,
    }, status)
end

function h.index(req)
    local kind, id = page_of(req)
    if kind == false then http.error(404, "There is no such page of entries.") end
    return list(req, kind, id)
end

function h.add(req)
    local values, errors = entry.validate(req.form)
    if errors then return list(req, nil, nil, 422, typed(req), errors) end
    entry.create(values, "page")
    req.session:flash("Entry added.", "success")
    return http.redirect("/")
end

function h.edit(req)
    local e = entry.get(req.params.id) or not_found()
    return req.render("update", { title = "Edit entry", entry = e, values = e, errors = {}, fields = entry.FIELDS })
end

function h.update(req)
    local id = req.params.id
    local values, errors = entry.validate(req.form)
    if errors then
        local e = entry.get(id) or not_found()
        return req.render("update",
            { title = "Edit entry", entry = e, values = typed(req), errors = errors, fields = entry.FIELDS }, 422)
    end
    if not entry.update(id, values) then not_found() end
    req.session:flash("Entry saved.", "success")
    return http.redirect("/")
end

function h.toggle(req)
    if not entry.toggle(req.params.id) then not_found() end
    req.session:flash("Entry status changed.", "success")
    return http.redirect(back(req))
end

function h.delete(req)
    if not entry.delete(req.params.id) then not_found() end
    req.session:flash("Entry deleted.", "success")
    return http.redirect(back(req, true))
end

return h
