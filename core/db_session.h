/*
 * db_session — what a statement may leave in its connection's session that the server's
 * state-change tracking does not report (db_pool.h: a connection whose session changed is closed
 * when released, never handed to the next request). The server reports, in the OK packet of a
 * statement without a result set, changes to system variables, user variables, temporary tables,
 * prepared statements and the current database; the status flags of every answer say whether a
 * transaction is open. It does not report, and this rule finds from the text instead:
 *   - LOCK TABLES (a statement whose first keyword is LOCK), HANDLER ... OPEN (first keyword
 *     HANDLER), CALL (a procedure's changes may come with result sets, whose end (an EOF packet,
 *     Connector/C does not ask for CLIENT_DEPRECATE_EOF) carries no tracking);
 *   - a user variable named anywhere (@name, @'name', @`name`, not @@system): SELECT @v := 1 and
 *     SELECT ... INTO @v assign one with a result set or without tracking;
 *   - GET_LOCK (a named lock lives until released or the session ends).
 * Quoted strings and comments are skipped by the binder's rule (sql_bind_skip_quoted), so a user
 * variable inside a string does not count. Errs on the side of "changed" (reading @v counts): a
 * reconnect is the whole cost. Not found: what a stored function called from a SELECT does to the
 * session. Pure; unit-tested in spec/c/test_db_session.c.
 */
#ifndef H2LUA_DB_SESSION_H
#define H2LUA_DB_SESSION_H

#include <stddef.h>

/* 1 when running sql[0..len) may change the session in a way the server does not report. Can't fail. */
int db_session_untracked_change(const char *sql, size_t len);

#endif
