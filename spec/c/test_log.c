/* Unit tests of core/log.c's access-log formatter: the time string (cached per second) and each
 * field of a line, against what the C library's strftime/printf make of the same values; and the
 * text format's rule for the message, keys and values of an event line. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"

/* What strftime and printf make of tv. */
static void reference_time(char out[LOG_TIME_LEN + 1], const struct timeval *tv)
{
    struct tm tm;
    gmtime_r(&tv->tv_sec, &tm);
    size_t n = strftime(out, LOG_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, LOG_TIME_LEN + 1 - n, ".%03dZ", (int)(tv->tv_usec / 1000));
}

static int time_is(const struct timeval *tv)
{
    char got[LOG_TIME_LEN + 1] = {0}, want[LOG_TIME_LEN + 1];
    log_format_time(got, tv);
    reference_time(want, tv);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "time %lld.%06ld: %s, want %s\n", (long long)tv->tv_sec, (long)tv->tv_usec, got, want);
    return strcmp(got, want) == 0;
}

static void test_time(void)
{
    struct timeval tv = {.tv_sec = 1764626187, .tv_usec = 123456};
    char out[LOG_TIME_LEN + 1] = {0};
    log_format_time(out, &tv);
    CHECK(strcmp(out, "2025-12-01T21:56:27.123Z") == 0);
    /* the same second again (from the cache) with other milliseconds, then the next second */
    tv.tv_usec = 999999;
    CHECK(time_is(&tv));
    tv.tv_usec = 0;
    CHECK(time_is(&tv));
    tv.tv_sec += 1;
    CHECK(time_is(&tv));
    /* going back in time, the turn of a year, a leap day, and many seconds at random */
    struct timeval cases[] = {{0, 0}, {951782400, 1000}, {946684799, 999000}, {946684800, 1}, {4102444800, 500000}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
        CHECK(time_is(&cases[i]));
    srand(12);
    int bad = 0;
    for (int i = 0; i < 100000; ++i) {
        struct timeval r = {.tv_sec = (time_t)(((unsigned)rand() << 3) % 4102444800u), .tv_usec = rand() % 1000000};
        bad += !time_is(&r);
    }
    CHECK(bad == 0);
}

/* The line log_access appends for e, without its time (checked above). */
static void line_of(const log_access_entry_t *e, char *out, size_t cap)
{
    log_buf_t b = {0};
    log_access(&b, e);
    CHECK(b.len > LOG_TIME_LEN && b.data[b.len - 1] == '\n');
    const char *t = memchr(b.data, '2', b.len); /* the time starts with the century */
    size_t skip = (size_t)(t - b.data) + LOG_TIME_LEN;
    snprintf(out, cap, "%.*s%.*s", (int)(t - b.data), b.data, (int)(b.len - skip), b.data + skip);
    log_buf_free(&b);
}

static void test_access_line(void)
{
    log_access_entry_t e = {
        .request_id = "0123456789abcdef",
        .method = "GET",
        .method_len = 3,
        .path = "/a\"b\\c\n\x01",
        .path_len = 8,
        .status = 200,
        .bytes = 18446744073709551615u,
        .duration_ms = 12.3456,
        .worker = 1,
        .remote_addr = "127.0.0.1",
        .protocol = "HTTP/1.1",
        .user_agent = "curl/7.88 \xc3\xa9\xff",
        .user_agent_len = 13,
    };
    char got[1024], want[1024];
    log_set_format(CONFIG_LOG_JSON);
    line_of(&e, got, sizeof(got));
    CHECK(strcmp(got,
                 "{\"time\":\"\",\"request_id\":\"0123456789abcdef\",\"method\":\"GET\",\"path\":\"/a\\\"b\\\\c\\n\\u0001\","
                 "\"status\":200,\"bytes\":18446744073709551615,\"duration_ms\":12.346,\"worker\":1,"
                 "\"remote_addr\":\"127.0.0.1\",\"client_addr\":\"127.0.0.1\",\"protocol\":\"HTTP/1.1\",\"user_agent\":\"curl/"
                 "7.88 \xc3\xa9\xef\xbf\xbd\"}\n") == 0);
    e.client_addr = "2001:db8::7"; /* behind a trusted proxy */
    line_of(&e, got, sizeof(got));
    CHECK(strstr(got, "\"remote_addr\":\"127.0.0.1\",\"client_addr\":\"2001:db8::7\",\"protocol\"") != NULL);
    e.client_addr = NULL;
    log_set_format(CONFIG_LOG_TEXT);
    e.path = "/x";
    e.path_len = 2;
    e.status = 404;
    e.bytes = 0;
    line_of(&e, got, sizeof(got));
    CHECK(strcmp(got, " 127.0.0.1 0123456789abcdef GET /x 404 0 12.346ms w1\n") == 0);

    /* durations as printf's %.3f writes them */
    const double ms[] = {0, 0.0004, 0.0006, 0.999, 1, 1.2344, 9.9996, 4999.9999, 123456.7891, 86400000.25};
    log_set_format(CONFIG_LOG_JSON);
    e.bytes = 7;
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); ++i) {
        e.duration_ms = ms[i];
        line_of(&e, got, sizeof(got));
        snprintf(want, sizeof(want), "\"duration_ms\":%.3f,", ms[i]);
        CHECK(strstr(got, want) != NULL);
        if (strstr(got, want) == NULL)
            fprintf(stderr, "duration %g: %s\n", ms[i], got);
    }
    e.duration_ms = -1; /* a clock that went back: 0, never a negative figure */
    line_of(&e, got, sizeof(got));
    CHECK(strstr(got, "\"duration_ms\":0.000,") != NULL);
}

