-- db: the server's database module (h2lua.db) plus transactions.
--
--   db.query(sql, ...)   on the primary; `?` placeholders bound by the server
--   db.read(sql, ...)    on the replica when one is configured and healthy, else the primary
--   db.null, db.escape(v), db.ready()
--   db.transaction(fn, ...)  runs fn(tx, ...) inside BEGIN ... COMMIT on one connection of the
--       primary (fn uses tx:query and must not commit or roll back itself). When fn returns, the
--       transaction is committed and fn's results are returned; when fn raises, it is rolled back
--       and the same error value is raised again (HTTP errors stay HTTP errors).
-- Every call yields the request's coroutine; a database that is unavailable raises HTTP 503 and a
-- refused statement raises "db: (code) message" (see core/db_api.h).

local core = require "h2lua.db"

local db = {
    query = core.query,
    read = core.read,
    begin = core.begin,
    null = core.null,
    escape = core.escape,
    ready = core.ready,
}

local pack, unpack, pcall, error = table.pack, table.unpack, pcall, error

function db.transaction(fn, ...)
    local tx = core.begin()
    local r = pack(pcall(fn, tx, ...))
    if not r[1] then
        pcall(tx.rollback, tx) -- a lost connection rolls back by itself; the first error matters
        error(r[2], 0)
    end
    tx:commit()
    return unpack(r, 2, r.n)
end

return db
