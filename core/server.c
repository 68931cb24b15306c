#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "db_pool.h"
#include "db_route.h"
#include "log.h"
#include "lua_host.h"
#include "metrics.h"
#include "migrate.h"
#include "reload.h"
#include "util.h"
#include "worker.h"

/* Messages the main thread posts to a worker's control receiver. */
enum { MSG_SHUTDOWN = 1, MSG_RELOAD = 2 };
typedef struct control_msg {
    h2o_multithread_message_t super;
    int kind;
} control_msg_t;

typedef struct server {
    const config_t *cfg;
    h2o_globalconf_t globalconf;
    SSL_CTX *ssl_ctx;
    worker_t *workers;
    int nworkers;
} server_t;

/* ---- response headers added to every response: security headers, request id, caching ---- */

static h2o_iovec_t hdr_nosniff = {H2O_STRLIT("x-content-type-options")};
static h2o_iovec_t hdr_frame = {H2O_STRLIT("x-frame-options")};
static h2o_iovec_t hdr_referrer = {H2O_STRLIT("referrer-policy")};
static h2o_iovec_t hdr_csp = {H2O_STRLIT("content-security-policy")};
h2o_iovec_t server_hdr_request_id = {H2O_STRLIT("x-request-id")};

#define CSP_VALUE                                                                                                              \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "                    \
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

typedef struct headers_filter {
    h2o_filter_t super;
    int is_static;
} headers_filter_t;

static void push_header(h2o_req_t *req, h2o_iovec_t *name, const char *value, size_t len)
{
    h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + 1);
    h2o_header_t *h = req->res.headers.entries + req->res.headers.size++;
    h->name = name;
    h->orig_name = NULL;
    h->value = h2o_iovec_init(value, len);
}

/* The x-request-id of a response, or {NULL, 0}. */
static h2o_iovec_t find_request_id(h2o_req_t *req)
{
    for (size_t i = 0; i != req->res.headers.size; ++i)
        if (req->res.headers.entries[i].name == &server_hdr_request_id)
            return req->res.headers.entries[i].value;
    return h2o_iovec_init(NULL, 0);
}

static void on_setup_ostream(h2o_filter_t *_self, h2o_req_t *req, h2o_ostream_t **slot)
{
    headers_filter_t *self = (void *)_self;
    if (worker_from_ctx(req->conn->ctx)->shutting_down)
        req->http1_is_persistent = 0; /* draining: HTTP/1 responses carry Connection: close */
    push_header(req, &hdr_nosniff, H2O_STRLIT("nosniff"));
    push_header(req, &hdr_frame, H2O_STRLIT("DENY"));
    push_header(req, &hdr_referrer, H2O_STRLIT("same-origin"));
    push_header(req, &hdr_csp, H2O_STRLIT(CSP_VALUE));
    if (find_request_id(req).base == NULL) {
        char *id = h2o_mem_alloc_pool(&req->pool, 17);
        worker_next_request_id(worker_from_ctx(req->conn->ctx), id);
        push_header(req, &server_hdr_request_id, id, 16);
    }
    if (self->is_static && req->res.status == 200)
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("public, max-age=3600"), 1);
    h2o_setup_next_ostream(req, slot);
}

