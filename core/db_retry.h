/*
 * db_retry — the rule that decides whether a statement that failed on a dead connection is run
 * again, once, on a fresh connection. Pure: no loop, no connection, no allocation; unit-tested in
 * spec/c/test_db_retry.c.
 *
 * The rule (also in docs/database.md, "What a database restart or failover costs a request"):
 *   - Only connection errors are retried (Connector/C's 2xxx client errors, and the server's
 *     "shutdown in progress", "connection killed", "disconnected for inactivity" and "query
 *     interrupted"). An answer of the server (syntax, constraint, deadlock, lock wait, read-only)
 *     is never retried.
 *   - A statement that never reached the server is retried whatever it is: the connection was found
 *     dead before it was sent (the pool's check of the socket at acquire), sending it failed, or
 *     Connector/C reported CR_SERVER_GONE_ERROR (2006). Nothing can have run.
 *   - A statement lost after it was sent (CR_SERVER_LOST, a reset, an EOF mid-result) may have run:
 *     it is retried only when it cannot have changed anything: a read (db.read, or a SELECT/SHOW
 *     outside a transaction), or the START TRANSACTION that opens a transaction.
 *   - A statement inside a transaction (tx:query, COMMIT, ROLLBACK) is never retried: the
 *     transaction fails with 503 and the server rolls it back when the connection goes.
 *   - A retried statement that fails again is not retried a second time.
 */
#ifndef H2LUA_DB_RETRY_H
#define H2LUA_DB_RETRY_H

#include <stddef.h>

/* What a statement is, as far as running it twice is concerned. */
typedef enum db_stmt_kind {
    DB_STMT_WRITE, /* outside a transaction, may change data (anything that is not a read) */
    DB_STMT_READ,  /* outside a transaction, changes nothing: db.read, SELECT, SHOW */
    DB_STMT_BEGIN, /* START TRANSACTION: the first statement of a transaction */
    DB_STMT_IN_TX, /* inside an open transaction, COMMIT and ROLLBACK included */
} db_stmt_kind_t;

/* How far the statement got before the connection failed. */
typedef enum db_stmt_phase {
    DB_PHASE_UNSENT, /* found dead before sending, or sending failed: the server has not seen it */
    DB_PHASE_SENT,   /* sent whole: the server may have run it */
} db_stmt_phase_t;

/* 1 for errors after which the connection cannot be used again (and the server may be gone). */
int db_retry_is_connection_error(unsigned mysql_errno);

/* 1 for errors a later attempt may cure: the request answers 503, not 500. */
int db_retry_is_transient_error(unsigned mysql_errno);

/* 1 when a statement of this kind that failed with mysql_errno in this phase is to be run again. */
int db_retry_allowed(db_stmt_kind_t kind, db_stmt_phase_t phase, unsigned mysql_errno);

/*
 * The kind of a statement run outside a transaction: DB_STMT_READ when its first keyword (after
 * spaces, comments and opening parentheses) is SELECT or SHOW and it has no INTO (a SELECT ... INTO
 * writes) and no FOR UPDATE / LOCK IN SHARE MODE; otherwise DB_STMT_WRITE. Can't fail.
 */
db_stmt_kind_t db_retry_classify(const char *sql, size_t len);

#endif
