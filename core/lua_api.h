/*
 * lua_api — the `h2lua` module the application requires (documented in lua_host.h) and the
 * __index of the req metatable that decodes query, form (url-encoded or multipart, with files) and
 * cookies lazily.
 */
#ifndef H2LUA_LUA_API_H
#define H2LUA_LUA_API_H

#include "lua_compat.h"

struct config;
struct worker;

/* A lua_host_preload_fn: registers package.preload.h2lua and fills the req metatable's __index.
 * The preload table is at the top of L's stack. Can't fail (OOM aborts). */
void lua_api_preload(lua_State *L, const struct config *cfg, struct worker *w);

#endif