static void register_headers_filter(h2o_pathconf_t *pathconf, int is_static)
{
    headers_filter_t *f = (void *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->is_static = is_static;
}

/* ---- the access log ---- */

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    struct sockaddr_storage ss;
    char addr[NI_MAXHOST] = "-", proto[16];
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    if (sslen != 0 && h2o_socket_getnumerichost((void *)&ss, sslen, addr) == SIZE_MAX)
        strcpy(addr, "-");
    h2o_stringify_protocol_version(proto, req->version);
    struct timeval now;
    gettimeofday(&now, NULL);
    double ms = (now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000.0 +
                (now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1000.0;
    h2o_iovec_t id = find_request_id(req);
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
        .protocol = proto,
        .user_agent = ua >= 0 ? req->headers.entries[ua].value.base : "",
        .user_agent_len = ua >= 0 ? req->headers.entries[ua].value.len : 0,
    };
    w->log_dropped += log_access(&w->access_log, &e);

    /* the route: the Lua application's pattern (left in req->env by lua_host), else the path prefix */
    h2o_iovec_t route = req->pathconf != NULL ? req->pathconf->path : h2o_iovec_init(H2O_STRLIT("-"));
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (h2o_memis(req->env.entries[i].base, req->env.entries[i].len, H2O_STRLIT(SERVER_ENV_ROUTE)))
            route = req->env.entries[i + 1];
    metrics_count(&w->metrics, route.base, route.len, req->res.status, e.duration_ms);
}

static void register_logger(h2o_pathconf_t *pathconf)
{
    h2o_logger_t *l = h2o_create_logger(pathconf, sizeof(*l));
    l->log_access = on_log_access;
}

/* ---- limits checked before any handler: the size of the request head and body ---- */

static int on_req_limits(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    size_t total = req->input.path.len + req->input.method.len + req->input.authority.len;
    for (size_t i = 0; i != req->headers.size; ++i)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (total > (size_t)w->cfg->max_header_bytes) {
        req->http1_is_persistent = 0;
        h2o_send_error_generic(req, 431, "Request Header Fields Too Large", "request header fields too large", 0);
        return 0;
    }
    /* Content-Length and Transfer-Encoding are consumed by libh2o 2.2 before any handler runs (a
     * repeated Content-Length or Host resolves to the first): framing checks cannot live here. */
    if (req->entity.base != NULL && req->entity.len > w->cfg->max_body) {
        h2o_send_error_generic(req, 413, "Payload Too Large", "the request body is larger than MAX_BODY", 0);
        return 0;
    }
    return -1; /* within limits: the next handler runs */
}

static void register_limits(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = on_req_limits;
}

/* ---- /healthz: answered by the core, never touching Lua or the database ---- */

static int on_healthz(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    req->res.status = w->shutting_down ? 503 : 200;
    req->res.reason = w->shutting_down ? "Service Unavailable" : "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (w->shutting_down)
        h2o_send_inline(req, H2O_STRLIT("draining\n"));
    else
        h2o_send_inline(req, H2O_STRLIT("ok\n"));
    return 0;
}

/* ---- /metrics: Prometheus text, only with METRICS_TOKEN as a bearer token ---- */

static int on_metrics(h2o_handler_t *self, h2o_req_t *req)
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
        req->res.reason = "Unauthorized";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
        h2o_send_inline(req, H2O_STRLIT("a bearer token is required\n"));
        return 0;
    }
    metrics_publish(w);
    log_buf_t out = {0};
    metrics_render(&out, w->server->workers, w->server->nworkers);
    char *body = h2o_mem_alloc_pool(&req->pool, out.len);
    memcpy(body, out.data, out.len);
    size_t len = out.len;
    log_buf_free(&out);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, len);
    return 0;
}

/* ---- /readyz: 200 when migrations are applied and the primary database answers a ping ---- */

/* In the request's pool: detaches the ping from a request whose client went away. */
struct readyz_link {
    h2o_req_t *req;
    db_run_t *ping;
};

static void readyz_send(h2o_req_t *req, int ok, const char *why)
{
    req->res.status = ok ? 200 : 503;
    req->res.reason = ok ? "OK" : "Service Unavailable";
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

static void on_readyz_link_dispose(void *p)
{
    struct readyz_link *link = p;
    if (link->ping != NULL)
        db_pool_run_cancel(link->ping);
}

static void on_readyz_ping(void *data, int err, const char *msg, db_result_t *result)
{
    (void)result;
    struct readyz_link *link = data;
    link->ping = NULL;
    readyz_send(link->req, err == 0, msg != NULL ? msg : "the database did not answer");
}

static int on_readyz(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    if (w->shutting_down) {
        readyz_send(req, 0, "shutting down");
        return 0;
    }
    if (w->db == NULL) {
        readyz_send(req, 1, NULL);
        return 0;
    }
    if (!migrate_is_done()) {
        readyz_send(req, 0, "migrations are not applied yet");
        return 0;
    }
    struct readyz_link *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_readyz_link_dispose);
    link->req = req;
    link->ping = NULL;
    const char *msg = NULL;
    if (db_pool_run(w->db, "SELECT 1", link, on_readyz_ping, &link->ping, &msg) != 0)
        readyz_send(req, 0, msg);
    return 0;
}

