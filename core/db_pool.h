/*
 * db_pool — a worker's pool of MariaDB/MySQL connections, driven by MariaDB Connector/C's
 * non-blocking API (mysql_*_start / mysql_*_cont) inside the worker's libh2o loop. Never blocks:
 * host names are resolved by libh2o's resolver threads (again at every connect, so that an RDS
 * failover that moves the address behind the name is followed), sockets are watched by the loop.
 *
 * Connections are opened lazily up to DB_POOL_SIZE. A caller that finds none idle waits in a
 * FIFO bounded by DB_QUEUE_MAX; past that, acquiring fails at once. Each wait and each query is
 * bounded by DB_TIMEOUT. Sessions use utf8mb4, UTC and a strict sql_mode.
 *
 * A freed slot is refilled (one rule, for every way a connection goes away: released broken or
 * with a changed session, killed, found stale, failed its check): when waiters outnumber the
 * connections being opened for them, a new connection is opened for them at once, so that a
 * waiter never waits out DB_TIMEOUT behind a connection that is gone (unless the server is down:
 * then the probe below reconnects).
 *
 * Session state never passes from one holder to the next. The init command turns on the server's
 * state-change tracking (session_track_state_change=ON, MariaDB 10.2+ and MySQL 5.7+): a
 * statement without a result set that changes the session (a system variable such as sql_mode or
 * time_zone, a user variable, a temporary table, a prepared statement, the current database) sets
 * SERVER_SESSION_STATE_CHANGED in its answer. What the server does not report (LOCK TABLES, a
 * user variable assigned by a SELECT, GET_LOCK...) is found in the statement's text
 * (db_session.h). A connection released after such a statement, or left inside a transaction
 * (SERVER_STATUS_IN_TRANS: a BEGIN or autocommit=0 outside db.begin) or with NO_BACKSLASH_ESCAPES
 * on, is closed instead of reused (its slot refilled by the rule above): the next holder gets a
 * fresh session with the settings above. No statement is refused and no reset runs on the common
 * path (an unchanged session costs nothing); a handler that changes its session pays one
 * reconnect. COM_RESET_CONNECTION on every release was not chosen: two more round trips (the
 * reset, then the init command) on every statement.
 *
 * Prepared statements (db_conn_execute, DB_STMT_CACHE > 0): each connection keeps a bounded cache
 * of server-side statements keyed by their text, least recently used closed first with the
 * non-blocking close. The pool's own COM_STMT_PREPARE is not a change of the session (the server's
 * tracking reports SQL PREPARE, not the protocol's): a connection keeps its cache from holder to
 * holder, and loses it with its session (closed, or replaced in place for a retry).
 *
 * Dead connections and restarts (the rule is db_retry.h's; docs/database.md says it for operators):
 *   - An idle connection's socket is watched: when the server closes it (restart, wait_timeout,
 *     KILL), it is closed at once. Acquiring checks the socket once more (a non-blocking peek).
 *   - When a connection is found dead, every connection that has not proved alive since is pinged
 *     (non-blocking) before its next use: a restart costs one discovery per pool, not one failed
 *     request per connection.
 *   - A statement whose connection fails is run again, once, on a fresh connection opened in place
 *     (the holder keeps its db_conn_t) when db_retry_allowed() says so; otherwise it fails with
 *     DB_EUNAVAILABLE and the connection is closed when released.
 *   - When a connect fails the pool is down: acquiring fails at once (503, no pile-up) while a
 *     probe connects every 10-40 ms (jittered). The first connect that succeeds, in this worker or
 *     in any other worker of the process, ends it: that worker's waiters are served at once and the
 *     other workers try again on their next acquire.
 *
 * Owned by one worker thread; no function may be called from another thread (the only shared
 * state, a count of successful connects per database, is atomic). Callbacks are never called from
 * inside the call that starts the operation: a call either fails at once (returning a negative
 * code, callback not called) or calls its callback exactly once, later, from the loop.
 */
#ifndef H2LUA_DB_POOL_H
#define H2LUA_DB_POOL_H

#include <h2o.h>
#include <mysql.h>
#include <stdint.h>

#include "db_retry.h"

struct config;
struct config_db;

typedef struct db_pool db_pool_t;
typedef struct db_conn db_conn_t;

/* Error codes; the message that comes with them is for people and never holds the password. */
enum {
    DB_EUNAVAILABLE = -1, /* no connection can be had or it was lost or timed out: answer 503 */
    DB_EQUERY = -2,       /* the server refused the statement (syntax, constraint...): a bug, answer 500 */
    DB_ECLOSED = -3,      /* db_pool_close ran: free what the callback's data holds, use nothing else */
    DB_ETEXT = -4,        /* db_conn_execute: the server does not prepare this statement: send it as text */
};

/* The outcome of a statement. `res` is owned by the callee and freed after the callback returns. */
typedef struct db_result {
    MYSQL_RES *res;         /* the rows of a text statement, or NULL */
    MYSQL_STMT *stmt;       /* the rows of a prepared one (stored: mysql_stmt_fetch sends nothing), or NULL;
                             * readable until the connection is used again or released */
    uint64_t affected_rows; /* for statements without a result set */
    uint64_t insert_id;
} db_result_t;

