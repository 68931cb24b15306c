/* Unit tests of core/db_session.c: the statements whose change of the session the server does not
 * report (LOCK TABLES, user variables, GET_LOCK, CALL, HANDLER), and the ones it does or that change
 * nothing. */
#include <string.h>

#include "check.h"
#include "db_session.h"

static int changes(const char *sql)
{
    return db_session_untracked_change(sql, strlen(sql));
}

static void test_untracked(void)
{
    CHECK(changes("LOCK TABLES entry READ"));
    CHECK(changes("  lock table entry write"));
    CHECK(changes("/* c */ LOCK TABLES entry READ"));
    CHECK(changes("HANDLER entry OPEN"));
    CHECK(changes("CALL p()"));
    CHECK(changes("SELECT @v := 1"));
    CHECK(changes("SELECT id INTO @v FROM entry LIMIT 1"));
    CHECK(changes("SELECT @'v' := 1"));
    CHECK(changes("SELECT @`v` := 1"));
    CHECK(changes("SELECT GET_LOCK('x', 0)"));
    CHECK(changes("select get_lock('x', 0)"));
    /* "--" followed by a quote is code (the binder's rule): the @v after it counts */
    CHECK(changes("SELECT 1--'\n' , @v := 2"));
}

static void test_tracked_or_unchanged(void)
{
    CHECK(!changes("SELECT * FROM entry WHERE id = 1"));
    CHECK(!changes("INSERT INTO entry (title) VALUES ('a@b.example')"));
    CHECK(!changes("SELECT 'LOCK TABLES', \"@v\", `@v` FROM t"));
    CHECK(!changes("SELECT 1 -- @v := 1\n"));
    CHECK(!changes("SELECT 1 # GET_LOCK('x', 0)\n"));
    CHECK(!changes("SELECT @@session.sql_mode, @@time_zone"));
    CHECK(!changes("SET sql_mode = 'NO_BACKSLASH_ESCAPES'")); /* tracked by the server */
    CHECK(!changes("UNLOCK TABLES"));
    CHECK(!changes("SELECT title FROM entry FOR UPDATE")); /* its transaction shows in the status */
    CHECK(!changes("SELECT lock_count FROM t"));
    CHECK(!changes(""));
}

int main(void)
{
    test_untracked();
    test_tracked_or_unchanged();
    return CHECK_DONE();
}
