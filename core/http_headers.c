#include "http_headers.h"

#include <stdio.h>
#include <string.h>

#include "worker.h"

static h2o_iovec_t hdr_nosniff = {H2O_STRLIT("x-content-type-options")};
static h2o_iovec_t hdr_frame = {H2O_STRLIT("x-frame-options")};
static h2o_iovec_t hdr_referrer = {H2O_STRLIT("referrer-policy")};
static h2o_iovec_t hdr_csp = {H2O_STRLIT("content-security-policy")};
static h2o_iovec_t hdr_hsts = {H2O_STRLIT("strict-transport-security")};

#define CSP_VALUE                                                                                                              \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "                       \
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

typedef struct headers_filter {
    h2o_filter_t super;
    int is_static;
    h2o_iovec_t hsts; /* "max-age=N", or empty when HSTS_MAX_AGE=0 */
} headers_filter_t;

static void push_header(h2o_req_t *req, h2o_iovec_t *name, const char *value, size_t len)
{
    h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + 1);
    h2o_header_t *h = req->res.headers.entries + req->res.headers.size++;
    h->name = name;
    h->orig_name = NULL;
    h->value = h2o_iovec_init(value, len);
}

/* The security headers of every response, built once: appended with one copy per response. */
static const h2o_header_t security_headers[] = {
    {&hdr_nosniff, NULL, {H2O_STRLIT("nosniff")}},
    {&hdr_frame, NULL, {H2O_STRLIT("DENY")}},
    {&hdr_referrer, NULL, {H2O_STRLIT("same-origin")}},
    {&hdr_csp, NULL, {H2O_STRLIT(CSP_VALUE)}},
};
#define N_SECURITY_HEADERS (sizeof(security_headers) / sizeof(security_headers[0]))

/* Whether req came over TLS that this process terminates (not X-Forwarded-Proto: a proxy's TLS is its
 * own to announce). */
static int is_https(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    return sock != NULL && sock->ssl != NULL;
}

static void on_setup_ostream(h2o_filter_t *_self, h2o_req_t *req, h2o_ostream_t **slot)
{
    headers_filter_t *self = (void *)_self;
    if (worker_from_ctx(req->conn->ctx)->shutting_down)
        req->http1_is_persistent = 0; /* draining: HTTP/1 responses carry Connection: close */
    h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + N_SECURITY_HEADERS + 3);
    memcpy(req->res.headers.entries + req->res.headers.size, security_headers, sizeof(security_headers));
    req->res.headers.size += N_SECURITY_HEADERS;
    if (self->hsts.len != 0 && is_https(req))
        push_header(req, &hdr_hsts, self->hsts.base, self->hsts.len);
    if (worker_find_request_id(req).base == NULL) {
        char *id = h2o_mem_alloc_pool(&req->pool, 17);
        worker_next_request_id(worker_from_ctx(req->conn->ctx), id);
        push_header(req, &worker_hdr_request_id, id, 16);
    }
    if (self->is_static && req->res.status == 200)
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("public, max-age=3600"), 0);
    h2o_setup_next_ostream(req, slot);
}

void http_headers_register(h2o_pathconf_t *pathconf, int is_static, int hsts_max_age)
{
    headers_filter_t *f = (void *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->is_static = is_static;
    if (hsts_max_age > 0) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "max-age=%d", hsts_max_age);
        f->hsts = h2o_strdup(NULL, buf, (size_t)n);
    }
}
