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
#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "app.h"
#include "app_metrics.h"
#include "config.h"
#include "conn_budget.h"
#include "db_pool.h"
#include "db_route.h"
#include "http.h"
#include "http_framing.h"
#include "http_metrics.h"
#include "httpc.h"
#include "log.h"
#include "lua_host.h"
#include "lua_watchdog.h"
#include "metrics.h"
#include "migrate.h"
#include "reload.h"
#include "shared_store.h"
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
    lua_watch_t **watches; /* every worker's, for the watchdog */
    metrics_t **all_metrics;
    app_metrics_t *app_metrics; /* the application's, shared by the workers; lives as long as the process */
    int nworkers;
    pthread_barrier_t receivers;       /* passed once every worker can be posted to */
    shared_store_list_t shared_stores; /* SHARED_STORES: made once, kept across reloads */
} server_t;

/* The process's one server; static so that what workers leave to process exit stays reachable. */
static server_t s;

/* Worker 0's EMF line every EMF_INTERVAL: the process's, hung on that worker. */
struct worker_emf {
    worker_t *w;
    h2o_timeout_t timeout;
    h2o_timeout_entry_t tick;
    metrics_totals_t prev;
};

static void build_globalconf(server_t *sv)
{
    const config_t *cfg = sv->cfg;
    h2o_config_init(&sv->globalconf);
    sv->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("h2lua"));
    /* libh2o refuses bodies past its limit before routing, with a bare 413 (no security headers; an
     * HTTP/2 stream refused). With twice MAX_BODY there, a body over MAX_BODY reaches the limits
     * handler, which answers a full 413; only grossly oversized bodies meet libh2o's refusal. */
    /* the file handler's open files are shared by the requests of one loop iteration (the worker
     * clears the cache after each): no open/fstat/close per request under load, never stale */
    sv->globalconf.filecache.capacity = 256;
    sv->globalconf.max_request_entity_size = cfg->max_body > SIZE_MAX / 4 ? cfg->max_body : cfg->max_body * 2 + 65536;
    sv->globalconf.http1.req_timeout = (uint64_t)cfg->req_timeout_ms;
    /* HTTP2=off (the default): libh2o neither takes "PRI * HTTP/2" (prior knowledge; answered 400) nor
     * Upgrade: h2c, and setup_tls offers no h2 by ALPN — see docs/security.md on rapid reset */
    sv->globalconf.http1.upgrade_to_http2 = cfg->http2;
    sv->globalconf.http2.idle_timeout = (uint64_t)cfg->req_timeout_ms;
    sv->globalconf.http2.graceful_shutdown_timeout = (uint64_t)cfg->drain_timeout_ms;
    sv->globalconf.handshake_timeout = (uint64_t)cfg->req_timeout_ms;

    http_build(&sv->globalconf, cfg, lua_host_register);
}

/* ---- TLS ---- */

/*
 * Mozilla's "intermediate" profile (Server Side TLS guidelines): TLS 1.2 with ECDHE and AEAD suites
 * only, TLS 1.3 with its three suites, the server's order, X25519/P-256/P-384. The DHE suites of the
 * profile are left out (every client that has them has ECDHE too, and they would need DH parameters).
 */
#define TLS12_CIPHERS                                                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_CIPHERSUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"
/* Resumption: the session cache of the process (shared by the workers' connections) for a day, as
 * Mozilla's nginx configuration does; no session tickets, whose key OpenSSL never rotates (a stolen
 * key would decrypt every recorded session): in TLS 1.3 OpenSSL then issues stateful tickets that
 * name a cached session. */
#define TLS_SESSION_TIMEOUT_S 86400

