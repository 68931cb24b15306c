#include "sql_bind.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char sql_bind_null = 0;

static void add_string_literal(luaL_Buffer *b, const char *s, size_t len)
{
    luaL_addchar(b, '\'');
    for (size_t i = 0; i < len; ++i) {
        char c = s[i];
        switch (c) {
        case '\0': luaL_addstring(b, "\\0"); break;
        case '\n': luaL_addstring(b, "\\n"); break;
        case '\r': luaL_addstring(b, "\\r"); break;
        case '\\': luaL_addstring(b, "\\\\"); break;
        case '\'': luaL_addstring(b, "''"); break; /* not \': a quote stays inside under NO_BACKSLASH_ESCAPES too */
        case '\x1a': luaL_addstring(b, "\\Z"); break;
        default: luaL_addchar(b, c);
        }
    }
    luaL_addchar(b, '\'');
}

const char *sql_bind_check_value(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TBOOLEAN:
    case LUA_TSTRING: return NULL;
    case LUA_TLIGHTUSERDATA: return lua_touserdata(L, idx) == &sql_bind_null ? NULL : "a light userdata cannot be bound";
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) || isfinite(lua_tonumber(L, idx)) ? NULL : "a number that is not finite cannot be bound";
    default: return "only nil, db.null, booleans, numbers and strings can be bound";
    }
}

size_t sql_bind_count(const char *sql, size_t len)
{
    size_t n = 0, i = 0;
    while (i < len) {
        size_t j = sql_bind_skip_quoted(sql, len, i);
        if (j != i) {
            i = j;
        } else {
            n += sql[i] == '?';
            ++i;
        }
    }
    return n;
}

const char *sql_bind_literal(lua_State *L, luaL_Buffer *b, int idx)
{
    char num[64];
    switch (lua_type(L, idx)) {
    case LUA_TNIL: luaL_addstring(b, "NULL"); return NULL;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == &sql_bind_null) {
            luaL_addstring(b, "NULL");
            return NULL;
        }
        return "a light userdata cannot be bound";
    case LUA_TBOOLEAN: luaL_addchar(b, lua_toboolean(L, idx) ? '1' : '0'); return NULL;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            snprintf(num, sizeof(num), "%lld", (long long)lua_tointeger(L, idx));
        } else {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d))
                return "a number that is not finite cannot be bound";
            snprintf(num, sizeof(num), "%.17g", d);
        }
        luaL_addstring(b, num);
        return NULL;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        add_string_literal(b, s, len);
        return NULL;
    }
    default: return "only nil, db.null, booleans, numbers and strings can be bound";
    }
}

/* MariaDB's lexer: "--" starts a comment only when a space or a control character (or the end
 * of the text) follows it; "1--1" is 1 minus -1. */
static int starts_dash_comment(const char *sql, size_t len, size_t i)
{
    if (sql[i] != '-' || i + 1 >= len || sql[i + 1] != '-')
        return 0;
    if (i + 2 == len)
        return 1;
    unsigned char next = (unsigned char)sql[i + 2];
    return next <= ' ' || next == 0x7f;
}

/* A slash-star followed by "!" (MySQL, MariaDB) or "M!" (MariaDB) opens an executable comment:
 * the server runs its text. */
static int starts_executable_comment(const char *sql, size_t len, size_t i)
{
    return (i + 2 < len && sql[i + 2] == '!') || (i + 3 < len && sql[i + 2] == 'M' && sql[i + 3] == '!');
}

size_t sql_bind_skip_quoted(const char *sql, size_t len, size_t i)
{
    char c = sql[i];
    if (c == '\'' || c == '"' || c == '`') {
        size_t j = i + 1;
        while (j < len && sql[j] != c) {
            if (sql[j] == '\\' && c != '`')
                ++j;
            ++j;
        }
        return j < len ? j + 1 : len;
    }
    if (c == '#' || starts_dash_comment(sql, len, i)) {
        size_t j = i;
        while (j < len && sql[j] != '\n')
            ++j;
        return j;
    }
    if (c == '/' && i + 1 < len && sql[i + 1] == '*' && !starts_executable_comment(sql, len, i)) {
        const char *end = memmem(sql + i + 2, len - i - 2, "*/", 2);
        return end != NULL ? (size_t)(end - sql) + 2 : len;
    }
    return i;
}

const char *sql_bind(lua_State *L, luaL_Buffer *b, const char *sql, size_t len, int first, int nargs)
{
    int used = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = sql_bind_skip_quoted(sql, len, i);
        if (j != i) {
            luaL_addlstring(b, sql + i, j - i);
            i = j;
        } else if (sql[i] == '?') {
            if (used == nargs)
                return "more ? placeholders than arguments";
            const char *err = sql_bind_literal(L, b, first + used);
            if (err != NULL)
                return err;
            ++used;
            ++i;
        } else {
            luaL_addchar(b, sql[i]);
            ++i;
        }
    }
    if (used != nargs)
        return "more arguments than ? placeholders";
    return NULL;
}

int sql_bind_word_is(const char *w, size_t n, const char *kw)
{
    size_t k = strlen(kw);
    return n == k && strncasecmp(w, kw, n) == 0;
}
