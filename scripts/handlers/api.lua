-- The JSON API over the entries:
--
--   GET    /api/entries?limit=&after=   200 {"entries": [entry...], "next": id | null}
--          limit 1..100 (default 50), after an id (default 0); "next" is the `after` of the next
--          page, null on the last one
--   POST   /api/entries                 201, Location: /api/entries/<id>, the entry
--   GET    /api/entries/:id             200 the entry
--   PATCH  /api/entries/:id             200 the entry as saved (title, description, status)
--   DELETE /api/entries/:id             204
-- An entry is {"id", "title", "description", "status" (boolean)}.
--
-- Bodies must be Content-Type application/json (else 415) — a cross-site HTML form cannot send
-- that type without a CORS preflight, which is what protects the API without a CSRF token — and
-- a JSON object in UTF-8 (else 400). Invalid fields: 422 {"errors": {field: message}}. Every
-- other error is {"error": message} with its status (api.error_response, for the router's 404
-- and 405 under /api/ as well).

local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local http = require "lib.http"
local entry = require "models.entry"

local api = {}

local find, lower, match, sub = string.find, string.lower, string.match, string.sub
local utf8_len, type, pairs = utf8.len, type, pairs

local json = cjson_safe.new()
json.decode_invalid_numbers(false) -- NaN, Infinity and hex are not JSON
json.decode_max_depth(16)

local DEFAULT_LIMIT, MAX_LIMIT = 50, 100

-- The request's JSON object; raises 415 or 400.
local function body(req)
    local ct = lower(req.headers["content-type"] or "")
    local media, params = match(ct, "^%s*([^;%s]*)%s*(.*)$")
    local charset = match(params, "charset%s*=%s*\"?([^;\"%s]*)")
    if media ~= "application/json" or (charset and charset ~= "utf-8") then
        http.error(415, "Content-Type must be application/json.")
    end
    local text = req.body or ""
    if not utf8_len(text) then http.error(400, "The body is not valid UTF-8.") end
    local v, err = json.decode(text)
    if v == nil then http.error(400, "Malformed JSON: " .. tostring(err)) end
    if type(v) ~= "table" or not find(text, "^%s*{") then http.error(400, "The body must be a JSON object.") end
    for k, x in pairs(v) do
        if (type(k) == "string" and not utf8_len(k)) or (type(x) == "string" and not utf8_len(x)) then
            http.error(400, "The body is not valid UTF-8.") -- a lone surrogate escape, e.g. "\udc00"
        end
    end
    return v
end

-- Query parameter name as an integer in [min, max], default when absent; raises 400.
local function int_param(req, name, default, min, max)
    local v = req.query[name]
    if v == nil then return default end
    local n = find(v, "^%d+$") and #v <= 15 and tonumber(v)
    if not n or n < min or n > max then
        http.error(400, ("%s must be an integer from %d to %d."):format(name, min, max))
    end
    return n
end

local function invalid(errors)
    return http.json({ errors = errors }, 422)
end

function api.list(req)
    local limit = int_param(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    local after = int_param(req, "after", 0, 0, 9007199254740991)
    local rows = entry.after(after, limit + 1)
    local next_id = cjson.null
    if #rows > limit then
        rows[#rows] = nil
        next_id = rows[#rows].id
    end
    return http.json { entries = http.array(rows), next = next_id }
end

function api.create(req)
    local values, errors = entry.validate(body(req), { status = true })
    if errors then return invalid(errors) end
    local e = entry.create(values, "api")
    return http.json(e, 201, { location = "/api/entries/" .. e.id })
end

function api.show(req)
    local e = entry.get(req.params.id)
    if not e then http.error(404, "There is no such entry.") end
    return http.json(e)
end

function api.update(req)
    local values, errors = entry.validate(body(req), { status = true, partial = true })
    if errors then return invalid(errors) end
    local e = entry.update(req.params.id, values)
    if not e then http.error(404, "There is no such entry.") end
    return http.json(e)
end

function api.delete(req)
    if not entry.delete(req.params.id) then http.error(404, "There is no such entry.") end
    return { status = 204, headers = {}, body = "" }
end

local SERVER_ERRORS = {
    [503] = "The database is unavailable, try again shortly.",
}

-- For lib.web: errors under /api/ as JSON {"error": message}; nil elsewhere. Messages of 5xx
-- errors are fixed texts (they may hold internal details).
function api.error_response(req, status, message, headers)
    if req.path ~= "/api" and sub(req.path, 1, 5) ~= "/api/" then return nil end
    if status >= 500 or not message or message == "" then
        message = SERVER_ERRORS[status] or http.status_text[status] or "Error"
    end
    return http.json({ error = message }, status, headers)
end

return api
