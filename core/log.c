#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "form.h"
#include "util.h"

static int log_format = CONFIG_LOG_JSON;
static int log_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_format(int format)
{
    log_format = format;
}

void log_set_level(int level)
{
    log_level = level;
}

int log_min_level(void)
{
    return log_level;
}

const char *log_level_name(int level)
{
    return level >= LOG_DEBUG && level <= LOG_ERROR ? level_names[level] : NULL;
}

int log_level_parse(const char *s, size_t len)
{
    for (int i = LOG_DEBUG; i <= LOG_ERROR; ++i)
        if (strlen(level_names[i]) == len && memcmp(level_names[i], s, len) == 0)
            return i;
    return -1;
}

void log_buf_reserve(log_buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        free(util_malloc((size_t)-1 >> 1)); /* routes to the one out-of-memory path */
        abort();
    }
    b->data = p;
    b->cap = cap;
}

void log_buf_append(log_buf_t *b, const char *s, size_t len)
{
    log_buf_reserve(b, len);
    memcpy(b->data + b->len, s, len);
    b->len += len;
}

void log_buf_appendz(log_buf_t *b, const char *s)
{
    log_buf_append(b, s, strlen(s));
}

void log_buf_printf(log_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    log_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void log_buf_json_str(log_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    log_buf_reserve(b, len * 6);
    char *d = b->data + b->len;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x80) {
            /* copy a valid UTF-8 sequence as is, replace anything else by U+FFFD */
            size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
            if (n != 0 && (size_t)(end - p) >= n && form_utf8_valid((const char *)p, n)) {
                memcpy(d, p, n);
                d += n;
                p += n;
            } else {
                memcpy(d, "\xef\xbf\xbd", 3);
                d += 3;
                ++p;
            }
            continue;
        }
        switch (c) {
        case '"': *d++ = '\\', *d++ = '"'; break;
        case '\\': *d++ = '\\', *d++ = '\\'; break;
        case '\n': *d++ = '\\', *d++ = 'n'; break;
        case '\r': *d++ = '\\', *d++ = 'r'; break;
        case '\t': *d++ = '\\', *d++ = 't'; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                *d++ = '\\', *d++ = 'u', *d++ = '0', *d++ = '0', *d++ = hex[c >> 4], *d++ = hex[c & 15];
            } else {
                *d++ = (char)c;
            }
        }
        ++p;
    }
    b->len = (size_t)(d - b->data);
}

void log_buf_flush(log_buf_t *b, int fd)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(fd, b->data + off, b->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* the log's reader is gone; dropping lines beats blocking the loop */
        }
        off += (size_t)n;
    }
    b->len = 0;
}

size_t log_buf_flush_nb(log_buf_t *b, int fd)
{
    size_t off = 0, dropped = 0;
    if (b->len == 0)
        return 0;
    while (off < b->len) {
        ssize_t n = write(fd, b->data + off, b->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                off = b->len; /* the reader is gone: nothing to keep */
            break;
        }
        off += (size_t)n;
    }
    memmove(b->data, b->data + off, b->len - off);
    b->len -= off;
    if (b->len > LOG_MAX_PENDING) {
        /* keep the line already begun (so that no line is cut), drop the whole ones after it */
        char *nl = memchr(b->data, '\n', b->len);
        size_t keep = nl != NULL ? (size_t)(nl - b->data) + 1 : b->len;
        for (size_t i = keep; i < b->len; ++i)
            dropped += b->data[i] == '\n';
        b->len = keep;
    }
    return dropped;
}

void log_stdout_nonblocking(void)
{
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        int flags = fcntl(STDOUT_FILENO, F_GETFL);
        if (flags >= 0)
            fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK);
    }
}

void log_buf_free(log_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Writes v in decimal at d; returns the end. */
static char *put_u64(char *d, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n != 0)
        *d++ = tmp[--n];
    return d;
}

