/*
 * lua_api — the `h2lua` module the application requires (documented in lua_host.h) and the
 * metatable of req that decodes query, form and cookies lazily.
 */
#ifndef H2LUA_LUA_API_H
#define H2LUA_LUA_API_H

#include <lua.h>

struct config;
struct worker;

/* Registry key of the req metatable. */
#define LUA_API_REQUEST_MT "h2lua.request"
/* Registry key of the metatable of error objects made by http_error. */
#define LUA_API_HTTP_ERROR_MT "h2lua.HttpError"

/* Registers package.preload.h2lua (and the registry metatables) in L. Can't fail (OOM aborts). */
void lua_api_open(lua_State *L, const struct config *cfg, struct worker *w);

/* Raises {status=, message=} with the HttpError metatable. Does not return. */
int lua_api_raise_http_error(lua_State *L, int status, const char *message);

#endif
