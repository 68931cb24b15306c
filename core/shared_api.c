#include "shared_api.h"

#include <stdarg.h>
#include <stdio.h>

#include "lua_host.h"
#include "shared_store.h"
#include "worker.h"

#define STORE_MT "h2lua.shared.store"

static shared_store_t *check_store(lua_State *L)
{
    return *(shared_store_t **)luaL_checkudata(L, 1, STORE_MT);
}

/* Pushes a falsy value (nil, or false when `as_false`) and the message; returns 2. */
static int failed(lua_State *L, int as_false, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failed(lua_State *L, int as_false, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (as_false)
        lua_pushboolean(L, 0);
    else
        lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* The message of a store's error code for a call on s with a key of klen bytes. */
static int failed_code(lua_State *L, int as_false, shared_store_t *s, int code, size_t klen)
{
    if (code == SHARED_STORE_EKEY)
        return failed(L, as_false, "the key must be 1 to %d bytes, got %zu", SHARED_STORE_KEY_MAX, klen);
    if (code == SHARED_STORE_ETOOBIG) {
        shared_store_stats_t st;
        shared_store_get_stats(s, &st);
        return failed(L, as_false, "too large for the store '%s' (%zu bytes)", shared_store_name(s), st.capacity);
    }
    return failed(L, as_false, "%s", shared_store_strerror(code));
}

/* The key at index 2, or NULL when it is not a string (the caller then reports it). */
static const char *get_key(lua_State *L, size_t *len)
{
    return lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, len) : NULL;
}

#define KEY_OR_FAIL(L, as_false, key, klen)                                                                                    \
    const char *key = get_key((L), &(klen));                                                                                   \
    if (key == NULL)                                                                                                           \
        return failed((L), (as_false), "the key must be a string, got %s", luaL_typename((L), 2));

/* Reads the Lua value at idx into *v; 0, or -1 for a type the store does not hold. */
static int to_value(lua_State *L, int idx, shared_store_value_t *v)
{
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: v->type = SHARED_STORE_NIL; return 0;
    case LUA_TBOOLEAN:
        v->type = SHARED_STORE_BOOLEAN;
        v->boolean = lua_toboolean(L, idx);
        return 0;
    case LUA_TSTRING:
        v->type = SHARED_STORE_STRING;
        v->str = lua_tolstring(L, idx, &v->len);
        return 0;
    case LUA_TNUMBER:
#if !H2LUA_LUAJIT
        if (lua_isinteger(L, idx)) {
            v->type = SHARED_STORE_INTEGER;
            v->integer = (int64_t)lua_tointeger(L, idx);
            return 0;
        }
#endif
        v->type = SHARED_STORE_NUMBER;
        v->number = (double)lua_tonumber(L, idx);
        return 0;
    default: return -1;
    }
}

static void push_value(lua_State *L, const shared_store_value_t *v)
{
    switch (v->type) {
    case SHARED_STORE_STRING: lua_pushlstring(L, v->str, v->len); break;
    case SHARED_STORE_NUMBER: lua_pushnumber(L, (lua_Number)v->number); break;
    case SHARED_STORE_INTEGER: lua_pushinteger(L, (lua_Integer)v->integer); break;
    case SHARED_STORE_BOOLEAN: lua_pushboolean(L, v->boolean); break;
    default: lua_pushnil(L); break;
    }
}

/* An optional number of seconds at idx into *ttl (0 when absent); 0, or -1 for another type. */
static int opt_seconds(lua_State *L, int idx, double *ttl)
{
    *ttl = 0;
    if (lua_isnoneornil(L, idx))
        return 0;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return -1;
    *ttl = (double)lua_tonumber(L, idx);
    return 0;
}

static int l_get(lua_State *L)
{
    shared_store_t *s = check_store(L);
    size_t klen = 0;
    KEY_OR_FAIL(L, 0, key, klen);
    char small[1024], *buf = small;
    size_t cap = sizeof(small);
    for (;;) {
        shared_store_value_t v;
        int ret = shared_store_get(s, key, klen, &v, buf, cap);
        if (ret == 0) {
            push_value(L, &v);
            return 1;
        }
        if (ret == SHARED_STORE_ENOTFOUND) {
            lua_pushnil(L);
            return 1;
        }
        if (ret != SHARED_STORE_EBUF)
            return failed_code(L, 0, s, ret, klen);
        /* a long string: a buffer in the state (collected), then again */
        buf = lua_newuserdatauv(L, v.len, 0);
        cap = v.len;
    }
}

static int store(lua_State *L, int mode)
{
    shared_store_t *s = check_store(L);
    size_t klen = 0;
    KEY_OR_FAIL(L, 1, key, klen);
    shared_store_value_t v;
    if (to_value(L, 3, &v) != 0 || (v.type == SHARED_STORE_NIL && mode != SHARED_STORE_SET))
        return failed(L, 1, "the value must be a string, a number or a boolean%s, got %s",
                      mode == SHARED_STORE_SET ? " (nil deletes)" : "", luaL_typename(L, 3));
    double ttl;
    if (opt_seconds(L, 4, &ttl) != 0)
        return failed(L, 1, "the ttl must be a number of seconds, got %s", luaL_typename(L, 4));
    int forcible;
    int ret = shared_store_set(s, key, klen, &v, ttl, mode, &forcible);
    if (ret != 0) {
        failed_code(L, 1, s, ret, klen);
        lua_pushboolean(L, 0);
        return 3;
    }
    lua_pushboolean(L, 1);
    lua_pushnil(L);
    lua_pushboolean(L, forcible);
    return 3;
}

