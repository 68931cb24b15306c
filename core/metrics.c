#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "shared_store.h"
#include "util.h"

/* upper bounds of the latency buckets, in milliseconds; the last is +Inf */
static const double bucket_ms[METRICS_NBUCKETS - 1] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};

void metrics_init(metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
}

void metrics_count(metrics_t *m, const char *route, size_t route_len, int status, double ms)
{
    size_t b = 0;
    while (b < METRICS_NBUCKETS - 1 && ms > bucket_ms[b])
        ++b;
    pthread_mutex_lock(&m->lock);
    ++m->buckets[b];
    ++m->count;
    m->sum_ms += ms;
    size_t i;
    for (i = 0; i < m->nroutes; ++i)
        if (m->routes[i].status == status && strlen(m->routes[i].route) == route_len &&
            memcmp(m->routes[i].route, route, route_len) == 0)
            break;
    if (i == m->nroutes) {
        if (m->nroutes == METRICS_MAX_ROUTES - 1) {
            route = "other", route_len = 5;
            for (i = 0; i < m->nroutes; ++i)
                if (m->routes[i].status == status && strcmp(m->routes[i].route, "other") == 0)
                    break;
        }
        if (i == m->nroutes && m->nroutes < METRICS_MAX_ROUTES) {
            m->routes[i].route = util_strndup(route, route_len);
            m->routes[i].status = status;
            m->routes[i].count = 0;
            ++m->nroutes;
        }
    }
    if (i < m->nroutes)
        ++m->routes[i].count;
    pthread_mutex_unlock(&m->lock);
}

void metrics_publish(metrics_t *m, const metrics_gauges_t *g)
{
    pthread_mutex_lock(&m->lock);
    m->gauges = *g;
    pthread_mutex_unlock(&m->lock);
}

/* Appends s as a Prometheus label value. */
static void label(log_buf_t *out, const char *s)
{
    for (; *s != '\0'; ++s) {
        if (*s == '"' || *s == '\\')
            log_buf_append(out, "\\", 1);
        if (*s == '\n')
            log_buf_append(out, "\\n", 2);
        else
            log_buf_append(out, s, 1);
    }
}

