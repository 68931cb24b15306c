#include "http_framing.h"

#include <dlfcn.h>
#include <strings.h>

#include "log.h"

/* picohttpparser's header and parser, as libh2o 2.2 exports them (its header is not installed). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

typedef int (*parse_request_fn)(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                                size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                                size_t last_len);

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);

static parse_request_fn libh2o_parse_request;
static _Thread_local uint64_t refused;

static int name_is(const http_framing_header_t *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

int http_framing_check(const http_framing_header_t *headers, size_t n)
{
    unsigned cl = 0, te = 0, host = 0;
    for (size_t i = 0; i < n; ++i) {
        if (headers[i].name == NULL)
            continue; /* a continuation line (obsolete folding): libh2o refuses it itself */
        if (name_is(&headers[i], "content-length", 14))
            ++cl;
        else if (name_is(&headers[i], "transfer-encoding", 17))
            ++te;
        else if (name_is(&headers[i], "host", 4))
            ++host;
    }
    if (cl > 1)
        return HTTP_FRAMING_ECL_REPEATED;
    if (cl != 0 && te != 0)
        return HTTP_FRAMING_ECL_AND_TE;
    if (host > 1)
        return HTTP_FRAMING_EHOST_REPEATED;
    return HTTP_FRAMING_OK;
}

const char *http_framing_strerror(int code)
{
    switch (code) {
    case HTTP_FRAMING_OK: return "ok";
    case HTTP_FRAMING_ECL_REPEATED: return "Content-Length given more than once";
    case HTTP_FRAMING_ECL_AND_TE: return "Content-Length together with Transfer-Encoding";
    case HTTP_FRAMING_EHOST_REPEATED: return "Host given more than once";
    default: return "unknown framing error";
    }
}

static parse_request_fn resolve(void)
{
    parse_request_fn f = libh2o_parse_request;
    if (f == NULL) {
        f = (parse_request_fn)dlsym(RTLD_NEXT, "phr_parse_request");
        libh2o_parse_request = f;
    }
    return f;
}

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len)
{
    parse_request_fn f = resolve();
    if (f == NULL)
        return -1; /* cannot happen once http_framing_init found it; refusing is the safe side */
    int r = f(buf, len, method, method_len, path, path_len, minor_version, headers, num_headers, last_len);
    if (r <= 0)
        return r;
    _Static_assert(sizeof(struct phr_header) == sizeof(http_framing_header_t), "the same layout");
    if (http_framing_check((const http_framing_header_t *)headers, *num_headers) != HTTP_FRAMING_OK) {
        ++refused;
        return -1; /* libh2o answers a head it cannot parse with 400 and closes the connection */
    }
    return r;
}

void http_framing_init(void)
{
    if (resolve() == NULL || dlsym(RTLD_DEFAULT, "phr_parse_request") != (void *)phr_parse_request)
        log_warnf(-1, "request framing checks are not in place (libh2o's request parser is not reached through "
                      "phr_parse_request): a front must refuse repeated Content-Length and Host headers");
}

uint64_t http_framing_refused(void)
{
    return refused;
}
