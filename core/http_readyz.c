#include "http_readyz.h"

#include <stdio.h>

#include "db_pool.h"
#include "http_status.h"
#include "migrate.h"
#include "worker.h"

/* In the request's pool: detaches the ping from a request whose client went away. */
struct readyz_link {
    h2o_req_t *req;
    db_run_t *ping;
};

static void send_ready(h2o_req_t *req, int ok, const char *why)
{
    req->res.status = ok ? 200 : 503;
    req->res.reason = http_status_reason(req->res.status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (ok) {
        h2o_send_inline(req, H2O_STRLIT("ready\n"));
    } else {
        char *body = h2o_mem_alloc_pool(&req->pool, 400);
        int n = snprintf(body, 400, "not ready: %s\n", why);
        h2o_send_inline(req, body, (size_t)(n < 400 ? n : 399));
    }
}

static void on_link_dispose(void *p)
{
    struct readyz_link *link = p;
    if (link->ping != NULL)
        db_pool_run_cancel(link->ping);
}

static void on_ping(void *data, int err, const char *msg, db_result_t *result)
{
    (void)result;
    struct readyz_link *link = data;
    link->ping = NULL;
    send_ready(link->req, err == 0, msg != NULL ? msg : "the database did not answer");
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    if (w->shutting_down) {
        send_ready(req, 0, "shutting down");
        return 0;
    }
    if (w->db == NULL) {
        send_ready(req, 1, NULL);
        return 0;
    }
    if (!migrate_is_done()) {
        send_ready(req, 0, "migrations are not applied yet");
        return 0;
    }
    struct readyz_link *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_link_dispose);
    link->req = req;
    link->ping = NULL;
    const char *msg = NULL;
    if (db_pool_run(w->db, "SELECT 1", link, on_ping, &link->ping, &msg) != 0)
        send_ready(req, 0, msg);
    return 0;
}

void http_readyz_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = on_req;
}
