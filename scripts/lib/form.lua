-- form: validating submitted fields (HTML forms and JSON objects alike).
--
-- Lengths are counted in Unicode characters (code points), never bytes. Strings are trimmed of
-- ASCII white space before they are checked and stored.
--
--   form.validate(input, fields [, opts]) -> values, errors
--     input   a table name -> value (req.form, or a decoded JSON object)
--     fields  an array of { name =, label =, type = "string" (default) | "boolean",
--                           required = true|false, min =, max = (characters) }
--     opts.partial  fields missing from input are skipped rather than required (PATCH)
--   values: name -> cleaned value, for every field present (strings trimmed);
--   errors: nil when all is well, else name -> message ("Title is required.").

local form = {}

local find, format, match = string.find, string.format, string.match
local utf8_len, type = utf8.len, type

-- s without leading and trailing ASCII white space.
function form.trim(s)
    if find(s, "^%s*$") then return "" end
    return (match(s, "^%s*(.*%S)"))
end

-- The number of characters in s, or nil when s is not valid UTF-8.
function form.length(s)
    return (utf8_len(s))
end

-- Error message for a present string value, or nil.
local function check_string(v, f, label)
    local n = form.length(v)
    if not n then return label .. " must be valid UTF-8 text." end
    if n == 0 and f.required then return label .. " is required." end
    if f.min and n < f.min then
        return format("%s must be at least %d characters long.", label, f.min)
    end
    if f.max and n > f.max then
        return format("%s must be at most %d characters long (it has %d).", label, f.max, n)
    end
    return nil
end

function form.validate(input, fields, opts)
    local partial = opts and opts.partial
    local values, errors = {}, nil
    local function fail(name, message)
        errors = errors or {}
        errors[name] = message
    end
    for _, f in ipairs(fields) do
        local name = f.name
        local label = f.label or name
        local v = input[name]
        if v == nil then
            if f.required and not partial then fail(name, label .. " is required.") end
        elseif f.type == "boolean" then
            if type(v) ~= "boolean" then fail(name, label .. " must be true or false.") else values[name] = v end
        elseif type(v) ~= "string" then
            fail(name, label .. " must be text.")
        else
            v = form.trim(v)
            local err = check_string(v, f, label)
            if err then fail(name, err) else values[name] = v end
        end
    end
    return values, errors
end

return form
