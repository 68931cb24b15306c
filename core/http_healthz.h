/*
 * http_healthz — /healthz, answered by the core without Lua or the database: 200 "ok", or 503
 * "draining" while the worker drains.
 */
#ifndef H2LUA_HTTP_HEALTHZ_H
#define H2LUA_HTTP_HEALTHZ_H

#include <h2o.h>

void http_healthz_register(h2o_pathconf_t *pathconf);

#endif