static void register_c_handler(h2o_hostconf_t *host, const char *path, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, path, 0);
    register_limits(pc);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    h->on_req = on_req;
    register_headers_filter(pc, 0);
    register_logger(pc);
}

static void register_static(h2o_hostconf_t *host, const char *path, const char *dir, h2o_mimemap_t *mimemap)
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, path, 0);
    register_limits(pc);
    h2o_file_register(pc, dir, NULL, mimemap, 0);
    register_headers_filter(pc, 1);
    register_logger(pc);
}

static h2o_mimemap_t *create_mimemap(void)
{
    static const char *const types[][2] = {
        {"css", "text/css; charset=utf-8"},       {"js", "text/javascript; charset=utf-8"},
        {"html", "text/html; charset=utf-8"},     {"txt", "text/plain; charset=utf-8"},
        {"json", "application/json; charset=utf-8"}, {"svg", "image/svg+xml; charset=utf-8"},
        {"map", "application/json; charset=utf-8"},
    };
    h2o_mimemap_t *m = h2o_mimemap_create();
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); ++i)
        h2o_mimemap_define_mimetype(m, types[i][0], types[i][1], NULL);
    return m;
}

static void build_globalconf(server_t *s)
{
    const config_t *cfg = s->cfg;
    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("h2lua"));
    /* libh2o refuses bodies past its limit before routing, with a bare 413 (no security headers; an
     * HTTP/2 stream refused). With twice MAX_BODY there, a body over MAX_BODY reaches the limits
     * handler, which answers a full 413; only grossly oversized bodies meet libh2o's refusal. */
    s->globalconf.max_request_entity_size = cfg->max_body > SIZE_MAX / 4 ? cfg->max_body : cfg->max_body * 2 + 65536;
    s->globalconf.http1.req_timeout = (uint64_t)cfg->req_timeout_ms;
    s->globalconf.http2.idle_timeout = (uint64_t)cfg->req_timeout_ms;
    s->globalconf.http2.graceful_shutdown_timeout = (uint64_t)cfg->drain_timeout_ms;
    s->globalconf.handshake_timeout = (uint64_t)cfg->req_timeout_ms;

    h2o_hostconf_t *host = h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    register_c_handler(host, "/healthz", on_healthz);
    register_c_handler(host, "/readyz", on_readyz);
    h2o_pathconf_t *mpc = h2o_config_register_path(host, "/metrics", 0);
    register_limits(mpc);
    h2o_handler_t *mh = h2o_create_handler(mpc, sizeof(*mh));
    mh->on_req = on_metrics;
    lua_host_register(mpc); /* without METRICS_TOKEN, /metrics is the application's (404) */
    register_headers_filter(mpc, 0);
    register_logger(mpc);
    h2o_mimemap_t *mimemap = create_mimemap();
    register_static(host, "/static/bootstrap", cfg->bootstrap_dir, mimemap);
    register_static(host, "/static", cfg->static_dir, mimemap);
    h2o_mem_release_shared(mimemap);

    h2o_pathconf_t *root = h2o_config_register_path(host, "/", 0);
    register_limits(root);
    lua_host_register(root);
    register_headers_filter(root, 0);
    register_logger(root);
}

/* ---- TLS ---- */

