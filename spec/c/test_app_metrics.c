/* Unit tests of core/app_metrics.c: declaring (names, labels, buckets, help, conflicts, the same
 * metric again), series and the label-set cap, values recorded from several threads at once, and
 * the Prometheus text and EMF lines rendered from them. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "app_metrics.h"
#include "check.h"

static app_metric_t *declare(app_metrics_t *r, int type, const char *name, const char *const *labels, size_t nlabels,
                             const double *buckets, size_t nbuckets, char *err)
{
    app_metric_t *m = NULL;
    err[0] = '\0';
    if (app_metrics_declare(r, type, name, "help", 4, labels, nlabels, buckets, nbuckets, &m, err, 512) != 0)
        return NULL;
    return m;
}

static int rendered_has(app_metrics_t *r, const char *s)
{
    log_buf_t b = {0};
    app_metrics_render(r, &b);
    log_buf_append(&b, "", 1);
    int found = strstr(b.data, s) != NULL;
    if (!found)
        fprintf(stderr, "not in the rendering: %s\n%s", s, b.data);
    log_buf_free(&b);
    return found;
}

static void test_declare(void)
{
    app_metrics_t *r = app_metrics_new();
    char err[512];
    const char *l1[] = {"method"}, *l2[] = {"method", "status"}, *dup[] = {"a", "a"}, *le[] = {"le"};
    double b[] = {0.1, 1, 10}, down[] = {1, 0.5}, same[] = {1, 1};
    app_metric_t *c = declare(r, APP_METRIC_COUNTER, "hits_total", l1, 1, NULL, 0, err);
    CHECK(c != NULL);
    /* the same again: the same metric */
    CHECK(declare(r, APP_METRIC_COUNTER, "hits_total", l1, 1, NULL, 0, err) == c);
    /* another type, other labels: refused, naming what it is */
    CHECK(declare(r, APP_METRIC_GAUGE, "hits_total", l1, 1, NULL, 0, err) == NULL);
    CHECK(strstr(err, "already a counter with labels (method)") != NULL);
    CHECK(declare(r, APP_METRIC_COUNTER, "hits_total", l2, 2, NULL, 0, err) == NULL);
    CHECK(declare(r, APP_METRIC_COUNTER, "hits_total", NULL, 0, NULL, 0, err) == NULL);
    /* names */
    CHECK(declare(r, APP_METRIC_COUNTER, "h2lua_requests_total", NULL, 0, NULL, 0, err) == NULL);
    CHECK(strstr(err, "h2lua_") != NULL);
    CHECK(declare(r, APP_METRIC_COUNTER, "1abc", NULL, 0, NULL, 0, err) == NULL);
    CHECK(declare(r, APP_METRIC_COUNTER, "a-b", NULL, 0, NULL, 0, err) == NULL);
    CHECK(declare(r, APP_METRIC_COUNTER, "a:b", NULL, 0, NULL, 0, err) == NULL);
    CHECK(declare(r, APP_METRIC_COUNTER, "", NULL, 0, NULL, 0, err) == NULL);
    CHECK(declare(r, APP_METRIC_COUNTER, "__x", NULL, 0, NULL, 0, err) == NULL);
    /* labels */
    CHECK(declare(r, APP_METRIC_COUNTER, "x_total", dup, 2, NULL, 0, err) == NULL);
    CHECK(strstr(err, "twice") != NULL);
    const char *bad[] = {"a b"};
    CHECK(declare(r, APP_METRIC_COUNTER, "x_total", bad, 1, NULL, 0, err) == NULL);
    CHECK(declare(r, APP_METRIC_HISTOGRAM, "lat", le, 1, b, 3, err) == NULL);
    CHECK(strstr(err, "reserved") != NULL);
    CHECK(declare(r, APP_METRIC_COUNTER, "y_total", le, 1, NULL, 0, err) != NULL); /* le is only a histogram's */
    /* buckets */
    CHECK(declare(r, APP_METRIC_HISTOGRAM, "lat", NULL, 0, down, 2, err) == NULL);
    CHECK(strstr(err, "ascending") != NULL);
    CHECK(declare(r, APP_METRIC_HISTOGRAM, "lat", NULL, 0, same, 2, err) == NULL);
    CHECK(declare(r, APP_METRIC_HISTOGRAM, "lat", NULL, 0, b, 0, err) == NULL);
    app_metric_t *h = declare(r, APP_METRIC_HISTOGRAM, "lat", NULL, 0, b, 3, err);
    CHECK(h != NULL);
    CHECK(declare(r, APP_METRIC_HISTOGRAM, "lat", NULL, 0, b, 2, err) == NULL);
    /* a histogram's series names are taken, both ways round */
    CHECK(declare(r, APP_METRIC_COUNTER, "lat_count", NULL, 0, NULL, 0, err) == NULL);
    CHECK(declare(r, APP_METRIC_GAUGE, "hits", NULL, 0, NULL, 0, err) != NULL);
    CHECK(declare(r, APP_METRIC_HISTOGRAM, "hits", NULL, 0, b, 3, err) == NULL); /* the gauge named hits */
    CHECK(declare(r, APP_METRIC_GAUGE, "q_sum", NULL, 0, NULL, 0, err) != NULL);
    CHECK(declare(r, APP_METRIC_HISTOGRAM, "q", NULL, 0, b, 3, err) == NULL);
    /* help: not UTF-8 */
    app_metric_t *m;
    CHECK(app_metrics_declare(r, APP_METRIC_GAUGE, "g", "\xff", 1, NULL, 0, NULL, 0, &m, err, sizeof(err)) != 0);
    /* help escaped in the rendering */
    CHECK(app_metrics_declare(r, APP_METRIC_GAUGE, "g", "a\\b\nc", 5, NULL, 0, NULL, 0, &m, err, sizeof(err)) == 0);
    CHECK(rendered_has(r, "# HELP g a\\\\b\\nc\n# TYPE g gauge\n"));
    app_metrics_free(r);
}