static int setup_tls(server_t *sv)
{
    const config_t *cfg = sv->cfg;
    if (cfg->tls_cert == NULL)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS13_CIPHERSUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        log_errorf(-1, "the TLS settings were refused by OpenSSL %s: %s", OpenSSL_version(OPENSSL_VERSION),
                   ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ctx);
        return -1;
    }
    /* the server picks the suite; no compression (CRIME); no renegotiation, by the client or by us */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT_S);
    static const unsigned char sid_ctx[] = "h2lua";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
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
    if (cfg->http2)
        h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    sv->ssl_ctx = ctx;
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
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, 4096) != 0) {
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
    struct worker_emf *emf = H2O_STRUCT_FROM_MEMBER(struct worker_emf, tick, entry);
    worker_t *w = emf->w;
    metrics_emf(&w->access_log, w->all_metrics, w->nworkers, &emf->prev);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    app_metrics_emf(w->app_metrics, &w->access_log, (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    w->log_dropped += log_buf_flush_nb(&w->access_log, STDOUT_FILENO);
    h2o_timeout_link(w->loop, &emf->timeout, &emf->tick);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, tick, entry);
    w->log_dropped += log_buf_flush_nb(&w->access_log, STDOUT_FILENO);
    http_metrics_publish(w);
    h2o_timeout_link(w->loop, &w->tick_timeout, &w->tick);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    lua_watch_attach(w->watch);
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &s.globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = s.globalconf.hosts;
    w->accept_ctx.ssl_ctx = s.ssl_ctx;
    h2o_multithread_register_receiver(w->ctx.queue, &w->control, on_control);
    pthread_barrier_wait(&s.receivers); /* the main thread posts only after this */
    h2o_timeout_init(w->loop, &w->tick_timeout, 100);
    w->tick.cb = on_tick;
    h2o_timeout_link(w->loop, &w->tick_timeout, &w->tick);
    if (w->id == 0 && w->cfg->emf_interval_ms > 0) {
        struct worker_emf *emf = util_malloc(sizeof(*emf));
        memset(emf, 0, sizeof(*emf));
        emf->w = w;
        h2o_timeout_init(w->loop, &emf->timeout, (uint64_t)w->cfg->emf_interval_ms);
        emf->tick.cb = on_emf_tick;
        h2o_timeout_link(w->loop, &emf->timeout, &emf->tick);
        w->emf = emf;
    }
    /* twice what libh2o runs of one HTTP/2 connection at once: reached only by resetting streams */
    w->conn_budget = conn_budget_create(2 * (unsigned)s.globalconf.http2.max_concurrent_requests_per_connection);
    if (w->cfg->db.host != NULL) {
        w->db = db_pool_create(&w->ctx, w->id, w->cfg, &w->cfg->db, "primary");
        if (w->cfg->db_read.host != NULL)
            w->db_read = db_pool_create(&w->ctx, w->id, w->cfg, &w->cfg->db_read, "replica");
        db_route_start(w);
    }

    w->listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);

    while (!w->shutting_down || (has_work(w) && h2o_now(w->loop) < w->drain_deadline)) {
        h2o_evloop_run(w->loop, w->shutting_down ? 10 : INT32_MAX);
        h2o_filecache_clear(w->ctx.filecache);
    }

    int abandoned = has_work(w);
    if (abandoned)
        log_warnf(w->id, "drain timeout: %llu requests still running were dropped", (unsigned long long)w->inflight);
    log_buf_flush(&w->access_log, STDOUT_FILENO);
    /*
     * The order of the end (db_pool.h, db_pool_close): the Lua state first, when no request runs on
     * it, so that a transaction the application dropped without commit, collected now, releases
     * its connection into a live pool; then the pools, which close every connection in whatever
     * state it is and cancel their waiters without resuming anything. After a drain that abandoned
     * requests the Lua state is left to process exit: their coroutines are suspended in it and are
     * never resumed (the pools cancel what they wait for), and closing it would run their
     * transactions' __gc on connections the pools are about to close anyway.
     */
    if (!abandoned) {
        lua_host_close(w->lua);
        w->lua = NULL;
        conn_budget_free(w->conn_budget);
        w->conn_budget = NULL;
    }
    if (w->db != NULL)
        db_pool_close(w->db);
    if (w->db_read != NULL)
        db_pool_close(w->db_read);
    w->db = w->db_read = NULL;
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
    server_t *sv = arg;
    reload_request();
    for (int i = 0; i < sv->nworkers; ++i)
        post(&sv->workers[i], MSG_RELOAD);
}

