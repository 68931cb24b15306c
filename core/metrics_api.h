/*
 * metrics_api — the module `h2lua.metrics` the application requires, backed by app_metrics (the
 * process's registry: shared by the workers, kept across reloads, exported on /metrics and in the
 * EMF lines). Never yields: callable anywhere.
 *
 *   metrics.counter(name, help [, labelnames])            -> a counter
 *   metrics.gauge(name, help [, labelnames])              -> a gauge
 *   metrics.histogram(name, help, buckets [, labelnames]) -> a histogram
 *       name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with h2lua_ (the core's) nor __; labelnames: an
 *       array of label names; buckets: an array of ascending finite upper bounds (+Inf implied).
 *       Declaring again what exists with the same type, labels and buckets (the same app.lua in
 *       another worker, or after a reload) gives the same metric; anything else raises (the
 *       rules: app_metrics_declare).
 *   c:inc([n] [, labels])     counter, gauge: adds n (default 1; a counter's n >= 0), finite
 *   g:dec([n] [, labels])     gauge: subtracts n (default 1)
 *   g:set(v [, labels])       gauge: sets v, finite
 *   h:observe(v [, labels])   histogram: counts v (finite) in its bucket, the sum and the count
 *   m:value([labels])         counter, gauge: the value (0 before any); histogram: sum, count
 *       labels: a table name -> value (strings, or numbers as Lua writes them), read raw (no
 *       metamethod runs), with exactly the declared names; values of at most APP_METRICS_VALUE_MAX
 *       bytes of UTF-8. Anything else raises. A metric without labels takes none (nil).
 *       A label set past APP_METRICS_MAX_SERIES per metric is not recorded: counted in
 *       h2lua_app_metrics_dropped_total{metric=...}, logged once (warn) per metric.
 * Hot path: a series met before by this Lua state is found in the state's table of the metric
 * object; recording is then lock-free (app_metrics.h).
 */
#ifndef H2LUA_METRICS_API_H
#define H2LUA_METRICS_API_H

#include "lua_compat.h"

struct config;
struct worker;

/* Registers package.preload["h2lua.metrics"]; the preload table is at the top of L's stack. */
void metrics_api_preload(lua_State *L, const struct config *cfg, struct worker *w);

#endif
