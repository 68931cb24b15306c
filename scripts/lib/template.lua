-- template: etlua-syntax templates compiled to Lua functions.
--
--   <% code %>     Lua statements
--   <%= expr %>    the value, HTML-escaped (& < > " ' -> &amp; &lt; &gt; &quot; &#39;)
--   <%- expr %>    the value as is
--   -%>            closing a tag this way drops the newline right after it
-- A nil value renders as "". Other values go through tostring.
--
-- A template runs with its own environment: a copy of the data table whose missing names come
-- from a base (template.base by default: string, table, math, utf8, pairs, ipairs, next, select,
-- type, tostring, tonumber, error, assert, os.date, os.time and escape). Assigning a global
-- inside a template changes only that copy.
--
-- Errors name the template file and the template line: "views/index.etlua:12: message". An error
-- raised by a function a template calls gets the template position in front of its own.

local template = {}

local byte, concat, find, format, gsub, match, sub =
    string.byte, table.concat, string.find, string.format, string.gsub, string.match, string.sub
local tostring, type, pairs, setmetatable, xpcall = tostring, type, pairs, setmetatable, xpcall
local getinfo = debug.getinfo
-- Lua 5.4 hands a template its environment as the _ENV parameter; LuaJIT (Lua 5.1) has no _ENV,
-- so there the compiled function sets its own environment with setfenv, on the same line.
local setfenv = rawget(_G, "setfenv")

-- Returns v as HTML text: "" for nil, tostring otherwise, with & < > " ' escaped: the core's
-- escape_html (the one HTML escaper).
local escape = require("h2lua").escape_html
template.escape = escape

-- Joins the n pieces of a render: the core's concat (through a buffer kept between renders).
local join = require("h2lua").concat

-- On LuaJIT a render writes into a string.buffer, and <%= %> escapes into it through the FFI (the
-- core's escape: h2lua.ffi), so that the whole render can run as compiled traces; a call of a
-- classic C function (escape_html, concat) ends a trace. Elsewhere (Lua 5.4) a render fills a table
-- of pieces that the core's concat joins.
local buffer_mode = (function()
    local core_ffi = require("h2lua").ffi
    local ok_ffi, ffi = pcall(require, "ffi")
    local ok_buf, buffer = pcall(require, "string.buffer")
    if not (core_ffi and ok_ffi and ok_buf) then return nil end
    local safe_prefix = ffi.cast("size_t (*)(const char *, size_t)", core_ffi.html_safe_prefix)
    local escape_into = ffi.cast("size_t (*)(uint8_t *, const char *, size_t)", core_ffi.escape_html)
    local MAX_ENTITY = core_ffi.html_entity_max
    local put_escaped
    -- Appends v to buf as escape(v) would return it.
    put_escaped = function(buf, v)
        local tv = type(v)
        if tv == "string" then
            local n = #v
            if safe_prefix(v, n) == n then
                buf:put(v)
            else
                local p = buf:reserve(n * MAX_ENTITY)
                buf:commit(tonumber(escape_into(p, v, n)))
            end
        elseif tv == "number" then
            -- below 1e14 as tostring writes it (digits, '.', '-'; nothing to escape); an integer above
            -- as the core's escape writes it (all its digits, where tostring rounds to 14)
            -- (an integer through "%d": tostring's "%.14g" costs several times more, and ids are many)
            if v < 1e14 and v > -1e14 then
                if v % 1 == 0 then buf:putf("%d", v) else buf:put(v) end
            else
                buf:put(escape(v))
            end
        elseif v ~= nil then
            put_escaped(buf, tostring(v))
        end
    end
    -- The buffers made by new_buffer (a render's output handed on as a value: a layout's content).
    local ours = setmetatable({}, { __mode = "k" })
    -- Appends v to buf as raw(v) would return it; one of our buffers, without making it a string.
    local function put_raw(buf, v)
        local tv = type(v)
        if tv == "string" or tv == "number" or ours[v] then
            buf:put(v)
        elseif v ~= nil then
            buf:put(tostring(v))
        end
    end
    local function new_buffer()
        local b = buffer.new()
        ours[b] = true
        return b
    end
    return { put_escaped = put_escaped, put_raw = put_raw, new = buffer.new, new_buffer = new_buffer }
end)()
-- On LuaJIT: a new string.buffer that render(data, into) can write into and that <%- %> appends as
-- it is (tostring gives its text); nil elsewhere.
template.new_buffer = buffer_mode and buffer_mode.new_buffer

local function raw(v)
    if v == nil then return "" end
    if type(v) ~= "string" then return tostring(v) end
    return v
end

template.base = {
    string = string, table = table, math = math, utf8 = utf8,
    pairs = pairs, ipairs = ipairs, next = next, select = select, type = type,
    tostring = tostring, tonumber = tonumber, error = error, assert = assert,
    os = { date = os.date, time = os.time },
    escape = escape,
}

-- Returns a new base table: template.base plus the fields of extra (which win).
function template.new_base(extra)
    local base = {}
    for k, v in pairs(template.base) do base[k] = v end
    for k, v in pairs(extra or {}) do base[k] = v end
    return base
end

-- The position of the "%>" that closes a tag whose code starts at pos: a "%>" inside a Lua string
-- of the code ('...', "..." with their escapes, [[...]], [==[...]==]) does not close it, as in
-- etlua. Code whose strings do not end (a Lua syntax error) falls back to the first "%>", so that
-- Lua reports the error at its line.
local function find_close(source, pos)
    local start = pos
    while true do
        local at = find(source, "[%%'\"%[]", pos)
        if not at then break end
        local c = byte(source, at)
        if c == 37 then -- %
            if byte(source, at + 1) == 62 then return at end
            pos = at + 1
        elseif c == 91 then -- [
            local eq = match(source, "^%[(=*)%[", at)
            if eq then
                local _, e = find(source, "]" .. eq .. "]", at + #eq + 2, true)
                if not e then break end
                pos = e + 1
            else
                pos = at + 1
            end
        else -- a quote: the string ends at the same quote not escaped by a backslash
            local i, q = at + 1
            while true do
                q = find(source, c == 39 and "[\\'\n]" or '[\\"\n]', i)
                if not q or byte(source, q) == 10 then return find(source, "%>", start, true) end
                if byte(source, q) == c then break end
                i = q + 2 -- a backslash escapes the next byte
            end
            pos = q + 1
        end
    end
    return find(source, "%>", start, true)
end

local function count_newlines(s)
    local _, n = gsub(s, "\n", "")
    return n
end

-- Translates source into Lua code. Returns code, linemap (Lua line -> template line)
-- or nil, "<template line>: message".
local function translate(source)
    local out, map = {}, {}
    local lua_line, tpl_line = 1, 1
    map[1] = 1

    -- Appends code that spans as many lines as the template text it stands for (newlines in
    -- code advance both counters), then, when extra_newline, a line of its own.
    local function emit(code, extra_newline)
        out[#out + 1] = code
        local n = count_newlines(code)
        for _ = 1, n do
            lua_line, tpl_line = lua_line + 1, tpl_line + 1
            map[lua_line] = tpl_line
        end
        if extra_newline then
            out[#out + 1] = "\n"
            lua_line = lua_line + 1
            map[lua_line] = tpl_line
        end
    end

    -- The code of a piece: text(s) a literal, open_escaped() / open_raw() what precedes the
    -- expression of <%= %> / <%- %> (") " follows it); flush() before a code block.
    -- Table mode: pieces between two code blocks are stored at _n+1, _n+2, ... and _n advances
    -- once, before the next code block and at the end (fewer VM instructions per piece).
    -- Buffer mode: each piece is put into the buffer _o.
    local pending = 0
    local function slot()
        pending = pending + 1
        return "_b[_n+" .. pending .. "] = "
    end
    local text, open_escaped, open_raw, flush
    if buffer_mode then
        text = function(s) return "_o:put(" .. format("%q", s) .. ") " end
        open_escaped = function() return "_pe(_o, " end
        open_raw = function() return "_pr(_o, " end
        flush = function() end
    else
        text = function(s) return slot() .. format("%q ", s) end
        open_escaped = function() return slot() .. "_esc(" end
        open_raw = function() return slot() .. "_raw(" end
        flush = function()
            if pending > 0 then
                emit("_n = _n + " .. pending .. " ")
                pending = 0
            end
        end
    end

    -- The table of pieces (the buffer) is kept for the next render of this template (it grows
    -- once, not on every render); a render that finds it taken (a render inside itself, or one
    -- interrupted by an error or still suspended in a coroutine) makes its own.
    if buffer_mode then
        -- _into: a buffer of the caller's to append to (render(data, into)); then it is returned
        emit("local _pe, _pr, _new, _setfenv = ... local _free return function(_ENV, _into) "
            .. (setfenv and "_setfenv(1, _ENV) " or "")
            .. "local _o = _into if not _o then _o = _free or _new() _free = nil end ")
    else
        emit("local _esc, _raw, _concat, _setfenv = ... local _free return function(_ENV) "
            .. (setfenv and "_setfenv(1, _ENV) " or "")
            .. "local _b, _n = _free or {}, 0 _free = nil ")
    end
    local pos, len = 1, #source
    while pos <= len do
        local open = find(source, "<%", pos, true)
        local literal = sub(source, pos, (open or len + 1) - 1)
        if literal ~= "" then
            -- %q keeps a newline as a backslash-newline, so the code spans the same lines.
            emit(text(literal))
        end
        if not open then break end
        local kind = sub(source, open + 2, open + 2)
        local start = (kind == "=" or kind == "-") and open + 3 or open + 2
        local close = find_close(source, start)
        if not close then
            return nil, format("%d: unclosed '<%%'", tpl_line)
        end
        local trim = byte(source, close - 1) == 45 and close - 1 >= start -- "-%>"
        local body = sub(source, start, trim and close - 2 or close - 1)
        -- A newline closes each piece of code, so a trailing "--" comment cannot swallow ours.
        if kind == "=" then
            emit(open_escaped() .. body, true)
            emit(") ")
        elseif kind == "-" then
            emit(open_raw() .. body, true)
            emit(") ")
        else
            flush()
            emit(body, true)
        end
        pos = close + 2
        if trim then
            if sub(source, pos, pos) == "\n" then
                pos = pos + 1
                emit("\n")
            elseif sub(source, pos, pos + 1) == "\r\n" then
                pos = pos + 2
                emit("\n")
            end
        end
    end
    flush()
    if buffer_mode then
        emit("if _into then return _into end local _s = _o:get() _free = _o return _s end")
    else
        emit("local _s = _concat(_b, _n) _free = _b return _s end")
    end
    return concat(out), map
end

local compiled = 0

-- Compiles source. chunkname names the template in error messages (use its file path).
-- base: the environment fallback (default template.base).
-- Returns render(data [, into]) -> string | nil, err   (err: "chunkname:line: message", or the
--         raised value itself when it is not a string, e.g. an HTTP error object); with into (a
--         template.new_buffer(), LuaJIT only) the text is appended to into, which is returned)
--      or nil, "chunkname:line: message" on a syntax error.
function template.compile(source, chunkname, base)
    chunkname = chunkname or "template"
    local code, map = translate(source)
    if not code then return nil, chunkname .. ":" .. map end

    -- The chunk gets a short private name (Lua truncates long ones in messages) so that its
    -- messages are told apart from messages already translated, e.g. of a partial.
    compiled = compiled + 1
    local private = "\1tpl" .. compiled
    local prefix = "^" .. private .. ":(%d+):"
    local function translate_msg(msg)
        return (gsub(msg, prefix, function(n)
            return chunkname .. ":" .. (map[tonumber(n)] or n) .. ":"
        end, 1))
    end

    local chunk, err = load(code, "=" .. private, "t", {})
    if not chunk then
        err = gsub(err, "%(to close '(%a+)' at line (%d+)%)", function(what, n)
            return "(to close '" .. what .. "' at line " .. (map[tonumber(n)] or n) .. ")"
        end)
        return nil, translate_msg(err)
    end
    local fn
    if buffer_mode then
        fn = chunk(buffer_mode.put_escaped, buffer_mode.put_raw, buffer_mode.new, setfenv)
    else
        fn = chunk(escape, raw, join, setfenv)
    end

    local source_name = "=" .. private
    local function on_error(e)
        if type(e) ~= "string" then return e end
        if find(e, prefix) then return translate_msg(e) end
        -- Raised elsewhere (a C function, a helper, a partial): prefix the template position.
        local level = 2
        while true do
            local info = getinfo(level, "Sl")
            if not info then return e end
            if info.source == source_name then
                return chunkname .. ":" .. (map[info.currentline] or "?") .. ": " .. e
            end
            level = level + 1
        end
    end

    local mt = { __index = base or template.base }
    return function(data, into)
        local env = setmetatable({}, mt)
        if data then
            for k, v in pairs(data) do env[k] = v end
        end
        local ok, out = xpcall(fn, on_error, env, into)
        if ok then return out end
        return nil, out
    end
end

return template
