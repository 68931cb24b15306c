#include "lua_host.h"

#include "lua_compat.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "conn_budget.h"
#include "form.h"
#include "log.h"
#include "lua_response.h"
#include "stream.h"
#include "util.h"
#include "worker.h"

#define FREE_COROUTINES 64

struct lua_host_priv {
    lua_host_t super;
    lua_State *free_co[FREE_COROUTINES]; /* finished coroutines kept for reuse */
    int free_ref[FREE_COROUTINES];
    int nfree;
};

struct lua_req {
    h2o_req_t *req; /* NULL once the client is gone */
    worker_t *w;
    struct lua_host_priv *host;
    lua_State *co;
    int co_ref;
    int pending; /* a C function yielded and will resume the coroutine */
    char id[17];
    char *cookie;          /* a Set-Cookie of the core's own (read-your-writes), or NULL */
    struct req_link *link; /* in the request's pool while the request lives, else NULL */
    stream_t *stream;      /* the response is streamed (response.stream), else NULL */
    int is_head;
    uint64_t conn_id; /* counted in the worker's conn_budget while the handler runs */
};

static const stream_owner_ops_t stream_ops; /* below: the request's side of a stream */

/* Lives in the request's pool; its dispose detaches the lua_req from a request that is gone. */
struct req_link {
    lua_req_t *lr;
};

static void on_req_link_dispose(void *p)
{
    struct req_link *link = p;
    if (link->lr != NULL) {
        link->lr->req = NULL;
        link->lr->link = NULL;
    }
}

/* The request whose coroutine this worker thread is running (one at a time per thread), or NULL. */
static _Thread_local lua_req_t *running;

lua_req_t *lua_host_req(lua_State *L)
{
    return running != NULL && running->co == L ? running : NULL;
}

worker_t *lua_req_worker(lua_req_t *lr)
{
    return lr->w;
}

lua_State *lua_req_coroutine(lua_req_t *lr)
{
    return lr->co;
}

h2o_req_t *lua_req_h2o(lua_req_t *lr)
{
    return lr->req;
}

void lua_req_set_cookie(lua_req_t *lr, const char *cookie)
{
    free(lr->cookie);
    lr->cookie = util_strdup(cookie);
}

void lua_host_suspend(lua_req_t *lr)
{
    lr->pending = 1;
}

/* ---- HTTP errors ---- */

int lua_host_raise_http_error(lua_State *L, int status, const char *message)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, LUA_HOST_HTTP_ERROR_MT);
    return lua_error(L);
}

static int http_error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "status");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "HTTP %s: %s", lua_tostring(L, -2), lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : "");
    return 1;
}

/* ---- sending ---- */

static void send_plain(lua_req_t *lr, int status, const char *msg)
{
    lua_response_core_t core = {lr->id, lr->cookie};
    lua_response_send_plain(lr->req, status, msg, &core);
}

/* ---- loading ---- */

static int traceback_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int lua_host_open(lua_host_t **out, const config_t *cfg, worker_t *worker, const lua_host_preload_fn *preloads, char *errbuf,
                  size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        snprintf(errbuf, errlen, "cannot create a Lua state (out of memory)");
        return -1;
    }
    lua_compat_openlibs(L);
    /* A collection cycle starts when the heap is 4x what the last one left (the VMs' default: 2x).
     * Every request leaves its page and rows behind while the live heap (modules, templates,
     * traces) stays the same: each cycle marks all of it again, and on GET / that marking was the
     * largest single cost of the VM (perf: propagatemark 5 % of the process). The heap is a few MB. */
    lua_gc(L, LUA_GCSETPAUSE, 400);
    stream_lua_open(L); /* the metatable of a streamed response's `out` */
    struct lua_host_priv *host = util_malloc(sizeof(*host));
    memset(host, 0, sizeof(*host));
    host->super.L = L;
    host->super.handle_ref = LUA_NOREF;

    /* package.path: the application's directory first */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", cfg->scripts_dir, cfg->scripts_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);

    luaL_newmetatable(L, LUA_HOST_HTTP_ERROR_MT);
    lua_pushcfunction(L, http_error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newmetatable(L, LUA_HOST_REQUEST_MT);
    host->super.req_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_compat_push_preload(L);
    for (const lua_host_preload_fn *p = preloads; *p != NULL; ++p)
        (*p)(L, cfg, worker);
    lua_pop(L, 1);

    lua_pushcfunction(L, traceback_handler);
    char path[4096];
    snprintf(path, sizeof(path), "%s/app.lua", cfg->scripts_dir);
    if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, -2) != LUA_OK) {
        snprintf(errbuf, errlen, "%s", lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : "(error object)");
        goto Error;
    }
    if (!lua_isfunction(L, -1)) {
        snprintf(errbuf, errlen, "%s must return a function handle(req), it returned a %s", path, luaL_typename(L, -1));
        goto Error;
    }
    host->super.handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    *out = &host->super;
    return 0;

Error:
    lua_close(L);
    free(host);
    return -1;
}