static int setup_tls(server_t *s)
{
    const config_t *cfg = s->cfg;
    if (cfg->tls_cert == NULL)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        log_errorf(-1, "TLS_CERT '%s' could not be loaded: %s", cfg->tls_cert, ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ctx);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        log_errorf(-1, "TLS_KEY '%s' could not be loaded or does not match TLS_CERT: %s", cfg->tls_key,
                   ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ctx);
        return -1;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    s->ssl_ctx = ctx;
    return 0;
}

/* ---- listening sockets ---- */

static int open_listener(const config_t *cfg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char port[8];
    snprintf(port, sizeof(port), "%d", cfg->port);
    int err = getaddrinfo(cfg->host, port, &hints, &res);
    if (err != 0) {
        log_errorf(-1, "HOST '%s' could not be resolved: %s", cfg->host, gai_strerror(err));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        log_errorf(-1, "cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* ---- the worker thread ---- */

void worker_next_request_id(worker_t *w, char buf[17])
{
    snprintf(buf, 17, "%08x%08x", w->request_id_base, (uint32_t)++w->request_seq);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    worker_t *w = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 32; ++i) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(&w->accept_ctx, sock);
    }
}

static int count_active(h2o_req_t *req, void *p)
{
    /* an idle keep-alive connection has no request line yet */
    if (req->input.method.base != NULL)
        ++*(size_t *)p;
    return 0;
}

/*
 * Whether a draining worker must keep running: a request is being handled or sent. Idle
 * keep-alive connections do not count (libh2o 2.2 has no graceful close for HTTP/1): they are
 * closed when the worker ends, as a load balancer expects of a target that deregistered.
 */
static int has_work(worker_t *w)
{
    size_t n = 0;
    H2O_HTTP1_CALLBACKS.foreach_request(&w->ctx, count_active, &n);
    H2O_HTTP2_CALLBACKS.foreach_request(&w->ctx, count_active, &n);
    return n != 0 || w->inflight != 0;
}

static void begin_shutdown(worker_t *w)
{
    if (w->shutting_down)
        return;
    w->shutting_down = 1;
    w->drain_deadline = h2o_now(w->loop) + (uint64_t)w->cfg->drain_timeout_ms;
    if (w->listener != NULL) {
        h2o_socket_read_stop(w->listener);
        h2o_socket_close(w->listener);
        w->listener = NULL;
    }
    h2o_context_request_shutdown(&w->ctx);
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, control, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        control_msg_t *m = H2O_STRUCT_FROM_MEMBER(control_msg_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        if (m->kind == MSG_SHUTDOWN)
            begin_shutdown(w);
        else if (m->kind == MSG_RELOAD)
            reload_worker(w);
        free(m);
    }
}

static void on_emf_tick(h2o_timeout_entry_t *entry)
{
    worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, emf_tick, entry);
    metrics_emf(&w->access_log, w->server->workers, w->server->nworkers, &w->emf_prev);
    w->log_dropped += log_buf_flush_nb(&w->access_log, STDOUT_FILENO);
    h2o_timeout_link(w->loop, &w->emf_timeout, &w->emf_tick);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, tick, entry);
    w->log_dropped += log_buf_flush_nb(&w->access_log, STDOUT_FILENO);
    metrics_publish(w);
    h2o_timeout_link(w->loop, &w->tick_timeout, &w->tick);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    server_t *s = w->server;
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &s->globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = s->globalconf.hosts;
    w->accept_ctx.ssl_ctx = s->ssl_ctx;
    h2o_multithread_register_receiver(w->ctx.queue, &w->control, on_control);
    h2o_timeout_init(w->loop, &w->tick_timeout, 100);
    w->tick.cb = on_tick;
    h2o_timeout_link(w->loop, &w->tick_timeout, &w->tick);
    if (w->id == 0 && w->cfg->emf_interval_ms > 0) {
        h2o_timeout_init(w->loop, &w->emf_timeout, (uint64_t)w->cfg->emf_interval_ms);
        w->emf_tick.cb = on_emf_tick;
        h2o_timeout_link(w->loop, &w->emf_timeout, &w->emf_tick);
    }
    if (w->cfg->db.host != NULL) {
        w->db = db_pool_create(w, &w->cfg->db, "primary");
        if (w->cfg->db_read.host != NULL)
            w->db_read = db_pool_create(w, &w->cfg->db_read, "replica");
        db_route_start(w);
    }

    w->listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);

    while (!w->shutting_down || (has_work(w) && h2o_now(w->loop) < w->drain_deadline))
        h2o_evloop_run(w->loop, w->shutting_down ? 10 : INT32_MAX);

    if (has_work(w))
        log_warnf(w->id, "drain timeout: %llu requests still running were dropped", (unsigned long long)w->inflight);
    log_buf_flush(&w->access_log, STDOUT_FILENO);
    if (w->db != NULL)
        db_pool_close(w->db);
    if (w->db_read != NULL)
        db_pool_close(w->db_read);
    w->db = w->db_read = NULL;
    if (!has_work(w)) {
        /* clean drain: no request runs on the Lua state any more */
        lua_host_close(w->lua);
        w->lua = NULL;
    }
    log_buf_free(&w->access_log);
    /* The loop, the h2o context and idle connections are left to process exit: disposing of them
     * with connections still open would run their callbacks on freed state. */
    return NULL;
}

