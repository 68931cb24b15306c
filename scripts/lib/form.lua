-- form: validating submitted fields (HTML forms and JSON objects alike).
--
-- Lengths are counted in Unicode characters (code points), never bytes. Strings are trimmed of
-- ASCII white space before they are checked and stored.
--
--   form.validate(input, fields [, opts]) -> values, errors
--     input   a table name -> value (req.form, or a decoded JSON object)
--     fields  an array of field declarations:
--       name =, label = (default: the name)
--       type = "string" (default) | "boolean" | "integer" | "number"
--       required = true      absent or blank is an error
--       min =, max =         strings: characters; integers and numbers: the value
--       pattern = "^%d%d%d%d%d$"   a Lua pattern the string must match (anchor it yourself)
--       email = true         e-mail-shaped text: local@domain.tld, at most 254 characters
--       one_of = { ... }     the (converted) value must equal one of these
--       check = function(value, values, input) -> nil | message   a custom rule, run last,
--                            once every other rule of the field holds
--       messages = { rule = "text" }  per-field messages for the rules above (required, type,
--                            utf8, min, max, pattern, email, one_of); `{label}`, `{min}`, `{max}`
--                            and `{count}` in them are replaced
--       message = "text"     one message for any failure of the field
--     opts.partial  fields missing from input are skipped rather than required (PATCH)
--   values: name -> cleaned value, for every field present (strings trimmed; integers as Lua
--   integers and numbers as Lua numbers, from form text or JSON numbers; an empty optional
--   number is left out);
--   errors: nil when all is well, else name -> message ("Title is required.").

local form = {}

local find, format, gsub, match = string.find, string.format, string.gsub, string.match
local utf8_len, type, tonumber, tostring = utf8.len, type, tonumber, tostring
local math_type, tointeger, concat = math.type, math.tointeger, table.concat

-- s without leading and trailing ASCII white space.
function form.trim(s)
    if find(s, "^%s*$") then return "" end
    return (match(s, "^%s*(.*%S)"))
end

-- The number of characters in s, or nil when s is not valid UTF-8.
function form.length(s)
    return (utf8_len(s))
end

-- Whether s looks like an e-mail address: one @, no white space or control character, a dot in
-- the domain, at most 254 characters. Not a proof that mail reaches it.
function form.is_email(s)
    return #s <= 254 and not find(s, "[%s%c]") and find(s, "^[^@]+@[^@%.][^@]*%.[^@%.]+$") ~= nil
        and not find(s, "%.%.")
end

-- The default messages; {label}, {min}, {max} and {count} are replaced.
local DEFAULT = {
    required = "{label} is required.",
    utf8 = "{label} must be valid UTF-8 text.",
    text = "{label} must be text.",
    boolean = "{label} must be true or false.",
    integer = "{label} must be a whole number.",
    number = "{label} must be a number.",
    min_length = "{label} must be at least {min} characters long.",
    max_length = "{label} must be at most {max} characters long (it has {count}).",
    min = "{label} must be at least {min}.",
    max = "{label} must be at most {max}.",
    pattern = "{label} is not in the expected format.",
    email = "{label} must be an e-mail address.",
    one_of = "{label} must be one of: {one_of}.",
}

-- The rule name a field's `messages` uses for each default message.
local RULE = {
    text = "type", boolean = "type", integer = "type", number = "type",
    min_length = "min", max_length = "max",
}

local function show(v)
    if math_type(v) == "float" and v == tointeger(v) then return format("%d", v) end
    return tostring(v)
end

-- The message for failure `kind` of field f.
local function message(f, label, kind, count)
    local text = f.message or (f.messages and f.messages[RULE[kind] or kind]) or DEFAULT[kind]
    local one_of = ""
    if f.one_of then
        local shown = {}
        for i, v in ipairs(f.one_of) do shown[i] = show(v) end
        one_of = concat(shown, ", ")
    end
    local vars = { label = label, min = show(f.min), max = show(f.max), count = show(count), one_of = one_of }
    return (gsub(text, "{(%a[%w_]*)}", function(k) return vars[k] end))
