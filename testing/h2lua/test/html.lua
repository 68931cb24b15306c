-- h2lua.test.html: a small, forgiving HTML parser for tests — enough to query the pages an app
-- renders, not a browser's parser.
--
--   local doc = html.parse(text)
--   doc:find(selector)   every element below that matches, in document order
--   doc:first(selector)  the first one, or nil
--   el.tag, el.attrs     the lower-case tag name; attributes (entities decoded; `<input required>`
--                        gives attrs.required == "")
--   el:text()            the text inside, entities decoded, white space runs collapsed, trimmed
--   el:has_class(name)
-- Selectors: a compound of tag, #id, .class and [attr] / [attr=value] / [attr="value"] parts
-- (`input.is-invalid[name=title]`), several compounds separated by spaces for descendants
-- (`form#add input`), and several selectors separated by commas.
-- Void elements (`<br>`, `<input>` ...) have no children; `<script>` and `<style>` hold raw
-- text; an end tag closes the nearest open element of its name (unclosed ones inside end too);
-- an end tag with no open element of its name is ignored.

local html = {}

local find, gsub, lower, match, sub = string.find, string.gsub, string.lower, string.match, string.sub
local char, tonumber, concat = utf8.char, tonumber, table.concat

local VOID = {}
for t in ("area base br col embed hr img input link meta source track wbr"):gmatch("%a+") do VOID[t] = true end
local RAW = { script = true, style = true, textarea = true, title = true }

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'", nbsp = "\u{a0}" }

-- s with its character references decoded (named: the few above; numeric: all).
function html.decode(s)
    return (gsub(s, "&(#?[xX]?)(%w+);", function(kind, name)
        if kind == "" then return ENTITIES[name] end
        local n = kind == "#" and tonumber(name) or tonumber(name, 16)
        if n and n < 0x110000 then return char(n) end
    end))
end

local Element = {}
Element.__index = Element

local function new_element(tag, attrs, parent)
    return setmetatable({ tag = tag, attrs = attrs, children = {}, parent = parent }, Element)
end

local function parse_attrs(s)
    local attrs = {}
    local i = 1
    while true do
        local _, e, name = find(s, "^[%s/]*([^%s=/>\"']+)", i)
        if not name then break end
        i = e + 1
        local value = ""
        local _, e2, q = find(s, "^%s*=%s*([\"'])", i)
        if q then
            local close = find(s, q, e2 + 1, true) or #s + 1
            value = sub(s, e2 + 1, close - 1)
            i = close + 1
        else
            local _, e3, v = find(s, "^%s*=%s*([^%s>]*)", i)
            if v then
                value = v
                i = e3 + 1
            end
        end
        name = lower(name)
        if attrs[name] == nil then attrs[name] = html.decode(value) end
    end
    return attrs
end

