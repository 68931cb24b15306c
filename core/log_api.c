#include "log_api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_host.h"
#include "worker.h"

static const char *const reserved[] = {"time", "level", "worker", "request_id", "msg", "truncated"};

/* The length of s[0..len) cut to at most max bytes, at a UTF-8 character boundary. */
static size_t cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    for (int back = 0; back < 3 && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80; ++back)
        --n;
    return n;
}

/* A field read from the application's table; value points into num for a number's text. */
struct item {
    log_field_t f;
    int in_num;
    char num[32];
};

static int key_cmp(const log_field_t *x, const log_field_t *y)
{
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

static int by_key(const void *a, const void *b)
{
    return key_cmp(&((const struct item *)a)->f, &((const struct item *)b)->f);
}

/* The field at the top of L's stack (key at -2, value at -1) into *it; raises on a bad key. */
static void read_field(lua_State *L, const char *fn, struct item *it, int *truncated)
{
    log_field_t *f = &it->f;
    if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, "%s: field keys must be strings (got a %s)", fn, luaL_typename(L, -2));
    f->key = lua_tolstring(L, -2, &f->key_len);
    if (f->key_len == 0 || f->key_len > LOG_API_KEY_MAX)
        luaL_error(L, "%s: a field key must have 1 to %d bytes", fn, LOG_API_KEY_MAX);
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); ++i)
        if (strlen(reserved[i]) == f->key_len && memcmp(reserved[i], f->key, f->key_len) == 0)
            luaL_error(L, "%s: the field '%s' is the core's (time, level, worker, request_id, msg, truncated are)", fn,
                       reserved[i]);
    f->literal = 0;
    it->in_num = 1;
    int n;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING:
        it->in_num = 0;
        f->value = lua_tolstring(L, -1, &f->value_len);
        if (f->value_len > LOG_API_VALUE_MAX) {
            f->value_len = cut(f->value, f->value_len, LOG_API_VALUE_MAX);
            *truncated = 1;
        }
        return;
    case LUA_TNUMBER: {
        lua_Number v = lua_tonumber(L, -1);
        if (isnan(v)) {
            n = snprintf(it->num, sizeof(it->num), "nan");
        } else if (isinf(v)) {
            n = snprintf(it->num, sizeof(it->num), "%s", v > 0 ? "inf" : "-inf");
        } else {
            f->literal = 1;
            if (lua_isinteger(L, -1))
                n = snprintf(it->num, sizeof(it->num), "%lld", (long long)lua_tointeger(L, -1));
            else
                n = snprintf(it->num, sizeof(it->num), "%.14g", (double)v);
        }
        break;
    }
    case LUA_TBOOLEAN:
        f->literal = 1;
        n = snprintf(it->num, sizeof(it->num), "%s", lua_toboolean(L, -1) ? "true" : "false");
        break;
    default:
        /* never tostring: a __tostring of the application's could raise or yield */
        n = snprintf(it->num, sizeof(it->num), "<%s>", luaL_typename(L, -1));
    }
    f->value_len = (size_t)n;
}

static int do_log(lua_State *L, int level, const char *fn)
{
    if (level < log_min_level())
        return 0;
    int t = lua_type(L, 1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        return luaL_error(L, "%s: the message must be a string (got a %s)", fn, luaL_typename(L, 1));
    size_t msg_len;
    lua_settop(L, 2);
    const char *msg = lua_tolstring(L, 1, &msg_len);
    int truncated = 0;
    if (msg_len > LOG_API_MSG_MAX) {
        msg_len = cut(msg, msg_len, LOG_API_MSG_MAX);
        truncated = 1;
    }
    /* the LOG_API_MAX_FIELDS smallest keys are kept; their strings stay alive in the table */
    struct item items[LOG_API_MAX_FIELDS], extra;
    size_t n = 0;
    int ft = lua_type(L, 2);
    if (ft == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, 2) != 0) {
            if (n < LOG_API_MAX_FIELDS) {
                read_field(L, fn, &items[n++], &truncated);
            } else {
                read_field(L, fn, &extra, &truncated);
                truncated = 1;
                size_t max = 0;
                for (size_t i = 1; i < n; ++i)
                    if (key_cmp(&items[i].f, &items[max].f) > 0)
                        max = i;
                if (key_cmp(&extra.f, &items[max].f) < 0)
                    items[max] = extra;
            }
            lua_pop(L, 1);
        }
    } else if (ft != LUA_TNIL) {
        return luaL_error(L, "%s: fields must be a table (got a %s)", fn, luaL_typename(L, 2));
    }
    qsort(items, n, sizeof(items[0]), by_key);
    log_field_t fields[LOG_API_MAX_FIELDS + 1];
    for (size_t i = 0; i < n; ++i) {
        fields[i] = items[i].f;
        if (items[i].in_num)
            fields[i].value = items[i].num;
    }
    if (truncated)
        fields[n++] = (log_field_t){"truncated", 9, "true", 4, 1};
    log_fields(level, (int)lua_tointeger(L, lua_upvalueindex(1)), lua_host_running_request_id(), msg, msg_len, fields, n);
    return 0;
}

static int l_debug(lua_State *L)
{
    return do_log(L, LOG_DEBUG, "h2lua.log.debug");
}

static int l_info(lua_State *L)
{
    return do_log(L, LOG_INFO, "h2lua.log.info");
}

static int l_warn(lua_State *L)
{
    return do_log(L, LOG_WARN, "h2lua.log.warn");
}

static int l_error(lua_State *L)
{
    return do_log(L, LOG_ERROR, "h2lua.log.error");
}

static int l_enabled(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    int level = log_level_parse(name, len);
    if (level < 0)
        return luaL_error(L, "h2lua.log.enabled: the level must be debug, info, warn or error");
    lua_pushboolean(L, level >= log_min_level());
    return 1;
}

static int open_log(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"debug", l_debug}, {"info", l_info},       {"warn", l_warn},
                                     {"error", l_error}, {"enabled", l_enabled}, {NULL, NULL}};
    lua_newtable(L);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the worker's number */
    luaL_setfuncs(L, funcs, 1);
    lua_pushstring(L, log_level_name(log_min_level()));
    lua_setfield(L, -2, "level");
    return 1;
}

void log_api_preload(lua_State *L, const struct config *cfg, struct worker *w)
{
    (void)cfg;
    lua_pushinteger(L, w->id);
    lua_pushcclosure(L, open_log, 1);
    lua_setfield(L, -2, "h2lua.log");
}