void lua_host_close(lua_host_t *_host)
{
    struct lua_host_priv *host = (void *)_host;
    lua_close(host->super.L);
    free(host);
}

/* ---- building req ---- */

static void set_str(lua_State *L, const char *key, const char *s, size_t len)
{
    lua_pushlstring(L, s, len);
    lua_setfield(L, -2, key);
}

static void push_headers(lua_State *L, h2o_req_t *req)
{
    lua_createtable(L, 0, (int)req->headers.size + 1);
    /* h2o keeps Host (HTTP/1) and :authority (HTTP/2) apart from the headers */
    if (req->input.authority.len != 0) {
        lua_pushlstring(L, req->input.authority.base, req->input.authority.len);
        lua_setfield(L, -2, "host");
    }
    for (size_t i = 0; i != req->headers.size; ++i) {
        h2o_header_t *h = req->headers.entries + i;
        lua_pushlstring(L, h->name->base, h->name->len);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushlstring(L, h->value.base, h->value.len);
        } else {
            const char *sep = h->name == &H2O_TOKEN_COOKIE->buf ? "; " : ", ";
            lua_pushstring(L, sep);
            lua_pushlstring(L, h->value.base, h->value.len);
            lua_concat(L, 3);
        }
        lua_rawset(L, -3);
    }
}

static const char *protocol_name(int version)
{
    return version >= 0x200 ? "HTTP/2" : version == 0x100 ? "HTTP/1.0" : "HTTP/1.1";
}

