-- http: response tables and HTTP errors.
--
-- A response is the table the server sends: { status = 200, headers = { name = value }, body = "" }
-- (header names in lower case; a value that is an array sends one header line per element).
-- Each helper returns a new response with a new headers table the caller may change.

local cjson = require "cjson"
local h2lua = require "h2lua"

local http = {}

local find, gsub, format = string.find, string.gsub, string.format
local encode = cjson.encode

local HTML = "text/html; charset=utf-8"
local TEXT = "text/plain; charset=utf-8"
local JSON = "application/json; charset=utf-8"

-- The reason phrases of HTTP statuses: the core's one table (h2lua.status_text).
http.status_text = h2lua.status_text

local function response(content_type, body, status, headers)
    local h = { ["content-type"] = content_type }
    if headers then
        for k, v in pairs(headers) do h[k] = v end
    end
    return { status = status or 200, headers = h, body = body or "" }
end

-- HTML response. body: string; status: default 200; headers: extra headers (may override
-- content-type).
function http.html(body, status, headers)
    return response(HTML, body, status, headers)
end

-- text/plain response, arguments as http.html.
function http.text(body, status, headers)
    return response(TEXT, body, status, headers)
end

-- JSON arrays. cjson encodes an empty table as {}; wrap a table that must be a JSON array in
-- http.array() to get [] when it is empty. Returns its argument, or a marker when it is empty.
local EMPTY_ARRAY
if cjson.empty_array then
    EMPTY_ARRAY = cjson.empty_array
else
    -- Older lua-cjson: a marker string replaced after encoding. Per-process random, NUL-framed.
    EMPTY_ARRAY = format("\0h2lua-empty-array-%08x%08x\0", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end
local EMPTY_ARRAY_JSON = encode(EMPTY_ARRAY)
local EMPTY_ARRAY_PATTERN = (gsub(EMPTY_ARRAY_JSON, "%p", "%%%0"))

function http.array(t)
    if next(t) == nil then return EMPTY_ARRAY end
    if cjson.array_mt then setmetatable(t, cjson.array_mt) end
    return t
end

-- Encodes value as JSON. Raises on a value JSON cannot hold (a function, a sparse array, ...).
function http.encode_json(value)
    local s = encode(value)
    if type(EMPTY_ARRAY) == "string" and find(s, EMPTY_ARRAY_JSON, 1, true) then
        s = gsub(s, EMPTY_ARRAY_PATTERN, "[]")
    end
    return s
end

-- JSON response: value encoded with lua-cjson (see http.array), content-type application/json.
function http.json(value, status, headers)
    return response(JSON, http.encode_json(value), status, headers)
end

-- Redirect to location. status: default 303 (See Other: the browser follows with GET).
function http.redirect(location, status)
    return { status = status or 303, headers = { location = location }, body = "" }
end

-- HTTP errors are the core's (h2lua.http_error): a table { status =, message = } that
-- h2lua.is_http_error recognises. Raises an HTTP error: the app answers with status and its
-- error page showing message (default: the status text).
local raise = h2lua.http_error
function http.error(status, message)
    raise(status, message or http.status_text[status])
end
http.is_error = h2lua.is_http_error
http.HttpError = h2lua.HttpError

return http
