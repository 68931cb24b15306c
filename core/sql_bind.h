/*
 * sql_bind — the injection boundary: turns `sql` with `?` placeholders and Lua values into one
 * SQL text for MariaDB/MySQL, every value a literal the core wrote (the application never
 * concatenates). Values: nil and db.null -> NULL, booleans -> 1/0, integers in decimal, finite
 * floats with 17 significant digits, strings quoted with ' (a quote doubled; NUL, LF, CR, \ and ^Z
 * escaped with a backslash as the server reads them with NO_BACKSLASH_ESCAPES off, the pool's
 * sql_mode). A value cannot leave its quotes even with NO_BACKSLASH_ESCAPES on (a handler's SET
 * inside its transaction): a quote is "''" in both modes, only the backslash escapes then read
 * wrong (two characters). A `?` inside a quoted string ('...', "...", `...`) or a comment (--
 * followed by a space or a control character, #, / * * / but not the executable / * ! * /) is
 * text, not a placeholder (sql_bind_skip_quoted).
 * Bytes are passed as they are (no UTF-8 check: the connection's character set is utf8mb4 and the
 * server refuses what does not decode). Touches no event loop; safe on any thread with its own
 * lua_State.
 */
#ifndef H2LUA_SQL_BIND_H
#define H2LUA_SQL_BIND_H

#include "lua_compat.h"
#include <stddef.h>

/* The address that stands for SQL NULL in Lua (db.null is a light userdata pointing here). */
extern const char sql_bind_null;

/* Pushes db.null. */
#define SQL_BIND_PUSH_NULL(L) lua_pushlightuserdata((L), (void *)&sql_bind_null)

/*
 * Appends to b the SQL literal of the Lua value at stack index idx (absolute, as b may sit on the
 * stack). Returns NULL, or a message naming what cannot be bound (a table, a function, a light
 * userdata other than db.null, a number that is not finite); then b holds nothing of the value.
 */
const char *sql_bind_literal(lua_State *L, luaL_Buffer *b, int idx);

/*
 * NULL when the Lua value at stack index idx can be bound, else the message sql_bind_literal gives
 * for it. Can't fail.
 */
const char *sql_bind_check_value(lua_State *L, int idx);

/* How many `?` placeholders sql[0..len) holds outside quotes and comments (sql_bind's rule). */
size_t sql_bind_count(const char *sql, size_t len);

/*
 * Appends to b the SQL text of sql[0..len) with the i-th `?` outside quotes and comments replaced
 * by the literal of the Lua value at absolute stack index first + i (i from 0). Returns NULL, or a
 * message: "more ? placeholders than arguments", "more arguments than ? placeholders", or the
 * message of sql_bind_literal; b then holds a partial text the caller discards.
 */
const char *sql_bind(lua_State *L, luaL_Buffer *b, const char *sql, size_t len, int first, int nargs);

/*
 * The one rule for what in SQL text is not code, MariaDB's (sql_lex.cc): when sql[i] starts a
 * quoted string ('…', "…", `…`, backslash escapes inside the first two), a "#" comment or a "--"
 * comment — "--" followed by a space, a control character or the end of the text; "1--1" is code —
 * (both to the end of the line), or a slash-star comment, returns the index just after it (len
 * when it is not closed); else returns i. An executable comment ("/" "*!" or "/" "*M!") is code:
 * the server runs its text, so the binder binds its placeholders and db_retry reads its keywords.
 * The binder looks for placeholders and db_retry for keywords only outside what this skips.
 * Can't fail.
 */
size_t sql_bind_skip_quoted(const char *sql, size_t len, size_t i);

/* 1 when the n bytes at w are the keyword kw (ASCII, any case): how SQL's keywords are read. */
int sql_bind_word_is(const char *w, size_t n, const char *kw);

#endif