/* Called once an acquire is granted (conn != NULL, err == 0) or failed (conn == NULL, err < 0). */
typedef void (*db_acquire_cb)(void *data, db_conn_t *conn, int err, const char *msg);
/* Called once a statement ended: err == 0 with result, or err < 0 with a message. */
typedef void (*db_query_cb)(void *data, int err, const char *msg, db_result_t *result);

/*
 * Creates the pool of a worker for one database (`name` is "primary" or "replica", for logs): it
 * runs on ctx's loop, uses its resolver, and logs as worker `worker_id`. cfg and db must outlive it.
 */
db_pool_t *db_pool_create(h2o_context_t *ctx, int worker_id, const struct config *cfg, const struct config_db *db,
                          const char *name);

/*
 * Closes the pool at the end of its worker, whatever state its connections are in (the shutdown
 * contract). In order: every waiting acquirer's callback is called with DB_ECLOSED; every
 * connection is closed — idle, being checked, resolving, connecting (the database a black hole),
 * leased, or running a statement, whose callback is then called with DB_ECLOSED after its
 * connection is gone; each one's timeouts and deferred steps are unlinked and its sockets closed;
 * only then are the pool's timeouts disposed of and the pool freed. A DB_ECLOSED callback frees
 * what its data holds and touches nothing else: no call on the pool or a connection, no Lua (its
 * request was abandoned by the drain timeout; nothing resumes it). db_pool_run's callbacks are not
 * called (the run is freed). Connections held without a statement running (a transaction of an
 * abandoned request) are closed too: the holder must never use its db_conn_t again. So the Lua
 * state, whose transactions release connections when collected, is closed before the pools, or
 * never (when the drain abandoned requests). Runs no callback of the loop; can't fail.
 */
void db_pool_close(db_pool_t *pool);

/*
 * Asks for a connection for exclusive use. Returns 1 with *conn set when one was idle, 0 when cb
 * will be called later, or a negative code with msg set (a static or pool-owned string, valid until
 * the next call on the pool) when the pool is full and its queue too, or the server is down.
 */
int db_pool_acquire(db_pool_t *pool, db_conn_t **conn, db_acquire_cb cb, void *data, const char **msg);

/*
 * Runs one statement (the text is copied) on an acquired connection. `kind` says whether it may run
 * twice (db_retry.h): on a connection error it is run again, once, on a fresh connection when the
 * rule allows, transparently to the caller. Returns 0 and calls cb later, or a negative code with
 * msg when the connection is already broken.
 */
int db_conn_query(db_conn_t *conn, const char *sql, size_t len, db_stmt_kind_t kind, db_query_cb cb, void *data,
                  const char **msg);

/*
 * Runs sql (with `?` placeholders, copied) as a server-side prepared statement with the values of
 * params[0..nparams) (the caller's: valid until cb is called). Each connection keeps up to
 * DB_STMT_CACHE statements keyed by their text, the least recently used closed first (without
 * blocking); the cache is emptied when the session is closed, also for a retry, which prepares
 * again on the fresh connection. The rows come back as result->stmt. A statement the server
 * refuses to prepare (not preparable, or an error: the text protocol's answer is the one to give),
 * or whose placeholders it counts otherwise than nparams, is remembered as such in the cache and
 * fails with DB_ETEXT, now and next time: the caller then sends it as text with db_conn_query on the
 * same connection. Otherwise as db_conn_query. Called only when DB_STMT_CACHE > 0.
 */
int db_conn_execute(db_conn_t *conn, const char *sql, size_t len, MYSQL_BIND *params, unsigned nparams, db_stmt_kind_t kind,
                    db_query_cb cb, void *data, const char **msg);

/*
 * Gives the connection back. A broken connection, or one released while a transaction is open
 * (in_transaction set by the caller), is closed instead of reused.
 */
void db_conn_release(db_conn_t *conn);

/*
 * The server stopped answering (a hung host, a black-holed port): every waiting acquire and every
 * running statement of the pool fails now with DB_EUNAVAILABLE and "database unavailable (<name>):
 * <why>" — callbacks called from inside this call — instead of after DB_TIMEOUT. Their connections
 * are closed when released; others released from then on are pinged before they are idle again.
 * The pool stays usable.
 */
void db_pool_abort(db_pool_t *pool, const char *why);

/* Marks that the holder opened (1) or ended (0) a transaction on conn. */
void db_conn_set_transaction(db_conn_t *conn, int open);

/* The pool a connection belongs to. */
db_pool_t *db_conn_pool(db_conn_t *conn);

/*
 * Runs one read (DB_STMT_READ) on a pooled connection for the core's own checks (/readyz's ping,
 * the replica's lag). Returns 0 and calls cb once, later — unless db_pool_run_cancel(*handle) was
 * called first or the pool was closed — or a negative code with msg when the pool cannot even try.
 */
typedef struct db_run db_run_t;
int db_pool_run(db_pool_t *pool, const char *sql, void *data, db_query_cb cb, db_run_t **handle, const char **msg);
void db_pool_run_cancel(db_run_t *handle);

/* Figures for /metrics and logs. */
typedef struct db_pool_stats {
    unsigned open, in_use, waiting;
    uint64_t errors, queries;
    uint64_t retries; /* statements run again on a fresh connection */
    uint64_t stale;   /* connections found dead before a statement was sent on them */
} db_pool_stats_t;
void db_pool_get_stats(db_pool_t *pool, db_pool_stats_t *stats);

#endif
