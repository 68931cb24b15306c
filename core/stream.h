/*
 * stream — streaming responses: a handler's response sent in chunks as they are produced.
 *
 * THE LUA SIDE (documented for application authors in docs/lua-api.md, "Streaming responses")
 *
 * A response table whose `stream` field is a function is streamed: status and headers go out at
 * once (no content-length: HTTP/1.1 chunked, HTTP/1.0 until close, HTTP/2 DATA frames), then the
 * function runs in the request's coroutine as stream(out), and the response ends when it returns.
 *   out:write(s)     appends s to the stream's buffer; true, or nil, "closed" once the client
 *                    has gone
 *   out:flush()      sends the buffer as one chunk and returns once libh2o has handed it to the
 *                    connection (a slow client holds this coroutine, never the worker); true, or
 *                    nil, "closed"
 *   out:send(s)      write(s) then flush()
 *   out:sleep(sec)   waits sec seconds without blocking the worker; true, or nil, reason as soon
 *                    as the client has gone ("closed") or the server drains ("shutdown"); looked
 *                    at at least every 100 ms
 *   out:closed()     nil while the stream is open, else "closed" or "shutdown" (writes still go
 *                    out while the server drains, so that the function can end the response)
 * An error raised by the function is logged; the response is then cut (the client sees an
 * incomplete response, not a 500: the status was sent already). A HEAD request gets the headers
 * and an empty body; its function runs with a stream that is already "closed".
 * A client that leaves is noticed at the next write on HTTP/1 (no read is pending while a response
 * is sent), at once on HTTP/2 (RST_STREAM).
 *
 * THE C SIDE (used by lua_host only; it hands the stream what it needs of the request, so that this
 * file knows nothing of lua_host)
 */
#ifndef H2LUA_STREAM_H
#define H2LUA_STREAM_H

#include <h2o.h>

#include "lua_compat.h"
#include "worker.h"

typedef struct stream stream_t;

/* What the stream asks of the request that runs its Lua side (owner: that request). */
typedef struct stream_owner_ops {
    void (*suspend)(void *owner);           /* a C function is about to yield the coroutine */
    void (*resume)(void *owner, int nargs); /* resume the coroutine with nargs values pushed */
} stream_owner_ops_t;

/*
 * Starts the response of owner (whose coroutine is co, on worker w) as a stream: libh2o gets
 * req->res as it is (status, reason, headers; the caller has set them) and a generator of the
 * stream's. Pushes the Lua object `out` on L.
 * Returns the stream, owned by the request and by the Lua side until both are done with it.
 * is_head: the body is not sent. Can't fail (OOM aborts).
 */
stream_t *stream_start(void *owner, const stream_owner_ops_t *ops, lua_State *co, worker_t *w, h2o_req_t *req, lua_State *L,
                       int is_head);

/*
 * The Lua side is over (the function returned, ok = 1, or raised, ok = 0): what is buffered is sent
 * with the end of the response (ok) or the response is cut (!ok). After this call owner may be freed;
 * the stream lives on until libh2o is done with it. Can't fail.
 */
void stream_end(stream_t *st, int ok);

/* Registers the metatable of `out` in L (lua_host_open calls it). Can't fail (OOM aborts). */
void stream_lua_open(lua_State *L);

#endif
