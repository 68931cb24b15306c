#include "db_session.h"

#include "sql_bind.h"

static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
}

int db_session_untracked_change(const char *sql, size_t len)
{
    int first = 1;
    size_t i = 0;
    while (i < len) {
        size_t j = sql_bind_skip_quoted(sql, len, i);
        if (j != i) {
            i = j;
            continue;
        }
        char c = sql[i];
        if (c == '@') {
            if (i + 1 < len && sql[i + 1] == '@') {
                /* a system variable: @@name, @@session.name; SET of one is tracked */
                i += 2;
                while (i < len && (is_word_char(sql[i]) || sql[i] == '.'))
                    ++i;
                continue;
            }
            if (i + 1 < len && (is_word_char(sql[i + 1]) || sql[i + 1] == '\'' || sql[i + 1] == '"' || sql[i + 1] == '`'))
                return 1; /* a user variable */
            ++i;
            continue;
        }
        if (!is_word_char(c)) {
            ++i;
            continue;
        }
        size_t start = i;
        while (i < len && is_word_char(sql[i]))
            ++i;
        const char *w = sql + start;
        size_t n = i - start;
        if (first && (sql_bind_word_is(w, n, "LOCK") || sql_bind_word_is(w, n, "HANDLER") || sql_bind_word_is(w, n, "CALL")))
            return 1;
        if (sql_bind_word_is(w, n, "GET_LOCK"))
            return 1;
        first = 0;
    }
    return 0;
}