/* Pushes the req table; returns 0, or a 400 message for a path that does not decode. */
static const char *push_req(lua_State *L, lua_req_t *lr)
{
    h2o_req_t *req = lr->req;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *decoded = h2o_mem_alloc_pool(&req->pool, path_len + 1);
    long n = form_percent_decode(decoded, req->path.base, path_len, 0);
    if (n < 0)
        return "invalid percent-encoding in the path";
    if (memchr(decoded, '\0', (size_t)n) != NULL || !form_utf8_valid(decoded, (size_t)n))
        return "the path is not valid UTF-8";

    lua_createtable(L, 0, 16);
    set_str(L, "method", req->method.base, req->method.len);
    set_str(L, "path", decoded, (size_t)n);
    set_str(L, "raw_path", req->path.base, req->path.len);
    if (req->query_at != SIZE_MAX)
        set_str(L, "query_string", req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    else
        set_str(L, "query_string", "", 0);
    push_headers(L, req);
    lua_setfield(L, -2, "headers");
    set_str(L, "body", req->entity.base != NULL ? req->entity.base : "", req->entity.len);
    struct sockaddr_storage ss;
    char addr[UTIL_ADDR_TEXT_MAX] = "";
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    lua_pushlstring(L, addr, sslen != 0 ? util_addr_text((void *)&ss, sslen, addr) : 0);
    lua_setfield(L, -2, "remote_addr");
    set_str(L, "id", lr->id, 16);
    lua_pushinteger(L, lr->w->id);
    lua_setfield(L, -2, "worker");
    lua_pushstring(L, req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http");
    lua_setfield(L, -2, "scheme");
    lua_pushstring(L, protocol_name(req->version));
    lua_setfield(L, -2, "version");
    lua_rawgeti(L, LUA_REGISTRYINDEX, lr->host->super.req_mt_ref);
    lua_setmetatable(L, -2);
    return NULL;
}

/* ---- running the coroutine ---- */

static void finish(lua_req_t *lr, int reusable)
{
    struct lua_host_priv *host = lr->host;
    lua_State *L = host->super.L;
    if (reusable && host->nfree < FREE_COROUTINES) {
        lua_settop(lr->co, 0);
        host->free_co[host->nfree] = lr->co;
        host->free_ref[host->nfree++] = lr->co_ref;
    } else {
        luaL_unref(L, LUA_REGISTRYINDEX, lr->co_ref);
    }
    --lr->w->inflight;
    conn_budget_leave(lr->w->conn_budget, lr->conn_id);
    if (lr->stream != NULL)
        stream_end(lr->stream, reusable); /* the stream function returned, or failed: cut */
    if (lr->link != NULL)
        lr->link->lr = NULL;
    free(lr->cookie);
    if (--host->super.inflight == 0 && lr->w->lua != &host->super)
        lua_host_close(&host->super); /* an old version whose last request just ended */
    free(lr);
}

static void log_lua_error(lua_req_t *lr, const char *what, const char *msg, const char *traceback)
{
    const char *extra[] = {"request_id", lr->id, "error", msg, "traceback", traceback != NULL ? traceback : ""};
    log_event("error", lr->w->id, what, extra, 3);
}

/* Runs (or continues) the coroutine with nargs values on its stack. */
static void run(lua_req_t *lr, int nargs)
{
    lua_State *co = lr->co;
    int nres;
    lr->pending = 0;
    lua_req_t *outer = running;
    running = lr;
    int status = lua_compat_resume(co, lr->host->super.L, nargs, &nres);
    running = outer;
    if (status == LUA_YIELD) {
        if (lr->pending)
            return; /* a C function will resume it */
        lua_pop(co, nres);
        if (lr->req != NULL && lr->stream == NULL) {
            log_lua_error(lr, "handler error", "coroutine.yield() called outside a coroutine of the application", NULL);
            send_plain(lr, 500, "Internal Server Error\n");
        }
        finish(lr, 0);
        return;
    }
    if (status != LUA_OK) {
        const char *msg = lua_tostring(co, -1);
        if (msg == NULL)
            msg = luaL_tolstring(co, -1, NULL);
        luaL_traceback(co, co, NULL, 0);
        log_lua_error(lr, lr->stream != NULL ? "stream error" : "handler error", msg, lua_tostring(co, -1));
        if (lr->req != NULL && lr->stream == NULL)
            send_plain(lr, 500, "Internal Server Error\n");
        finish(lr, 0);
        return;
    }
    if (lr->req != NULL && lr->stream == NULL) {
        lua_response_core_t core = {lr->id, lr->cookie};
        int streamed = 0;
        const char *err = nres >= 1 ? lua_response_send(lr->req, co, lua_gettop(co) - nres + 1, &core, &streamed)
                                    : "handle(req) returned nothing";
        if (err == NULL && streamed) /* the stream function is on top of co: out goes above it */
            lr->stream = stream_start(lr, &stream_ops, co, lr->w, lr->req, co, lr->is_head);
        if (err != NULL) {
            log_lua_error(lr, "invalid response", err, NULL);
            send_plain(lr, 500, "Internal Server Error\n");
        } else if (lr->stream != NULL) {
            /* run stream(out) in the same coroutine: the stack becomes the function and out */
            int top = lua_gettop(co);
            lua_copy(co, top - 1, 1);
            lua_copy(co, top, 2);
            lua_settop(co, 2);
            run(lr, 1);
            return;
        }
    }
    finish(lr, 1);
}

void lua_host_resume(lua_req_t *lr, int nargs)
{
    run(lr, nargs);
}

static void stream_suspend(void *owner)
{
    lua_host_suspend(owner);
}

static void stream_resume(void *owner, int nargs)
{
    lua_host_resume(owner, nargs);
}

static const stream_owner_ops_t stream_ops = {stream_suspend, stream_resume};

/*
 * A request of a connection that already keeps as many handlers running as conn_budget allows
 * (its client resets streams while their handlers run on): answered 503 without running Lua; the
 * request that crosses the limit also shuts the connection's socket down, so that libh2o closes the
 * connection through its own path (a read of end-of-file) and the client's next streams are gone.
 */
static void refuse_flood(worker_t *w, h2o_req_t *req, int crossed)
{
    char id[17];
    worker_next_request_id(w, id);
    if (crossed) {
        h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
        if (sock != NULL)
            shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
        char running[24];
        snprintf(running, sizeof(running), "%u", conn_budget_running(w->conn_budget, req->conn->id));
        const char *extra[] = {"request_id", id, "running", running};
        log_event("warn", w->id, "connection closed: it keeps too many handlers running (streams reset while they run)", extra,
                  2);
    }
    lua_response_core_t core = {id, NULL};
    lua_response_send_plain(req, 503, "Service Unavailable\n", &core);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    /* /_dev/ (the page reloader's script and events) still runs on the version that serves */
    if (w->load_error != NULL && w->cfg->app_env == CONFIG_ENV_DEVELOPMENT &&
        !(req->path_normalized.len >= 6 && memcmp(req->path_normalized.base, "/_dev/", 6) == 0)) {
        lua_response_send_load_error(req, w->load_error, w->app_version);
        return 0;
    }
    int budget = conn_budget_enter(w->conn_budget, req->conn->id);
    if (budget != CONN_BUDGET_OK) {
        refuse_flood(w, req, budget == CONN_BUDGET_CROSSED);
        return 0;
    }
    struct lua_host_priv *host = (void *)w->lua;
    lua_State *L = host->super.L;

    lua_req_t *lr = util_malloc(sizeof(*lr));
    memset(lr, 0, sizeof(*lr));
    lr->req = req;
    lr->w = w;
    lr->host = host;
    lr->conn_id = req->conn->id;
    lr->is_head = req->method.len == 4 && memcmp(req->method.base, "HEAD", 4) == 0;
    worker_next_request_id(w, lr->id);
    struct req_link *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_req_link_dispose);
    link->lr = lr;
    lr->link = link;

    if (host->nfree > 0) {
        --host->nfree;
        lr->co = host->free_co[host->nfree];
        lr->co_ref = host->free_ref[host->nfree];
    } else {
        lr->co = lua_newthread(L);
        lr->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    ++w->inflight;
    ++host->super.inflight;

    lua_rawgeti(lr->co, LUA_REGISTRYINDEX, host->super.handle_ref);
    const char *bad = push_req(lr->co, lr);
    if (bad != NULL) {
        lua_settop(lr->co, 0);
        send_plain(lr, 400, bad);
        finish(lr, 1);
        return 0;
    }
    run(lr, 1);
    return 0;
}

void lua_host_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = on_req;
}
