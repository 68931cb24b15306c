/*
 * http_headers — adds the security headers, x-request-id (when the handler set none) and, for
 * static files (is_static), Cache-Control
 * (unless the handler set one) to every response; while the worker drains, HTTP/1
 * responses carry Connection: close.
 *
 * Strict-Transport-Security: max-age=<hsts_max_age> (no includeSubDomains: the process cannot know the
 * domain's other hosts) goes on responses to connections whose TLS this process terminates, and on no
 * other: behind a proxy that ends TLS (the ALB, the stack's nginx) h2lua speaks plain HTTP and the proxy
 * sends HSTS; X-Forwarded-Proto is not taken as HTTPS. hsts_max_age 0: never.
 */
#ifndef H2LUA_HTTP_HEADERS_H
#define H2LUA_HTTP_HEADERS_H

#include <h2o.h>

void http_headers_register(h2o_pathconf_t *pathconf, int is_static, int hsts_max_age);

#endif
