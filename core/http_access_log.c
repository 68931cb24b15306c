#include "http_access_log.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "log.h"
#include "metrics.h"
#include "util.h"
#include "worker.h"

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    struct sockaddr_storage ss;
    char addr[UTIL_ADDR_TEXT_MAX], proto[16];
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    if (sslen == 0 || util_addr_text((void *)&ss, sslen, addr) == 0)
        strcpy(addr, "-");
    char client[CLIENT_ADDR_TEXT_MAX];
    if (worker_client_addr(w, req, client) == 0)
        strcpy(client, addr);
    h2o_stringify_protocol_version(proto, req->version);
    struct timeval now;
    gettimeofday(&now, NULL);
    double ms = (now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000.0 +
                (now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1000.0;
    h2o_iovec_t id = worker_find_request_id(req);
    char idbuf[17] = "-";
    if (id.base != NULL && id.len < sizeof(idbuf)) {
        memcpy(idbuf, id.base, id.len);
        idbuf[id.len] = '\0';
    }
    ssize_t ua = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    log_access_entry_t e = {
        .request_id = idbuf,
        .method = req->input.method.base,
        .method_len = req->input.method.len,
        .path = req->input.path.base,
        .path_len = req->input.path.len,
        .status = req->res.status,
        .bytes = req->bytes_sent,
        .duration_ms = ms < 0 ? 0 : ms,
        .worker = w->id,
        .remote_addr = addr,
        .client_addr = client,
        .protocol = proto,
        .user_agent = ua >= 0 ? req->headers.entries[ua].value.base : "",
        .user_agent_len = ua >= 0 ? req->headers.entries[ua].value.len : 0,
    };
    w->log_dropped += log_access(&w->access_log, &e);

    /* the route: the Lua application's pattern (left in req->env by lua_host), else the path prefix */
    h2o_iovec_t route = req->pathconf != NULL ? req->pathconf->path : h2o_iovec_init(H2O_STRLIT("-"));
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (h2o_memis(req->env.entries[i].base, req->env.entries[i].len, H2O_STRLIT(WORKER_ENV_ROUTE)))
            route = req->env.entries[i + 1];
    metrics_count(&w->metrics, route.base, route.len, req->res.status, e.duration_ms);
}

void http_access_log_register(h2o_pathconf_t *pathconf)
{
    h2o_logger_t *l = h2o_create_logger(pathconf, sizeof(*l));
    l->log_access = on_log_access;
}
