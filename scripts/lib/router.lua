-- router: method + path -> handler, params.
--
-- Patterns are absolute paths made of segments:
--   literal      "/entries/new"        matches exactly that text (a segment starting with ':'
--                                      is a parameter; ':' elsewhere is literal)
--   :name        "/tags/:name"         one non-empty segment, passed as a string
--   :name[%d]    "/entries/:id[%d]"    typed, as Lapis writes it: a positive decimal integer
--                                      without leading zeros, 1 .. 2^53-1, passed as a Lua
--                                      integer; anything else (0, 007, 9007199254740992, abc)
--                                      does not match
-- Matching is strict: "/a/" does not match "/a" and "/a" does not match "/a/".
-- A literal pattern wins over a pattern with parameters; patterns with parameters are tried in
-- the order they were added. HEAD is answered by the GET handler unless a HEAD route exists.
-- Routes are compiled when added; add all routes before serving (at load).

local router = {}

local MAX_ID = 9007199254740991 -- 2^53 - 1
local MAX_ID_DIGITS = 16

local match, find, format, gsub, sub = string.match, string.find, string.format, string.gsub, string.sub
local tonumber, concat, sort = tonumber, table.concat, table.sort

-- Shared params of a literal route: empty and read-only, so no table is made per request.
local NO_PARAMS = setmetatable({}, {
    __newindex = function() error("router: params of a literal route are read-only", 2) end,
    __metatable = false,
})

local function to_id(s)
    if #s > MAX_ID_DIGITS then return nil end
    local n = tonumber(s)
    if n > MAX_ID then return nil end
    return n
end

local function escape_magic(s)
    return (gsub(s, "[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- Compiles a pattern with parameters into a function(path) -> params | nil.
-- The generated code only ever embeds names checked to be identifiers and %q-quoted strings.
local function compile(pattern)
    local lua_pat, names, typed, seen = { "^" }, {}, {}, {}
    local pos = 1
    while pos <= #pattern do
        local seg_end = find(pattern, "/", pos + 1, true) or (#pattern + 1)
        local seg = sub(pattern, pos + 1, seg_end - 1)
        lua_pat[#lua_pat + 1] = "/"
        if sub(seg, 1, 1) == ":" then
            local name, type_ = match(seg, "^:([^%[]*)(.*)$")
            if type_ ~= "" and type_ ~= "[%d]" then
                error(format("router: unknown parameter type %q in pattern %q (only [%%d])", type_, pattern), 3)
            end
            if not find(name, "^[%a_][%w_]*$") then
                error(format("router: bad parameter %q in pattern %q", seg, pattern), 3)
            end
            if seen[name] then
                error(format("router: parameter %q repeated in pattern %q", name, pattern), 3)
            end
            seen[name] = true
            names[#names + 1] = name
            typed[#names] = type_ ~= ""
            lua_pat[#lua_pat + 1] = typed[#names] and "([1-9]%d*)" or "([^/]+)"
        else
            lua_pat[#lua_pat + 1] = escape_magic(seg)
        end
        pos = seg_end
    end
    lua_pat[#lua_pat + 1] = "$"

    local vars, checks, fields = {}, {}, {}
    for i, name in ipairs(names) do
        vars[i] = "c" .. i
        if typed[i] then
            checks[#checks + 1] = format("c%d = to_id(c%d) if not c%d then return nil end", i, i, i)
        end
        fields[i] = format("[%q] = c%d", name, i)
    end
    local src = format([[
local match, to_id = ...
return function(path)
    local %s = match(path, %q)
    if c1 == nil then return nil end
    %s
    return { %s }
end]], concat(vars, ", "), concat(lua_pat), concat(checks, "\n    "), concat(fields, ", "))
    return assert(load(src, "=router " .. pattern, "t", {}))(match, to_id)
end

local Router = {}
Router.__index = Router

-- Returns an empty router.
function router.new()
    return setmetatable({
        literal = {}, -- path -> route
        dynamic = {}, -- array of routes, in the order added
        by_pattern = {}, -- pattern -> route (of either kind)
    }, Router)
end

local function allow_of(handlers)
    local list = {}
    for method in pairs(handlers) do list[#list + 1] = method end
    if handlers.GET and not handlers.HEAD then list[#list + 1] = "HEAD" end
    sort(list)
    return concat(list, ", ")
end

-- Adds a route. method: upper-case name ("GET", "POST", ...); pattern: see the top of this file;
-- fn: function(req) -> response. Raises on a malformed pattern or a route added twice.
function Router:route(method, pattern, fn)
    if type(method) ~= "string" or not find(method, "^%u+$") then
        error(format("router: bad method %q", tostring(method)), 2)
    end
    if type(pattern) ~= "string" or sub(pattern, 1, 1) ~= "/" then
        error(format("router: pattern must start with '/': %q", tostring(pattern)), 2)
    end
    if type(fn) ~= "function" then
        error(format("router: handler for %s %s is not a function", method, pattern), 2)
    end
    local route = self.by_pattern[pattern]
    if not route then
        route = { pattern = pattern, label = (gsub(pattern, "%[%%d%]", "")), handlers = {} }
        if find(pattern, "/:") then
            route.matcher = compile(pattern)
            self.dynamic[#self.dynamic + 1] = route
        else
            self.literal[pattern] = route
        end
        self.by_pattern[pattern] = route
    end
    if route.handlers[method] then
        error(format("router: route %s %s added twice", method, pattern), 2)
    end
    route.handlers[method] = fn
    route.allow = allow_of(route.handlers)
    return self
end

function Router:get(pattern, fn) return self:route("GET", pattern, fn) end
function Router:post(pattern, fn) return self:route("POST", pattern, fn) end
function Router:put(pattern, fn) return self:route("PUT", pattern, fn) end
function Router:patch(pattern, fn) return self:route("PATCH", pattern, fn) end
function Router:delete(pattern, fn) return self:route("DELETE", pattern, fn) end

-- The methods allowed on a path no handler answered, as "GET, HEAD, POST"; nil when no route
-- matches the path at all.
local function allowed(self, path)
    local set, any = {}, false
    local route = self.literal[path]
    if route then
        any = true
        for m in pairs(route.handlers) do set[m] = true end
    end
    for _, r in ipairs(self.dynamic) do
        if r.matcher(path) then
            any = true
            for m in pairs(r.handlers) do set[m] = true end
        end
    end
    if not any then return nil end
    return allow_of(set)
end

-- Finds the handler for method and path.
-- Returns handler, params, pattern   params a table (read-only and empty for a literal route),
--                                    pattern the route's without its types ("/update/:id": the
--                                    route label of the metrics)
--      or nil, 404                   when no route matches the path
--      or nil, 405, allow            when routes match the path but none for this method.
function Router:match(method, path)
    local route = self.literal[path]
    if route then
        local h = route.handlers[method] or (method == "HEAD" and route.handlers.GET)
        if h then return h, NO_PARAMS, route.label end
    end
    local dynamic = self.dynamic
    for i = 1, #dynamic do
        route = dynamic[i]
        local h = route.handlers[method] or (method == "HEAD" and route.handlers.GET)
        if h then
            local params = route.matcher(path)
            if params then return h, params, route.label end
        end
    end
    local allow = allowed(self, path)
    if allow then return nil, 405, allow end
    return nil, 404
end

return router