/* The text token of s. */
static void token_of(const char *s, char *out, size_t cap)
{
    log_buf_t b = {0};
    log_buf_text_token(&b, s, strlen(s));
    snprintf(out, cap, "%.*s", (int)b.len, b.data);
    log_buf_free(&b);
}

static int token_is(const char *s, const char *want)
{
    char got[256];
    token_of(s, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fprintf(stderr, "token of '%s': %s, want %s\n", s, got, want);
    return strcmp(got, want) == 0;
}

static void test_text_token(void)
{
    /* one word of printable ASCII stays as it is */
    CHECK(token_is("user_id", "user_id"));
    CHECK(token_is("/entries/12?x", "/entries/12?x"));
    CHECK(token_is("a'b:c,d{}", "a'b:c,d{}"));
    /* anything that could end the line, split a field or make one is quoted and escaped */
    CHECK(token_is("", "\"\""));
    CHECK(token_is("two words", "\"two words\""));
    CHECK(token_is("a=b", "\"a=b\""));
    CHECK(token_is("say \"hi\"", "\"say \\\"hi\\\"\""));
    CHECK(token_is("back\\slash", "\"back\\\\slash\""));
    CHECK(token_is("x\n2026-01-01T00:00:00.000Z error forged", "\"x\\n2026-01-01T00:00:00.000Z error forged\""));
    CHECK(token_is("cr\rtab\tbell\a", "\"cr\\rtab\\tbell\\u0007\""));
    CHECK(token_is("del\x7f", "\"del\\u007f\""));
    CHECK(token_is("caf\xc3\xa9", "\"caf\xc3\xa9\""));
    CHECK(token_is("bad\xff", "\"bad\xef\xbf\xbd\""));
}

/* An event line in text format, without its time. */
static void test_text_event(void)
{
    const char *extra[] = {"k", "v", "evil key", "1\n2", "x=y", "", "note", "a \"b\" c"};
    log_buf_t b = {0};
    log_set_format(CONFIG_LOG_TEXT);
    log_event_format(&b, "error", 3, "it failed: x=1", extra, 4);
    CHECK(b.len > LOG_TIME_LEN);
    char got[512];
    snprintf(got, sizeof(got), "%.*s", (int)(b.len - LOG_TIME_LEN), b.data + LOG_TIME_LEN);
    const char *want = " error w3 \"it failed: x=1\" k=v \"evil key\"=\"1\\n2\" \"x=y\"=\"\" note=\"a \\\"b\\\" c\"\n";
    if (strcmp(got, want) != 0)
        fprintf(stderr, "event line: %s want: %s", got, want);
    CHECK(strcmp(got, want) == 0);
    CHECK(memchr(b.data, '\n', b.len) == b.data + b.len - 1); /* one line */
    log_buf_free(&b);
    /* a word of a message stays a word */
    log_event_format(&b, "info", -1, "stopped", NULL, 0);
    snprintf(got, sizeof(got), "%.*s", (int)(b.len - LOG_TIME_LEN), b.data + LOG_TIME_LEN);
    CHECK(strcmp(got, " info stopped\n") == 0);
    log_buf_free(&b);
    log_set_format(CONFIG_LOG_JSON);
}

int main(void)
{
    test_time();
    test_access_line();
    test_text_token();
    test_text_event();
    return CHECK_DONE();
}
