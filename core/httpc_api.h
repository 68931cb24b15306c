/*
 * httpc_api — the module `h2lua.http` the application requires, backed by the worker's httpc
 * (httpc.h; docs/lua-api.md "Calling other services" is the guide):
 *
 *   http.request(url, opts)  -> res | nil, err
 *   http.get(url, opts)      -> the same with method GET
 *   http.post(url, body, opts) -> the same with method POST and that body
 *
 *   res = { status = 200, headers = { ["content-type"] = "..." }, body = "...", url = "..." }
 *   header names in lower case; a repeated header's values joined by ", "; url is the URL that
 *   answered (another one after redirects).
 *
 *   opts (all optional): method ("GET"), headers (table name -> string or number), body (string),
 *   connect_timeout (5), read_timeout (30: the most seconds between two reads), timeout (60: the
 *   whole call, redirects included), max_body (8 MiB: a larger response fails), follow_redirects
 *   (false; true follows up to 5, a number n up to n, at most HTTPC_MAX_REDIRECTS), ssl_verify
 *   (true), ca_file (a PEM bundle trusted instead of the system CAs).
 *
 * Failures of the call are values (nil and a message): a URL or header that cannot be sent, a
 * refused or timed-out connection, a certificate that does not verify, a response too large, too
 * many requests running on the worker (HTTP_CLIENT_MAX). Mistakes in the call itself raise: a url
 * that is not a string, opts of the wrong type, a timeout out of its range. Yielding: the call
 * follows lua_host.h's protocol, so it raises "cannot be called here" where db.query does.
 * A call in flight keeps its request in flight: SIGTERM's drain and a reload wait for it (its
 * timeout bounds it); a Lua state closed under a call stops it without resuming anything.
 */
#ifndef H2LUA_HTTPC_API_H
#define H2LUA_HTTPC_API_H

#include "lua_compat.h"

struct config;
struct worker;

/* A lua_host_preload_fn: registers package.preload["h2lua.http"]. Can't fail (OOM aborts). */
void httpc_api_preload(lua_State *L, const struct config *cfg, struct worker *w);

#endif
