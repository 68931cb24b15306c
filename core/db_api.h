/*
 * db_api — the module `h2lua.db` the application requires, backed by the worker's db_pool:
 *
 *   db.query(sql, ...)    runs sql on the primary; `?` placeholders take the arguments (nil/db.null
 *                         -> NULL, booleans -> 1/0, numbers, strings): bound by type to a server-side
 *                         prepared statement (db_conn_execute, DB_STMT_CACHE > 0), or quoted and
 *                         escaped into the text by the core (sql_bind.h: DB_STMT_CACHE=0, and for
 *                         what the server does not prepare); the binder's errors either way, raised
 *                         before anything is sent. The rows are the same either way. A SELECT returns an
 *                         array of rows keyed by column name (integer columns as Lua integers,
 *                         DECIMAL/FLOAT/DOUBLE as numbers, NULL as db.null, the rest as strings);
 *                         other statements return { affected_rows = n, insert_id = n }.
 *   db.read(sql, ...)     the same on the replica when DATABASE_READ_URL is set, else the primary.
 *   db.begin()            -> tx: a connection of the primary held for a transaction;
 *                         tx:query(sql, ...), tx:commit(), tx:rollback(). A tx dropped without
 *                         either is rolled back (its connection is closed).
 *   db.null               the NULL sentinel.
 *   db.escape(v)          the SQL literal the core would bind for v (for tests and logging).
 *   db.ready()            true once migrations have been applied.
 *
 * Every call that talks to the server yields the request's coroutine; other requests run meanwhile.
 * A statement whose connection turns out dead is run again on a fresh one when db_retry.h's rule
 * allows (db.read and SELECTs outside a transaction: always; other statements outside one: only if
 * they never reached the server; inside a transaction: never), so the caller never sees it.
 * Called outside a request (while app.lua loads) they raise an error. Failures raise:
 *   h2lua.http_error(503, message) when the database is unavailable, lost, too slow, or the
 *   queue is full (the application shows a 503 page), and a plain error "db: (code) message" when
 *   the server refused the statement (a bug: 500). Messages never hold the password.
 * db.transaction(fn) is written in Lua on top of begin/commit/rollback (scripts/lib/db.lua).
 */
#ifndef H2LUA_DB_API_H
#define H2LUA_DB_API_H

#include "lua_compat.h"

struct config;
struct worker;

/* Registers package.preload["h2lua.db"]; the preload table is at the top of L's stack. */
void db_api_preload(lua_State *L, const struct config *cfg, struct worker *w);

#endif