static char *put_2(char *d, int v)
{
    d[0] = (char)('0' + v / 10 % 10);
    d[1] = (char)('0' + v % 10);
    return d + 2;
}

/* The "YYYY-MM-DDTHH:MM:SS" of the last second a thread formatted (gmtime_r once a second). */
static _Thread_local struct {
    time_t sec;
    char text[LOG_TIME_LEN - 5];
} time_cache = {(time_t)-1, {0}};

void log_format_time(char out[LOG_TIME_LEN], const struct timeval *tv)
{
    if (tv->tv_sec != time_cache.sec) {
        struct tm tm;
        gmtime_r(&tv->tv_sec, &tm);
        char *d = time_cache.text;
        int year = tm.tm_year + 1900;
        d = put_2(d, year / 100);
        d = put_2(d, year % 100);
        *d++ = '-';
        d = put_2(d, tm.tm_mon + 1);
        *d++ = '-';
        d = put_2(d, tm.tm_mday);
        *d++ = 'T';
        d = put_2(d, tm.tm_hour);
        *d++ = ':';
        d = put_2(d, tm.tm_min);
        *d++ = ':';
        put_2(d, tm.tm_sec);
        time_cache.sec = tv->tv_sec;
    }
    memcpy(out, time_cache.text, sizeof(time_cache.text));
    char *d = out + sizeof(time_cache.text);
    int ms = (int)(tv->tv_usec / 1000);
    *d++ = '.';
    *d++ = (char)('0' + ms / 100);
    d = put_2(d, ms % 100);
    *d = 'Z';
}

/* Appends the current time as ISO 8601 UTC with milliseconds. */
static void append_time(log_buf_t *b)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    log_buf_reserve(b, LOG_TIME_LEN);
    log_format_time(b->data + b->len, &tv);
    b->len += LOG_TIME_LEN;
}

#define APPEND_LIT(b, lit) log_buf_append((b), lit, sizeof(lit) - 1)

static void append_u64(log_buf_t *b, uint64_t v)
{
    log_buf_reserve(b, 20);
    b->len = (size_t)(put_u64(b->data + b->len, v) - b->data);
}

static void append_int(log_buf_t *b, int v)
{
    if (v < 0) {
        APPEND_LIT(b, "-");
        append_u64(b, (uint64_t)0 - (uint64_t)(int64_t)v);
    } else {
        append_u64(b, (uint64_t)v);
    }
}

/* Appends ms >= 0 with three decimals, rounded to the nearest (as printf's "%.3f"). */
static void append_ms(log_buf_t *b, double ms)
{
    uint64_t us = ms > 0 ? (uint64_t)(ms * 1000.0 + 0.5) : 0;
    append_u64(b, us / 1000);
    log_buf_reserve(b, 4);
    char *d = b->data + b->len;
    int frac = (int)(us % 1000);
    *d++ = '.';
    *d++ = (char)('0' + frac / 100);
    put_2(d, frac % 100);
    b->len += 4;
}

