-- The entries pages: the list with its add form, the edit form, and the form posts that add, save,
-- toggle and delete. Each handler gets req.session (app.lua loads it, and checks the CSRF token of
-- every form post before the handler runs) and renders with req.render, which adds the layout,
-- the CSRF token and the flashes.
--
-- Pages of the list: /?page=N, 50 entries a page by id. N must be a positive integer (at most 7
-- digits); any other value, or a page past the last one, is a 404. Page 1 always exists (it shows
-- the empty state when there are no entries).

local http = require "lib.http"
local entry = require "models.entry"

local PER_PAGE = 50

local ceil, find, format, max = math.ceil, string.find, string.format, math.max

local function not_found()
    http.error(404, "There is no such entry.")
end

-- The page number asked for in the query string: 1 when none, nil when invalid.
local function page_number(req)
    local p = req.query.page
    if p == nil then return 1 end
    if not find(p, "^[1-9]%d*$") or #p > 7 then return nil end
    return tonumber(p)
end

-- Where a row's form sends the browser back to: the list page it was on (its form action
-- carries ?page=N), or the one before when that page is now empty.
local function back(req, deleted)
    local page = page_number(req) or 1
    if deleted and page > 1 and entry.count() <= (page - 1) * PER_PAGE then page = page - 1 end
    if page > 1 then return "/?page=" .. page end
    return "/"
end

-- What the user typed, shown again in a form that did not validate.
local function typed(req)
    return { title = req.form.title, description = req.form.description }
end

local h = {}

-- The list page number `page`, with the add form (values and errors when given).
local function list(req, page, status, values, errors)
    local rows = entry.page((page - 1) * PER_PAGE, PER_PAGE)
    if #rows == 0 and page > 1 then http.error(404, format("There is no page %d of entries.", page)) end
    local total = (page == 1 and #rows < PER_PAGE) and #rows or entry.count()
    return req.render("index", {
        title = "Entries", entries = rows, total = total,
        page = page, pages = max(1, ceil(total / PER_PAGE)),
        back = page > 1 and "?page=" .. page or "",
        values = values or {}, errors = errors or {}, fields = entry.FIELDS,
    }, status)
end

function h.index(req)
    local page = page_number(req)
    if not page then http.error(404, "There is no such page of entries.") end
    return list(req, page)
end

function h.add(req)
    local values, errors = entry.validate(req.form)
    if errors then return list(req, 1, 422, typed(req), errors) end
    entry.create(values)
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