void metrics_render(log_buf_t *out, metrics_t *const *all_metrics, int n)
{
    /* merge the routes of all workers */
    metrics_route_t *all = util_malloc(sizeof(*all) * METRICS_MAX_ROUTES * (size_t)n);
    size_t nall = 0;
    uint64_t buckets[METRICS_NBUCKETS] = {0}, count = 0, inflight = 0, reloads_ok = 0, reloads_failed = 0, dropped = 0;
    uint64_t flooded = 0, framing = 0;
    uint64_t db_open[2] = {0}, db_in_use[2] = {0}, db_waiting[2] = {0}, db_errors[2] = {0}, db_queries[2] = {0};
    uint64_t db_retries[2] = {0}, db_stale[2] = {0};
    double sum = 0;
    for (int w = 0; w < n; ++w) {
        metrics_t *m = all_metrics[w];
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->nroutes; ++i) {
            size_t j;
            for (j = 0; j < nall; ++j)
                if (all[j].status == m->routes[i].status && strcmp(all[j].route, m->routes[i].route) == 0)
                    break;
            if (j == nall) {
                all[j].route = util_strdup(m->routes[i].route);
                all[j].status = m->routes[i].status;
                all[j].count = 0;
                ++nall;
            }
            all[j].count += m->routes[i].count;
        }
        for (int b = 0; b < METRICS_NBUCKETS; ++b)
            buckets[b] += m->buckets[b];
        count += m->count;
        sum += m->sum_ms;
        inflight += m->gauges.inflight;
        reloads_ok += m->gauges.reloads_ok;
        reloads_failed += m->gauges.reloads_failed;
        dropped += m->gauges.log_dropped;
        flooded += m->gauges.conns_flooded;
        framing += m->gauges.framing_refused;
        for (int i = 0; i < 2; ++i) {
            db_open[i] += m->gauges.db_open[i];
            db_in_use[i] += m->gauges.db_in_use[i];
            db_waiting[i] += m->gauges.db_waiting[i];
            db_errors[i] += m->gauges.db_errors[i];
            db_queries[i] += m->gauges.db_queries[i];
            db_retries[i] += m->gauges.db_retries[i];
            db_stale[i] += m->gauges.db_stale[i];
        }
        pthread_mutex_unlock(&m->lock);
    }

    log_buf_appendz(out, "# HELP h2lua_build_info Build of the running server.\n# TYPE h2lua_build_info gauge\n");
    log_buf_printf(out, "h2lua_build_info{version=\"%s\",workers=\"%d\"} 1\n", H2LUA_VERSION, n);
    log_buf_appendz(out, "# HELP h2lua_requests_total Requests answered, by route and status.\n"
                         "# TYPE h2lua_requests_total counter\n");
    for (size_t j = 0; j < nall; ++j) {
        log_buf_appendz(out, "h2lua_requests_total{route=\"");
        label(out, all[j].route);
        log_buf_printf(out, "\",status=\"%d\"} %llu\n", all[j].status, (unsigned long long)all[j].count);
        free(all[j].route);
    }
    free(all);
    log_buf_appendz(out, "# HELP h2lua_request_duration_seconds Time from the request's start to its log line.\n"
                         "# TYPE h2lua_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < METRICS_NBUCKETS; ++b) {
        cum += buckets[b];
        if (b < METRICS_NBUCKETS - 1)
            log_buf_printf(out, "h2lua_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_ms[b] / 1000.0,
                           (unsigned long long)cum);
        else
            log_buf_printf(out, "h2lua_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    log_buf_printf(out, "h2lua_request_duration_seconds_sum %.6f\nh2lua_request_duration_seconds_count %llu\n", sum / 1000.0,
                   (unsigned long long)count);
    log_buf_printf(out,
                   "# HELP h2lua_inflight_requests Requests whose handler is running.\n"
                   "# TYPE h2lua_inflight_requests gauge\nh2lua_inflight_requests %llu\n",
                   (unsigned long long)inflight);
    static const char *const dbname[2] = {"primary", "replica"};
    log_buf_appendz(out, "# HELP h2lua_db_connections Database connections by pool and state.\n"
                         "# TYPE h2lua_db_connections gauge\n");
    for (int i = 0; i < 2; ++i)
        log_buf_printf(out,
                       "h2lua_db_connections{db=\"%s\",state=\"open\"} %llu\n"
                       "h2lua_db_connections{db=\"%s\",state=\"in_use\"} %llu\n",
                       dbname[i], (unsigned long long)db_open[i], dbname[i], (unsigned long long)db_in_use[i]);
    log_buf_appendz(out, "# HELP h2lua_db_waiting Queries waiting for a connection.\n# TYPE h2lua_db_waiting gauge\n");
    for (int i = 0; i < 2; ++i)
        log_buf_printf(out, "h2lua_db_waiting{db=\"%s\"} %llu\n", dbname[i], (unsigned long long)db_waiting[i]);
    log_buf_appendz(out, "# HELP h2lua_db_errors_total Failed queries and connects.\n# TYPE h2lua_db_errors_total counter\n");
    for (int i = 0; i < 2; ++i)
        log_buf_printf(out, "h2lua_db_errors_total{db=\"%s\"} %llu\n", dbname[i], (unsigned long long)db_errors[i]);
    log_buf_appendz(out, "# HELP h2lua_db_queries_total Statements sent.\n# TYPE h2lua_db_queries_total counter\n");
    for (int i = 0; i < 2; ++i)
        log_buf_printf(out, "h2lua_db_queries_total{db=\"%s\"} %llu\n", dbname[i], (unsigned long long)db_queries[i]);
    log_buf_appendz(out, "# HELP h2lua_db_retries_total Statements run again on a fresh connection after theirs died.\n"
                         "# TYPE h2lua_db_retries_total counter\n");
    for (int i = 0; i < 2; ++i)
        log_buf_printf(out, "h2lua_db_retries_total{db=\"%s\"} %llu\n", dbname[i], (unsigned long long)db_retries[i]);
    log_buf_appendz(out, "# HELP h2lua_db_stale_total Pooled connections found dead before a statement was sent on them.\n"
                         "# TYPE h2lua_db_stale_total counter\n");
    for (int i = 0; i < 2; ++i)
        log_buf_printf(out, "h2lua_db_stale_total{db=\"%s\"} %llu\n", dbname[i], (unsigned long long)db_stale[i]);
    log_buf_printf(out,
                   "# HELP h2lua_connections_flooded_total Connections closed for keeping more handlers running than"
                   " the limit (HTTP/2 streams reset while their handlers ran on).\n"
                   "# TYPE h2lua_connections_flooded_total counter\nh2lua_connections_flooded_total %llu\n",
                   (unsigned long long)flooded);
    log_buf_printf(out,
                   "# HELP h2lua_requests_refused_framing_total HTTP/1 requests refused (400, connection closed) for"
                   " framing that could be read two ways: repeated Content-Length or Host, Content-Length with"
                   " Transfer-Encoding.\n"
                   "# TYPE h2lua_requests_refused_framing_total counter\nh2lua_requests_refused_framing_total %llu\n",
                   (unsigned long long)framing);
    log_buf_printf(out,
                   "# HELP h2lua_log_lines_dropped_total Access log lines dropped because stdout did not take them.\n"
                   "# TYPE h2lua_log_lines_dropped_total counter\nh2lua_log_lines_dropped_total %llu\n",
                   (unsigned long long)dropped);
    log_buf_printf(out,
                   "# HELP h2lua_reloads_total Reloads of scripts and views, by outcome.\n"
                   "# TYPE h2lua_reloads_total counter\n"
                   "h2lua_reloads_total{outcome=\"ok\"} %llu\nh2lua_reloads_total{outcome=\"refused\"} %llu\n",
                   (unsigned long long)reloads_ok, (unsigned long long)reloads_failed);
}

