/*
 * static_api — the module `h2lua.static` the application requires, backed by http_static:
 *
 *   static.url(path)   the URL of the static file at path ("/static/app.css") with its
 *                      fingerprint ("/static/app.css?v=0123456789abcdef"), which the server
 *                      sends with Cache-Control: public, max-age=31536000, immutable; a changed
 *                      file gets a new URL at the next start. path itself when the server does
 *                      not hold the file in memory (development mode, a missing file).
 *                      Raises when path is not a string.
 */
#ifndef H2LUA_STATIC_API_H
#define H2LUA_STATIC_API_H

#include "lua_compat.h"

struct config;
struct worker;

/* Registers package.preload["h2lua.static"]; the preload table is at the top of L's stack. */
void static_api_preload(lua_State *L, const struct config *cfg, struct worker *w);

#endif