size_t log_access(log_buf_t *b, const log_access_entry_t *e)
{
    /* one formatter per field, no stdio: this runs once per request */
    if (log_format == CONFIG_LOG_JSON) {
        APPEND_LIT(b, "{\"time\":\"");
        append_time(b);
        APPEND_LIT(b, "\",\"request_id\":\"");
        log_buf_appendz(b, e->request_id);
        APPEND_LIT(b, "\",\"method\":\"");
        log_buf_json_str(b, e->method, e->method_len);
        APPEND_LIT(b, "\",\"path\":\"");
        log_buf_json_str(b, e->path, e->path_len);
        APPEND_LIT(b, "\",\"status\":");
        append_int(b, e->status);
        APPEND_LIT(b, ",\"bytes\":");
        append_u64(b, e->bytes);
        APPEND_LIT(b, ",\"duration_ms\":");
        append_ms(b, e->duration_ms);
        APPEND_LIT(b, ",\"worker\":");
        append_int(b, e->worker);
        APPEND_LIT(b, ",\"remote_addr\":\"");
        log_buf_appendz(b, e->remote_addr);
        APPEND_LIT(b, "\",\"client_addr\":\"");
        log_buf_appendz(b, e->client_addr != NULL ? e->client_addr : e->remote_addr);
        APPEND_LIT(b, "\",\"protocol\":\"");
        log_buf_appendz(b, e->protocol);
        APPEND_LIT(b, "\",\"user_agent\":\"");
        log_buf_json_str(b, e->user_agent, e->user_agent_len);
        APPEND_LIT(b, "\"}\n");
    } else {
        append_time(b);
        APPEND_LIT(b, " ");
        log_buf_appendz(b, e->remote_addr);
        APPEND_LIT(b, " ");
        log_buf_appendz(b, e->request_id);
        APPEND_LIT(b, " ");
        log_buf_json_str(b, e->method, e->method_len);
        APPEND_LIT(b, " ");
        log_buf_json_str(b, e->path, e->path_len);
        APPEND_LIT(b, " ");
        append_int(b, e->status);
        APPEND_LIT(b, " ");
        append_u64(b, e->bytes);
        APPEND_LIT(b, " ");
        append_ms(b, e->duration_ms);
        APPEND_LIT(b, "ms w");
        append_int(b, e->worker);
        APPEND_LIT(b, "\n");
    }
    if (b->len >= LOG_FLUSH_BYTES)
        return log_buf_flush_nb(b, STDOUT_FILENO);
    return 0;
}

void log_buf_text_token(log_buf_t *b, const char *s, size_t len)
{
    int bare = len != 0;
    for (size_t i = 0; bare && i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        bare = c > ' ' && c < 0x7f && c != '"' && c != '=' && c != '\\';
    }
    if (bare) {
        log_buf_append(b, s, len);
        return;
    }
    APPEND_LIT(b, "\"");
    log_buf_json_str(b, s, len);
    APPEND_LIT(b, "\"");
}

void log_event_format(log_buf_t *b, const char *level, int worker, const char *msg, const char *const *extra, size_t n_extra)
{
    if (log_format == CONFIG_LOG_JSON) {
        log_buf_appendz(b, "{\"time\":\"");
        append_time(b);
        log_buf_printf(b, "\",\"level\":\"%s\",", level);
        if (worker >= 0)
            log_buf_printf(b, "\"worker\":%d,", worker);
        log_buf_appendz(b, "\"msg\":\"");
        log_buf_json_str(b, msg, strlen(msg));
        log_buf_appendz(b, "\"");
        for (size_t i = 0; i < n_extra; ++i) {
            log_buf_appendz(b, ",\"");
            log_buf_json_str(b, extra[2 * i], strlen(extra[2 * i]));
            log_buf_appendz(b, "\":\"");
            log_buf_json_str(b, extra[2 * i + 1], strlen(extra[2 * i + 1]));
            log_buf_appendz(b, "\"");
        }
        log_buf_appendz(b, "}\n");
    } else {
        /* text: TIME LEVEL [wN] MSG key=value...; the message, keys and values are tokens */
        append_time(b);
        log_buf_printf(b, " %s ", level);
        if (worker >= 0)
            log_buf_printf(b, "w%d ", worker);
        log_buf_text_token(b, msg, strlen(msg));
        for (size_t i = 0; i < n_extra; ++i) {
            APPEND_LIT(b, " ");
            log_buf_text_token(b, extra[2 * i], strlen(extra[2 * i]));
            APPEND_LIT(b, "=");
            log_buf_text_token(b, extra[2 * i + 1], strlen(extra[2 * i + 1]));
        }
        log_buf_appendz(b, "\n");
    }
}

