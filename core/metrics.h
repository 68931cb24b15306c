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

struct worker;

typedef struct metrics_route {
    char *route; /* owned */
    int status;
    uint64_t count;
} metrics_route_t;

typedef struct metrics {
    pthread_mutex_t lock;
    metrics_route_t routes[METRICS_MAX_ROUTES];
    size_t nroutes;
    uint64_t buckets[METRICS_NBUCKETS]; /* cumulative only when rendered */
    uint64_t count;
    double sum_ms;
    /* gauges published by the owner every tick */
    unsigned db_open[2], db_in_use[2], db_waiting[2];
    uint64_t db_errors[2], db_queries[2], db_retries[2], db_stale[2];
    uint64_t inflight, reloads_ok, reloads_failed, log_dropped;
} metrics_t;

void metrics_init(metrics_t *m);

/* Counts one answered request (owner thread). Routes past METRICS_MAX_ROUTES count as "other". */
void metrics_count(metrics_t *m, const char *route, size_t route_len, int status, double duration_ms);

/* Copies the worker's gauges (pools, in-flight, reloads) into its metrics (owner thread). */
void metrics_publish(struct worker *w);

/* Appends the Prometheus text exposition of all workers to out. */
void metrics_render(log_buf_t *out, struct worker *workers, int nworkers);

/*
 * Appends one EMF JSON line for the minute since the previous call (counters as deltas, gauges as
 * now) to out. `prev` keeps the totals of the previous call; it starts zeroed.
 */
typedef struct metrics_totals {
    uint64_t requests, errors_4xx, errors_5xx, db_errors, count;
    double sum_ms;
} metrics_totals_t;
void metrics_emf(log_buf_t *out, struct worker *workers, int nworkers, metrics_totals_t *prev);

#endif
