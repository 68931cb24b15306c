/*
 * db_route — where a read goes: the replica (DATABASE_READ_URL) when it is up and within
 * REPLICA_MAX_LAG seconds, checked every second with SHOW REPLICA STATUS (Seconds_Behind_Master on
 * MariaDB, Seconds_Behind_Source on MySQL 8.4; NULL, an error or no answer within 1 s means not
 * usable — a check that does not answer in time also fails, through db_pool_abort, every read
 * waiting or running on the replica, which db_api then runs on the primary; no
 * privilege to read it — MariaDB's REPLICA MONITOR, MySQL's REPLICATION CLIENT — means usable), else
 * the primary. Read-your-writes: after a
 * request of a client wrote, the client carries for READ_YOUR_WRITES_S seconds a signed cookie
 * (`h2lua_ryw`, HMAC-SHA256 with SECRET_KEY) and its reads go to the primary, so that nobody adds an
 * entry and then fails to see it. Everything runs on the worker's thread.
 */
#ifndef H2LUA_DB_ROUTE_H
#define H2LUA_DB_ROUTE_H

#include <h2o.h>

struct worker;
struct db_pool;

#define DB_ROUTE_COOKIE "h2lua_ryw"
/* Room for the Set-Cookie value db_route_wrote writes. */
#define DB_ROUTE_COOKIE_MAX 160

/* Starts the worker's periodic replica check (nothing without a replica). */
void db_route_start(struct worker *w);

/* The pool a read of this request goes to (req NULL: a client that is gone; its cookie is not read). */
struct db_pool *db_route_read_pool(struct worker *w, h2o_req_t *req);

/*
 * Records that the request wrote: returns the Set-Cookie value (written into `cookie`) that its
 * response must carry for read-your-writes, or NULL when none is needed (no replica,
 * READ_YOUR_WRITES 0, or req NULL).
 */
const char *db_route_wrote(struct worker *w, h2o_req_t *req, char cookie[DB_ROUTE_COOKIE_MAX]);

/* A read on the replica failed as unavailable: reads go to the primary until a check passes. */
void db_route_replica_failed(struct worker *w, const char *why);

#endif
