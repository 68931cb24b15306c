#include "http_healthz.h"

#include "http_status.h"
#include "lua_watchdog.h"
#include "worker.h"

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    int stuck = lua_watchdog_tripped(); /* some worker ran Lua past LUA_TIMEOUT: replace this task */
    req->res.status = w->shutting_down || stuck ? 503 : 200;
    req->res.reason = http_status_reason(req->res.status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (w->shutting_down)
        h2o_send_inline(req, H2O_STRLIT("draining\n"));
    else if (stuck)
        h2o_send_inline(req, H2O_STRLIT("a worker is stuck in Lua\n"));
    else
        h2o_send_inline(req, H2O_STRLIT("ok\n"));
    return 0;
}

void http_healthz_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = on_req;
}
