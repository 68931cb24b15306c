-- h2lua.test: behaviour specs for an h2lua app, in Lua (busted), against a real h2lua and a real
-- MariaDB that this module starts — see docs/testing.md.
--
--   local test = require "h2lua.test"
--   local client = test.client()      -- empties the database; a client with no cookies
--   local res = client:get("/")
--   res = client:post("/add", { title = "Hi", description = "there" })  -- CSRF token added
--   res.status, res.headers["location"], res.body, res:json(), res:html():find("li.entry")
--
-- The server is started once per process, at the first test.client() (or test.start()), from
-- the current directory (the project's root):
--   H2LUA_BIN       the binary (default build/h2lua)
--   SCRIPTS_DIR, VIEWS_DIR, MIGRATIONS_DIR   the app (default scripts, views, db/migrations)
--   H2LUA_TEST_ENV  more variables for the server, "NAME=value NAME2=value2" (no spaces in values)
--   H2LUA_TEST_LOG  a file the server's log is appended to when it stops (it has exited by then:
--                   a sanitizer build's leak report is in it)
-- MariaDB runs through spec/support/mariadb.sh (H2LUA_TEST_MARIADB to use another copy of it)
-- in a temporary directory, on a free port, with the database `flaskcrud`; h2lua runs with
-- APP_ENV=production, WORKERS=2, its own SECRET_KEY, on another free port. Both stop, and the
-- directory goes, when the Lua state closes (the end of the busted run) or at test.stop().
--
--   test.client()          empties every table but schema_migrations, returns a new client
--   test.reset()           empties the tables only
--   test.query(sql, ...)   runs sql as MariaDB's root on the test database; `?` are replaced by
--                          the arguments quoted (strings, numbers, booleans, nil as NULL; no `?`
--                          inside the SQL's own string literals); returns the rows of a SELECT
--                          (values as strings, NULL as nil), else {}
--   test.url(path)         the server's URL for path
--   test.log()             what the server wrote to stdout and stderr so far
--   test.sanitizer_report()  the sanitizer report lines in the log (ASan/UBSan builds), or nil
--   test.start(), test.stop()
--
-- A client keeps cookies (the session, the read-your-writes cookie) like a browser, and the last
-- CSRF token it saw in a page (`<input type="hidden" name="csrf_token" value=...>`):
--   client:get(path [, headers])
--   client:post(path, form [, opts])   form: a table name -> value, sent url-encoded, with the
--                          CSRF token unless form has one or opts.csrf == false (it GETs
--                          opts.csrf_from or "/" first when it has seen none)
--   client:request(method, path [, opts])  opts.headers, opts.body (a string), opts.form,
--                          opts.json (a table sent as application/json), opts.csrf
--   client:put/patch/delete(path [, opts]), client:follow(res)  (GET the Location of res)
--   client.cookies         name -> value
-- A response: status, headers (lower-case names; repeated ones joined with ", "), set_cookies
-- (the Set-Cookie lines), body, res:json() (lua-cjson; raises on invalid JSON), res:html() (a
-- document of h2lua.test.html: find / first / text).

local cjson = require "cjson"
local html = require "h2lua.test.html"

local test = {}

local concat, format, gsub, sort = table.concat, string.format, string.gsub, table.sort

-- The state of the servers lives in the registry: busted reloads modules for every spec file
-- (insulation), and one server for the whole run is the point.
local REG = debug.getregistry()
local KEY = "h2lua.test.state"

local function sh_quote(s)
    return "'" .. gsub(tostring(s), "'", "'\\''") .. "'"
end

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function write_file(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

-- Runs a shell command; returns its output, or raises with it when it fails.
local function run(cmd)
    local p = assert(io.popen(cmd .. " 2>&1", "r"))
    local out = p:read("a")
    local ok, _, code = p:close()
    if not ok then error(format("h2lua.test: `%s` failed (%s): %s", cmd, tostring(code), out), 0) end
    return out
end

local function sleep(s)
    os.execute("sleep " .. s)
end

-- A TCP port on 127.0.0.1 that nothing listens on now (from /proc/net/tcp).
local function free_port()
    local listening = {}
    for _, f in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
        local text = read_file(f) or ""
        for port in text:gmatch("\n%s*%d+: %x+:(%x+) %x+:%x+ 0A") do listening[tonumber(port, 16)] = true end
    end
    local rnd = io.open("/dev/urandom", "rb")
    for _ = 1, 100 do
        local b = rnd:read(2)
        local port = 20000 + (b:byte(1) * 256 + b:byte(2)) % 40000
        if not listening[port] then
            rnd:close()
            return port
        end
    end
    rnd:close()
    error("h2lua.test: no free port found", 0)
end

local function is_running(pid)
    return pid and os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local SECRET_KEY = "h2lua-test-secret-key-0123456789"

local function mariadb_cli(st)
    return "mariadb --no-defaults --protocol=socket --socket=" .. sh_quote(st.dir .. "/db/mysqld.sock")
        .. " -uroot --batch flaskcrud"
end

local function stop(st)
    if not st or st.stopped then return end
    st.stopped = true
    if is_running(st.pid) then
        os.execute("kill -TERM " .. st.pid)
        for _ = 1, 200 do
            if not is_running(st.pid) then break end
            sleep(0.1)
        end
        if is_running(st.pid) then os.execute("kill -KILL " .. st.pid) end
    end
    local keep = os.getenv("H2LUA_TEST_LOG")
    if keep and st.log then
        local f = io.open(keep, "ab")
        if f then
            f:write(read_file(st.log) or "")
            f:close()
        end
    end
    if st.db_started then
        os.execute(sh_quote(st.mariadb) .. " stop " .. sh_quote(st.dir .. "/db") .. " >/dev/null 2>&1")
    end
    if st.dir then os.execute("rm -rf " .. sh_quote(st.dir)) end
end

local function curl_get_status(url)
    local p = io.popen("curl -s -o /dev/null -w '%{http_code}' --max-time 5 " .. sh_quote(url) .. " 2>/dev/null")
    local out = p:read("a")
    p:close()
    return tonumber(out) or 0
end

function test.start()
    local st = REG[KEY]
    if st and not st.stopped then return st end
    local env = os.getenv
    st = {
        bin = env("H2LUA_BIN") or "build/h2lua",
        mariadb = env("H2LUA_TEST_MARIADB") or "spec/support/mariadb.sh",
    }
    local f = io.open(st.bin, "rb")
    if not f then
        error("h2lua.test: no server binary at " .. st.bin .. " (build it: ops/build, or set H2LUA_BIN)", 0)
    end
    f:close()
    st.dir = (run("mktemp -d \"${TMPDIR:-/tmp}/h2lua-test.XXXXXX\""):gsub("%s+$", ""))
    -- stops both servers when the Lua state closes (busted's end), unless test.stop() did
    st.guard = setmetatable({}, { __gc = function() stop(st) end })
    REG[KEY] = st

    for attempt = 1, 5 do
        st.db_port = free_port()
        local p = io.popen(sh_quote(st.mariadb) .. " start " .. sh_quote(st.dir .. "/db") .. " " .. st.db_port
            .. " 2>&1")
        local out = p:read("a")
        if p:close() then
            st.db_started = true
            break
        end
        if attempt == 5 then error("h2lua.test: MariaDB did not start: " .. out, 0) end
    end

    local vars = {
        "PATH=" .. (env("PATH") or "/usr/bin:/bin"), "HOME=" .. (env("HOME") or "/root"), "LANG=C.UTF-8",
        "HOST=127.0.0.1", "WORKERS=2", "APP_ENV=production", "SECRET_KEY=" .. SECRET_KEY, "LOG_FORMAT=json",
        "SCRIPTS_DIR=" .. (env("SCRIPTS_DIR") or "scripts"), "VIEWS_DIR=" .. (env("VIEWS_DIR") or "views"),
        "MIGRATIONS_DIR=" .. (env("MIGRATIONS_DIR") or "db/migrations"),
        "DATABASE_URL=mysql://h2lua:h2lua-test-pw@127.0.0.1:" .. st.db_port .. "/flaskcrud",
    }
    for _, k in ipairs { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" } do
        if env(k) then vars[#vars + 1] = k .. "=" .. env(k) end
    end
    for kv in (env("H2LUA_TEST_ENV") or ""):gmatch("%S+") do vars[#vars + 1] = kv end
    st.log = st.dir .. "/h2lua.log"
    local last
    for _ = 1, 5 do
        st.port = free_port()
        local quoted = {}
        for i, kv in ipairs(vars) do quoted[i] = sh_quote(kv) end
        quoted[#quoted + 1] = "PORT=" .. st.port
        local cmd = "env -i " .. concat(quoted, " ") .. " setsid " .. sh_quote(st.bin) .. " >"
            .. sh_quote(st.log) .. " 2>&1 </dev/null & echo $!"
        st.pid = tonumber(run(cmd):match("%d+"))
        local deadline = os.time() + 60
        while is_running(st.pid) and os.time() < deadline do
            if curl_get_status("http://127.0.0.1:" .. st.port .. "/readyz") == 200 then return st end
            sleep(0.1)
        end
        last = read_file(st.log) or ""
        if is_running(st.pid) then break end -- not ready within 60 s: no point in another port
    end
    stop(st)
    error("h2lua.test: the server did not get ready; its log:\n" .. (last or ""):sub(-3000), 0)
end

function test.stop()
    stop(REG[KEY])
    REG[KEY] = nil
end

function test.url(path)
    return "http://127.0.0.1:" .. test.start().port .. path
end

function test.log()
    local st = test.start()
    return read_file(st.log) or ""
end

function test.sanitizer_report()
    local log = read_file(test.start().log) or ""
    local lines = {}
    for line in log:gmatch("[^\n]+") do
        if line:find("ERROR: AddressSanitizer", 1, true) or line:find("ERROR: LeakSanitizer", 1, true)
            or line:find("runtime error:", 1, true) then
            lines[#lines + 1] = line
        end
    end
    return #lines > 0 and concat(lines, "\n") or nil
end

-- The SQL literal for v.
local function literal(v)
    local t = type(v)
    if v == nil then return "NULL" end
    if t == "boolean" then return v and "1" or "0" end
    if t == "number" then
        if math.type(v) == "integer" then return tostring(v) end
        return format("%.17g", v)
    end
    return "'" .. gsub(gsub(tostring(v), "\\", "\\\\"), "'", "''") .. "'"
end

function test.query(sql, ...)
    local st = test.start()
    local args, n = { ... }, select("#", ...)
    local i = 0
    sql = gsub(sql, "%?", function()
        i = i + 1
        if i > n then error("h2lua.test.query: more ? than arguments", 3) end
        return literal(args[i])
    end)
    local file = st.dir .. "/query.sql"
    write_file(file, sql)
    local out = run(mariadb_cli(st) .. " < " .. sh_quote(file))
    local rows, header = {}, nil
    for line in out:gmatch("[^\n]+") do
        local cells = {}
        for cell in (line .. "\t"):gmatch("([^\t]*)\t") do
            cells[#cells + 1] = cell
        end
        if not header then
            header = cells
        else
            local row = {}
            for k, name in ipairs(header) do
                local v = cells[k]
                if v ~= "NULL" then
                    row[name] = gsub(v, "\\(.)", { n = "\n", t = "\t", ["0"] = "\0", ["\\"] = "\\" })
                end
            end
            rows[#rows + 1] = row
        end
    end
    return rows
end

function test.reset()
    local tables = test.query("SELECT table_name AS t FROM information_schema.tables"
        .. " WHERE table_schema = 'flaskcrud' AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'")
    if #tables == 0 then return end
    local sql = { "SET FOREIGN_KEY_CHECKS = 0;" }
    for _, r in ipairs(tables) do sql[#sql + 1] = "TRUNCATE TABLE `" .. r.t .. "`;" end
    sql[#sql + 1] = "SET FOREIGN_KEY_CHECKS = 1;"
    test.query(concat(sql, " "))
end

-- Responses ------------------------------------------------------------------------------------

local Response = {}
Response.__index = Response

function Response:json()
    return cjson.decode(self.body)
end

function Response:html()
    if not self.document then self.document = html.parse(self.body) end
    return self.document
end

local function urlencode(s)
    return (gsub(tostring(s), "[^%w%-%._~]", function(c) return format("%%%02X", c:byte()) end))
end

-- A table as application/x-www-form-urlencoded, keys in order (the same body every run).
local function encode_form(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = urlencode(k) .. "=" .. urlencode(t[k]) end
    return concat(parts, "&")
end

-- Clients --------------------------------------------------------------------------------------

local Client = {}
Client.__index = Client

function test.client()
    test.start()
    test.reset()
    return setmetatable({ cookies = {}, csrf_token = nil }, Client)
end

-- Keeps the cookies of Set-Cookie lines (a Max-Age of 0 or less, or an Expires in the past, deletes).
local function keep_cookies(jar, lines)
    for _, line in ipairs(lines) do
        local name, value = line:match("^%s*([^=;%s]+)=([^;]*)")
        if name then
            local attrs = line:lower()
            local max_age = tonumber(attrs:match(";%s*max%-age=(%-?%d+)"))
            local expired = (max_age and max_age <= 0) or attrs:find(";%s*expires=[^;]*1970")
            if expired then jar[name] = nil else jar[name] = value end
        end
    end
end

function Client:request(method, path, opts)
    opts = opts or {}
    local st = test.start()
    local headers = {}
    for k, v in pairs(opts.headers or {}) do headers[k:lower()] = v end
    local body = opts.body
    if opts.json ~= nil then
        body = cjson.encode(opts.json)
        headers["content-type"] = headers["content-type"] or "application/json"
    elseif opts.form then
        local f = {}
        for k, v in pairs(opts.form) do f[k] = v end
        if f.csrf_token == nil and opts.csrf ~= false then
            if not self.csrf_token then self:get(opts.csrf_from or "/") end
            f.csrf_token = self.csrf_token
        end
        body = encode_form(f)
        headers["content-type"] = headers["content-type"] or "application/x-www-form-urlencoded"
    end
    local jar = {}
    for k, v in pairs(self.cookies) do jar[#jar + 1] = k .. "=" .. v end
    sort(jar)
    if #jar > 0 and not headers.cookie then headers.cookie = concat(jar, "; ") end

    local args = { "curl", "-s", "-S", "--max-time", "60", "-X", sh_quote(method),
        "-D", sh_quote(st.dir .. "/res.headers"), "-o", sh_quote(st.dir .. "/res.body"), "-w", "'%{http_code}'" }
    local names = {}
    for k in pairs(headers) do names[#names + 1] = k end
    sort(names)
    for _, k in ipairs(names) do args[#args + 1] = "-H " .. sh_quote(k .. ": " .. headers[k]) end
    if body then
        write_file(st.dir .. "/req.body", body)
        args[#args + 1] = "--data-binary @" .. sh_quote(st.dir .. "/req.body")
    end
    if method == "HEAD" then args[#args + 1] = "--head" end
    args[#args + 1] = sh_quote("http://127.0.0.1:" .. st.port .. path)
    local status = tonumber(run(concat(args, " ")))

    local res = setmetatable({ status = status, headers = {}, set_cookies = {},
        body = read_file(st.dir .. "/res.body") or "" }, Response)
    local raw = read_file(st.dir .. "/res.headers") or ""
    for line in raw:gmatch("[^\r\n]+") do
        local k, v = line:match("^([^:%s]+):%s*(.-)%s*$")
        if k then
            k = k:lower()
            if k == "set-cookie" then res.set_cookies[#res.set_cookies + 1] = v end
            res.headers[k] = res.headers[k] and res.headers[k] .. ", " .. v or v
        end
    end
    os.remove(st.dir .. "/res.body")
    keep_cookies(self.cookies, res.set_cookies)
    local token = res.body:match('<input type="hidden" name="csrf_token" value="([^"]*)"')
    if token then self.csrf_token = token end
    return res
end

function Client:get(path, headers)
    return self:request("GET", path, { headers = headers })
end

function Client:post(path, form, opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    if form ~= nil and o.form == nil and o.json == nil and o.body == nil then o.form = form end
    return self:request("POST", path, o)
end

function Client:put(path, opts) return self:request("PUT", path, opts) end
function Client:patch(path, opts) return self:request("PATCH", path, opts) end
function Client:delete(path, opts) return self:request("DELETE", path, opts) end

function Client:follow(res)
    local location = res.headers.location
    if not location then error("h2lua.test: the response has no Location", 2) end
    location = location:gsub("^https?://[^/]+", "")
    return self:get(location)
end

return test
