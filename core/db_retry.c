#include "db_retry.h"

#include <errmsg.h>
#include <mysqld_error.h>

#include "sql_bind.h"

#define ER_CLIENT_INTERACTION_TIMEOUT_MYSQL 4031 /* MySQL 8.0.24+: "disconnected by the server because of inactivity" */

int db_retry_is_connection_error(unsigned err)
{
    return (err >= CR_MIN_ERROR && err <= CR_MAX_ERROR) || err == ER_SERVER_SHUTDOWN || err == ER_CONNECTION_KILLED ||
           err == ER_QUERY_INTERRUPTED || err == ER_CLIENT_INTERACTION_TIMEOUT_MYSQL;
}

int db_retry_is_transient_error(unsigned err)
{
    return db_retry_is_connection_error(err) || err == ER_LOCK_DEADLOCK || err == ER_LOCK_WAIT_TIMEOUT ||
           err == ER_CON_COUNT_ERROR || err == ER_TOO_MANY_USER_CONNECTIONS || err == 1290 /* --read-only */;
}

int db_retry_allowed(db_stmt_kind_t kind, db_stmt_phase_t phase, unsigned err)
{
    if (!db_retry_is_connection_error(err) || kind == DB_STMT_IN_TX)
        return 0;
    if (phase == DB_PHASE_UNSENT || err == CR_SERVER_GONE_ERROR)
        return 1;
    return kind == DB_STMT_READ || kind == DB_STMT_BEGIN;
}

/* ---- classifying a statement ---- */

static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
}

/* Skips a quoted string, a comment (sql_bind's rule), a space or "(" at sql[i]; returns the index
 * after it, or i. */
static size_t skip_noise(const char *sql, size_t len, size_t i)
{
    size_t j = sql_bind_skip_quoted(sql, len, i);
    if (j != i)
        return j;
    char c = sql[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(')
        return i + 1;
    return i;
}

db_stmt_kind_t db_retry_classify(const char *sql, size_t len)
{
    size_t i = 0, j;
    /* the first keyword */
    while (i < len && (j = skip_noise(sql, len, i)) != i)
        i = j;
    size_t start = i;
    while (i < len && is_word_char(sql[i]))
        ++i;
    if (!sql_bind_word_is(sql + start, i - start, "SELECT") && !sql_bind_word_is(sql + start, i - start, "SHOW"))
        return DB_STMT_WRITE;
    /* the words of the rest that make a SELECT write or lock */
    int after_for = 0;
    while (i < len) {
        if ((j = skip_noise(sql, len, i)) != i) {
            i = j;
            continue;
        }
        if (!is_word_char(sql[i])) {
            after_for = 0;
            ++i;
            continue;
        }
        start = i;
        while (i < len && is_word_char(sql[i]))
            ++i;
        const char *w = sql + start;
        size_t n = i - start;
        if (sql_bind_word_is(w, n, "INTO") || sql_bind_word_is(w, n, "LOCK") || sql_bind_word_is(w, n, "NEXTVAL") ||
            sql_bind_word_is(w, n, "SETVAL") || (after_for && sql_bind_word_is(w, n, "UPDATE")))
            return DB_STMT_WRITE;
        after_for = sql_bind_word_is(w, n, "FOR");
    }
    return DB_STMT_READ;
}
