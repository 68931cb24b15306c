#include "app_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "util.h"

struct app_series {
    char *key; /* the label values joined by '\xff' (never in UTF-8) */
    size_t key_len;
    char **values;             /* the label values, NUL-terminated copies */
    _Atomic uint64_t value;    /* the bits of a double: a counter's or gauge's value, a histogram's sum */
    _Atomic uint64_t *buckets; /* a histogram's counts per bucket (the last: +Inf), not cumulative */
    const app_metric_t *metric;
    /* the EMF writer's (under the registry's mutex) */
    double emf_value;
    uint64_t emf_count;
};

struct app_metric {
    int type;
    char *name;
    char *help;
    char **labels;
    size_t nlabels;
    double *buckets;
    size_t nbuckets;
    app_series_t **series; /* under the registry's mutex */
    size_t nseries;
    uint64_t dropped; /* under the registry's mutex */
    pthread_mutex_t *lock;
};

struct app_metrics {
    pthread_mutex_t lock;
    app_metric_t *metrics[APP_METRICS_MAX];
    size_t n;
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

app_metrics_t *app_metrics_new(void)
{
    app_metrics_t *r = util_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void series_free(app_series_t *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; ++i)
        free(s->values[i]);
    free(s->values);
    free((void *)s->buckets);
    free(s->key);
    free(s);
}

void app_metrics_free(app_metrics_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; ++i) {
        app_metric_t *m = r->metrics[i];
        for (size_t j = 0; j < m->nseries; ++j)
            series_free(m->series[j], m->nlabels);
        for (size_t j = 0; j < m->nlabels; ++j)
            free(m->labels[j]);
        free(m->series);
        free(m->labels);
        free(m->buckets);
        free(m->name);
        free(m->help);
        free(m);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* [a-zA-Z_][a-zA-Z0-9_]* of 1 to max bytes */
static int is_name(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len == 0 || len > max || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; ++i) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static int has_suffix(const char *s, const char *stem, const char *suffix)
{
    size_t n = strlen(stem);
    return strncmp(s, stem, n) == 0 && strcmp(s + n, suffix) == 0;
}

/* A series name of histogram h that is also the name `name`. */
static int histogram_series_named(const app_metric_t *h, const char *name)
{
    return h->type == APP_METRIC_HISTOGRAM &&
           (has_suffix(name, h->name, "_bucket") || has_suffix(name, h->name, "_sum") || has_suffix(name, h->name, "_count"));
}

static void describe(const app_metric_t *m, char *buf, size_t len)
{
    int n = snprintf(buf, len, "a %s with labels (", type_names[m->type]);
    for (size_t i = 0; i < m->nlabels && n > 0 && (size_t)n < len; ++i)
        n += snprintf(buf + n, len - (size_t)n, "%s%s", i ? ", " : "", m->labels[i]);
    if (n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ")");
    if (m->type == APP_METRIC_HISTOGRAM && n > 0 && (size_t)n < len) {
        n += snprintf(buf + n, len - (size_t)n, " and buckets (");
        for (size_t i = 0; i < m->nbuckets && n > 0 && (size_t)n < len; ++i)
            n += snprintf(buf + n, len - (size_t)n, "%s%g", i ? ", " : "", m->buckets[i]);
        if (n > 0 && (size_t)n < len)
            snprintf(buf + n, len - (size_t)n, ")");
    }
}

static int same_shape(const app_metric_t *m, int type, const char *const *labels, size_t nlabels, const double *buckets,
                      size_t nbuckets)
{
    if (m->type != type || m->nlabels != nlabels)
        return 0;
    for (size_t i = 0; i < nlabels; ++i)
        if (strcmp(m->labels[i], labels[i]) != 0)
            return 0;
    if (type == APP_METRIC_HISTOGRAM) {
        if (m->nbuckets != nbuckets)
            return 0;
        for (size_t i = 0; i < nbuckets; ++i)
            if (m->buckets[i] != buckets[i])
                return 0;
    }
    return 1;
}

/* Checks what does not depend on the other metrics. */
static int check_shape(int type, const char *name, const char *help, size_t help_len, const char *const *labels, size_t nlabels,
                       const double *buckets, size_t nbuckets, char *err, size_t errlen)
{
    if (type < APP_METRIC_COUNTER || type > APP_METRIC_HISTOGRAM)
        return util_fail(APP_METRICS_EINVAL, err, errlen, "unknown metric type");
    if (!is_name(name, APP_METRICS_NAME_MAX))
        return util_fail(APP_METRICS_EINVAL, err, errlen,
                         "the name '%.*s' is not a metric name ([a-zA-Z_][a-zA-Z0-9_]*, at most %d bytes)", 160, name,
                         APP_METRICS_NAME_MAX);
    if (strncmp(name, "h2lua_", 6) == 0)
        return util_fail(APP_METRICS_EINVAL, err, errlen, "the name '%s' starts with h2lua_, the prefix of the core's metrics",
                         name);
    if (strncmp(name, "__", 2) == 0)
        return util_fail(APP_METRICS_EINVAL, err, errlen, "the name '%s' starts with __ (reserved by Prometheus)", name);
    if (help_len > APP_METRICS_HELP_MAX || !form_utf8_valid(help, help_len) || memchr(help, '\0', help_len) != NULL)
        return util_fail(APP_METRICS_EINVAL, err, errlen, "the help of '%s' must be UTF-8 text of at most %d bytes", name,
                         APP_METRICS_HELP_MAX);
    if (nlabels > APP_METRICS_MAX_LABELS)
        return util_fail(APP_METRICS_EINVAL, err, errlen, "'%s' has more than %d labels", name, APP_METRICS_MAX_LABELS);
    for (size_t i = 0; i < nlabels; ++i) {
        const char *l = labels[i];
        if (!is_name(l, APP_METRICS_LABEL_MAX))
            return util_fail(APP_METRICS_EINVAL, err, errlen,
                             "the label '%.*s' of '%s' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, at most %d bytes)", 80, l,
                             name, APP_METRICS_LABEL_MAX);
        if (strncmp(l, "__", 2) == 0 || strcmp(l, "Service") == 0 || strcmp(l, name) == 0 ||
            (type == APP_METRIC_HISTOGRAM &&
             (strcmp(l, "le") == 0 || has_suffix(l, name, "_count") || has_suffix(l, name, "_sum"))))
            return util_fail(APP_METRICS_EINVAL, err, errlen, "the label name '%s' of '%s' is reserved", l, name);
        for (size_t j = 0; j < i; ++j)
            if (strcmp(labels[j], l) == 0)
                return util_fail(APP_METRICS_EINVAL, err, errlen, "the label '%s' of '%s' is named twice", l, name);
    }
    if (type == APP_METRIC_HISTOGRAM) {
        if (nbuckets < 1 || nbuckets > APP_METRICS_MAX_BUCKETS)
            return util_fail(APP_METRICS_EINVAL, err, errlen, "the histogram '%s' needs 1 to %d buckets", name,
                             APP_METRICS_MAX_BUCKETS);
        for (size_t i = 0; i < nbuckets; ++i) {
            if (!isfinite(buckets[i]))
                return util_fail(APP_METRICS_EINVAL, err, errlen,
                                 "the buckets of '%s' must be finite numbers (+Inf is implied)", name);
            if (i > 0 && !(buckets[i] > buckets[i - 1]))
                return util_fail(APP_METRICS_EINVAL, err, errlen, "the buckets of '%s' must be in ascending order, each once",
                                 name);
        }
    }
    return 0;
}

static app_metric_t *metric_new(int type, const char *name, const char *help, size_t help_len, const char *const *labels,
                                size_t nlabels, const double *buckets, size_t nbuckets, pthread_mutex_t *lock)
{
    app_metric_t *m = util_malloc(sizeof(*m));
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->name = util_strdup(name);
    m->help = util_strndup(help, help_len);
    m->nlabels = nlabels;
    m->labels = util_malloc(sizeof(char *) * (nlabels + 1));
    for (size_t i = 0; i < nlabels; ++i)
        m->labels[i] = util_strdup(labels[i]);
    if (type == APP_METRIC_HISTOGRAM) {
        m->nbuckets = nbuckets;
        m->buckets = util_malloc(sizeof(double) * nbuckets);
        memcpy(m->buckets, buckets, sizeof(double) * nbuckets);
    }
    m->lock = lock;
    return m;
}

int app_metrics_declare(app_metrics_t *r, int type, const char *name, const char *help, size_t help_len,
                        const char *const *labels, size_t nlabels, const double *buckets, size_t nbuckets, app_metric_t **out,
                        char *err, size_t errlen)
{
    int ret = check_shape(type, name, help, help_len, labels, nlabels, buckets, nbuckets, err, errlen);
    if (ret != 0)
        return ret;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; ++i) {
        app_metric_t *m = r->metrics[i];
        if (strcmp(m->name, name) == 0) {
            if (!same_shape(m, type, labels, nlabels, buckets, nbuckets)) {
                char was[512];
                describe(m, was, sizeof(was));
                ret = util_fail(APP_METRICS_EINVAL, err, errlen,
                                "'%s' is already %s; a metric keeps its type, labels and buckets for the life of the process",
                                name, was);
                goto Done;
            }
            if (strlen(m->help) != help_len || memcmp(m->help, help, help_len) != 0) {
                free(m->help);
                m->help = util_strndup(help, help_len);
            }
            *out = m;
            goto Done;
        }
        if (histogram_series_named(m, name) ||
            (type == APP_METRIC_HISTOGRAM && (has_suffix(m->name, name, "_bucket") || has_suffix(m->name, name, "_sum") ||
                                              has_suffix(m->name, name, "_count")))) {
            ret = util_fail(APP_METRICS_EINVAL, err, errlen, "'%s' and the %s '%s' would have series of the same name", name,
                            type_names[m->type], m->name);
            goto Done;
        }
    }
    if (r->n == APP_METRICS_MAX) {
        ret = util_fail(APP_METRICS_EINVAL, err, errlen, "more than %d application metrics", APP_METRICS_MAX);
        goto Done;
    }
    *out = r->metrics[r->n++] = metric_new(type, name, help, help_len, labels, nlabels, buckets, nbuckets, &r->lock);
Done:
    pthread_mutex_unlock(&r->lock);
    return ret;
}

int app_metric_type(const app_metric_t *m)
{
    return m->type;
}

const char *app_metric_name(const app_metric_t *m)
{
    return m->name;
}

size_t app_metric_nlabels(const app_metric_t *m)
{
    return m->nlabels;
}

const char *app_metric_label(const app_metric_t *m, size_t i)
{
    return m->labels[i];
}

app_series_t *app_metric_series(app_metric_t *m, const char *const *values, const size_t *lens, int create, int *first_drop)
{
    size_t key_len = m->nlabels;
    for (size_t i = 0; i < m->nlabels; ++i)
        key_len += lens[i];
    char *key = util_malloc(key_len + 1), *d = key;
    for (size_t i = 0; i < m->nlabels; ++i) {
        memcpy(d, values[i], lens[i]);
        d += lens[i];
        *d++ = '\xff';
    }
    *d = '\0';
    app_series_t *s = NULL;
    *first_drop = 0;
    pthread_mutex_lock(m->lock);
    for (size_t i = 0; i < m->nseries; ++i) {
        if (m->series[i]->key_len == key_len && memcmp(m->series[i]->key, key, key_len) == 0) {
            s = m->series[i];
            break;
        }
    }
    if (s == NULL && create) {
        if (m->nseries == APP_METRICS_MAX_SERIES) {
            *first_drop = m->dropped++ == 0;
        } else {
            s = util_malloc(sizeof(*s));
            memset(s, 0, sizeof(*s));
            s->key = key;
            s->key_len = key_len;
            key = NULL;
            s->values = util_malloc(sizeof(char *) * (m->nlabels + 1));
            for (size_t i = 0; i < m->nlabels; ++i)
                s->values[i] = util_strndup(values[i], lens[i]);
            if (m->type == APP_METRIC_HISTOGRAM) {
                s->buckets = util_malloc(sizeof(*s->buckets) * (m->nbuckets + 1));
                for (size_t i = 0; i <= m->nbuckets; ++i)
                    atomic_init(&s->buckets[i], 0);
            }
            double zero = 0;
            uint64_t bits;
            memcpy(&bits, &zero, sizeof(bits));
            atomic_init(&s->value, bits);
            s->metric = m;
            if (m->nseries % 16 == 0)
                m->series = util_realloc(m->series, sizeof(*m->series) * (m->nseries + 16));
            m->series[m->nseries++] = s;
        }
    }
    pthread_mutex_unlock(m->lock);
    free(key);
    return s;
}

static double bits_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static uint64_t double_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return bits;
}

