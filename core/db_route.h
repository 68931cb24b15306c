/*
 * db_route — where a read goes: the replica (DATABASE_READ_URL) when it is up and within
 * REPLICA_MAX_LAG seconds, checked every second with SHOW REPLICA STATUS (Seconds_Behind_Master on
 * MariaDB, Seconds_Behind_Source on MySQL 8.4; NULL, an error or no answer means not usable; no
 * privilege to read it — MariaDB's REPLICA MONITOR, MySQL's REPLICATION CLIENT — means usable), else
 * the primary. Read-your-writes: after a
 * request of a client wrote, the client carries for READ_YOUR_WRITES_S seconds a signed cookie
 * (`h2lua_ryw`, HMAC-SHA256 with SECRET_KEY) and its reads go to the primary, so that nobody adds an
 * entry and then fails to see it. Everything runs on the worker's thread.
 */
#ifndef H2LUA_DB_ROUTE_H
#define H2LUA_DB_ROUTE_H

struct worker;
struct db_pool;
struct lua_req;

#define DB_ROUTE_COOKIE "h2lua_ryw"

/* Starts the worker's periodic replica check (nothing without a replica). */
void db_route_start(struct worker *w);

/* The pool a read of this request goes to. */
struct db_pool *db_route_read_pool(struct worker *w, struct lua_req *lr);

/* Records that the request wrote: its response sets the read-your-writes cookie (with a replica). */
void db_route_wrote(struct worker *w, struct lua_req *lr);

/* A read on the replica failed as unavailable: reads go to the primary until a check passes. */
void db_route_replica_failed(struct worker *w, const char *why);

#endif