static void test_cap(void)
{
    app_metrics_t *r = app_metrics_new();
    char err[512];
    const char *l[] = {"id"};
    app_metric_t *c = declare(r, APP_METRIC_COUNTER, "ids_total", l, 1, NULL, 0, err);
    int first = 0, firsts = 0;
    for (int i = 0; i < APP_METRICS_MAX_SERIES + 5; ++i) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        const char *vals[] = {v};
        size_t lens[] = {strlen(v)};
        app_series_t *s = app_metric_series(c, vals, lens, 1, &first);
        firsts += first;
        CHECK((s != NULL) == (i < APP_METRICS_MAX_SERIES));
        if (s != NULL)
            app_series_add(s, 1);
    }
    CHECK(firsts == 1);
    CHECK(app_metric_dropped(c) == 5);
    CHECK(rendered_has(r, "h2lua_app_metrics_dropped_total{metric=\"ids_total\"} 5\n"));
    /* a known label set is still found */
    const char *vals[] = {"7"};
    size_t lens[] = {1};
    app_series_t *s = app_metric_series(c, vals, lens, 0, &first);
    CHECK(s != NULL && app_series_value(s) == 1);
    app_metrics_free(r);
}

struct hammer {
    app_series_t *counter, *gauge, *hist;
};

static void *hammer(void *p)
{
    struct hammer *h = p;
    for (int i = 0; i < 100000; ++i) {
        app_series_add(h->counter, 1);
        app_series_add(h->gauge, 0.5);
        app_series_observe(h->hist, (double)(i % 4)); /* 0, 1, 2, 3 */
    }
    return NULL;
}

