/* Unit tests of core/sql_bind.c, the SQL binder behind db.query/db.read/tx:query and db.escape:
 * placeholders, quotes, backslashes, NUL, invalid UTF-8, numbers, booleans, db.null, and
 * placeholder/argument count mismatches. */
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "sql_bind.h"

static lua_State *L;
static char out[1024];
static size_t outlen;

/* Ends the buffer b: its text goes to out, the stack is emptied; returns err. */
static const char *take(luaL_Buffer *b, const char *err)
{
    luaL_pushresult(b);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    outlen = n < sizeof(out) - 1 ? n : sizeof(out) - 1;
    memcpy(out, s, outlen);
    out[outlen] = '\0';
    lua_settop(L, 0);
    return err;
}

/* Binds sql with the values at stack indexes 1..top; returns the error or NULL, the text in out. */
static const char *bind_len(const char *sql, size_t len)
{
    int nargs = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    return take(&b, sql_bind(L, &b, sql, len, 1, nargs));
}

static const char *bind(const char *sql)
{
    return bind_len(sql, strlen(sql));
}

/* The literal of the one value on the stack, through sql_bind_literal (db.escape). */
static const char *literal(void)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    return take(&b, sql_bind_literal(L, &b, 1));
}

static void test_placeholders(void)
{
    lua_pushinteger(L, 1);
    lua_pushstring(L, "x");
    CHECK(bind("SELECT * FROM entry WHERE id = ? AND title = ?") == NULL);
    CHECK(strcmp(out, "SELECT * FROM entry WHERE id = 1 AND title = 'x'") == 0);
    CHECK(bind("SELECT 1") == NULL && strcmp(out, "SELECT 1") == 0);
    CHECK(bind("") == NULL && outlen == 0);
    lua_pushinteger(L, 7);
    CHECK(bind("?") == NULL && strcmp(out, "7") == 0);
}

static void test_placeholders_in_quotes_and_comments(void)
{
    /* a ? in a string, an identifier or a comment is text */
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT '?', \"?\", `?` FROM t WHERE a = ?") == NULL);
    CHECK(strcmp(out, "SELECT '?', \"?\", `?` FROM t WHERE a = 5") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT ? -- what?\n") == NULL && strcmp(out, "SELECT 5 -- what?\n") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT ? # what?") == NULL && strcmp(out, "SELECT 5 # what?") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT /* ? */ ?") == NULL && strcmp(out, "SELECT /* ? */ 5") == 0);
    /* an escaped quote does not end the string; a backquote has no escape */
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT 'it\\'s ?', ?") == NULL && strcmp(out, "SELECT 'it\\'s ?', 5") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT `a\\` , ?") == NULL && strcmp(out, "SELECT `a\\` , 5") == 0);
    /* an unterminated string or comment runs to the end: its ? are text */
    CHECK(bind("SELECT 'open ?") == NULL && strcmp(out, "SELECT 'open ?") == 0);
    CHECK(bind("SELECT /* open ?") == NULL && strcmp(out, "SELECT /* open ?") == 0);
    /* a single - is not a comment */
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT 1 - ?") == NULL && strcmp(out, "SELECT 1 - 5") == 0);
}

/* MariaDB's comment rule (sql_lex.cc), which the binder must share: what the server runs as code
 * is where placeholders are, and nothing else. */
static void test_comments_as_mariadb_reads_them(void)
{
    const char *err;
    /* the repro: "--" then a quote is minus minus a string, so the ? is inside that string; read as
     * a comment, the value was bound into code and the server ran SLEEP(1) */
    static const char repro[] = "SELECT 1--'\n, ? AS y -- '";
    lua_pushstring(L, "+ SLEEP(1) +");
    CHECK((err = bind(repro)) != NULL && strcmp(err, "more arguments than ? placeholders") == 0);
    CHECK(bind(repro) == NULL && strcmp(out, repro) == 0);
    /* "--" followed by a space, a tab, a newline, a control character or the end is a comment */
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT ? --\t?") == NULL && strcmp(out, "SELECT 5 --\t?") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT ? --\n") == NULL && strcmp(out, "SELECT 5 --\n") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT ? --\x01?") == NULL && strcmp(out, "SELECT 5 --\x01?") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT ? --") == NULL && strcmp(out, "SELECT 5 --") == 0);
    /* "--" followed by anything else is code: its ? are placeholders */
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT 1--?") == NULL && strcmp(out, "SELECT 1--5") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT 1 --x, ?") == NULL && strcmp(out, "SELECT 1 --x, 5") == 0);
    /* a # comment ends at the newline: the ? on the next line is a placeholder */
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT # ?\n?") == NULL && strcmp(out, "SELECT # ?\n5") == 0);
    /* executable comments are code: their ? are placeholders, their strings strings */
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT /*! ? */ 1") == NULL && strcmp(out, "SELECT /*! 5 */ 1") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT /*!50001 ? */ 1") == NULL && strcmp(out, "SELECT /*!50001 5 */ 1") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT /*M! ? */ 1") == NULL && strcmp(out, "SELECT /*M! 5 */ 1") == 0);
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT /*! '?' */ ?") == NULL && strcmp(out, "SELECT /*! '?' */ 5") == 0);
    /* a plain block comment (and "/ *M" without "!") is a comment */
    lua_pushinteger(L, 5);
    CHECK(bind("SELECT /*M ? */ ?") == NULL && strcmp(out, "SELECT /*M ? */ 5") == 0);
}

