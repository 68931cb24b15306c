#include "http_limits.h"

#include "config.h"
#include "http_status.h"
#include "worker.h"

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    size_t total = req->input.path.len + req->input.method.len + req->input.authority.len;
    for (size_t i = 0; i != req->headers.size; ++i)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (total > (size_t)w->cfg->max_header_bytes) {
        req->http1_is_persistent = 0;
        h2o_send_error_generic(req, 431, http_status_reason(431), "request header fields too large", 0);
        return 0;
    }
    /* Content-Length and Transfer-Encoding are consumed by libh2o 2.2 before any handler runs (a
     * repeated Content-Length or Host resolves to the first): framing checks cannot live here. */
    if (req->entity.base != NULL && req->entity.len > w->cfg->max_body) {
        h2o_send_error_generic(req, 413, http_status_reason(413), "the request body is larger than MAX_BODY", 0);
        return 0;
    }
    return -1; /* within limits: the next handler runs */
}

void http_limits_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = on_req;
}
