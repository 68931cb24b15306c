/*
 * app_metrics — the application's own metrics (h2lua.metrics, metrics_api.h): counters, gauges and
 * histograms with labels, kept by the process rather than by a Lua state, so that they are the
 * same for every worker and outlive hot reloads.
 *
 * SHARED by all workers: one registry per process. Declaring a metric and creating a series (a
 * label set met for the first time) take the registry's mutex, as rendering does; recording into a
 * series is lock-free (C11 atomics on the series' cells: a compare-and-swap for a float sum, a
 * fetch-add for a bucket), so a worker that holds a series pointer never waits. Metrics and series
 * are never freed before app_metrics_free, so their pointers stay valid for the process's life.
 * Out of memory aborts (util_malloc).
 */
#ifndef H2LUA_APP_METRICS_H
#define H2LUA_APP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum { APP_METRIC_COUNTER = 0, APP_METRIC_GAUGE, APP_METRIC_HISTOGRAM };

#define APP_METRICS_MAX 256         /* metrics per process */
#define APP_METRICS_MAX_SERIES 1000 /* label sets per metric; observations of more are dropped */
#define APP_METRICS_MAX_LABELS 8
#define APP_METRICS_MAX_BUCKETS 32
#define APP_METRICS_NAME_MAX 128  /* bytes of a metric's name */
#define APP_METRICS_LABEL_MAX 64  /* bytes of a label's name */
#define APP_METRICS_VALUE_MAX 256 /* bytes of a label's value */
#define APP_METRICS_HELP_MAX 1024 /* bytes of a help text */

/* Error code of app_metrics_declare: a bad name, label, bucket or help, or a conflict. */
#define APP_METRICS_EINVAL (-22)

typedef struct app_metrics app_metrics_t;
typedef struct app_metric app_metric_t;
typedef struct app_series app_series_t;

/* A registry with no metric. */
app_metrics_t *app_metrics_new(void);

/* Frees the registry, its metrics and their series; no other thread may use them any more. */
void app_metrics_free(app_metrics_t *r);

/*
 * The metric `name` of `type` with help text, label names (nlabels, in order) and, for a
 * histogram, bucket upper bounds (nbuckets, strictly ascending, finite; +Inf is implied); created
 * the first time, the same metric when it exists with the same type, labels and buckets (its help
 * then becomes this one). Returns 0 and the metric in *out, or APP_METRICS_EINVAL with one line for
 * people in err: a name that is not [a-zA-Z_][a-zA-Z0-9_]* or starts with "h2lua_" (the core's) or
 * "__"; a label name likewise, or "le" (histograms), "Service" (the EMF dimension), the metric's
 * name, repeated; a help that is not UTF-8 or too long; buckets not ascending; the metric existing
 * with another type, labels or buckets; a name taken by a histogram's _bucket/_sum/_count series
 * (or the other way round); more than APP_METRICS_MAX metrics.
 */
int app_metrics_declare(app_metrics_t *r, int type, const char *name, const char *help, size_t help_len,
                        const char *const *labels, size_t nlabels, const double *buckets, size_t nbuckets, app_metric_t **out,
                        char *err, size_t errlen);

int app_metric_type(const app_metric_t *m);
const char *app_metric_name(const app_metric_t *m);
size_t app_metric_nlabels(const app_metric_t *m);
const char *app_metric_label(const app_metric_t *m, size_t i);

/*
 * The series of m with the label values values[0..nlabels) (lens[i] bytes each; the caller has
 * checked them: valid UTF-8, at most APP_METRICS_VALUE_MAX bytes). When there is none: with
 * create, a new one — unless m has APP_METRICS_MAX_SERIES already: then NULL, the observation is
 * counted as dropped and *first_drop is set to 1 the first time it happens to m (else 0); without
 * create, NULL. An unlabelled metric has one series (nlabels 0).
 */
app_series_t *app_metric_series(app_metric_t *m, const char *const *values, const size_t *lens, int create, int *first_drop);

/* Adds v to a counter's or gauge's value (any thread; lock-free). */
void app_series_add(app_series_t *s, double v);
/* Sets a gauge's value (any thread; lock-free). */
void app_series_set(app_series_t *s, double v);
/* Counts v in a histogram's bucket, sum and count (any thread; lock-free). */
void app_series_observe(app_series_t *s, double v);
/* A counter's or gauge's value; a histogram's sum. */
double app_series_value(const app_series_t *s);
/* A histogram's count of observations (0 for the others). */
uint64_t app_series_count(const app_series_t *s);

/* Observations dropped so far because m had APP_METRICS_MAX_SERIES label sets. */
uint64_t app_metric_dropped(app_metric_t *m);

/*
 * Appends the Prometheus text exposition of every metric (# HELP, # TYPE, its series) and of
 * h2lua_app_metrics_dropped_total{metric=...} to out.
 */
void app_metrics_render(app_metrics_t *r, log_buf_t *out);

/*
 * Appends the CloudWatch EMF lines since the previous call to out, in the core's form (namespace
 * "h2lua", dimension Service="h2lua"), one line per series with its labels as more dimensions:
 * a counter as its increase since the previous call, a gauge as its value, a histogram as
 * <name>_count and <name>_sum increases. Counters and histograms that did not change are not
 * written. One caller at a time (the EMF timer), it keeps the previous values in the series.
 */
void app_metrics_emf(app_metrics_t *r, log_buf_t *out, uint64_t timestamp_ms);

#endif