static void test_quotes_and_backslashes(void)
{
    lua_pushstring(L, "O'Brien \"quoted\" back\\slash");
    CHECK(literal() == NULL);
    CHECK(strcmp(out, "'O''Brien \"quoted\" back\\\\slash'") == 0);
    /* the classic injection stays one literal */
    lua_pushstring(L, "x' OR '1'='1");
    CHECK(bind("SELECT * FROM entry WHERE title = ?") == NULL);
    CHECK(strcmp(out, "SELECT * FROM entry WHERE title = 'x'' OR ''1''=''1'") == 0);
    /* a quote is doubled, never backslash-escaped: read with NO_BACKSLASH_ESCAPES on (a handler's
     * SET inside its transaction), "\\'" would end the string after the backslash and the rest of
     * the value would be SQL; "''" is a quote in both modes (a backslash is then two: wrong, not
     * injected) */
    lua_pushstring(L, "\\' OR 1=1 -- ");
    CHECK(literal() == NULL && strcmp(out, "'\\\\'' OR 1=1 -- '") == 0);
    /* a trailing backslash cannot escape the closing quote */
    lua_pushstring(L, "\\");
    CHECK(literal() == NULL && strcmp(out, "'\\\\'") == 0);
    lua_pushstring(L, "");
    CHECK(literal() == NULL && strcmp(out, "''") == 0);
    lua_pushstring(L, "a\nb\rc\x1a");
    CHECK(literal() == NULL && strcmp(out, "'a\\nb\\rc\\Z'") == 0);
}

static void test_nul(void)
{
    lua_pushlstring(L, "a\0b", 3);
    CHECK(literal() == NULL && outlen == 6 && memcmp(out, "'a\\0b'", 6) == 0);
    /* a NUL in the statement text is passed on; a ? after it is still a placeholder */
    lua_pushinteger(L, 1);
    CHECK(bind_len("SELECT \0 ?", 10) == NULL && outlen == 10 && memcmp(out, "SELECT \0 1", 10) == 0);
    /* a NUL inside a comment does not end the comment */
    CHECK(bind_len("/* \0 ? */", 9) == NULL && outlen == 9);
}

static void test_invalid_utf8(void)
{
    /* bytes are passed as they are: the server refuses what its character set does not decode */
    lua_pushstring(L, "\xff\xfe\xc3");
    CHECK(literal() == NULL && strcmp(out, "'\xff\xfe\xc3'") == 0);
    /* a lone lead byte before the quote does not swallow it */
    lua_pushstring(L, "\xbf'");
    CHECK(literal() == NULL && strcmp(out, "'\xbf'''") == 0);
}

static void test_numbers(void)
{
    lua_pushinteger(L, 0);
    CHECK(literal() == NULL && strcmp(out, "0") == 0);
    lua_pushinteger(L, -42);
    CHECK(literal() == NULL && strcmp(out, "-42") == 0);
#if H2LUA_LUAJIT
    /* doubles only: integers are exact up to 2^53, beyond that they are bound as the float they are */
    lua_pushnumber(L, 9007199254740992.0);
    CHECK(literal() == NULL && strcmp(out, "9007199254740992") == 0);
    lua_pushnumber(L, 18014398509481984.0);
    CHECK(literal() == NULL && strcmp(out, "18014398509481984") == 0);
#else
    lua_pushinteger(L, LUA_MININTEGER);
    CHECK(literal() == NULL && strcmp(out, "-9223372036854775808") == 0);
#endif
    lua_pushnumber(L, 1.5);
    CHECK(literal() == NULL && strcmp(out, "1.5") == 0);
    lua_pushnumber(L, 0.1);
    CHECK(literal() == NULL && strcmp(out, "0.10000000000000001") == 0);
    lua_pushnumber(L, -1e300);
    CHECK(literal() == NULL && strcmp(out, "-1.0000000000000001e+300") == 0);
    const char *err;
    lua_pushnumber(L, HUGE_VAL);
    CHECK((err = literal()) != NULL && strstr(err, "not finite") != NULL);
    lua_pushnumber(L, -HUGE_VAL);
    CHECK((err = literal()) != NULL && strstr(err, "not finite") != NULL);
    lua_pushnumber(L, NAN);
    CHECK((err = literal()) != NULL && strstr(err, "not finite") != NULL);
    /* a string that looks like a number stays a string */
    lua_pushstring(L, "1 OR 1=1");
    CHECK(literal() == NULL && strcmp(out, "'1 OR 1=1'") == 0);
}