void metrics_render_shared(log_buf_t *out, const shared_store_list_t *stores)
{
    if (stores == NULL || stores->n == 0)
        return;
    shared_store_stats_t *st = util_malloc(sizeof(*st) * stores->n);
    for (size_t i = 0; i < stores->n; ++i)
        shared_store_get_stats(stores->stores[i], &st[i]);
    static const struct {
        const char *name, *type, *help;
    } series[] = {
        {"h2lua_shared_capacity_bytes", "gauge", "Declared size of each shared store (SHARED_STORES)."},
        {"h2lua_shared_used_bytes", "gauge", "Bytes of each shared store in use: its index and its entries."},
        {"h2lua_shared_entries", "gauge", "Entries in each shared store (expired ones not yet removed included)."},
        {"h2lua_shared_evictions_total", "counter", "Valid entries evicted (least recently used) to make room."},
    };
    for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); ++k) {
        log_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", series[k].name, series[k].help, series[k].name, series[k].type);
        for (size_t i = 0; i < stores->n; ++i) {
            unsigned long long v = k == 0 ? st[i].capacity : k == 1 ? st[i].used : k == 2 ? st[i].entries : st[i].evictions;
            log_buf_printf(out, "%s{store=\"", series[k].name);
            label(out, shared_store_name(stores->stores[i]));
            log_buf_printf(out, "\"} %llu\n", v);
        }
    }
    free(st);
}

void metrics_emf(log_buf_t *out, metrics_t *const *all_metrics, int n, metrics_totals_t *prev)
{
    metrics_totals_t now = {0};
    uint64_t in_use = 0, waiting = 0, inflight = 0, count = 0;
    double sum = 0;
    for (int w = 0; w < n; ++w) {
        metrics_t *m = all_metrics[w];
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->nroutes; ++i) {
            now.requests += m->routes[i].count;
            if (m->routes[i].status >= 500)
                now.errors_5xx += m->routes[i].count;
            else if (m->routes[i].status >= 400)
                now.errors_4xx += m->routes[i].count;
        }
        count += m->count;
        sum += m->sum_ms;
        now.db_errors += m->gauges.db_errors[0] + m->gauges.db_errors[1];
        in_use += m->gauges.db_in_use[0] + m->gauges.db_in_use[1];
        waiting += m->gauges.db_waiting[0] + m->gauges.db_waiting[1];
        inflight += m->gauges.inflight;
        pthread_mutex_unlock(&m->lock);
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    log_buf_printf(out,
                   "{\"_aws\":{\"Timestamp\":%llu,\"CloudWatchMetrics\":[{\"Namespace\":\"h2lua\","
                   "\"Dimensions\":[[\"Service\"]],\"Metrics\":["
                   "{\"Name\":\"Requests\",\"Unit\":\"Count\"},{\"Name\":\"Errors4xx\",\"Unit\":\"Count\"},"
                   "{\"Name\":\"Errors5xx\",\"Unit\":\"Count\"},{\"Name\":\"DbErrors\",\"Unit\":\"Count\"},"
                   "{\"Name\":\"DbConnectionsInUse\",\"Unit\":\"Count\"},{\"Name\":\"DbWaiting\",\"Unit\":\"Count\"},"
                   "{\"Name\":\"InflightRequests\",\"Unit\":\"Count\"},{\"Name\":\"MeanLatencyMs\",\"Unit\":\"Milliseconds\"}"
                   "]}]},\"Service\":\"h2lua\",\"Requests\":%llu,\"Errors4xx\":%llu,\"Errors5xx\":%llu,"
                   "\"DbErrors\":%llu,\"DbConnectionsInUse\":%llu,\"DbWaiting\":%llu,\"InflightRequests\":%llu,"
                   "\"MeanLatencyMs\":%.3f}\n",
                   (unsigned long long)tv.tv_sec * 1000ULL + (unsigned long long)tv.tv_usec / 1000ULL,
                   (unsigned long long)(now.requests - prev->requests), (unsigned long long)(now.errors_4xx - prev->errors_4xx),
                   (unsigned long long)(now.errors_5xx - prev->errors_5xx),
                   (unsigned long long)(now.db_errors - prev->db_errors), (unsigned long long)in_use,
                   (unsigned long long)waiting, (unsigned long long)inflight,
                   count > prev->count ? (sum - prev->sum_ms) / (double)(count - prev->count) : 0.0);
    now.count = count;
    now.sum_ms = sum;
    *prev = now;
}