void log_event(const char *level, int worker, const char *msg, const char *const *extra, size_t n_extra)
{
    int l = log_level_parse(level, strlen(level));
    if (l >= 0 && l < log_level)
        return;
    log_buf_t b = {0};
    log_event_format(&b, level, worker, msg, extra, n_extra);
    log_buf_flush(&b, STDERR_FILENO);
    log_buf_free(&b);
}

void log_fields_format(log_buf_t *b, int level, int worker, const char *request_id, const char *msg, size_t msg_len,
                       const log_field_t *fields, size_t n)
{
    const char *name = log_level_name(level) != NULL ? log_level_name(level) : "error";
    if (log_format == CONFIG_LOG_JSON) {
        APPEND_LIT(b, "{\"time\":\"");
        append_time(b);
        APPEND_LIT(b, "\",\"level\":\"");
        log_buf_appendz(b, name);
        APPEND_LIT(b, "\"");
        if (worker >= 0) {
            APPEND_LIT(b, ",\"worker\":");
            append_int(b, worker);
        }
        if (request_id != NULL) {
            APPEND_LIT(b, ",\"request_id\":\"");
            log_buf_json_str(b, request_id, strlen(request_id));
            APPEND_LIT(b, "\"");
        }
        APPEND_LIT(b, ",\"msg\":\"");
        log_buf_json_str(b, msg, msg_len);
        APPEND_LIT(b, "\"");
        for (size_t i = 0; i < n; ++i) {
            APPEND_LIT(b, ",\"");
            log_buf_json_str(b, fields[i].key, fields[i].key_len);
            if (fields[i].literal) {
                APPEND_LIT(b, "\":");
                log_buf_append(b, fields[i].value, fields[i].value_len);
            } else {
                APPEND_LIT(b, "\":\"");
                log_buf_json_str(b, fields[i].value, fields[i].value_len);
                APPEND_LIT(b, "\"");
            }
        }
        APPEND_LIT(b, "}\n");
    } else {
        append_time(b);
        APPEND_LIT(b, " ");
        log_buf_appendz(b, name);
        APPEND_LIT(b, " ");
        if (worker >= 0) {
            APPEND_LIT(b, "w");
            append_int(b, worker);
            APPEND_LIT(b, " ");
        }
        if (request_id != NULL) {
            APPEND_LIT(b, "request_id=");
            log_buf_text_token(b, request_id, strlen(request_id));
            APPEND_LIT(b, " ");
        }
        log_buf_text_token(b, msg, msg_len);
        for (size_t i = 0; i < n; ++i) {
            APPEND_LIT(b, " ");
            log_buf_text_token(b, fields[i].key, fields[i].key_len);
            APPEND_LIT(b, "=");
            log_buf_text_token(b, fields[i].value, fields[i].value_len);
        }
        APPEND_LIT(b, "\n");
    }
}

void log_fields(int level, int worker, const char *request_id, const char *msg, size_t msg_len, const log_field_t *fields,
                size_t n)
{
    if (level < log_level)
        return;
    log_buf_t b = {0};
    log_fields_format(&b, level, worker, request_id, msg, msg_len, fields, n);
    log_buf_flush(&b, STDERR_FILENO);
    log_buf_free(&b);
}

#define LOG_VA(level)                                                                                                          \
    do {                                                                                                                       \
        char msg[2048];                                                                                                        \
        va_list ap;                                                                                                            \
        va_start(ap, fmt);                                                                                                     \
        vsnprintf(msg, sizeof(msg), fmt, ap);                                                                                  \
        va_end(ap);                                                                                                            \
        log_event(level, worker, msg, NULL, 0);                                                                                \
    } while (0)

void log_errorf(int worker, const char *fmt, ...)
{
    LOG_VA("error");
}

void log_warnf(int worker, const char *fmt, ...)
{
    LOG_VA("warn");
}

void log_infof(int worker, const char *fmt, ...)
{
    LOG_VA("info");
}