function html.parse(text)
    local root = new_element("#document", {}, nil)
    local cur = root
    local i, n = 1, #text
    local function add_text(s)
        if s ~= "" then cur.children[#cur.children + 1] = s end
    end
    while i <= n do
        local lt = find(text, "<", i, true)
        if not lt then
            add_text(sub(text, i))
            break
        end
        add_text(sub(text, i, lt - 1))
        if sub(text, lt, lt + 3) == "<!--" then
            local e = find(text, "-->", lt + 4, true)
            i = e and e + 3 or n + 1
        elseif find(text, "^<[!?]", lt) then
            local e = find(text, ">", lt, true)
            i = e and e + 1 or n + 1
        elseif find(text, "^</", lt) then
            local e = find(text, ">", lt, true) or n
            local tag = lower(match(text, "^</%s*([%w:-]*)", lt) or "")
            i = e + 1
            local el = cur
            while el ~= root and el.tag ~= tag do el = el.parent end
            if el ~= root then cur = el.parent end
        elseif find(text, "^<[%a]", lt) then
            local tag = lower(match(text, "^<([%w:-]+)", lt))
            -- the tag ends at the first ">" outside quotes
            local j, e = lt + 1 + #tag, nil
            while j <= n do
                local c = sub(text, j, j)
                if c == ">" then
                    e = j
                    break
                elseif c == '"' or c == "'" then
                    j = (find(text, c, j + 1, true) or n) + 1
                else
                    j = j + 1
                end
            end
            e = e or n
            local el = new_element(tag, parse_attrs(sub(text, lt + 1 + #tag, e - 1)), cur)
            cur.children[#cur.children + 1] = el
            i = e + 1
            if RAW[tag] then
                local close = find(lower(text), "</" .. tag, i, true)
                local raw = sub(text, i, (close or n + 1) - 1)
                if raw ~= "" then el.children[1] = raw end
                if close then
                    i = (find(text, ">", close, true) or n) + 1
                else
                    i = n + 1
                end
            elseif not VOID[tag] and sub(text, e - 1, e - 1) ~= "/" then
                cur = el
            end
        else
            add_text("<")
            i = lt + 1
        end
    end
    return root
end

-- A compound selector as { tag =, id =, classes = {}, attrs = { {name, value|nil} } }.
local function compile_compound(s)
    local c = { classes = {}, attrs = {} }
    local tag = match(s, "^[%w:-]+") or match(s, "^%*")
    local i = 1
    if tag then
        if tag ~= "*" then c.tag = lower(tag) end
        i = #tag + 1
    end
    while i <= #s do
        local ch = sub(s, i, i)
        if ch == "#" or ch == "." then
            local name = match(s, "^[%w_-]+", i + 1)
            if not name then error("html: bad selector part in '" .. s .. "'", 3) end
            if ch == "#" then c.id = name else c.classes[#c.classes + 1] = name end
            i = i + 1 + #name
        elseif ch == "[" then
            local close = find(s, "]", i, true)
            if not close then error("html: unclosed [ in '" .. s .. "'", 3) end
            local body = sub(s, i + 1, close - 1)
            local name, value = match(body, "^%s*([%w_:-]+)%s*=%s*(.-)%s*$")
            if name then
                value = match(value, '^"(.*)"$') or match(value, "^'(.*)'$") or value
            else
                name = match(body, "^%s*([%w_:-]+)%s*$")
                if not name then error("html: bad attribute selector in '" .. s .. "'", 3) end
            end
            c.attrs[#c.attrs + 1] = { lower(name), value }
            i = close + 1
        else
            error("html: cannot read selector '" .. s .. "'", 3)
        end
    end
    return c
end

function Element:has_class(name)
    local cls = self.attrs.class
    if not cls then return false end
    for c in cls:gmatch("%S+") do
        if c == name then return true end
    end
    return false
end

local function matches(el, c)
    if c.tag and el.tag ~= c.tag then return false end
    if c.id and el.attrs.id ~= c.id then return false end
    for _, cl in ipairs(c.classes) do
        if not el:has_class(cl) then return false end
    end
    for _, a in ipairs(c.attrs) do
        local v = el.attrs[a[1]]
        if v == nil or (a[2] ~= nil and v ~= a[2]) then return false end
    end
    return true
end

-- Whether el matches the chain of compounds (the last one el itself, the others ancestors), below
-- the element the search started from.
local function matches_chain(el, chain, top)
    if not matches(el, chain[#chain]) then return false end
    local k = #chain - 1
    local p = el.parent
    while k >= 1 and p and p ~= top do
        if matches(p, chain[k]) then k = k - 1 end
        p = p.parent
    end
    return k == 0
end

local function compile(selector)
    local chains = {}
    for part in (selector .. ","):gmatch("([^,]*),") do
        local chain = {}
        for compound in part:gmatch("%S+") do chain[#chain + 1] = compile_compound(compound) end
        if #chain == 0 then error("html: empty selector in '" .. selector .. "'", 3) end
        chains[#chains + 1] = chain
    end
    return chains
end

function Element:find(selector)
    local chains = compile(selector)
    local out = {}
    local function walk(el)
        for _, child in ipairs(el.children) do
            if type(child) == "table" then
                for _, chain in ipairs(chains) do
                    if matches_chain(child, chain, self) then
                        out[#out + 1] = child
                        break
                    end
                end
                walk(child)
            end
        end
    end
    walk(self)
    return out
end

function Element:first(selector)
    return self:find(selector)[1]
end

function Element:text()
    local parts = {}
    local function walk(el)
        for _, child in ipairs(el.children) do
            if type(child) == "string" then parts[#parts + 1] = child else walk(child) end
        end
    end
    walk(self)
    local s = gsub(html.decode(concat(parts)), "%s+", " ")
    return match(s, "^%s*(.-)%s*$")
end

return html