end

-- A decimal number written as people write it (no hex, inf or nan): 12, -3.5, .5, 1e3.
local function decimal(s)
    if not (find(s, "^[+-]?%d+%.?%d*$") or find(s, "^[+-]?%.%d+$")
            or find(s, "^[+-]?%d+%.?%d*[eE][+-]?%d+$") or find(s, "^[+-]?%.%d+[eE][+-]?%d+$")) then
        return nil
    end
    local n = tonumber(s)
    if n and n == n and n ~= math.huge and n ~= -math.huge then return n end
    return nil
end

-- v (a trimmed string or a JSON number) as an integer, or nil.
local function to_integer(v)
    if type(v) == "number" then
        if v ~= v or v == math.huge or v == -math.huge then return nil end
        return tointeger(v)
    end
    if not find(v, "^[+-]?%d+$") or #gsub(v, "^[+-]?0*", "") > 15 then return nil end
    return tointeger(tonumber(v))
end

local function to_number(v)
    if type(v) == "number" then
        if v ~= v or v == math.huge or v == -math.huge then return nil end
        return v
    end
    return decimal(v)
end

local function is_one_of(v, list)
    for _, x in ipairs(list) do
        if x == v then return true end
    end
    return false
end

-- Checks one present value of field f; returns the cleaned value, or nil and a message. A value
-- of nil without message: an empty optional number, left out.
local function check(v, f, label)
    local kind = f.type or "string"
    if kind == "boolean" then
        if type(v) ~= "boolean" then return nil, message(f, label, "boolean") end
    elseif kind == "integer" or kind == "number" then
        if type(v) == "string" then
            v = form.trim(v)
            if v == "" then
                if f.required then return nil, message(f, label, "required") end
                return nil
            end
        elseif type(v) ~= "number" then
            return nil, message(f, label, kind)
        end
        local n
        if kind == "integer" then n = to_integer(v) else n = to_number(v) end
        if not n then return nil, message(f, label, kind) end
        if f.min and n < f.min then return nil, message(f, label, "min") end
        if f.max and n > f.max then return nil, message(f, label, "max") end
        v = n
    else
        if type(v) ~= "string" then return nil, message(f, label, "text") end
        v = form.trim(v)
        local n = form.length(v)
        if not n then return nil, message(f, label, "utf8") end
        if n == 0 then
            if f.required then return nil, message(f, label, "required") end
            return v -- an empty optional string is stored as it is, unchecked
        end
        if f.min and n < f.min then return nil, message(f, label, "min_length", n) end
        if f.max and n > f.max then return nil, message(f, label, "max_length", n) end
        if f.pattern and not find(v, f.pattern) then return nil, message(f, label, "pattern") end
        if f.email and not form.is_email(v) then return nil, message(f, label, "email") end
    end
    if f.one_of and not is_one_of(v, f.one_of) then return nil, message(f, label, "one_of") end
    return v
end

function form.validate(input, fields, opts)
    local partial = opts and opts.partial
    local values, errors = {}, nil
    local function fail(name, text)
        errors = errors or {}
        errors[name] = text
    end
    local custom = {}
    for _, f in ipairs(fields) do
        local name = f.name
        local label = f.label or name
        local v = input[name]
        if v == nil then
            if f.required and not partial then fail(name, message(f, label, "required")) end
        else
            local clean, err = check(v, f, label)
            if err then
                fail(name, err)
            elseif clean ~= nil then
                values[name] = clean
                if f.check then custom[#custom + 1] = f end
            end
        end
    end
    -- custom rules last: they see every value that validated
    for _, f in ipairs(custom) do
        local err = f.check(values[f.name], values, input)
        if err then
            values[f.name] = nil
            fail(f.name, f.message or err)
        end
    end
    return values, errors
end

return form