void app_series_add(app_series_t *s, double v)
{
    uint64_t old = atomic_load_explicit(&s->value, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->value, &old, double_bits(bits_double(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void app_series_set(app_series_t *s, double v)
{
    atomic_store_explicit(&s->value, double_bits(v), memory_order_relaxed);
}

void app_series_observe(app_series_t *s, double v)
{
    const app_metric_t *m = s->metric;
    size_t b = 0;
    while (b < m->nbuckets && v > m->buckets[b])
        ++b;
    app_series_add(s, v);
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
}

double app_series_value(const app_series_t *s)
{
    return bits_double(atomic_load_explicit(&((app_series_t *)s)->value, memory_order_relaxed));
}

uint64_t app_series_count(const app_series_t *s)
{
    uint64_t n = 0;
    if (s->metric->type == APP_METRIC_HISTOGRAM)
        for (size_t i = 0; i <= s->metric->nbuckets; ++i)
            n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    return n;
}

uint64_t app_metric_dropped(app_metric_t *m)
{
    pthread_mutex_lock(m->lock);
    uint64_t n = m->dropped;
    pthread_mutex_unlock(m->lock);
    return n;
}

/* Appends v as the shortest text that reads back as v (Prometheus's +Inf, -Inf, NaN). */
static void append_double(log_buf_t *out, double v)
{
    if (isnan(v)) {
        log_buf_appendz(out, "NaN");
        return;
    }
    if (isinf(v)) {
        log_buf_appendz(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char buf[40];
    if (v == floor(v) && fabs(v) < 9007199254740992.0) { /* a whole number, exactly: as an integer */
        snprintf(buf, sizeof(buf), "%.0f", v);
        log_buf_appendz(out, buf);
        return;
    }
    for (int prec = 1; prec <= 17; ++prec) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    log_buf_appendz(out, buf);
}

/* Appends s as a Prometheus label value ("\\", "\"" and newline escaped). */
static void label_value(log_buf_t *out, const char *s)
{
    for (; *s != '\0'; ++s) {
        if (*s == '\\')
            log_buf_append(out, "\\\\", 2);
        else if (*s == '"')
            log_buf_append(out, "\\\"", 2);
        else if (*s == '\n')
            log_buf_append(out, "\\n", 2);
        else
            log_buf_append(out, s, 1);
    }
}

/* Appends `{l1="v1",...` (extra: one more pair, `le`) and the closing brace, or nothing when empty. */
static void labels_text(log_buf_t *out, const app_metric_t *m, const app_series_t *s, const char *le)
{
    if (m->nlabels == 0 && le == NULL)
        return;
    log_buf_appendz(out, "{");
    for (size_t i = 0; i < m->nlabels; ++i) {
        log_buf_printf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
        label_value(out, s->values[i]);
        log_buf_appendz(out, "\"");
    }
    if (le != NULL)
        log_buf_printf(out, "%sle=\"%s\"", m->nlabels ? "," : "", le);
    log_buf_appendz(out, "}");
}

void app_metrics_render(app_metrics_t *r, log_buf_t *out)
{
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; ++i) {
        const app_metric_t *m = r->metrics[i];
        log_buf_printf(out, "# HELP %s ", m->name);
        for (const char *p = m->help; *p != '\0'; ++p) {
            if (*p == '\\')
                log_buf_append(out, "\\\\", 2);
            else if (*p == '\n')
                log_buf_append(out, "\\n", 2);
            else
                log_buf_append(out, p, 1);
        }
        log_buf_printf(out, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
        for (size_t j = 0; j < m->nseries; ++j) {
            const app_series_t *s = m->series[j];
            if (m->type != APP_METRIC_HISTOGRAM) {
                log_buf_appendz(out, m->name);
                labels_text(out, m, s, NULL);
                log_buf_appendz(out, " ");
                append_double(out, app_series_value(s));
                log_buf_appendz(out, "\n");
                continue;
            }
            uint64_t cum = 0;
            for (size_t b = 0; b <= m->nbuckets; ++b) {
                cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
                log_buf_t le = {0};
                if (b < m->nbuckets)
                    append_double(&le, m->buckets[b]);
                else
                    log_buf_appendz(&le, "+Inf");
                log_buf_append(&le, "", 1);
                log_buf_printf(out, "%s_bucket", m->name);
                labels_text(out, m, s, le.data);
                log_buf_printf(out, " %llu\n", (unsigned long long)cum);
                log_buf_free(&le);
            }
            log_buf_printf(out, "%s_sum", m->name);
            labels_text(out, m, s, NULL);
            log_buf_appendz(out, " ");
            append_double(out, app_series_value(s));
            log_buf_printf(out, "\n%s_count", m->name);
            labels_text(out, m, s, NULL);
            log_buf_printf(out, " %llu\n", (unsigned long long)cum); /* the +Inf bucket's, by construction */
        }
    }
    log_buf_appendz(out, "# HELP h2lua_app_metrics_dropped_total Observations of application metrics dropped because the"
                         " metric had too many label sets.\n# TYPE h2lua_app_metrics_dropped_total counter\n");
    for (size_t i = 0; i < r->n; ++i)
        if (r->metrics[i]->dropped != 0)
            log_buf_printf(out, "h2lua_app_metrics_dropped_total{metric=\"%s\"} %llu\n", r->metrics[i]->name,
                           (unsigned long long)r->metrics[i]->dropped);
    pthread_mutex_unlock(&r->lock);
}

/* Appends the start of an EMF line of series s with the metric names (and units) given. */
static void emf_head(log_buf_t *out, const app_metric_t *m, const app_series_t *s, uint64_t ts, const char *const *names,
                     const char *const *units, size_t n)
{
    log_buf_printf(out,
                   "{\"_aws\":{\"Timestamp\":%llu,\"CloudWatchMetrics\":[{\"Namespace\":\"h2lua\",\"Dimensions\":[[\"Service\"",
                   (unsigned long long)ts);
    for (size_t i = 0; i < m->nlabels; ++i)
        log_buf_printf(out, ",\"%s\"", m->labels[i]);
    log_buf_appendz(out, "]],\"Metrics\":[");
    for (size_t i = 0; i < n; ++i)
        log_buf_printf(out, "%s{\"Name\":\"%s\",\"Unit\":\"%s\"}", i ? "," : "", names[i], units[i]);
    log_buf_appendz(out, "]}]},\"Service\":\"h2lua\"");
    for (size_t i = 0; i < m->nlabels; ++i) {
        log_buf_printf(out, ",\"%s\":\"", m->labels[i]);
        log_buf_json_str(out, s->values[i], strlen(s->values[i]));
        log_buf_appendz(out, "\"");
    }
}

/* Appends ,"name":v (JSON has no infinities: those are written as null). */
static void emf_value(log_buf_t *out, const char *name, const char *suffix, double v)
{
    log_buf_printf(out, ",\"%s%s\":", name, suffix);
    if (isfinite(v))
        append_double(out, v);
    else
        log_buf_appendz(out, "null");
}

void app_metrics_emf(app_metrics_t *r, log_buf_t *out, uint64_t ts)
{
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; ++i) {
        const app_metric_t *m = r->metrics[i];
        for (size_t j = 0; j < m->nseries; ++j) {
            app_series_t *s = m->series[j];
            double v = app_series_value(s);
            if (m->type == APP_METRIC_GAUGE) {
                const char *names[] = {m->name}, *units[] = {"None"};
                emf_head(out, m, s, ts, names, units, 1);
                emf_value(out, m->name, "", v);
            } else if (m->type == APP_METRIC_COUNTER) {
                if (v == s->emf_value)
                    continue;
                const char *names[] = {m->name}, *units[] = {"Count"};
                emf_head(out, m, s, ts, names, units, 1);
                emf_value(out, m->name, "", v - s->emf_value);
                s->emf_value = v;
            } else {
                uint64_t count = app_series_count(s);
                if (count == s->emf_count)
                    continue;
                char cname[APP_METRICS_NAME_MAX + 8], sname[APP_METRICS_NAME_MAX + 8];
                snprintf(cname, sizeof(cname), "%s_count", m->name);
                snprintf(sname, sizeof(sname), "%s_sum", m->name);
                const char *names[] = {cname, sname}, *units[] = {"Count", "None"};
                emf_head(out, m, s, ts, names, units, 2);
                emf_value(out, m->name, "_count", (double)(count - s->emf_count));
                emf_value(out, m->name, "_sum", v - s->emf_value);
                s->emf_count = count;
                s->emf_value = v;
            }
            log_buf_appendz(out, "}\n");
        }
    }
    pthread_mutex_unlock(&r->lock);
}
