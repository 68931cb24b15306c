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

void log_set_format(int format)
{
    log_format = format;
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
        case '"':
            *d++ = '\\', *d++ = '"';
            break;
        case '\\':
            *d++ = '\\', *d++ = '\\';
            break;
        case '\n':
            *d++ = '\\', *d++ = 'n';
            break;
        case '\r':
            *d++ = '\\', *d++ = 'r';
            break;
        case '\t':
            *d++ = '\\', *d++ = 't';
            break;
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

/* Appends the current time as ISO 8601 UTC with milliseconds. */
static void append_time(log_buf_t *b)
{
    struct timeval tv;
    struct tm tm;
    char buf[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    log_buf_appendz(b, buf);
}

size_t log_access(log_buf_t *b, const log_access_entry_t *e)
{
    if (log_format == CONFIG_LOG_JSON) {
        log_buf_appendz(b, "{\"time\":\"");
        append_time(b);
        log_buf_printf(b, "\",\"request_id\":\"%s\",\"method\":\"", e->request_id);
        log_buf_json_str(b, e->method, e->method_len);
        log_buf_appendz(b, "\",\"path\":\"");
        log_buf_json_str(b, e->path, e->path_len);
        log_buf_printf(b, "\",\"status\":%d,\"bytes\":%llu,\"duration_ms\":%.3f,\"worker\":%d,\"remote_addr\":\"%s\",",
                       e->status, (unsigned long long)e->bytes, e->duration_ms, e->worker, e->remote_addr);
        log_buf_printf(b, "\"protocol\":\"%s\",\"user_agent\":\"", e->protocol);
        log_buf_json_str(b, e->user_agent, e->user_agent_len);
        log_buf_appendz(b, "\"}\n");
    } else {
        append_time(b);
        log_buf_printf(b, " %s %s ", e->remote_addr, e->request_id);
        log_buf_json_str(b, e->method, e->method_len);
        log_buf_appendz(b, " ");
        log_buf_json_str(b, e->path, e->path_len);
        log_buf_printf(b, " %d %llu %.3fms w%d\n", e->status, (unsigned long long)e->bytes, e->duration_ms, e->worker);
    }
    if (b->len >= LOG_FLUSH_BYTES)
        return log_buf_flush_nb(b, STDOUT_FILENO);
    return 0;
}

void log_event(const char *level, int worker, const char *msg, const char *const *extra, size_t n_extra)
{
    log_buf_t b = {0};
    if (log_format == CONFIG_LOG_JSON) {
        log_buf_appendz(&b, "{\"time\":\"");
        append_time(&b);
        log_buf_printf(&b, "\",\"level\":\"%s\",", level);
        if (worker >= 0)
            log_buf_printf(&b, "\"worker\":%d,", worker);
        log_buf_appendz(&b, "\"msg\":\"");
        log_buf_json_str(&b, msg, strlen(msg));
        log_buf_appendz(&b, "\"");
        for (size_t i = 0; i < n_extra; ++i) {
            log_buf_appendz(&b, ",\"");
            log_buf_json_str(&b, extra[2 * i], strlen(extra[2 * i]));
            log_buf_appendz(&b, "\":\"");
            log_buf_json_str(&b, extra[2 * i + 1], strlen(extra[2 * i + 1]));
            log_buf_appendz(&b, "\"");
        }
        log_buf_appendz(&b, "}\n");
    } else {
        /* text: still one line per event, newlines escaped */
        append_time(&b);
        log_buf_printf(&b, " %s ", level);
        if (worker >= 0)
            log_buf_printf(&b, "w%d ", worker);
        log_buf_json_str(&b, msg, strlen(msg));
        for (size_t i = 0; i < n_extra; ++i) {
            log_buf_printf(&b, " %s=", extra[2 * i]);
            log_buf_json_str(&b, extra[2 * i + 1], strlen(extra[2 * i + 1]));
        }
        log_buf_appendz(&b, "\n");
    }
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
