/*
 * lua_response — turns the application's response table (documented in lua_host.h) into an h2o
 * response: status and its reason phrase, the checked headers (names lower-case token characters,
 * no control characters in values, framing headers left to the core), the default content type,
 * the route left for the metrics, the body (dropped for HEAD); and the core's own pages (a plain
 * error, the development load-error page). Runs on the worker's thread; everything it keeps is
 * in the request's pool.
 */
#ifndef H2LUA_LUA_RESPONSE_H
#define H2LUA_LUA_RESPONSE_H

#include <h2o.h>
#include "lua_compat.h"

/* What the core adds to every response it sends for the application. */
typedef struct lua_response_core {
    const char *request_id; /* 16 hex digits, sent as x-request-id */
    const char *cookie;     /* a Set-Cookie value of the core's own, or NULL */
} lua_response_core_t;

/*
 * Sends the response table at index idx of L. Returns NULL once sent, or a message naming what is
 * wrong with the table; then nothing is sent (headers already added are dropped by
 * lua_response_send_plain). A table whose `stream` is a function is not sent: its status and
 * headers are set on req, the function is left on top of L and *streamed is set (stream.h goes on).
 */
const char *lua_response_send(h2o_req_t *req, lua_State *L, int idx, const lua_response_core_t *core, int *streamed);

/* Sends status with msg as text/plain, dropping any header added before. Can't fail. */
void lua_response_send_plain(h2o_req_t *req, int status, const char *msg, const lua_response_core_t *core);

/*
 * Development: the 500 page that shows why the application failed to load (err HTML-escaped); its
 * script (/_dev/reload.js, the application's) reloads it once a version newer than `version` of this
 * run of the process (util_boot_id) loads.
 */
void lua_response_send_load_error(h2o_req_t *req, const char *err, unsigned version);

#endif
