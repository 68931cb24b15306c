/*
 * conn_budget — bounds the handlers one connection keeps running (HTTP/2 "rapid reset",
 * CVE-2023-44487). libh2o 2.2 frees a stream's slot the moment the client resets it, while the
 * stream's handler runs on; a client that opens and resets streams in a loop thus starts handlers
 * without limit. The rule: a connection may have at most `limit` handlers running, those of its
 * reset streams included; the request that would exceed it is refused and the connection closed.
 * A well-behaved client never reaches it: libh2o runs at most
 * http2.max_concurrent_requests_per_connection (100) of a connection's requests at once, and the
 * limit is twice that.
 *
 * One budget per worker thread, keyed by h2o's connection id; an entry lives while the connection
 * has a handler running. Pure: no I/O (the caller closes the connection).
 */
#ifndef H2LUA_CONN_BUDGET_H
#define H2LUA_CONN_BUDGET_H

#include <stdint.h>

typedef struct conn_budget conn_budget_t;

conn_budget_t *conn_budget_create(unsigned limit);
void conn_budget_free(conn_budget_t *b);

enum {
    CONN_BUDGET_OK = 0,       /* counted: run the handler, and call conn_budget_leave when it ends */
    CONN_BUDGET_CROSSED = -1, /* not counted: this request crossed the limit; close the connection */
    CONN_BUDGET_OVER = -2,    /* not counted: the connection crossed it before (being closed) */
};

/* A handler of connection `conn_id` is about to start: CONN_BUDGET_*. */
int conn_budget_enter(conn_budget_t *b, uint64_t conn_id);

/* A handler counted by conn_budget_enter has ended. */
void conn_budget_leave(conn_budget_t *b, uint64_t conn_id);

/* Handlers running on connection `conn_id` (0 when it has no entry). */
unsigned conn_budget_running(const conn_budget_t *b, uint64_t conn_id);

/* Connections closed for crossing the limit since the budget was created. */
uint64_t conn_budget_closed(const conn_budget_t *b);

#endif
