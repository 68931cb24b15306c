-- view: the templates of a views directory, compiled once at load.
--
-- Every *.etlua file under the directory (recursively) is a view named by its path relative to
-- the directory, without the extension: "index", "partials/flash". Inside a template,
-- render(name, data) renders another view (no layout) and returns its text, and static_url(path)
-- gives the fingerprinted URL of a static file (h2lua.static: "/static/app.css?v=<hash>", cached
-- by browsers for a year; a changed file gets a new URL).

local lfs = require "lfs"
local template = require "lib.template"
local static = require "h2lua.static"

local view = {}

local format, gsub, sort, sub = string.format, string.gsub, table.sort, string.sub

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then error("view: " .. err, 0) end
    local s = f:read("a")
    f:close()
    return s
end

-- Relative paths of the *.etlua files under dir (LuaFileSystem, a declared dependency of the
-- server, its image and the specs), sorted. Raises when dir cannot be read.
local function list_templates(dir)
    local found = {}
    local function walk(rel)
        local abs = rel == "" and dir or dir .. "/" .. rel
        local iter_ok, iter, state = pcall(lfs.dir, abs)
        if not iter_ok then error("view: cannot read directory " .. abs .. ": " .. tostring(iter), 0) end
        for entry in iter, state do
            if entry ~= "." and entry ~= ".." then
                local path = rel == "" and entry or rel .. "/" .. entry
                local mode = lfs.attributes(dir .. "/" .. path, "mode")
                if mode == "directory" then
                    walk(path)
                elseif mode == "file" and sub(entry, -6) == ".etlua" then
                    found[#found + 1] = path
                end
            end
        end
    end
    walk("")
    sort(found)
    return found
end

-- Compiles every view under dir; helpers (optional) is a table of more functions every template
-- may call by name. Returns a views object:
--   views.render(name, data, opts) -> string   renders view name with data; unless
--       opts.layout == false the result is rendered again inside the view opts.layout (default
--       "layout", skipped when there is no such view) as `content`, with the same data.
--       `content` is the view's text: a string on Lua 5.4, a string.buffer on LuaJIT (write it
--       with <%- content %>; tostring(content), #content and .. work as on a string).
--       Raises the template's error ("file:line: message", or an HTTP error object as raised).
--   views.has(name) -> boolean
--   views.names -> sorted array of view names
-- Raises "file:line: message" on the first template that does not compile.
function view.load(dir, helpers)
    assert(type(dir) == "string" and dir ~= "", "view.load: views directory required")
    dir = gsub(dir, "/+$", "")
    if dir == "" then dir = "/" end
    local fns, names = {}, {}
    local views = { names = names }

    local function render_view(name, data, into)
        local fn = fns[name]
        if not fn then error(format("view not found: %q", tostring(name)), 0) end
        local out, err = fn(data, into)
        if not out then error(err, 0) end
        return out
    end

    -- On LuaJIT the view's text reaches its layout as a buffer (template.new_buffer), not as a
    -- string: the largest string of a page is then made once, by the layout. The buffer is kept
    -- for the next page unless a render fails or runs inside another.
    local new_buffer = template.new_buffer
    local free_content

    local extra = { render = render_view, static_url = static.url }
    for k, v in pairs(helpers or {}) do extra[k] = v end
    local base = template.new_base(extra)
    for _, rel in ipairs(list_templates(dir)) do
        local name = sub(rel, 1, -7)
        local path = dir .. "/" .. rel
        local fn, err = template.compile(read_file(path), path, base)
        if not fn then error(err, 0) end
        fns[name] = fn
        names[#names + 1] = name
    end

    function views.has(name)
        return fns[name] ~= nil
    end

    function views.render(name, data, opts)
        data = data or {}
        local layout = "layout"
        if opts and opts.layout ~= nil then layout = opts.layout end
        if layout == false or (layout == "layout" and not fns.layout) then return render_view(name, data) end
        local content
        if new_buffer then
            content = free_content or new_buffer()
            free_content = nil
            render_view(name, data, content)
        else
            content = render_view(name, data)
        end
        local outer = { content = content }
        for k, v in pairs(data) do
            if k ~= "content" then outer[k] = v end
        end
        local out = render_view(layout, outer)
        if new_buffer then
            content:reset()
            free_content = content
        end
        return out
    end

    return views
end

return view
