/*
 * app — the application loader: the one place where the core's Lua modules are put together
 * (h2lua, h2lua.db, h2lua.static, h2lua.shared, h2lua.log, h2lua.metrics) and handed to the Lua host, which knows
 * none of them, as h2o's mruby handler lists its bindings in one place. Start-up and reload both load through it.
 */
#ifndef H2LUA_APP_H
#define H2LUA_APP_H

#include <stddef.h>

struct config;
struct lua_host;
struct worker;

/* lua_host_open with the core's modules preloaded: 0, or a negative code and a message in errbuf
 * (see lua_host_open). */
int app_open(struct lua_host **out, const struct config *cfg, struct worker *w, char *errbuf, size_t errlen);

#endif
