#include "lua_host.h"

#include <lauxlib.h>
#include <lualib.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "form.h"
#include "log.h"
#include "lua_api.h"
#include "server.h"
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
    h2o_generator_t gen;
    h2o_req_t *req; /* NULL once the client is gone */
    worker_t *w;
    struct lua_host_priv *host;
    lua_State *co;
    int co_ref;
    int pending; /* a C function yielded and will resume the coroutine */
    int is_head;
    char id[17];
    char *cookie; /* a Set-Cookie of the core's own (read-your-writes), or NULL */
    struct req_link *link; /* in the request's pool while the request lives, else NULL */
    stream_t *stream;      /* the response is streamed (response.stream), else NULL */
};

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

lua_req_t *lua_host_req(lua_State *L)
{
    return *(lua_req_t **)lua_getextraspace(L);
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

/* ---- loading ---- */

static int traceback_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int lua_host_open(lua_host_t **out, const config_t *cfg, worker_t *worker, char *errbuf, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        snprintf(errbuf, errlen, "cannot create a Lua state (out of memory)");
        return -1;
    }
    *(lua_req_t **)lua_getextraspace(L) = NULL;
    luaL_openlibs(L);
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

    lua_api_open(L, cfg, worker);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_API_REQUEST_MT);
    host->super.req_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);

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
    char addr[NI_MAXHOST] = "";
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    if (sslen != 0 && h2o_socket_getnumerichost((void *)&ss, sslen, addr) == SIZE_MAX)
        addr[0] = '\0';
    lua_pushstring(L, addr);
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

/* ---- sending the response ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 418: return "I'm a teapot";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

static void proceed_noop(h2o_generator_t *self, h2o_req_t *req)
{
    (void)self, (void)req;
}

/* Status, reason, x-request-id and the core's cookie of the response; the headers of the
 * application are in req->res.headers already. */
static void set_response_head(lua_req_t *lr, int status)
{
    h2o_req_t *req = lr->req;
    /* the name pointer is the shared one, so that the filter and the logger find it */
    h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + 1);
    h2o_header_t *h = req->res.headers.entries + req->res.headers.size++;
    h->name = &server_hdr_request_id;
    h->orig_name = NULL;
    h->value = h2o_strdup(&req->pool, lr->id, 16); /* lr is freed before the access log reads it */
    if (lr->cookie != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, h2o_strdup(&req->pool, lr->cookie, SIZE_MAX).base,
                       strlen(lr->cookie));
    req->res.status = status;
    req->res.reason = reason_phrase(status);
}

static void send_body(lua_req_t *lr, int status, const char *body, size_t len)
{
    h2o_req_t *req = lr->req;
    set_response_head(lr, status);
    req->res.content_length = len;
    lr->gen.proceed = proceed_noop;
    lr->gen.stop = NULL;
    h2o_start_response(req, &lr->gen);
    h2o_iovec_t buf = h2o_iovec_init(NULL, 0);
    if (!lr->is_head && len != 0) {
        buf.base = h2o_mem_alloc_pool(&req->pool, len);
        memcpy(buf.base, body, len);
        buf.len = len;
    }
    h2o_send(req, &buf, buf.len != 0 ? 1 : 0, H2O_SEND_STATE_FINAL);
}

static void send_plain(lua_req_t *lr, int status, const char *msg)
{
    h2o_req_t *req = lr->req;
    req->res.headers = (h2o_headers_t){NULL, 0, 0};
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
    send_body(lr, status, msg, strlen(msg));
}

