#include "http_metrics.h"

#include <openssl/crypto.h>
#include <string.h>

#include "app_metrics.h"
#include "config.h"
#include "conn_budget.h"
#include "db_pool.h"
#include "http_framing.h"
#include "http_status.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

void http_metrics_publish(worker_t *w)
{
    metrics_gauges_t g = {0};
    db_pool_t *pools[2] = {w->db, w->db_read};
    for (int i = 0; i < 2; ++i) {
        db_pool_stats_t st = {0};
        if (pools[i] != NULL)
            db_pool_get_stats(pools[i], &st);
        g.db_open[i] = st.open;
        g.db_in_use[i] = st.in_use;
        g.db_waiting[i] = st.waiting;
        g.db_errors[i] = st.errors;
        g.db_queries[i] = st.queries;
        g.db_retries[i] = st.retries;
        g.db_stale[i] = st.stale;
    }
    g.inflight = w->inflight;
    g.reloads_ok = w->reloads_ok;
    g.reloads_failed = w->reloads_failed;
    g.log_dropped = w->log_dropped;
    g.conns_flooded = w->conn_budget != NULL ? conn_budget_closed(w->conn_budget) : 0;
    g.framing_refused = http_framing_refused();
    metrics_publish(&w->metrics, &g);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    const char *token = w->cfg->metrics_token;
    if (token == NULL)
        return -1; /* no token configured: /metrics does not exist (the application's 404) */
    ssize_t auth = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    size_t tlen = strlen(token);
    h2o_iovec_t v = auth >= 0 ? req->headers.entries[auth].value : h2o_iovec_init(NULL, 0);
    if (!(v.len == tlen + 7 && memcmp(v.base, "Bearer ", 7) == 0 && CRYPTO_memcmp(v.base + 7, token, tlen) == 0)) {
        /* not h2o_send_error_generic: it drops the headers set before it */
        req->res.status = 401;
        req->res.reason = http_status_reason(401);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
        h2o_send_inline(req, H2O_STRLIT("a bearer token is required\n"));
        return 0;
    }
    http_metrics_publish(w);
    log_buf_t out = {0};
    metrics_render(&out, w->all_metrics, w->nworkers);
    metrics_render_shared(&out, w->shared_stores);
    app_metrics_render(w->app_metrics, &out);
    char *body = h2o_mem_alloc_pool(&req->pool, out.len);
    memcpy(body, out.data, out.len);
    size_t len = out.len;
    log_buf_free(&out);
    req->res.status = 200;
    req->res.reason = http_status_reason(200);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, len);
    return 0;
}

void http_metrics_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = on_req;
}
