/*
 * httpc — the outbound HTTP/1.1 client of a worker (no Lua here; httpc_api binds it).
 *
 * Built on libh2o 2.2's h2o_http1client (request writing, response parsing: content-length,
 * chunked, until-close), h2o_socketpool (keep-alive, one pool per scheme, host, port and TLS
 * policy; an idle connection is closed after HTTPC_IDLE_MS, a dead one is detected before reuse)
 * and h2o_hostinfo_getaddr (name resolution on libh2o's thread pool). What this module adds:
 * validation of everything that goes on the wire, certificate and host-name verification done by
 * OpenSSL (chain against the system CAs or a CA file, X509_VERIFY_PARAM host or IP address),
 * connect/read/total timeouts (one timerfd per request on CLOCK_MONOTONIC: the loop's own timeouts
 * follow the wall clock, which may step), the cap on the response body, redirects and the bound on
 * the requests running per worker. The connect timeout covers the name lookup and the TLS
 * handshake; the read timeout is the longest silence of the server (every read moves it on).
 *
 * A request's callback runs from an event-loop callback of its own (never from inside
 * httpc_start, never from inside a libh2o callback), once; after httpc_cancel it never runs.
 * Everything is per worker thread: an httpc_t is used by the thread that created it only.
 * Out of memory aborts (util_malloc).
 */
#ifndef H2LUA_HTTPC_H
#define H2LUA_HTTPC_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

/* How long a pooled keep-alive connection may stay idle before it is closed. */
#define HTTPC_IDLE_MS 20000
/* The most redirects a request may follow. */
#define HTTPC_MAX_REDIRECTS 10

typedef struct httpc httpc_t;
typedef struct httpc_op httpc_op_t;

typedef struct httpc_header {
    h2o_iovec_t name, value;
} httpc_header_t;

/* What to send. Everything is copied by httpc_start; the caller keeps ownership. */
typedef struct httpc_request {
    h2o_iovec_t method; /* a token, e.g. "GET" */
    h2o_iovec_t url;    /* http:// or https:// absolute URL */
    const httpc_header_t *headers;
    size_t nheaders;
    h2o_iovec_t body; /* sent with Content-Length; {NULL, 0}: none */
    uint64_t connect_timeout_ms, read_timeout_ms, total_timeout_ms;
    size_t max_body;     /* a response body beyond it fails with "response too large" */
    int max_redirects;   /* 0: a 3xx is returned as it is */
    int ssl_verify;      /* 0: TLS without certificate checks */
    const char *ca_file; /* PEM bundle trusted instead of the system CAs, or NULL */
} httpc_request_t;

/* What came back; valid during the callback only. Header names are in lower case. */
typedef struct httpc_response {
    int status;
    const httpc_header_t *headers;
    size_t nheaders;
    h2o_iovec_t body;
    h2o_iovec_t url; /* the URL that answered (another one after redirects) */
} httpc_response_t;

/* The end of a request: err NULL and res set, or err a message for people and res NULL. */
typedef void (*httpc_done_cb)(void *data, const char *err, const httpc_response_t *res);

/* Threads libh2o may run name lookups on at once (its default is 1: one slow lookup would hold up
 * every other one of the process). */
#define HTTPC_RESOLVER_THREADS 8

/* Sets up what the process shares (libh2o's resolver threads); called once by the main thread
 * before the workers start. Can't fail. */
void httpc_init_process(void);

/* The client of the worker whose context is ctx; max_running bounds the requests running at once. */
httpc_t *httpc_create(h2o_context_t *ctx, unsigned max_running);

/*
 * Starts a request. Returns 0 and sets *op (valid until the callback runs or httpc_cancel), or
 * -1 with a message in errbuf when nothing was started: a URL, method or header that cannot be
 * sent as it is (CR, LF, NUL, a control character, a space in the target, a name that is not a
 * token), a CA file that cannot be read, or max_running requests already running.
 */
int httpc_start(httpc_t *hc, const httpc_request_t *req, httpc_done_cb cb, void *data, httpc_op_t **op, char *errbuf,
                size_t errlen);

/* Stops a request: its connection is closed, its callback never runs. */
void httpc_cancel(httpc_op_t *op);

/* The requests running now. */
unsigned httpc_running(httpc_t *hc);

#endif