static void test_booleans(void)
{
    lua_pushboolean(L, 1);
    lua_pushboolean(L, 0);
    CHECK(bind("UPDATE entry SET status = ? WHERE status = ?") == NULL);
    CHECK(strcmp(out, "UPDATE entry SET status = 1 WHERE status = 0") == 0);
}

static void test_null(void)
{
    lua_pushnil(L);
    SQL_BIND_PUSH_NULL(L);
    CHECK(bind("INSERT INTO t VALUES (?, ?)") == NULL && strcmp(out, "INSERT INTO t VALUES (NULL, NULL)") == 0);
    /* another light userdata is not db.null */
    static const char other = 0;
    const char *err;
    lua_pushlightuserdata(L, (void *)&other);
    CHECK((err = literal()) != NULL && strstr(err, "light userdata") != NULL);
}

static void test_unsupported_types(void)
{
    const char *err;
    lua_newtable(L);
    CHECK((err = bind("SELECT ?")) != NULL && strstr(err, "only nil, db.null, booleans, numbers and strings") != NULL);
    lua_pushcfunction(L, luaopen_base);
    CHECK((err = literal()) != NULL && strstr(err, "only nil") != NULL);
}

static void test_argument_count(void)
{
    const char *err;
    lua_pushinteger(L, 1);
    CHECK((err = bind("SELECT ?, ?")) != NULL && strcmp(err, "more ? placeholders than arguments") == 0);
    CHECK((err = bind("SELECT ?")) != NULL && strcmp(err, "more ? placeholders than arguments") == 0);
    lua_pushinteger(L, 1);
    lua_pushinteger(L, 2);
    CHECK((err = bind("SELECT ?")) != NULL && strcmp(err, "more arguments than ? placeholders") == 0);
    lua_pushinteger(L, 1);
    CHECK((err = bind("SELECT '?'")) != NULL && strcmp(err, "more arguments than ? placeholders") == 0);
}

/* Arguments are read by absolute index: values below the first one are not bound. */
static void test_first_argument(void)
{
    lua_pushstring(L, "SELECT ?");
    lua_pushinteger(L, 9);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    CHECK(sql_bind(L, &b, "SELECT ?", 8, 2, 1) == NULL);
    luaL_pushresult(&b);
    CHECK(strcmp(lua_tostring(L, -1), "SELECT 9") == 0);
    lua_settop(L, 0);
}

/* The prepared path's checks (db_api) raise the binder's messages: the count and the values agree. */
static void test_count_and_check(void)
{
    static const char *sqls[] = {"SELECT ?",          "SELECT '?', ?",  "SELECT ? -- ?\n, ?", "SELECT /* ? */ ?",
                                 "SELECT /*! ? */ ?", "SELECT `?` # ?", "SELECT 1--?",        "SELECT \"?\\\"?\""};
    static const size_t want[] = {1, 1, 2, 1, 2, 0, 1, 0};
    for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); ++i)
        CHECK(sql_bind_count(sqls[i], strlen(sqls[i])) == want[i]);
    lua_pushnil(L);
    lua_pushboolean(L, 1);
    lua_pushinteger(L, 3);
    lua_pushnumber(L, 0.5);
    lua_pushstring(L, "x");
    lua_pushlightuserdata(L, (void *)&sql_bind_null);
    for (int i = 1; i <= 6; ++i)
        CHECK(sql_bind_check_value(L, i) == NULL);
    lua_settop(L, 0);
    const char *err;
    lua_newtable(L);
    CHECK((err = sql_bind_check_value(L, 1)) != NULL && strstr(err, "only nil, db.null") != NULL);
    lua_pushnumber(L, HUGE_VAL);
    CHECK((err = sql_bind_check_value(L, 2)) != NULL && strcmp(err, "a number that is not finite cannot be bound") == 0);
    lua_pushlightuserdata(L, (void *)&err);
    CHECK((err = sql_bind_check_value(L, 3)) != NULL && strstr(err, "light userdata") != NULL);
    lua_settop(L, 0);
}

int main(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    test_placeholders();
    test_placeholders_in_quotes_and_comments();
    test_comments_as_mariadb_reads_them();
    test_quotes_and_backslashes();
    test_nul();
    test_invalid_utf8();
    test_numbers();
    test_booleans();
    test_null();
    test_unsupported_types();
    test_argument_count();
    test_first_argument();
    test_count_and_check();
    lua_close(L);
    return CHECK_DONE();
}