static int valid_header_name(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static int valid_header_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Adds one header from the Lua strings at the top; returns an error message or NULL. */
static const char *add_header(h2o_req_t *req, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (!valid_header_name(name, nlen))
        return "a response header name is not lower-case token characters";
    if (!valid_header_value(value, vlen))
        return "a response header value holds a control character (CR/LF injection refused)";
    char *v = h2o_mem_alloc_pool(&req->pool, vlen + 1);
    memcpy(v, value, vlen);
    v[vlen] = '\0';
    const h2o_token_t *token = h2o_lookup_token(name, nlen);
    if (token != NULL) {
        if (token == H2O_TOKEN_CONTENT_LENGTH || token == H2O_TOKEN_TRANSFER_ENCODING || token == H2O_TOKEN_CONNECTION)
            return NULL; /* framing is the core's business */
        h2o_add_header(&req->pool, &req->res.headers, token, NULL, v, vlen);
    } else {
        char *n = h2o_mem_alloc_pool(&req->pool, nlen + 1);
        memcpy(n, name, nlen);
        n[nlen] = '\0';
        h2o_add_header_by_str(&req->pool, &req->res.headers, n, nlen, 0, NULL, v, vlen);
    }
    return NULL;
}

/* Sends the response table at index idx of L; returns an error message or NULL. */
static const char *send_response(lua_req_t *lr, lua_State *L, int idx)
{
    h2o_req_t *req = lr->req;
    if (!lua_istable(L, idx))
        return "handle(req) must return a response table";
    int status = 200;
    if (lua_getfield(L, idx, "status") != LUA_TNIL) {
        int isnum;
        lua_Integer s = lua_tointegerx(L, -1, &isnum);
        if (!isnum || s < 200 || s > 599)
            return "response.status must be an integer from 200 to 599";
        status = (int)s;
    }
    lua_pop(L, 1);
    int has_type = 0;
    if (lua_getfield(L, idx, "headers") == LUA_TTABLE) {
        int t = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, t) != 0) {
            size_t nlen, vlen;
            if (lua_type(L, -2) != LUA_TSTRING)
                return "response.headers keys must be strings";
            const char *name = lua_tolstring(L, -2, &nlen), *err;
            if (nlen == 12 && memcmp(name, "content-type", 12) == 0)
                has_type = 1;
            /* a table value sends one header line per element */
            int is_list = lua_type(L, -1) == LUA_TTABLE;
            lua_Integer n = is_list ? (lua_Integer)lua_rawlen(L, -1) : 1;
            for (lua_Integer i = 1; i <= n; ++i) {
                if (is_list)
                    lua_rawgeti(L, -1, i);
                else
                    lua_pushvalue(L, -1);
                const char *v = lua_tolstring(L, -1, &vlen);
                if (v == NULL)
                    return "response header values must be strings";
                if ((err = add_header(req, name, nlen, v, vlen)) != NULL)
                    return err;
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        return "response.headers must be a table";
    }
    lua_pop(L, 1);
    if (!has_type && status != 204 && status != 304)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/html; charset=utf-8"));
    if (lua_getfield(L, idx, "route") == LUA_TSTRING) {
        size_t rlen;
        const char *r = lua_tolstring(L, -1, &rlen);
        h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
        req->env.entries[req->env.size++] = h2o_iovec_init(H2O_STRLIT(SERVER_ENV_ROUTE));
        req->env.entries[req->env.size++] = h2o_strdup(&req->pool, r, rlen);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "stream") == LUA_TFUNCTION) {
        /* leaves the function and its `out` on L for run() */
        set_response_head(lr, status);
        lr->stream = stream_start(lr, req, L, lr->is_head);
        return NULL;
    } else if (!lua_isnil(L, -1)) {
        return "response.stream must be a function";
    }
    lua_pop(L, 1);
    size_t len = 0;
    const char *body = "";
    int bt = lua_getfield(L, idx, "body");
    if (bt == LUA_TSTRING) {
        body = lua_tolstring(L, -1, &len);
    } else if (bt != LUA_TNIL) {
        return "response.body must be a string";
    }
    send_body(lr, status, body, len);
    lua_pop(L, 1);
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
    int status = lua_resume(co, lr->host->super.L, nargs, &nres);
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
        const char *err = nres >= 1 ? send_response(lr, co, lua_gettop(co) - nres + 1) : "handle(req) returned nothing";
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

/* Development: while the last reload failed, every page shows why (file, line, message); its
 * script (/_dev/reload.js, the application's) reloads it once a version newer than `version` loads. */
static void send_load_error(h2o_req_t *req, const char *err, unsigned version)
{
    static const char head[] = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Load error</title>"
                               "<script src=\"/_dev/reload.js\" data-version=\"%u\" defer></script>"
                               "</head><body><h1>The application failed to load</h1><p>Fix the file and save: the "
                               "page comes back by itself.</p><pre id=\"load-error\">";
    static const char tail[] = "</pre></body></html>\n";
    size_t len = strlen(err), cap = sizeof(head) + 16 + len * 6 + sizeof(tail);
    char *body = h2o_mem_alloc_pool(&req->pool, cap), *d = body;
    d += sprintf(d, head, version);
    for (size_t i = 0; i < len; ++i) {
        switch (err[i]) {
        case '&': memcpy(d, "&amp;", 5), d += 5; break;
        case '<': memcpy(d, "&lt;", 4), d += 4; break;
        case '>': memcpy(d, "&gt;", 4), d += 4; break;
        case '"': memcpy(d, "&quot;", 6), d += 6; break;
        case '\'': memcpy(d, "&#39;", 5), d += 5; break;
        default: *d++ = err[i];
        }
    }
    memcpy(d, tail, sizeof(tail) - 1);
    d += sizeof(tail) - 1;
    req->res.status = 500;
    req->res.reason = "Internal Server Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/html; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, (size_t)(d - body));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker_t *w = worker_from_ctx(req->conn->ctx);
    /* /_dev/ (the page reloader's script and events) still runs on the version that serves */
    if (w->load_error != NULL && w->cfg->app_env == CONFIG_ENV_DEVELOPMENT &&
        !(req->path_normalized.len >= 6 && memcmp(req->path_normalized.base, "/_dev/", 6) == 0)) {
        send_load_error(req, w->load_error, w->app_version);
        return 0;
    }
    struct lua_host_priv *host = (void *)w->lua;
    lua_State *L = host->super.L;

    lua_req_t *lr = util_malloc(sizeof(*lr));
    memset(lr, 0, sizeof(*lr));
    lr->req = req;
    lr->w = w;
    lr->host = host;
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
    *(lua_req_t **)lua_getextraspace(lr->co) = lr;
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