static int l_set(lua_State *L)
{
    return store(L, SHARED_STORE_SET);
}

static int l_add(lua_State *L)
{
    return store(L, SHARED_STORE_ADD);
}

static int l_replace(lua_State *L)
{
    return store(L, SHARED_STORE_REPLACE);
}

static int l_incr(lua_State *L)
{
    shared_store_t *s = check_store(L);
    size_t klen = 0;
    KEY_OR_FAIL(L, 0, key, klen);
    shared_store_value_t delta, init, out;
    if (lua_type(L, 3) != LUA_TNUMBER)
        return failed(L, 0, "the increment must be a number, got %s", luaL_typename(L, 3));
    to_value(L, 3, &delta);
    int has_init = !lua_isnoneornil(L, 4);
    if (has_init && lua_type(L, 4) != LUA_TNUMBER)
        return failed(L, 0, "the initial value must be a number, got %s", luaL_typename(L, 4));
    if (has_init)
        to_value(L, 4, &init);
    double init_ttl;
    if (opt_seconds(L, 5, &init_ttl) != 0)
        return failed(L, 0, "the ttl must be a number of seconds, got %s", luaL_typename(L, 5));
    int forcible;
    int ret = shared_store_incr(s, key, klen, &delta, has_init ? &init : NULL, init_ttl, &out, &forcible);
    if (ret != 0)
        return failed_code(L, 0, s, ret, klen);
    push_value(L, &out);
    lua_pushnil(L);
    lua_pushboolean(L, forcible);
    return 3;
}

static int l_delete(lua_State *L)
{
    shared_store_t *s = check_store(L);
    size_t klen = 0;
    KEY_OR_FAIL(L, 0, key, klen);
    int ret = shared_store_delete(s, key, klen);
    if (ret != 0 && ret != SHARED_STORE_ENOTFOUND)
        return failed_code(L, 0, s, ret, klen);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_ttl(lua_State *L)
{
    shared_store_t *s = check_store(L);
    size_t klen = 0;
    KEY_OR_FAIL(L, 0, key, klen);
    double ttl;
    int ret = shared_store_ttl(s, key, klen, &ttl);
    if (ret != 0)
        return failed_code(L, 0, s, ret, klen);
    lua_pushnumber(L, (lua_Number)ttl);
    return 1;
}

static int l_expire(lua_State *L)
{
    shared_store_t *s = check_store(L);
    size_t klen = 0;
    KEY_OR_FAIL(L, 0, key, klen);
    if (lua_type(L, 3) != LUA_TNUMBER)
        return failed(L, 0, "the ttl must be a number of seconds, got %s", luaL_typename(L, 3));
    int ret = shared_store_expire(s, key, klen, (double)lua_tonumber(L, 3));
    if (ret != 0)
        return failed_code(L, 0, s, ret, klen);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_flush_expired(lua_State *L)
{
    shared_store_t *s = check_store(L);
    double max = 0;
    if (opt_seconds(L, 2, &max) != 0 || !(max >= 0))
        return failed(L, 0, "max must be a number from 0 (all), got %s", luaL_typename(L, 2));
    lua_pushinteger(L, (lua_Integer)shared_store_flush_expired(s, max >= 1e15 ? 0 : (size_t)max));
    return 1;
}

static int l_flush_all(lua_State *L)
{
    shared_store_flush_all(check_store(L));
    return 0;
}

static int l_capacity(lua_State *L)
{
    shared_store_stats_t st;
    shared_store_get_stats(check_store(L), &st);
    lua_pushinteger(L, (lua_Integer)st.capacity);
    return 1;
}

static int l_free_space(lua_State *L)
{
    shared_store_stats_t st;
    shared_store_get_stats(check_store(L), &st);
    lua_pushinteger(L, (lua_Integer)(st.capacity - st.used));
    return 1;
}

static int l_tostring(lua_State *L)
{
    lua_pushfstring(L, "h2lua.shared store '%s'", shared_store_name(check_store(L)));
    return 1;
}

static int open_shared(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"get", l_get},
        {"set", l_set},
        {"add", l_add},
        {"replace", l_replace},
        {"incr", l_incr},
        {"delete", l_delete},
        {"ttl", l_ttl},
        {"expire", l_expire},
        {"flush_expired", l_flush_expired},
        {"flush_all", l_flush_all},
        {"capacity", l_capacity},
        {"free_space", l_free_space},
        {NULL, NULL},
    };
    const shared_store_list_t *list = lua_touserdata(L, lua_upvalueindex(1));
    lua_host_new_type(L, STORE_MT, methods, NULL, l_tostring);
    size_t n = list != NULL ? list->n : 0;
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; ++i) {
        shared_store_t **ud = lua_newuserdatauv(L, sizeof(*ud), 0);
        *ud = list->stores[i];
        luaL_setmetatable(L, STORE_MT);
        lua_setfield(L, -2, shared_store_name(list->stores[i]));
    }
    return 1;
}

void shared_api_preload(lua_State *L, const struct config *cfg, struct worker *w)
{
    (void)cfg;
    lua_pushlightuserdata(L, w != NULL ? (void *)w->shared_stores : NULL);
    lua_pushcclosure(L, open_shared, 1);
    lua_setfield(L, -2, "h2lua.shared");
}
