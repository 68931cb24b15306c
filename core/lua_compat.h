/*
 * lua_compat — the one place where the two Lua VMs h2lua builds with differ: Lua 5.4 (liblua5.4)
 * and LuaJIT 2.1 (OpenResty's luajit2: the Lua 5.1 API with 5.2 extensions). Every core file that
 * talks to Lua includes this instead of <lua.h>/<lauxlib.h>/<lualib.h>, and uses only the 5.4 names
 * below (on 5.4 they are the VM's own).
 *
 * Numbers: LuaJIT has doubles only, exact for integers up to 2^53, and its tostring prints 14
 * digits. lua_isinteger() there is true for an integral double up to 2^53 (bound as an integer);
 * lua_compat_push_int64() pushes an integer column as a number below 10^14 in magnitude (exact,
 * and printed exactly), else as the string of its digits: a BIGINT is never rounded.
 */
#ifndef H2LUA_LUA_COMPAT_H
#define H2LUA_LUA_COMPAT_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stddef.h>

#if LUA_VERSION_NUM < 502
#define H2LUA_LUAJIT 1
#define LUA_COMPAT_VM "LuaJIT"
#define lua_newuserdatauv(L, size, nuv) lua_newuserdata((L), (size))
#define lua_rawlen(L, idx) lua_objlen((L), (idx))
#define luaL_buffinitsize(L, b, size) (luaL_buffinit((L), (b)), (void)(size))
int lua_compat_isinteger(lua_State *L, int idx);
#define lua_isinteger(L, idx) lua_compat_isinteger((L), (idx))
const char *lua_compat_tolstring(lua_State *L, int idx, size_t *len);
#define luaL_tolstring(L, idx, len) lua_compat_tolstring((L), (idx), (len))
lua_Integer lua_compat_tointegerx(lua_State *L, int idx, int *isnum);
#define lua_tointegerx(L, idx, isnum) lua_compat_tointegerx((L), (idx), (isnum))
/* 5.3+ return the type of the value pushed; 5.1 returns nothing */
static inline int lua_compat_getfield(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    return lua_type(L, -1);
}
static inline int lua_compat_rawget(lua_State *L, int idx)
{
    lua_rawget(L, idx);
    return lua_type(L, -1);
}
#define lua_getfield(L, idx, k) lua_compat_getfield((L), (idx), (k))
#define lua_rawget(L, idx) lua_compat_rawget((L), (idx))
#else
#define H2LUA_LUAJIT 0
#define LUA_COMPAT_VM LUA_RELEASE
#endif

/*
 * Starts or continues coroutine co with the nargs values on top of its stack; *nres is set to the
 * number of values it yielded or returned (on top of its stack). Returns LUA_OK, LUA_YIELD or an
 * error status with the error value on top.
 */
int lua_compat_resume(lua_State *co, lua_State *from, int nargs, int *nres);

/*
 * Opens the standard libraries. On LuaJIT it adds the few 5.3/5.4 functions the application may
 * use, with 5.4's meaning: math.type (integer for an integral number exact in a double),
 * math.tointeger, table.pack,
 * table.unpack, utf8.len(s [, i [, j]]) (strict UTF-8: the count, or nil and the position of the
 * first invalid byte) and utf8.charpattern; it removes newproxy (a finalizer that raises would
 * escape from the core's own calls) and guards the C stack (lua_compat_cstack_mark). Can't fail
 * (out of memory raises, as lua_* do).
 */
void lua_compat_openlibs(lua_State *L);

/*
 * Raises "<what> cannot be called here: ..." unless the running code may yield (lua_isyieldable:
 * both VMs have it). A C function that yields calls it before it starts anything: lua_yield from
 * code that cannot yield (a callback of string.gsub or table.sort, a metamethod called by a C
 * function such as tostring, a message handler, a __gc) raises instead of yielding, and what was
 * started would outlive the request. Returns 0 when it may yield.
 */
int lua_compat_check_yieldable(lua_State *L, const char *what);

/*
 * LuaJIT does not bound calls nested through C functions (5.4 does: "C stack overflow" past 200):
 * recursion through string.gsub callbacks or coroutine.resume runs the thread's C stack out (a
 * SIGSEGV; string.gsub keeps an 8 KB buffer on it per level). lua_compat_openlibs wraps there the
 * library functions that call back into Lua (string.gsub, string.format, table.sort,
 * table.foreach[i], load, require, coroutine.resume; coroutine.wrap resumes through the wrapped
 * resume) so that they raise "C stack overflow" once the C stack has grown LUA_COMPAT_CSTACK_MAX
 * below the mark that lua_compat_cstack_mark() left on this thread (the core marks where it enters
 * Lua). A no-op on 5.4.
 */
#define LUA_COMPAT_CSTACK_MAX (1024 * 1024)
void lua_compat_cstack_mark(void);

/* Pushes package.preload (the table require() looks in first). Can't fail. */
void lua_compat_push_preload(lua_State *L);

/*
 * Pushes the decimal integer text s (len bytes, as MySQL sends an integer column) as a Lua integer
 * when the VM holds and prints it exactly (5.4: any int64; LuaJIT: below 10^14 in magnitude), else
 * as the string of its digits. Text that is not an integer is pushed as a string.
 */
void lua_compat_push_int64(lua_State *L, const char *s, size_t len);
/* The same for an integer already read (a binary-protocol column): pushed as its digits would be. */
void lua_compat_push_int64_value(lua_State *L, long long v);

#endif
