/*
 * http_framing — refuses HTTP/1 requests whose framing two servers could read two ways (request
 * smuggling, RFC 9112 sections 6.3 and 3.2): more than one Content-Length, Content-Length together
 * with Transfer-Encoding, more than one Host. Such a request is answered 400 with
 * `Connection: close` and the connection is closed before any handler runs; nothing after it on
 * the connection is read.
 *
 * Where: libh2o 2.2 drops Content-Length, Transfer-Encoding and Host from the request's headers
 * while it parses the head (the first Content-Length, the last Host and Transfer-Encoding over
 * Content-Length win), so no handler can see them. The check runs where the head is parsed:
 * h2lua defines picohttpparser's phr_parse_request, which libh2o calls through its procedure
 * linkage table; the definition here calls libh2o's own, then checks the parsed headers and, for a
 * head it refuses, reports a parse error — libh2o's answer to which is the 400 and the close.
 * http_framing_init() says at start whether the check is in place (a libh2o built to bind the
 * call to its own copy would bypass it: the log then says so once).
 *
 * HTTP/2 frames its requests itself (no Content-Length/Transfer-Encoding framing to disagree on).
 */
#ifndef H2LUA_HTTP_FRAMING_H
#define H2LUA_HTTP_FRAMING_H

#include <stddef.h>
#include <stdint.h>

/* Why a head is refused. */
enum {
    HTTP_FRAMING_OK = 0,
    HTTP_FRAMING_ECL_REPEATED = -1, /* Content-Length given more than once */
    HTTP_FRAMING_ECL_AND_TE = -2,   /* Content-Length and Transfer-Encoding both given */
    HTTP_FRAMING_EHOST_REPEATED = -3,
};

/* One header of a parsed head, as picohttpparser gives it (name in the client's case). */
typedef struct http_framing_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} http_framing_header_t;

/* The rule: HTTP_FRAMING_OK or the reason the head is refused. Pure. */
int http_framing_check(const http_framing_header_t *headers, size_t n);

/* A message for people for a code of http_framing_check. */
const char *http_framing_strerror(int code);

/* Resolves libh2o's parser and logs whether the check is in place (main thread, once, at start). */
void http_framing_init(void);

/* Heads refused on the calling thread so far (each worker reads its own for /metrics). */
uint64_t http_framing_refused(void);

#endif
