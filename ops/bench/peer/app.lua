-- The OpenResty-style peer of the benchmark (ngx_lua on LuaJIT): GET / renders the same entries
-- page as h2lua's (layout, the first 50 rows, the add form) by hand-concatenated Lua, POST /add
-- inserts and redirects, as one would write them on OpenResty — without sessions, CSRF tokens,
-- flash messages or a template engine. The database's port is $PEER_DB_PORT (nginx's `env`
-- directive passes it); its name is the argument of index / add.

-- luacheck: globals ngx
local mysql = require "mysql"

local app = {}

local gsub, concat, tonumber = string.gsub, table.concat, tonumber
local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function esc(s) return (gsub(s, "[&<>\"']", ESC)) end

local dbs = {}
local function db_opts(name)
    local o = dbs[name]
    if not o then
        o = { host = "127.0.0.1", port = tonumber(os.getenv("PEER_DB_PORT")), user = "h2lua",
              password = "h2lua-test-pw", database = name }
        dbs[name] = o
    end
    return o
end

-- The same markup as h2lua's layout.etlua and index.etlua around the rows (without the flash
-- messages, the CSRF fields and the pager's logic).
local HEAD = [[<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Entries</title>
  <link rel="stylesheet" href="/static/bootstrap/css/bootstrap.min.css">
  <link rel="stylesheet" href="/static/app.css">
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
  <nav class="navbar navbar-expand navbar-dark bg-dark mb-4">
    <div class="container">
      <a class="navbar-brand" href="/">h2lua</a>
      <ul class="navbar-nav">
        <li class="nav-item"><a class="nav-link" href="/">Entries</a></li>
      </ul>
    </div>
  </nav>
  <main class="container">
<div class="d-flex align-items-baseline justify-content-between mb-3">
  <h1 class="h3 mb-0">Entries</h1>
</div>
<div class="row g-4">
  <div class="col-md-8">
    <div class="table-responsive">
      <table class="table table-striped table-hover align-middle" id="entries">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Title</th>
            <th scope="col">Description</th>
            <th scope="col">Status</th>
            <th scope="col" class="text-end">Actions</th>
          </tr>
        </thead>
        <tbody>
]]
local TAIL = [[
        </tbody>
      </table>
    </div>
  </div>
  <div class="col-md-4">
    <div class="card">
      <div class="card-body">
        <h2 class="h5 card-title">Add an entry</h2>
        <form method="post" action="/add" id="add-form">
          <div class="mb-3">
            <label class="form-label" for="title">Title</label>
            <input class="form-control" id="title" name="title" type="text" value="" required>
            <div class="form-text">Up to 64 characters.</div>
          </div>
          <div class="mb-3">
            <label class="form-label" for="description">Description</label>
            <input class="form-control" id="description" name="description" type="text" value="" required>
            <div class="form-text">Up to 120 characters.</div>
          </div>
          <button class="btn btn-primary" type="submit">Add</button>
        </form>
      </div>
    </div>
  </div>
</div>
  </main>
</body>
</html>
]]

local function fail(err)
    ngx.log(ngx.ERR, err)
    return ngx.exit(503)
end

function app.index(database)
    local db, err = mysql.connect(db_opts(database))
    if not db then return fail(err) end
    local rows
    rows, err = db:query("SELECT id, title, description, status FROM entry ORDER BY id LIMIT 51")
    if not rows then return fail(err) end
    db:keepalive()
    local out, n = { HEAD }, 1
    for i = 1, math.min(#rows, 50) do
        local r = rows[i]
        local id = r.id
        local done = r.status == "1"
        n = n + 1
        out[n] = '<tr id="entry-' .. id .. '"><td class="entry-id">' .. id .. '</td><td class="entry-title text-break">'
            .. esc(r.title) .. '</td><td class="entry-description text-break">' .. esc(r.description)
            .. '</td><td class="entry-status">'
            .. (done and '<span class="badge text-bg-success">Done</span>'
                or '<span class="badge text-bg-secondary">Pending</span>')
            .. '</td><td class="entry-actions text-end text-nowrap"><form method="post" action="/turn/' .. id
            .. '"><a class="btn btn-sm btn-outline-primary" href="/update/' .. id .. '">Edit</a> '
            .. '<button class="btn btn-sm btn-outline-secondary">' .. (done and "Mark pending" or "Mark done")
            .. '</button> <button class="btn btn-sm btn-outline-danger" formaction="/delete/' .. id
            .. '">Delete</button></form></td></tr>\n'
    end
    n = n + 1
    out[n] = TAIL
    ngx.header.content_type = "text/html; charset=utf-8"
    ngx.print(concat(out))
end

function app.add(database)
    ngx.req.read_body()
    local args = ngx.req.get_post_args(16)
    local title, description = args.title, args.description
    if type(title) ~= "string" or type(description) ~= "string" or title == "" or #title > 256
        or description == "" or #description > 480 then
        return ngx.exit(422)
    end
    local db, err = mysql.connect(db_opts(database))
    if not db then return fail(err) end
    local res
    res, err = db:query("INSERT INTO entry (title, description, status) VALUES ("
        .. ngx.quote_sql_str(title) .. ", " .. ngx.quote_sql_str(description) .. ", 0)")
    if not res then return fail(err) end
    db:keepalive()
    return ngx.redirect("/", 303)
end

return app
