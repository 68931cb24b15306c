#include "lua_compat.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define EXACT_MAX 9007199254740992.0 /* 2^53: doubles are exact integers up to here */
#define PRINT_MAX 1e14               /* LuaJIT's tostring (%.14g) prints integers exactly below this */

int lua_compat_resume(lua_State *co, lua_State *from, int nargs, int *nres)
{
#if H2LUA_LUAJIT
    (void)from;
    int status = lua_resume(co, nargs);
    /* a yield leaves only the yielded values on co's stack, a return only the results */
    *nres = status == LUA_OK || status == LUA_YIELD ? lua_gettop(co) : 0;
    return status;
#else
    return lua_resume(co, from, nargs, nres);
#endif
}

#if H2LUA_LUAJIT
static _Thread_local uintptr_t cstack_mark; /* 0: not marked on this thread */

void lua_compat_cstack_mark(void)
{
    cstack_mark = (uintptr_t)__builtin_frame_address(0);
}

/* A library function (upvalue 1) called only while the C stack has room (stacks grow down). */
static int cstack_guarded(lua_State *L)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (cstack_mark != 0 && here < cstack_mark && cstack_mark - here > LUA_COMPAT_CSTACK_MAX)
        return luaL_error(L, "C stack overflow (calls nested through C functions such as string.gsub or coroutine.resume)");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void guard_cstack(lua_State *L, const char *lib, const char *const *names)
{
    lua_getglobal(L, lib);
    for (; *names != NULL; ++names) {
        lua_getfield(L, -1, *names);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushcclosure(L, cstack_guarded, 1);
        lua_setfield(L, -2, *names);
    }
    lua_pop(L, 1);
}

/* coroutine.wrap through the guarded coroutine.resume (LuaJIT's own resumes in C). */
static const char wrap_source[] = "local create, resume, error = ...\n"
                                  "local function unwrap(ok, ...)\n"
                                  "  if ok then return ... end\n"
                                  "  error((...), 0)\n"
                                  "end\n"
                                  "return function(f)\n"
                                  "  local co = create(f)\n"
                                  "  return function(...) return unwrap(resume(co, ...)) end\n"
                                  "end\n";

static void guard_cstack_all(lua_State *L)
{
    static const char *const string_fns[] = {"gsub", "format", NULL};
    static const char *const table_fns[] = {"sort", "foreach", "foreachi", NULL};
    static const char *const coroutine_fns[] = {"resume", NULL};
    static const char *const base_fns[] = {"load", "require", NULL};
    guard_cstack(L, "string", string_fns);
    guard_cstack(L, "table", table_fns);
    guard_cstack(L, "coroutine", coroutine_fns);
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    for (const char *const *n = base_fns; *n != NULL; ++n) {
        lua_getfield(L, -1, *n);
        lua_pushcclosure(L, cstack_guarded, 1);
        lua_setfield(L, -2, *n);
    }
    lua_pop(L, 1);
    lua_getglobal(L, "coroutine");
    if (luaL_loadbuffer(L, wrap_source, sizeof(wrap_source) - 1, "=coroutine.wrap") != LUA_OK)
        lua_error(L);
    lua_getfield(L, -2, "create");
    lua_getfield(L, -3, "resume");
    lua_getglobal(L, "error");
    lua_call(L, 3, 1);
    lua_setfield(L, -2, "wrap");
    lua_pop(L, 1);
}

static int l_math_type(lua_State *L)
{
    luaL_checkany(L, 1);
    if (lua_type(L, 1) != LUA_TNUMBER)
        lua_pushnil(L);
    else
        lua_pushstring(L, lua_compat_isinteger(L, 1) ? "integer" : "float");
    return 1;
}

static int l_math_tointeger(lua_State *L)
{
    luaL_checkany(L, 1);
    if (lua_isnumber(L, 1)) {
        lua_Number d = lua_tonumber(L, 1);
        if (d == floor(d) && d <= EXACT_MAX && d >= -EXACT_MAX) {
            lua_pushnumber(L, d);
            return 1;
        }
    }
    lua_pushnil(L);
    return 1;
}

static int l_table_pack(lua_State *L)
{
    int n = lua_gettop(L);
    lua_createtable(L, n, 1);
    lua_insert(L, 1);
    for (int i = n; i >= 1; --i)
        lua_rawseti(L, 1, i);
    lua_pushinteger(L, n);
    lua_setfield(L, 1, "n");
    return 1;
}

