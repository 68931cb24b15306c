/*
 * worker — one thread with its own libh2o event loop, listening socket (SO_REUSEPORT), h2o
 * context, Lua state, access-log buffer and database pools. Everything in a worker_t is owned by
 * its thread, except `control` (the receiver other threads post messages to) and the fields
 * marked as written by the main thread before the thread starts.
 *
 * A module's private per-worker state hangs on the worker as a pointer to a struct only that
 * module defines (as h2o hangs a handler's state on its context): the worker holds no module's
 * fields, and the floors below it are handed what they need, not the worker.
 */
#ifndef H2LUA_WORKER_H
#define H2LUA_WORKER_H

#include <h2o.h>
#include <pthread.h>
#include <stdint.h>

#include "client_addr.h"
#include "log.h"
#include "metrics.h"

struct config;
struct lua_host;
struct db_pool;
struct db_route;          /* db_route's: the replica check */
struct conn_budget;       /* conn_budget's: handlers running per connection */
struct worker_emf;        /* server's: worker 0's EMF timer */
struct lua_watch;         /* lua_watchdog's: when this thread entered Lua (shared with the watchdog) */
struct shared_store_list; /* the process's stores of h2lua.shared (shared_store.h): shared by every worker */
struct app_metrics;       /* app_metrics's: the application's metrics (shared by every worker) */
struct db_route;          /* db_route's: the replica check */
struct conn_budget;       /* conn_budget's: handlers running per connection */
struct worker_emf;        /* server's: worker 0's EMF timer */
struct lua_watch;         /* lua_watchdog's: when this thread entered Lua (shared with the watchdog) */
struct httpc;             /* httpc's: the outbound HTTP client */

typedef struct worker {
    /* set by the main thread before the thread starts */
    int id;
    const struct config *cfg;
    metrics_t *const *all_metrics;                 /* every worker's metrics, this one's included (read: /metrics, EMF) */
    const struct shared_store_list *shared_stores; /* the process's; each store guards itself */
    struct app_metrics *app_metrics;               /* shared: the application's metrics, one registry per process */
    int nworkers;
    int listen_fd;

    pthread_t thread;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t control; /* shared: posted to by the main thread */
    h2o_timeout_t tick_timeout;         /* 100 ms: flush logs, check drain */
    h2o_timeout_entry_t tick;

    struct lua_host *lua; /* the application state new requests run on */
    unsigned app_version; /* the reload generation (reload.h) of the version that serves; 0 at start */
    char *load_error;     /* why the last reload failed (shown on every page in development), or NULL */
    uint64_t reloads_ok, reloads_failed;
    log_buf_t access_log;
    uint64_t log_dropped; /* access lines dropped because stdout did not take them */
    uint64_t request_seq;
    uint32_t request_id_base;
    int shutting_down;
    uint64_t drain_deadline;         /* loop time (ms) after which remaining connections are dropped */
    uint64_t inflight;               /* requests whose handler has not finished */
    struct conn_budget *conn_budget; /* of the handlers running per connection (lua_host counts them) */

    metrics_t metrics; /* this worker's; its lock is the one shared part (see metrics.h) */

    struct db_pool *db;      /* the primary's pool, or NULL */
    struct db_pool *db_read; /* the replica's pool, or NULL */

    /* module-owned state, NULL until the module sets it up */
    struct db_route *route;
    struct worker_emf *emf;
    struct lua_watch *watch; /* set by the main thread before the thread starts */
    struct httpc *httpc;     /* created by the first h2lua.http call; kept across reloads */
} worker_t;

/* The worker that owns an h2o context (every context belongs to exactly one worker). */
static inline worker_t *worker_from_ctx(h2o_context_t *ctx)
{
    return H2O_STRUCT_FROM_MEMBER(worker_t, ctx, ctx);
}

/* Writes the next request id of this worker (16 hex digits and a NUL) into buf. Can't fail. */
void worker_next_request_id(worker_t *w, char buf[17]);

/* The name of the x-request-id header; responses carry it with this exact pointer as name, so
 * that the headers filter and the access logger find the id the Lua host set. */
extern h2o_iovec_t worker_hdr_request_id;

/* The x-request-id of a response, or {NULL, 0}. */
h2o_iovec_t worker_find_request_id(h2o_req_t *req);

/*
 * Writes the address of the request's client into out and returns its length: the peer, or, when
 * the peer is one of TRUSTED_PROXIES, the client its X-Forwarded-For headers name
 * (client_addr_resolve); "" (0) when the peer has no IP address. req.client_addr and the access
 * log's client_addr. Can't fail; allocates nothing.
 */
size_t worker_client_addr(const worker_t *w, h2o_req_t *req, char out[CLIENT_ADDR_TEXT_MAX]);

/* The same from the peer's address and the request's headers (a request whose client went first
 * keeps copies of both). Reads at most the last WORKER_XFF_MAX X-Forwarded-For headers. */
#define WORKER_XFF_MAX 32
size_t worker_client_addr_of(const worker_t *w, const struct sockaddr *peer, socklen_t peer_len, const h2o_headers_t *headers,
                             char out[CLIENT_ADDR_TEXT_MAX]);

/* The req->env key under which the Lua host leaves the application's route for the metrics. */
#define WORKER_ENV_ROUTE "H2LUA_ROUTE"

#endif
