/*
 * http_readyz — /readyz: 200 when migrations are applied and the primary answers a ping (or no
 * database is configured), else 503 with the reason.
 */
#ifndef H2LUA_HTTP_READYZ_H
#define H2LUA_HTTP_READYZ_H

#include <h2o.h>

void http_readyz_register(h2o_pathconf_t *pathconf);

#endif