static void test_threads_and_render(void)
{
    app_metrics_t *r = app_metrics_new();
    char err[512];
    const char *l[] = {"kind"};
    double b[] = {0.5, 2};
    app_metric_t *c = declare(r, APP_METRIC_COUNTER, "made_total", l, 1, NULL, 0, err);
    app_metric_t *g = declare(r, APP_METRIC_GAUGE, "level", NULL, 0, NULL, 0, err);
    app_metric_t *h = declare(r, APP_METRIC_HISTOGRAM, "size", l, 1, b, 2, err);
    int first;
    const char *vals[] = {"a \"q\" \\ \n"};
    size_t lens[] = {strlen(vals[0])};
    struct hammer hm = {app_metric_series(c, vals, lens, 1, &first), app_metric_series(g, NULL, NULL, 1, &first),
                        app_metric_series(h, vals, lens, 1, &first)};
    pthread_t t[4];
    for (int i = 0; i < 4; ++i)
        pthread_create(&t[i], NULL, hammer, &hm);
    for (int i = 0; i < 4; ++i)
        pthread_join(t[i], NULL);
    CHECK(app_series_value(hm.counter) == 400000);
    CHECK(app_series_value(hm.gauge) == 200000);
    CHECK(app_series_count(hm.hist) == 400000);
    CHECK(app_series_value(hm.hist) == 600000); /* 4 threads x 25000 x (0+1+2+3) */
    CHECK(rendered_has(r, "# TYPE made_total counter\nmade_total{kind=\"a \\\"q\\\" \\\\ \\n\"} 400000\n"));
    CHECK(rendered_has(r, "level 200000\n"));
    /* buckets are cumulative: <=0.5 holds the 0s, <=2 the 0s, 1s and 2s */
    CHECK(rendered_has(r, "size_bucket{kind=\"a \\\"q\\\" \\\\ \\n\",le=\"0.5\"} 100000\n"));
    CHECK(rendered_has(r, "size_bucket{kind=\"a \\\"q\\\" \\\\ \\n\",le=\"2\"} 300000\n"));
    CHECK(rendered_has(r, "size_bucket{kind=\"a \\\"q\\\" \\\\ \\n\",le=\"+Inf\"} 400000\n"));
    CHECK(rendered_has(r, "size_sum{kind=\"a \\\"q\\\" \\\\ \\n\"} 600000\n"));
    CHECK(rendered_has(r, "size_count{kind=\"a \\\"q\\\" \\\\ \\n\"} 400000\n"));
    app_series_set(hm.gauge, 0.1);
    CHECK(rendered_has(r, "level 0.1\n"));

    /* EMF: counters and histograms as increases, written only when changed; gauges always */
    log_buf_t e = {0};
    app_metrics_emf(r, &e, 1234);
    log_buf_append(&e, "", 1);
    CHECK(strstr(e.data,
                 "\"Dimensions\":[[\"Service\",\"kind\"]],\"Metrics\":[{\"Name\":\"made_total\",\"Unit\":\"Count\"}]}]},"
                 "\"Service\":\"h2lua\",\"kind\":\"a \\\"q\\\" \\\\ \\n\",\"made_total\":400000}\n") != NULL);
    CHECK(strstr(e.data, "\"level\":0.1}") != NULL);
    CHECK(strstr(e.data, "\"size_count\":400000,\"size_sum\":600000}") != NULL);
    CHECK(strstr(e.data, "\"Timestamp\":1234,") != NULL);
    log_buf_free(&e);
    app_series_add(hm.counter, 2);
    app_metrics_emf(r, &e, 1235);
    log_buf_append(&e, "", 1);
    CHECK(strstr(e.data, "\"made_total\":2}") != NULL);
    CHECK(strstr(e.data, "size_count") == NULL);
    CHECK(strstr(e.data, "\"level\":0.1}") != NULL);
    log_buf_free(&e);
    app_metrics_free(r);
}

int main(void)
{
    test_declare();
    test_cap();
    test_threads_and_render();
    return CHECK_DONE();
}
