/*
 * log — the access log (one line per request on stdout) and the error log (one line per event on
 * stderr), as JSON (default) or text. One event is always one line, because CloudWatch's awslogs
 * driver makes one event per line.
 *
 * Access lines are buffered per worker (log_buf_t, owned by the worker's thread, never shared) and
 * written with one write(2) when the buffer passes LOG_FLUSH_BYTES or when the worker's 100 ms tick
 * calls log_buf_flush. Error lines are written at once with one write(2) each.
 */
#ifndef H2LUA_LOG_H
#define H2LUA_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define LOG_FLUSH_BYTES 16384

/* Sets the format for every later line (CONFIG_LOG_JSON or CONFIG_LOG_TEXT). Call before workers start. */
void log_set_format(int format);

/* The levels of event lines, least severe first (LOG_LEVEL's values, CONFIG_LOG_LEVEL_* order). */
enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Event lines below `level` are not written from then on (log_event, log_fields). Call before
 * workers start; LOG_INFO until then. The access log is not filtered. */
void log_set_level(int level);

/* The level below which event lines are not written. */
int log_min_level(void);

/* "debug", "info", "warn" or "error" (LOG_* level); NULL for anything else. */
const char *log_level_name(int level);

/* The LOG_* level named s ("debug" ... "error"), or -1. */
int log_level_parse(const char *s, size_t len);

/* A growable byte buffer. */
typedef struct log_buf {
    char *data;
    size_t len, cap;
} log_buf_t;

void log_buf_reserve(log_buf_t *b, size_t extra);
void log_buf_append(log_buf_t *b, const char *s, size_t len);
void log_buf_appendz(log_buf_t *b, const char *s);
void log_buf_printf(log_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as the inside of a JSON string (quotes not included); invalid UTF-8 bytes become U+FFFD. */
void log_buf_json_str(log_buf_t *b, const char *s, size_t len);
/* Writes the buffer to fd (retrying short writes) and empties it. */
void log_buf_flush(log_buf_t *b, int fd);

/*
 * Writes what fd takes now without waiting (fd is non-blocking: a log reader that stalls must not
 * stall the event loop). What is not taken stays for the next call; past LOG_MAX_PENDING bytes
 * whole lines are dropped (never half a line). Returns the number of lines dropped.
 */
#define LOG_MAX_PENDING (1024 * 1024)
size_t log_buf_flush_nb(log_buf_t *b, int fd);

/* Makes stdout non-blocking when it is a pipe or a socket (as under a container's log driver). */
void log_stdout_nonblocking(void);
void log_buf_free(log_buf_t *b);

/* Length of a log time, "2026-12-01T21:56:27.123Z" (no NUL). */
#define LOG_TIME_LEN 24
/*
 * Writes tv as ISO 8601 UTC with milliseconds into out (LOG_TIME_LEN bytes, no NUL). The date and
 * time of day are computed once a second per thread (a thread-local cache). Can't fail.
 */
void log_format_time(char out[LOG_TIME_LEN], const struct timeval *tv);

/* One access log entry. Strings need not be NUL-terminated. */
typedef struct log_access_entry {
    const char *request_id;
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    int status;
    uint64_t bytes;
    double duration_ms;
    int worker;
    const char *remote_addr;
    const char *client_addr; /* the client behind TRUSTED_PROXIES (worker_client_addr); NULL: remote_addr */
    const char *protocol;
    const char *user_agent;
    size_t user_agent_len;
} log_access_entry_t;

/* Appends one access line to b (flushing to stdout when it grows past LOG_FLUSH_BYTES); returns
 * the lines dropped by that flush. Formats each field by hand (no stdio): it runs per request.
 * duration_ms is written with three decimals, rounded to the nearest. */
size_t log_access(log_buf_t *b, const log_access_entry_t *e);

/*
 * Writes one event line to stderr: {"time","level","worker","msg", then the extra pairs}, unless
 * level ("debug" ... "error") is below log_min_level().
 * `extra` holds n_extra (key, value) string pairs. worker < 0 means the main thread.
 * In text format: `TIME LEVEL [wN] MSG key=value ...`, the message, each key and each value written
 * by log_buf_text_token, so that no input (a Lua app's fields included) can end the line or make a
 * field of its own.
 */
void log_event(const char *level, int worker, const char *msg, const char *const *extra, size_t n_extra);

/* Appends the line log_event writes to b. Can't fail (out of memory aborts). */
void log_event_format(log_buf_t *b, const char *level, int worker, const char *msg, const char *const *extra, size_t n_extra);

/*
 * The text format's one rule for a free-form string: s as it is when it is one word of printable ASCII
 * without '"', '=' or '\\' (and not empty); else in double quotes with log_buf_json_str's escapes
 * (quote, backslash, control characters; invalid UTF-8 as U+FFFD). Can't fail.
 */
void log_buf_text_token(log_buf_t *b, const char *s, size_t len);

/* One field of an event line of the application's (log_fields). Strings need not be NUL-terminated. */
typedef struct log_field {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int literal; /* JSON: value is a JSON number, true or false, written as it is; else a string */
} log_field_t;

/*
 * Appends one event line to b: time, level, worker (when >= 0), request_id (when not NULL), msg,
 * then the fields in order (JSON: strings escaped as log_buf_json_str does, literals as they are;
 * text: `TIME LEVEL wN request_id=ID MSG key=value ...` with log_buf_text_token). The caller keeps
 * the keys apart from the core's. Can't fail.
 */
void log_fields_format(log_buf_t *b, int level, int worker, const char *request_id, const char *msg, size_t msg_len,
                       const log_field_t *fields, size_t n);

/* Writes that line to stderr with one write(2) when level is not below log_min_level(). */
void log_fields(int level, int worker, const char *request_id, const char *msg, size_t msg_len, const log_field_t *fields,
                size_t n);

/* printf-style shorthands for log_event without extra fields. */
void log_errorf(int worker, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warnf(int worker, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_infof(int worker, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
