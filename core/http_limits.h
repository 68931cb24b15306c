/*
 * http_limits — answers 431 when the request head is larger than MAX_HEADER_BYTES and 413 when
 * the body is larger than MAX_BODY; otherwise passes the request on.
 */
#ifndef H2LUA_HTTP_LIMITS_H
#define H2LUA_HTTP_LIMITS_H

#include <h2o.h>

void http_limits_register(h2o_pathconf_t *pathconf);

#endif