/* The length of the UTF-8 sequence starting with byte c and whether the next ones continue it. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, min = 0x10000;
    else
        return 0;
    if (left < n)
        return 0;
    unsigned cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; ++i) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int l_utf8_len(lua_State *L)
{
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    lua_Integer i = luaL_optinteger(L, 2, 1), j = luaL_optinteger(L, 3, -1);
    if (i < 0)
        i = (lua_Integer)len + i + 1;
    if (j < 0)
        j = (lua_Integer)len + j + 1;
    luaL_argcheck(L, i >= 1 && i <= (lua_Integer)len + 1, 2, "initial position out of bounds");
    luaL_argcheck(L, j <= (lua_Integer)len, 3, "final position out of bounds");
    lua_Integer n = 0;
    size_t p = (size_t)(i - 1);
    while ((lua_Integer)p < j) {
        size_t k = utf8_seq(s + p, len - p);
        if (k == 0) {
            lua_pushnil(L);
            lua_pushinteger(L, (lua_Integer)p + 1);
            return 2;
        }
        p += k;
        ++n;
    }
    lua_pushinteger(L, n);
    return 1;
}
#endif

void lua_compat_openlibs(lua_State *L)
{
    luaL_openlibs(L);
#if H2LUA_LUAJIT
    lua_getglobal(L, "math");
    lua_pushcfunction(L, l_math_type);
    lua_setfield(L, -2, "type");
    lua_pushcfunction(L, l_math_tointeger);
    lua_setfield(L, -2, "tointeger");
    lua_pop(L, 1);
    lua_getglobal(L, "table");
    lua_pushcfunction(L, l_table_pack);
    lua_setfield(L, -2, "pack");
    lua_getglobal(L, "unpack");
    lua_setfield(L, -2, "unpack");
    lua_pop(L, 1);
    guard_cstack_all(L);
    /* LuaJIT propagates an error raised by a finalizer out of whatever allocation ran the collector,
     * the core's own calls outside any protected call included (5.4 turns it into a warning):
     * newproxy, its one way to give Lua code a __gc, is not offered */
    lua_pushnil(L);
    lua_setglobal(L, "newproxy");
    lua_getglobal(L, "utf8");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushcfunction(L, l_utf8_len);
        lua_setfield(L, -2, "len");
        lua_pushliteral(L, "[\0-\x7F\xC2-\xFD][\x80-\xBF]*");
        lua_setfield(L, -2, "charpattern");
        lua_setglobal(L, "utf8");
    } else {
        lua_pop(L, 1);
    }
#endif
}

int lua_compat_check_yieldable(lua_State *L, const char *what)
{
    if (lua_isyieldable(L))
        return 0;
    return luaL_error(L,
                      "%s cannot be called here: this code cannot yield (it runs inside a C function such as "
                      "string.gsub, table.sort or tostring, a metamethod called by one, a message handler or a __gc)",
                      what);
}

#if !H2LUA_LUAJIT
void lua_compat_cstack_mark(void)
{
}
#endif

void lua_compat_push_preload(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_remove(L, -2);
}

void lua_compat_push_int64(lua_State *L, const char *s, size_t len)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (len == 0 || errno != 0 || end != s + len) {
        lua_pushlstring(L, s, len);
        return;
    }
    lua_compat_push_int64_value(L, v);
}

void lua_compat_push_int64_value(lua_State *L, long long v)
{
#if H2LUA_LUAJIT
    if ((double)v >= PRINT_MAX || (double)v <= -PRINT_MAX) {
        char s[24];
        int n = snprintf(s, sizeof(s), "%lld", v);
        lua_pushlstring(L, s, (size_t)n);
        return;
    }
    lua_pushnumber(L, (lua_Number)v);
#else
    lua_pushinteger(L, (lua_Integer)v);
#endif
}

#if H2LUA_LUAJIT
int lua_compat_isinteger(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    lua_Number d = lua_tonumber(L, idx);
    return d == floor(d) && d <= EXACT_MAX && d >= -EXACT_MAX;
}

lua_Integer lua_compat_tointegerx(lua_State *L, int idx, int *isnum)
{
    int ok = lua_compat_isinteger(L, idx);
    if (isnum != NULL)
        *isnum = ok;
    return ok ? (lua_Integer)lua_tonumber(L, idx) : 0;
}

const char *lua_compat_tolstring(lua_State *L, int idx, size_t *len)
{
    idx = idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop(L) + idx + 1 : idx;
    if (luaL_callmeta(L, idx, "__tostring")) {
        if (!lua_isstring(L, -1))
            luaL_error(L, "'__tostring' must return a string");
    } else {
        switch (lua_type(L, idx)) {
        case LUA_TNUMBER:
        case LUA_TSTRING: lua_pushvalue(L, idx); break;
        case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false"); break;
        case LUA_TNIL: lua_pushliteral(L, "nil"); break;
        default: lua_pushfstring(L, "%s: %p", luaL_typename(L, idx), lua_topointer(L, idx)); break;
        }
    }
    return lua_tolstring(L, -1, len);
}
#endif
