/*
 * http_headers — adds the security headers, x-request-id (when the handler set none) and, for
 * static files (is_static), Cache-Control
 * (unless the handler set one) to every response; while the worker drains, HTTP/1
 * responses carry Connection: close.
 */
#ifndef H2LUA_HTTP_HEADERS_H
#define H2LUA_HTTP_HEADERS_H

#include <h2o.h>

void http_headers_register(h2o_pathconf_t *pathconf, int is_static);

#endif