/* Joins w's thread; -1 when it is stuck in Lua past LUA_TIMEOUT instead (it would never end). */
static int join_worker(worker_t *w)
{
    for (;;) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 200 * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec += 1;
            deadline.tv_nsec -= 1000000000L;
        }
        if (pthread_timedjoin_np(w->thread, NULL, &deadline) == 0)
            return 0;
        if (lua_watch_stuck(w->watch, w->cfg->lua_timeout_ms))
            return -1;
    }
}

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
    http_framing_init();
    httpc_init_process();
    build_globalconf(&s);

    s.shared_stores.n = cfg->nshared_stores;
    s.shared_stores.stores = calloc(cfg->nshared_stores + 1, sizeof(shared_store_t *));
    for (size_t i = 0; i < cfg->nshared_stores; ++i)
        s.shared_stores.stores[i] = shared_store_create(cfg->shared_stores[i].name, cfg->shared_stores[i].size, NULL);
    s.workers = calloc((size_t)s.nworkers, sizeof(worker_t));
    s.all_metrics = calloc((size_t)s.nworkers, sizeof(metrics_t *));
    s.watches = calloc((size_t)s.nworkers, sizeof(lua_watch_t *));
    s.app_metrics = app_metrics_new();
    uint32_t base;
    util_random_bytes(&base, sizeof(base));
    for (int i = 0; i < s.nworkers; ++i) {
        worker_t *w = &s.workers[i];
        w->id = i;
        w->cfg = cfg;
        w->all_metrics = s.all_metrics;
        w->shared_stores = &s.shared_stores;
        w->app_metrics = s.app_metrics;
        w->nworkers = s.nworkers;
        s.all_metrics[i] = &w->metrics;
        w->watch = s.watches[i] = lua_watch_create(i);
        w->request_id_base = base + (uint32_t)i;
        metrics_init(&w->metrics);
        if ((w->listen_fd = open_listener(cfg)) < 0)
            return 1;
        char err[4096];
        if (app_open(&w->lua, cfg, w, err, sizeof(err)) != 0) {
            const char *extra[] = {"error", err};
            log_event("error", i, "the application failed to load", extra, 1);
            return 1;
        }
    }
    pthread_barrier_init(&s.receivers, NULL, (unsigned)s.nworkers + 1);
    for (int i = 0; i < s.nworkers; ++i)
        pthread_create(&s.workers[i].thread, NULL, worker_main, &s.workers[i]);
    pthread_barrier_wait(&s.receivers); /* a signal from now on reaches every worker */
    lua_watchdog_start(s.watches, s.nworkers, cfg->lua_timeout_ms);
    log_infof(-1, "h2lua %s listening on %s:%d (%s) with %d workers, APP_ENV=%s", H2LUA_VERSION, cfg->host, cfg->port,
              s.ssl_ctx != NULL ? (cfg->http2 ? "https, http/2" : "https, http/1.1")
                                : (cfg->http2 ? "http/1.1, h2c" : "http/1.1"),
              s.nworkers, cfg->app_env == CONFIG_ENV_DEVELOPMENT ? "development" : "production");

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
    reload_watch_stop(); /* no reload is posted to a worker that is draining */
    for (int i = 0; i < s.nworkers; ++i)
        post(&s.workers[i], MSG_SHUTDOWN);
    int stuck = 0;
    for (int i = 0; i < s.nworkers; ++i) {
        if (join_worker(&s.workers[i]) != 0) {
            /* its thread runs the application's Lua and never comes back: nothing to drain */
            log_errorf(i, "worker still stuck in Lua past LUA_TIMEOUT: exiting without it");
            stuck = 1;
        }
    }
    migrate_stop(); /* joined: from here on only this thread and a stuck worker read cfg */
    if (stuck) {
        /* the stuck thread may read cfg and its Lua state until the process ends: nothing is
         * freed, the process ends here */
        log_errorf(-1, "stopped with a worker stuck in Lua");
        _exit(1);
    }
    lua_watchdog_stop();
    for (size_t i = 0; i < s.shared_stores.n; ++i)
        shared_store_free(s.shared_stores.stores[i]);
    free(s.shared_stores.stores);
    s.shared_stores.n = 0;
    log_infof(-1, "stopped");
    return 0;
}
