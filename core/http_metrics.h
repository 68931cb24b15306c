/*
 * http_metrics — /metrics, Prometheus text for a request with METRICS_TOKEN as a bearer token,
 * 401 without it; with no token configured the request passes on.
 */
#ifndef H2LUA_HTTP_METRICS_H
#define H2LUA_HTTP_METRICS_H

#include <h2o.h>

struct worker;

void http_metrics_register(h2o_pathconf_t *pathconf);

/* Copies the worker's gauges (pools, in-flight, reloads, dropped log lines) into its metrics. Runs on the worker's thread;
 * can't fail. */
void http_metrics_publish(struct worker *w);

#endif
