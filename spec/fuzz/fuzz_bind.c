/*
 * libFuzzer target: the SQL binder (core/sql_bind.c), the injection boundary. The input is a
 * few arguments followed by a statement. Properties checked on every input:
 *  - every string literal the binder writes is one MySQL string token that decodes back to the
 *    argument (no byte of a value can end the quotes early);
 *  - once bound, the text holds no placeholder outside quotes and comments: binding it again
 *    with no arguments succeeds (a value that broke out of its quotes would expose its `?`; a
 *    negative number after a `-` makes `--5`, code for the binder as for MariaDB);
 *  - a mismatch of placeholders and arguments is an error, never a partial statement.
 * Input: byte 0 = number of arguments (mod 8); per argument a type byte (mod 6: nil, db.null,
 * boolean, integer, float, string) and its bytes (boolean 1, integer and float 8, string a length
 * byte and that many bytes); the rest is the statement.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sql_bind.h"

static lua_State *L;

/* Decodes the MySQL string literal lit[0..len) into out; returns the decoded length, or -1 when
 * lit is not exactly one literal. */
static long decode_literal(const char *lit, size_t len, char *out)
{
    if (len < 2 || lit[0] != '\'')
        return -1;
    size_t i = 1, n = 0;
    while (i < len && (lit[i] != '\'' || (i + 1 < len - 1 && lit[i + 1] == '\''))) {
        if (lit[i] == '\'') {
            out[n++] = '\''; /* a doubled quote */
            ++i;
        } else if (lit[i] == '\\') {
            if (++i == len)
                return -1;
            switch (lit[i]) {
            case '0': out[n++] = '\0'; break;
            case 'n': out[n++] = '\n'; break;
            case 'r': out[n++] = '\r'; break;
            case 'Z': out[n++] = '\x1a'; break;
            default: out[n++] = lit[i];
            }
        } else {
            out[n++] = lit[i];
        }
        ++i;
    }
    return i == len - 1 ? (long)n : -1; /* the closing quote is the last byte */
}

static void check_string_literal(int idx)
{
    size_t vlen, llen;
    const char *v = lua_tolstring(L, idx, &vlen);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (sql_bind_literal(L, &b, idx) != NULL)
        abort();
    luaL_pushresult(&b);
    const char *lit = lua_tolstring(L, -1, &llen);
    char *dec = malloc(llen + 1);
    long n = decode_literal(lit, llen, dec);
    if (n < 0 || (size_t)n != vlen || memcmp(dec, v, vlen) != 0)
        abort();
    free(dec);
    lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (L == NULL) {
        L = luaL_newstate();
        luaL_openlibs(L);
    }
    lua_settop(L, 0);
    size_t p = 0;
    int nargs = size > 0 ? data[p++] % 8 : 0;
    for (int i = 0; i < nargs; ++i) {
        if (p >= size) {
            lua_pushnil(L);
            continue;
        }
        int type = data[p++] % 6;
        if (type == 0) {
            lua_pushnil(L);
        } else if (type == 1) {
            SQL_BIND_PUSH_NULL(L);
        } else if (type == 2) {
            lua_pushboolean(L, p < size ? data[p++] & 1 : 0);
        } else if (type == 3 || type == 4) {
            uint64_t u = 0;
            size_t k = size - p < 8 ? size - p : 8;
            memcpy(&u, data + p, k);
            p += k;
            if (type == 3) {
                lua_pushinteger(L, (lua_Integer)u);
            } else {
                double d;
                memcpy(&d, &u, sizeof(d));
                lua_pushnumber(L, d);
            }
        } else {
            size_t k = p < size ? data[p++] : 0;
            if (k > size - p)
                k = size - p;
            lua_pushlstring(L, (const char *)data + p, k);
            p += k;
            check_string_literal(lua_gettop(L));
        }
    }
    lua_pushlstring(L, (const char *)data + p, size - p); /* the statement, NUL-terminated by Lua */
    size_t len;
    const char *sql = lua_tolstring(L, -1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *err = sql_bind(L, &b, sql, len, 1, nargs);
    luaL_pushresult(&b);
    if (err == NULL) {
        size_t olen;
        const char *bound = lua_tolstring(L, -1, &olen);
        luaL_Buffer again;
        luaL_buffinit(L, &again);
        if (sql_bind(L, &again, bound, olen, 1, 0) != NULL)
            abort(); /* a placeholder outside quotes survived binding */
        luaL_pushresult(&again);
    }
    lua_settop(L, 0);
    return 0;
}
