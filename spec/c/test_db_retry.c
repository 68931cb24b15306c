/* Unit tests of core/db_retry.c: which failed statements are run again on a fresh connection. */
#include <errmsg.h>
#include <mysqld_error.h>
#include <string.h>

#include "check.h"
#include "db_retry.h"

static db_stmt_kind_t classify(const char *sql)
{
    return db_retry_classify(sql, strlen(sql));
}

static void test_connection_errors(void)
{
    CHECK(db_retry_is_connection_error(CR_SERVER_GONE_ERROR));
    CHECK(db_retry_is_connection_error(CR_SERVER_LOST));
    CHECK(db_retry_is_connection_error(CR_CONN_HOST_ERROR));
    CHECK(db_retry_is_connection_error(ER_SERVER_SHUTDOWN));
    CHECK(db_retry_is_connection_error(ER_CONNECTION_KILLED));
    CHECK(db_retry_is_connection_error(4031)); /* MySQL: disconnected for inactivity */
    CHECK(!db_retry_is_connection_error(ER_DUP_ENTRY));
    CHECK(!db_retry_is_connection_error(ER_PARSE_ERROR));
    CHECK(!db_retry_is_connection_error(ER_LOCK_DEADLOCK));
    CHECK(db_retry_is_transient_error(ER_LOCK_DEADLOCK));
    CHECK(db_retry_is_transient_error(ER_LOCK_WAIT_TIMEOUT));
    CHECK(db_retry_is_transient_error(ER_CON_COUNT_ERROR));
    CHECK(db_retry_is_transient_error(1290));
    CHECK(!db_retry_is_transient_error(ER_DUP_ENTRY));
    CHECK(!db_retry_is_transient_error(ER_BAD_FIELD_ERROR));
}

/* Never sent: every statement outside a transaction runs again, inside one nothing does. */
static void test_unsent(void)
{
    CHECK(db_retry_allowed(DB_STMT_WRITE, DB_PHASE_UNSENT, CR_SERVER_LOST));
    CHECK(db_retry_allowed(DB_STMT_WRITE, DB_PHASE_UNSENT, ER_CONNECTION_KILLED));
    CHECK(db_retry_allowed(DB_STMT_READ, DB_PHASE_UNSENT, CR_SERVER_LOST));
    CHECK(db_retry_allowed(DB_STMT_BEGIN, DB_PHASE_UNSENT, CR_SERVER_GONE_ERROR));
    CHECK(!db_retry_allowed(DB_STMT_IN_TX, DB_PHASE_UNSENT, CR_SERVER_GONE_ERROR));
    CHECK(!db_retry_allowed(DB_STMT_IN_TX, DB_PHASE_UNSENT, CR_SERVER_LOST));
}

/* CR_SERVER_GONE_ERROR says the statement did not get out, whatever the phase. */
static void test_server_gone(void)
{
    CHECK(db_retry_allowed(DB_STMT_WRITE, DB_PHASE_SENT, CR_SERVER_GONE_ERROR));
    CHECK(db_retry_allowed(DB_STMT_READ, DB_PHASE_SENT, CR_SERVER_GONE_ERROR));
    CHECK(!db_retry_allowed(DB_STMT_IN_TX, DB_PHASE_SENT, CR_SERVER_GONE_ERROR));
}

/* Lost after it was sent: only what cannot have changed anything runs again. */
static void test_lost_after_send(void)
{
    CHECK(!db_retry_allowed(DB_STMT_WRITE, DB_PHASE_SENT, CR_SERVER_LOST));
    CHECK(!db_retry_allowed(DB_STMT_WRITE, DB_PHASE_SENT, ER_SERVER_SHUTDOWN));
    CHECK(!db_retry_allowed(DB_STMT_WRITE, DB_PHASE_SENT, ER_CONNECTION_KILLED));
    CHECK(db_retry_allowed(DB_STMT_READ, DB_PHASE_SENT, CR_SERVER_LOST));
    CHECK(db_retry_allowed(DB_STMT_READ, DB_PHASE_SENT, ER_SERVER_SHUTDOWN));
    CHECK(db_retry_allowed(DB_STMT_BEGIN, DB_PHASE_SENT, CR_SERVER_LOST));
    CHECK(!db_retry_allowed(DB_STMT_IN_TX, DB_PHASE_SENT, CR_SERVER_LOST));
}

/* The server's answers are never retried, in any phase or kind. */
static void test_answers(void)
{
    unsigned answers[] = {ER_DUP_ENTRY, ER_PARSE_ERROR, ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, 1290, ER_CON_COUNT_ERROR};
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); ++i) {
        for (int k = DB_STMT_WRITE; k <= DB_STMT_IN_TX; ++k) {
            CHECK(!db_retry_allowed((db_stmt_kind_t)k, DB_PHASE_UNSENT, answers[i]));
            CHECK(!db_retry_allowed((db_stmt_kind_t)k, DB_PHASE_SENT, answers[i]));
        }
    }
}

static void test_classify(void)
{
    CHECK(classify("SELECT 1") == DB_STMT_READ);
    CHECK(classify("  select id, title FROM entry WHERE id = 3") == DB_STMT_READ);
    CHECK(classify("(SELECT 1) UNION (SELECT 2)") == DB_STMT_READ);
    CHECK(classify("/* page */ SELECT * FROM entry") == DB_STMT_READ);
    CHECK(classify("-- a comment\nSELECT 1") == DB_STMT_READ);
    CHECK(classify("# a comment\nSHOW REPLICA STATUS") == DB_STMT_READ);
    CHECK(classify("SELECT 'INTO' AS word, `into` FROM t") == DB_STMT_READ);
    CHECK(classify("SELECT title FROM entry -- FOR UPDATE\n") == DB_STMT_READ);
    /* the binder's comment rule (sql_bind_skip_quoted): "--" without a space after it is code,
     * an executable comment is code */
    CHECK(classify("SELECT 1--1 FOR UPDATE") == DB_STMT_WRITE);
    CHECK(classify("SELECT 1 /*! FOR UPDATE */") == DB_STMT_WRITE);
    CHECK(classify("SELECT 1 /* FOR UPDATE */") == DB_STMT_READ);
    CHECK(classify("SELECT updated_for FROM t") == DB_STMT_READ);
    CHECK(classify("SELECT * FROM entry WHERE id = 1 FOR UPDATE") == DB_STMT_WRITE);
    CHECK(classify("SELECT * FROM entry LOCK IN SHARE MODE") == DB_STMT_WRITE);
    CHECK(classify("SELECT 1 INTO @x") == DB_STMT_WRITE);
    CHECK(classify("SELECT NEXTVAL(s)") == DB_STMT_WRITE);
    CHECK(classify("INSERT INTO entry (title) VALUES ('SELECT')") == DB_STMT_WRITE);
    CHECK(classify("UPDATE entry SET status = 1") == DB_STMT_WRITE);
    CHECK(classify("DELETE FROM entry") == DB_STMT_WRITE);
    CHECK(classify("SELECTED") == DB_STMT_WRITE);
    CHECK(classify("") == DB_STMT_WRITE);
    CHECK(classify("/* unfinished") == DB_STMT_WRITE);
    CHECK(classify("SELECT 'unfinished") == DB_STMT_READ);
}

int main(void)
{
    test_connection_errors();
    test_unsent();
    test_server_gone();
    test_lost_after_send();
    test_answers();
    test_classify();
    return CHECK_DONE();
}