static void post(worker_t *w, int kind)
{
    control_msg_t *m = util_malloc(sizeof(*m));
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    h2o_multithread_send_message(&w->control, &m->super);
}

static void reload_all(void *arg)
{
    server_t *s = arg;
    reload_request();
    for (int i = 0; i < s->nworkers; ++i)
        post(&s->workers[i], MSG_RELOAD);
}

/* The process's one server; static so that what workers leave to process exit stays reachable. */
static server_t s;

int server_run(const config_t *cfg)
{
    s.cfg = cfg;
    s.nworkers = cfg->workers;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (setup_tls(&s) != 0)
        return 1;
    log_stdout_nonblocking();
    build_globalconf(&s);

    s.workers = calloc((size_t)s.nworkers, sizeof(worker_t));
    uint32_t base;
    util_random_bytes(&base, sizeof(base));
    for (int i = 0; i < s.nworkers; ++i) {
        worker_t *w = &s.workers[i];
        w->id = i;
        w->cfg = cfg;
        w->server = &s;
        w->request_id_base = base + (uint32_t)i;
        metrics_init(&w->metrics);
        if ((w->listen_fd = open_listener(cfg)) < 0)
            return 1;
        char err[4096];
        if (lua_host_open(&w->lua, cfg, w, err, sizeof(err)) != 0) {
            const char *extra[] = {"error", err};
            log_event("error", i, "the application failed to load", extra, 1);
            return 1;
        }
    }
    for (int i = 0; i < s.nworkers; ++i)
        pthread_create(&s.workers[i].thread, NULL, worker_main, &s.workers[i]);
    log_infof(-1, "h2lua %s listening on %s:%d (%s) with %d workers, APP_ENV=%s", H2LUA_VERSION, cfg->host,
              cfg->port, s.ssl_ctx != NULL ? "https, http/2" : "http/1.1, h2c", s.nworkers,
              cfg->app_env == CONFIG_ENV_DEVELOPMENT ? "development" : "production");

    migrate_start(cfg);
    reload_watch_start(cfg, reload_all, &s);
    for (;;) {
        int sig;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_infof(-1, "SIGHUP: reloading scripts and views");
            reload_all(&s);
            continue;
        }
        log_infof(-1, "%s: draining (up to %d s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg->drain_timeout_ms / 1000);
        break;
    }
    for (int i = 0; i < s.nworkers; ++i)
        post(&s.workers[i], MSG_SHUTDOWN);
    for (int i = 0; i < s.nworkers; ++i)
        pthread_join(s.workers[i].thread, NULL);
    log_infof(-1, "stopped");
    return 0;
}
