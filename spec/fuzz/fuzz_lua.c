/*
 * libFuzzer target for the Lua side, embedded in a real Lua 5.4 state with scripts/ on the path.
 * Built three times with FUZZ_MODE:
 *   1 router    — router:match(method, path) on the entries app's routes: returns a handler with
 *                 integer [%d] params, or 404/405, never raises
 *   2 template  — template.compile(source): a function or nil plus a message naming the template,
 *                 never an unexpected error
 *   3 json      — cjson.decode then encode of a request body, as the JSON API reads it: a value
 *                 or an error, never a crash
 * A Lua error that breaks these promises aborts, so libFuzzer reports it as a crash.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_MODE
#error "FUZZ_MODE must be 1 (router), 2 (template) or 3 (json)"
#endif
#ifndef SCRIPTS_DIR
#define SCRIPTS_DIR "scripts"
#endif
#ifndef LUA_SUPPORT_DIR /* the specs' fake core: the libraries require "h2lua" */
#define LUA_SUPPORT_DIR "spec/lua/support"
#endif

static lua_State *L;
static int fn_ref;

static const char setup[] =
#if FUZZ_MODE == 1
    "local router = require 'lib.router'\n"
    "local r = router.new()\n"
    "local h = function() return {} end\n"
    "for _, p in ipairs{'/', '/index', '/add', '/update/:id[%d]', '/turn/:id[%d]', '/delete/:id[%d]',\n"
    "                   '/api/entries', '/api/entries/:id[%d]', '/users/:name/items/:item_id[%d]'} do\n"
    "  r:get(p, h); r:post(p, h)\n"
    "end\n"
    "r:delete('/api/entries/:id[%d]', h); r:patch('/api/entries/:id[%d]', h)\n"
    "local methods = {'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'}\n"
    "return function(s)\n"
    "  local m = methods[(#s % #methods) + 1]\n"
    "  local handler, params, allow = r:match(m, s)\n"
    "  if handler then\n"
    "    if type(allow) ~= 'string' then error('no route label') end\n"
    "    for k, v in pairs(params) do\n"
    "      if (k == 'id' or k:match('_id$')) and (math.type(v) ~= 'integer' or v < 1) then error('bad id') end\n"
    "    end\n"
    "  elseif params ~= 404 and not (params == 405 and type(allow) == 'string') then\n"
    "    error('bad result')\n"
    "  end\n"
    "end\n";
#elif FUZZ_MODE == 2
    "local template = require 'lib.template'\n"
    "return function(s)\n"
    "  local ok, fn, err = pcall(template.compile, s, 'views/fuzz.etlua')\n"
    "  if not ok then\n"
    "    if type(fn) ~= 'string' or not fn:find('fuzz.etlua', 1, true) then error('unnamed error: ' .. tostring(fn)) end\n"
    "  elseif fn == nil and (type(err) ~= 'string' or not err:find('fuzz.etlua', 1, true)) then\n"
    "    error('compile failed without naming the template: ' .. tostring(err))\n"
    "  end\n"
    "end\n";
#else
    "local cjson = require 'cjson'\n"
    "return function(s)\n"
    "  local ok, v = pcall(cjson.decode, s)\n"
    "  if ok and type(v) == 'table' then pcall(cjson.encode, v) end\n"
    "end\n";
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (L == NULL) {
        L = luaL_newstate();
        luaL_openlibs(L);
        lua_getglobal(L, "package");
        lua_pushstring(L, SCRIPTS_DIR "/?.lua;" SCRIPTS_DIR "/?/init.lua;" LUA_SUPPORT_DIR "/?.lua");
        lua_setfield(L, -2, "path");
        lua_pop(L, 1);
        if (luaL_loadstring(L, setup) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
            fprintf(stderr, "fuzz setup failed: %s\n", lua_tostring(L, -1));
            abort();
        }
        fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "broken promise: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (lua_gc(L, LUA_GCCOUNT, 0) > 256 * 1024)
        lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
