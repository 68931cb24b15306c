/*
 * metrics — what an operator watches: requests by route and status, a latency histogram, the
 * database pools, reloads, build info. Served as Prometheus text at /metrics (only with
 * METRICS_TOKEN, as `Authorization: Bearer <token>`; without it /metrics does not exist), and
 * written once a minute to stdout as one CloudWatch Embedded Metric Format line, so the same
 * figures reach CloudWatch through the awslogs driver with no agent.
 *
 * Each worker owns its metrics_t; the mutex in it is the one shared part: the owner takes it to
 * count a request (uncontended), /metrics and the EMF writer take each worker's in turn to read.
 */
#ifndef H2LUA_METRICS_H
#define H2LUA_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define METRICS_MAX_ROUTES 256
#define METRICS_NBUCKETS 13

typedef struct metrics_route {
    char *route; /* owned */
    int status;
    uint64_t count;
} metrics_route_t;

/* What a worker reports as "now" rather than counts: [0] the primary's pool, [1] the replica's. */
typedef struct metrics_gauges {
    unsigned db_open[2], db_in_use[2], db_waiting[2];
    uint64_t db_errors[2], db_queries[2], db_retries[2], db_stale[2];
    uint64_t inflight, reloads_ok, reloads_failed, log_dropped, conns_flooded, framing_refused;
} metrics_gauges_t;

typedef struct metrics {
    pthread_mutex_t lock;
    metrics_route_t routes[METRICS_MAX_ROUTES];
    size_t nroutes;
    uint64_t buckets[METRICS_NBUCKETS]; /* cumulative only when rendered */
    uint64_t count;
    double sum_ms;
    metrics_gauges_t gauges; /* published by the owner every tick */
} metrics_t;

void metrics_init(metrics_t *m);

/* Counts one answered request (owner thread). Routes past METRICS_MAX_ROUTES count as "other". */
void metrics_count(metrics_t *m, const char *route, size_t route_len, int status, double duration_ms);

/* Replaces the gauges of m with *g (owner thread). */
void metrics_publish(metrics_t *m, const metrics_gauges_t *g);

/* Appends the Prometheus text exposition of the metrics of all workers (all[0..n)) to out. */
void metrics_render(log_buf_t *out, metrics_t *const *all, int n);

/* Appends the figures of the process's shared stores (h2lua.shared): capacity, bytes used, entries
 * and evictions, labelled by store. Nothing when there are none. */
struct shared_store_list;
void metrics_render_shared(log_buf_t *out, const struct shared_store_list *stores);

/*
 * Appends one EMF JSON line for the minute since the previous call (counters as deltas, gauges as
 * now) to out. `prev` keeps the totals of the previous call; it starts zeroed.
 */
typedef struct metrics_totals {
    uint64_t requests, errors_4xx, errors_5xx, db_errors, count;
    double sum_ms;
} metrics_totals_t;
void metrics_emf(log_buf_t *out, metrics_t *const *all, int n, metrics_totals_t *prev);

#endif
