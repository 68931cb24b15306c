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
#include "lua_watchdog.h"
#include "stream.h"
#include "util.h"
#include "worker.h"

#define FREE_COROUTINES 64
/* Registry key of the weak set of the requests' coroutines (the core alone resumes them). */
#define REQUEST_THREADS "h2lua.request_threads"
#define TEXT_MAX 2048 /* an error's text in a log line */
#define TRACE_MAX 4096
#define HOOKS_MAX 4
/* Registry key of the state's lua_host_priv (a light userdata), for lua_host_of. */
#define HOST_KEY "h2lua.host"

struct lua_host_priv {
    lua_host_t super;
    worker_t *w;
    lua_host_hooks_t hooks[HOOKS_MAX]; /* lua_host_add_hooks, in order */
    int nhooks;
    int started, retired;
    lua_State *free_co[FREE_COROUTINES]; /* finished coroutines kept for reuse */
    int free_ref[FREE_COROUTINES];
    int nfree;
    /* the state's allocator, wrapped: while a request's Lua runs (armed), growth past `limit` fails */
    lua_Alloc alloc;
    void *alloc_ud;
    long long used; /* bytes the state holds (approximate: counted from when it was wrapped) */
    long long limit;
    int armed;
};

struct lua_req {
    h2o_req_t *req;   /* NULL once the client is gone; always NULL for a task */
    const char *task; /* a task's kind ("timer"), NULL for a request */
    lua_host_task_done_fn done;
    void *done_ud;
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
    int held;         /* lua_req_hold: objects of this request that only their __gc gives back */
    uint64_t conn_id; /* counted in the worker's conn_budget while the handler runs */
    char method[16];  /* copies for the log lines (the h2o request may be gone); a task: its kind */
    char path[256];   /* a task: where its function is (source:line) */
    /* the req table's lazy fields (push_field): the table, and what they are read from */
    const void *table;             /* the req table (compared, never dereferenced) */
    struct req_snapshot *snapshot; /* the request's parts, copied when the h2o request went first */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int version;
    int https;
};

static const stream_owner_ops_t stream_ops; /* below: the request's side of a stream */

/* Lives in the request's pool; its dispose detaches the lua_req from a request that is gone. */
struct req_link {
    lua_req_t *lr;
};

/* The parts of a request its lazy fields read, in one malloc'd block (the h2o request is gone). */
struct req_snapshot {
    h2o_iovec_t path; /* with the query */
    size_t query_at;
    h2o_iovec_t authority, entity;
    h2o_headers_t headers; /* names that are tokens point at the token; the others into the block */
};

static struct req_snapshot *snapshot_of(h2o_req_t *req)
{
    size_t n = req->headers.size, size = sizeof(struct req_snapshot) + n * (sizeof(h2o_header_t) + sizeof(h2o_iovec_t));
    size += req->path.len + req->input.authority.len + req->entity.len;
    for (size_t i = 0; i != n; ++i)
        size += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    struct req_snapshot *s = util_malloc(size);
    h2o_header_t *hs = (void *)(s + 1);
    h2o_iovec_t *names = (void *)(hs + n);
    char *d = (void *)(names + n);
#define COPY(dst, src)                                                                                                         \
    do {                                                                                                                       \
        (dst) = h2o_iovec_init(d, (src).len);                                                                                  \
        if ((src).len != 0)                                                                                                    \
            memcpy(d, (src).base, (src).len);                                                                                  \
        d += (src).len;                                                                                                        \
    } while (0)
    COPY(s->path, req->path);
    s->query_at = req->query_at;
    COPY(s->authority, req->input.authority);
    COPY(s->entity, req->entity);
    if (req->entity.base == NULL)
        s->entity.base = NULL;
    for (size_t i = 0; i != n; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        hs[i] = *h;
        hs[i].orig_name = NULL;
        if (h2o_iovec_is_token(h->name)) {
            hs[i].name = h->name; /* static */
        } else {
            COPY(names[i], *h->name);
            hs[i].name = names + i;
        }
        COPY(hs[i].value, h->value);
    }
#undef COPY
    s->headers = (h2o_headers_t){hs, n, n};
    return s;
}

static void on_req_link_dispose(void *p)
{
    struct req_link *link = p;
    if (link->lr != NULL) {
        if (link->lr->table != NULL && link->lr->snapshot == NULL)
            link->lr->snapshot = snapshot_of(link->lr->req); /* Lua may still read the lazy fields */
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

const char *lua_host_running_request_id(void)
{
    return running != NULL && running->task == NULL ? running->id : NULL;
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

lua_req_t *lua_host_req_yieldable(lua_State *L, const char *what)
{
    if (running == NULL)
        luaL_error(L, "%s can only be called while handling a request or running a timer", what);
    if (running->co != L)
        luaL_error(L,
                   "%s cannot be called from a coroutine the application made: only from the request's own "
                   "(the handler, or a function it calls), or a timer's",
                   what);
    lua_compat_check_yieldable(L, what);
    return running;
}

void lua_req_hold(lua_req_t *lr, int delta)
{
    lr->held += delta;
}

int lua_req_is_task(lua_req_t *lr)
{
    return lr->task != NULL;
}

/* ---- the state's life, for the modules that run work of their own on it ---- */

lua_host_t *lua_host_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, HOST_KEY);
    struct lua_host_priv *host = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return &host->super;
}

void lua_host_add_hooks(lua_State *L, const lua_host_hooks_t *hooks)
{
    struct lua_host_priv *host = (void *)lua_host_of(L);
    if (host->nhooks == HOOKS_MAX)
        h2o_fatal("lua_host_add_hooks: more modules with hooks than HOOKS_MAX");
    host->hooks[host->nhooks++] = *hooks;
}

void lua_host_start(lua_host_t *_host)
{
    struct lua_host_priv *host = (void *)_host;
    if (host->started || host->retired)
        return;
    host->started = 1;
    for (int i = 0; i < host->nhooks; ++i)
        if (host->hooks[i].start != NULL)
            host->hooks[i].start(host->hooks[i].ud);
}

void lua_host_retire(lua_host_t *_host)
{
    struct lua_host_priv *host = (void *)_host;
    if (host->retired)
        return;
    host->retired = 1;
    for (int i = 0; i < host->nhooks; ++i)
        if (host->hooks[i].retire != NULL)
            host->hooks[i].retire(host->hooks[i].ud);
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

void lua_host_new_type(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc, lua_CFunction tostring)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        if (gc != NULL) {
            lua_pushcfunction(L, gc);
            lua_setfield(L, -2, "__gc");
        }
        if (tostring != NULL) {
            lua_pushcfunction(L, tostring);
            lua_setfield(L, -2, "__tostring");
        }
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
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

/* The state's allocator: counts, and refuses growth past the limit while a request's Lua runs. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lua_host_priv *host = ud;
    if (ptr == NULL)
        osize = 0; /* 5.4 passes the type of the new object there */
    if (host->armed && nsize > osize && host->used + (long long)(nsize - osize) > host->limit)
        return NULL; /* the VM raises "not enough memory" (5.4 collects and tries once more first) */
    void *p = host->alloc(host->alloc_ud, ptr, osize, nsize);
    if (p != NULL || nsize == 0)
        host->used += (long long)nsize - (long long)osize;
    return p;
}

static int is_request_thread(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTHREAD)
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, REQUEST_THREADS);
    lua_pushvalue(L, idx);
    int yes = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return yes;
}

/* coroutine.resume and coroutine.close (5.4) refuse a request's coroutine: the core resumes it
 * when what it waits for is done, and the C function that yielded it still holds the request. */
static int guarded_coroutine_call(lua_State *L)
{
    if (is_request_thread(L, 1))
        return luaL_error(L, "coroutine.%s: this is the coroutine of a request, which only the core resumes or closes",
                          lua_tostring(L, lua_upvalueindex(2)));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void guard_coroutines(lua_State *L)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, REQUEST_THREADS);
    lua_getglobal(L, "coroutine");
    static const char *const names[] = {"resume", "close"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        if (lua_getfield(L, -1, names[i]) != LUA_TFUNCTION) {
            lua_pop(L, 1); /* LuaJIT has no coroutine.close */
            continue;
        }
        lua_pushstring(L, names[i]);
        lua_pushcclosure(L, guarded_coroutine_call, 2);
        lua_setfield(L, -2, names[i]);
    }
    lua_pop(L, 1);
}

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
    struct lua_host_priv *host = util_malloc(sizeof(*host));
    memset(host, 0, sizeof(*host));
    host->alloc = lua_getallocf(L, &host->alloc_ud);
    host->used = (long long)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0);
    host->limit = (long long)cfg->lua_memory_max;
    lua_setallocf(L, limited_alloc, host);
    lua_compat_openlibs(L);
    guard_coroutines(L);
    /* A collection cycle starts when the heap is 4x what the last one left (the VMs' default: 2x).
     * Every request leaves its page and rows behind while the live heap (modules, templates,
     * traces) stays the same: each cycle marks all of it again, and on GET / that marking was the
     * largest single cost of the VM (perf: propagatemark 5 % of the process). The heap is a few MB. */
    lua_gc(L, LUA_GCSETPAUSE, 400);
    stream_lua_open(L); /* the metatable of a streamed response's `out` */
    host->super.L = L;
    host->super.handle_ref = LUA_NOREF;
    host->w = worker;
    lua_pushlightuserdata(L, host);
    lua_setfield(L, LUA_REGISTRYINDEX, HOST_KEY);

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

static void push_headers(lua_State *L, h2o_iovec_t authority, const h2o_headers_t *headers)
{
    lua_createtable(L, 0, (int)headers->size + 1);
    /* h2o keeps Host (HTTP/1) and :authority (HTTP/2) apart from the headers */
    if (authority.len != 0) {
        lua_pushlstring(L, authority.base, authority.len);
        lua_setfield(L, -2, "host");
    }
    for (size_t i = 0; i != headers->size; ++i) {
        const h2o_header_t *h = headers->entries + i;
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

/*
 * Pushes the req table; returns NULL, or a 400 message for a path that does not decode. The table
 * holds method and path (the router reads them on every request); the other fields of the contract
 * are made on first access (lua_host_req_index) and then kept in the table.
 */
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

    lua_createtable(L, 0, 8);
    set_str(L, "method", req->method.base, req->method.len);
    set_str(L, "path", decoded, (size_t)n);

    lua_rawgeti(L, LUA_REGISTRYINDEX, lr->host->super.req_mt_ref);
    lua_setmetatable(L, -2);
    lr->table = lua_topointer(L, -1);
    lr->version = req->version;
    lr->https = req->scheme == &H2O_URL_SCHEME_HTTPS;
    lr->peer_len = req->conn->callbacks->get_peername(req->conn, (void *)&lr->peer);
    return NULL;
}

/* The lazy fields, by name: each pushes its value (from the h2o request, or its snapshot). */
enum req_field {
    F_RAW_PATH,
    F_QUERY_STRING,
    F_HEADERS,
    F_BODY,
    F_REMOTE_ADDR,
    F_ID,
    F_WORKER,
    F_SCHEME,
    F_VERSION,
    F_CLIENT_ADDR
};

static int field_of(const char *k, size_t len)
{
    static const struct {
        const char *name;
        size_t len;
    } names[] = {{H2O_STRLIT("raw_path")},    {H2O_STRLIT("query_string")}, {H2O_STRLIT("headers")}, {H2O_STRLIT("body")},
                 {H2O_STRLIT("remote_addr")}, {H2O_STRLIT("id")},           {H2O_STRLIT("worker")},  {H2O_STRLIT("scheme")},
                 {H2O_STRLIT("version")},     {H2O_STRLIT("client_addr")}};
    for (int i = 0; i != (int)(sizeof(names) / sizeof(names[0])); ++i)
        if (names[i].len == len && memcmp(names[i].name, k, len) == 0)
            return i;
    return -1;
}

int lua_host_req_index(lua_State *L)
{
    size_t klen;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &klen) : NULL;
    lua_req_t *lr = running;
    int f;
    if (k == NULL || lr == NULL || lua_topointer(L, 1) != lr->table || (f = field_of(k, klen)) < 0)
        return 0;
    h2o_iovec_t path, authority, entity;
    size_t query_at;
    const h2o_headers_t *headers;
    if (lr->req != NULL) {
        path = lr->req->path, query_at = lr->req->query_at, authority = lr->req->input.authority;
        entity = lr->req->entity, headers = &lr->req->headers;
    } else if (lr->snapshot != NULL) {
        path = lr->snapshot->path, query_at = lr->snapshot->query_at, authority = lr->snapshot->authority;
        entity = lr->snapshot->entity, headers = &lr->snapshot->headers;
    } else {
        return 0; /* cannot happen: a request that went first left its snapshot */
    }
    switch ((enum req_field)f) {
    case F_RAW_PATH: lua_pushlstring(L, path.base, path.len); break;
    case F_QUERY_STRING:
        if (query_at != SIZE_MAX)
            lua_pushlstring(L, path.base + query_at + 1, path.len - query_at - 1);
        else
            lua_pushliteral(L, "");
        break;
    case F_HEADERS: push_headers(L, authority, headers); break;
    case F_BODY: lua_pushlstring(L, entity.base != NULL ? entity.base : "", entity.len); break;
    case F_REMOTE_ADDR: {
        char addr[UTIL_ADDR_TEXT_MAX] = "";
        lua_pushlstring(L, addr, lr->peer_len != 0 ? util_addr_text((void *)&lr->peer, lr->peer_len, addr) : 0);
        break;
    }
    case F_ID: lua_pushlstring(L, lr->id, 16); break;
    case F_WORKER: lua_pushinteger(L, lr->w->id); break;
    case F_SCHEME: lua_pushstring(L, lr->https ? "https" : "http"); break;
    case F_VERSION: lua_pushstring(L, protocol_name(lr->version)); break;
    case F_CLIENT_ADDR: {
        char client[CLIENT_ADDR_TEXT_MAX];
        lua_pushlstring(L, client, worker_client_addr_of(lr->w, (void *)&lr->peer, lr->peer_len, headers, client));
        break;
    }
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

/* ---- running the coroutine ---- */

static void finish(lua_req_t *lr, int reusable, int failed)
{
    struct lua_host_priv *host = lr->host;
    lua_State *L = host->super.L;
    if (lr->done != NULL)
        lr->done(lr->done_ud, failed); /* the state is still open: the module may use it */
    if (reusable && host->nfree < FREE_COROUTINES) {
        lua_settop(lr->co, 0);
        host->free_co[host->nfree] = lr->co;
        host->free_ref[host->nfree++] = lr->co_ref;
    } else {
        luaL_unref(L, LUA_REGISTRYINDEX, lr->co_ref);
    }
    /* a transaction the request dropped gives its connection back now, not at some later cycle */
    if (lr->held > 0)
        lua_gc(L, LUA_GCCOLLECT, 0);
    if (lr->task != NULL) {
        --lr->w->tasks_running;
    } else {
        --lr->w->inflight;
        conn_budget_leave(lr->w->conn_budget, lr->conn_id);
    }
    if (lr->stream != NULL)
        stream_end(lr->stream, reusable); /* the stream function returned, or failed: cut */
    if (lr->link != NULL)
        lr->link->lr = NULL;
    free(lr->snapshot);
    free(lr->cookie);
    if (--host->super.inflight == 0 && lr->w->lua != &host->super)
        lua_host_close(&host->super); /* an old version whose last request just ended */
    free(lr);
}

static void log_lua_error(lua_req_t *lr, const char *what, const char *msg, const char *traceback)
{
    if (lr->task != NULL) {
        /* "timer error" {"task_id", "function": source:line, ...} */
        char text[64];
        snprintf(text, sizeof(text), "%s error", lr->task);
        const char *extra[] = {"task_id", lr->id, "function",  lr->path,
                               "error",   msg,    "traceback", traceback != NULL ? traceback : ""};
        log_event("error", lr->w->id, text, extra, 4);
        return;
    }
    const char *extra[] = {"request_id", lr->id,  "method", lr->method,  "path",
                           lr->path,     "error", msg,      "traceback", traceback != NULL ? traceback : ""};
    log_event("error", lr->w->id, what, extra, 5);
}

/* ---- reading what the coroutine left, protected ---- */

/*
 * Everything the core does with a value of the application's after the coroutine stopped (turning
 * an error into text, reading the response table) may run the application's metamethods, which
 * may raise. It runs here: on the state's main thread (idle while the loop runs), inside lua_pcall
 * of a C function, so that a raise is one more error to report, never a panic.
 */
struct text_ctx {
    char *buf;
    size_t cap;
    lua_State *co; /* to_traceback: the coroutine whose stack is described */
};

static void copy_out(struct text_ctx *c, const char *s, size_t len)
{
    if (len >= c->cap)
        len = c->cap - 1;
    memcpy(c->buf, s, len);
    c->buf[len] = '\0';
}

static int to_text(lua_State *L)
{
    struct text_ctx *c = lua_touserdata(L, 1);
    size_t len;
    const char *s =
        lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER ? lua_tolstring(L, 2, &len) : luaL_tolstring(L, 2, &len);
    copy_out(c, s, len);
    return 0;
}

static int to_traceback(lua_State *L)
{
    struct text_ctx *c = lua_touserdata(L, 1);
    luaL_traceback(L, c->co, NULL, 0);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    copy_out(c, s, len);
    return 0;
}

/* Runs fn(ctx, the value on top of L) protected, popping the value; 0, or -1 when it raised. */
static int call_protected(lua_State *L, lua_CFunction fn, struct text_ctx *c)
{
    lua_pushcfunction(L, fn);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, c);
    lua_insert(L, -2);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK)
        return 0;
    lua_pop(L, 1);
    return -1;
}

/* The text of the value on top of L (popped) in buf: tostring's, or a description when that raises. */
static void value_text(lua_State *L, char *buf, size_t cap)
{
    const char *type = luaL_typename(L, -1);
    struct text_ctx c = {buf, cap, NULL};
    if (call_protected(L, to_text, &c) != 0)
        snprintf(buf, cap, "(an error value of type %s, which tostring could not turn into text)", type);
}

/* Logs the error that stopped lr's coroutine (its value on top of co) and answers 500. */
static void fail(lua_req_t *lr, int status)
{
    lua_State *co = lr->co, *L = lr->host->super.L;
    char msg[TEXT_MAX], trace[TRACE_MAX] = "";
    lua_checkstack(L, 4);
    lua_xmove(co, L, 1);
    value_text(L, msg, sizeof(msg));
    if (status == LUA_ERRMEM) {
        snprintf(msg, sizeof(msg), "not enough memory: the request's Lua state reached LUA_MEMORY_MAX (%lld MB)",
                 lr->host->limit >> 20);
    } else {
        struct text_ctx c = {trace, sizeof(trace), co};
        lua_pushnil(L);
        call_protected(L, to_traceback, &c);
    }
    log_lua_error(lr, lr->stream != NULL ? "stream error" : "handler error", msg, trace);
    if (lr->req != NULL && lr->stream == NULL)
        send_plain(lr, 500, "Internal Server Error\n");
}

struct send_ctx {
    lua_req_t *lr;
    const char *err; /* what is wrong with the response table, or NULL */
    int streamed;
};

/* send_ctx, the response: sends it, or leaves the stream function (returned) on the stack. */
static int send_result(lua_State *L)
{
    struct send_ctx *c = lua_touserdata(L, 1);
    lua_response_core_t core = {c->lr->id, c->lr->cookie};
    c->err = lua_response_send(c->lr->req, L, 2, &core, &c->streamed);
    return c->err == NULL && c->streamed ? 1 : 0;
}

/* The watch of lr's worker: lr's thread enters Lua (running L). */
static void watch_enter(lua_req_t *lr, lua_State *L)
{
    lua_watch_enter(lr->w->watch, L, lr->id, lr->method, strlen(lr->method), lr->path, strlen(lr->path));
}

/*
 * Sends what handle(req) returned (nres values on top of co). Returns 1 when the response is a
 * stream whose function is now alone on co's stack, else 0 (sent, or a 500 sent and logged).
 */
static int send_response(lua_req_t *lr, int nres)
{
    lua_State *co = lr->co, *L = lr->host->super.L;
    if (nres < 1) {
        log_lua_error(lr, "invalid response", "handle(req) returned nothing", NULL);
        send_plain(lr, 500, "Internal Server Error\n");
        return 0;
    }
    lua_pop(co, nres - 1);
    struct send_ctx c = {lr, NULL, 0};
    lua_checkstack(L, 4);
    lua_pushcfunction(L, send_result);
    lua_pushlightuserdata(L, &c);
    lua_xmove(co, L, 1);
    lua_settop(co, 0);
    watch_enter(lr, L);
    int status = lua_pcall(L, 2, 1, 0);
    lua_watch_leave(lr->w->watch);
    if (status != LUA_OK) {
        char msg[TEXT_MAX], full[TEXT_MAX + 64];
        value_text(L, msg, sizeof(msg));
        snprintf(full, sizeof(full), "reading the response raised: %s", msg);
        log_lua_error(lr, "invalid response", full, NULL);
        send_plain(lr, 500, "Internal Server Error\n");
        return 0;
    }
    if (c.err != NULL) {
        lua_pop(L, 1);
        log_lua_error(lr, "invalid response", c.err, NULL);
        send_plain(lr, 500, "Internal Server Error\n");
        return 0;
    }
    if (!c.streamed) {
        lua_pop(L, 1);
        return 0;
    }
    lua_xmove(L, co, 1);
    return 1;
}

/* ---- running the coroutine ---- */

/* Runs (or continues) the coroutine with nargs values on its stack. */
static void run(lua_req_t *lr, int nargs)
{
    lua_State *co = lr->co;
    struct lua_host_priv *host = lr->host;
    int nres;
    lr->pending = 0;
    lua_req_t *outer = running;
    int outer_armed = host->armed;
    running = lr;
    if (outer == NULL)
        lua_compat_cstack_mark(); /* the C stack nested Lua may use is measured from here */
    watch_enter(lr, co);
    host->armed = 1;
    int status = lua_compat_resume(co, host->super.L, nargs, &nres);
    host->armed = outer_armed;
    if (outer == NULL)
        lua_watch_leave(lr->w->watch);
    running = outer;
    if (status == LUA_YIELD) {
        if (lr->pending)
            return; /* a C function will resume it */
        lua_pop(co, nres);
        if (lr->task != NULL) {
            log_lua_error(lr, NULL, "coroutine.yield() called outside a coroutine of the application", NULL);
        } else if (lr->req != NULL && lr->stream == NULL) {
            log_lua_error(lr, "handler error", "coroutine.yield() called outside a coroutine of the application", NULL);
            send_plain(lr, 500, "Internal Server Error\n");
        }
        finish(lr, 0, 1);
        return;
    }
    if (status != LUA_OK) {
        fail(lr, status);
        finish(lr, 0, 1);
        if (status == LUA_ERRMEM)
            lua_gc(host->super.L, LUA_GCCOLLECT, 0); /* what the request built is garbage now */
        return;
    }
    if (lr->task != NULL) {
        lua_settop(co, 0); /* what a task returns is dropped */
    } else if (lr->req != NULL && lr->stream == NULL) {
        if (send_response(lr, nres)) {
            /* run stream(out) in the same coroutine: the stack becomes the function and out */
            lr->stream = stream_start(lr, &stream_ops, co, lr->w, lr->req, co, lr->is_head);
            run(lr, 1);
            return;
        }
    }
    finish(lr, 1, 0);
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

/* Gives lr a coroutine of host's: a finished one kept for reuse, or a new one (listed as the core's). */
static void take_coroutine(struct lua_host_priv *host, lua_req_t *lr)
{
    lua_State *L = host->super.L;
    if (host->nfree > 0) {
        --host->nfree;
        lr->co = host->free_co[host->nfree];
        lr->co_ref = host->free_ref[host->nfree];
        return;
    }
    lr->co = lua_newthread(L);
    lua_getfield(L, LUA_REGISTRYINDEX, REQUEST_THREADS);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lr->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

lua_req_t *lua_host_task_new(lua_host_t *_host, const char *kind, const char *where, lua_host_task_done_fn done, void *ud)
{
    struct lua_host_priv *host = (void *)_host;
    lua_req_t *lr = util_malloc(sizeof(*lr));
    memset(lr, 0, sizeof(*lr));
    lr->task = kind;
    lr->done = done;
    lr->done_ud = ud;
    lr->w = host->w;
    lr->host = host;
    worker_next_request_id(host->w, lr->id);
    snprintf(lr->method, sizeof(lr->method), "%s", kind);
    snprintf(lr->path, sizeof(lr->path), "%s", where);
    take_coroutine(host, lr);
    ++host->w->tasks_running;
    ++host->super.inflight;
    return lr;
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

    lua_req_t *lr = util_malloc(sizeof(*lr));
    memset(lr, 0, sizeof(*lr));
    lr->req = req;
    lr->w = w;
    lr->host = host;
    lr->conn_id = req->conn->id;
    lr->is_head = req->method.len == 4 && memcmp(req->method.base, "HEAD", 4) == 0;
    worker_next_request_id(w, lr->id);
    size_t mlen = req->method.len < sizeof(lr->method) - 1 ? req->method.len : sizeof(lr->method) - 1;
    memcpy(lr->method, req->method.base, mlen); /* lr is zeroed: the copies end with '\0' */
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    memcpy(lr->path, req->path.base, plen < sizeof(lr->path) - 1 ? plen : sizeof(lr->path) - 1);
    struct req_link *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_req_link_dispose);
    link->lr = lr;
    lr->link = link;

    take_coroutine(host, lr);
    ++w->inflight;
    ++host->super.inflight;

    lua_rawgeti(lr->co, LUA_REGISTRYINDEX, host->super.handle_ref);
    const char *bad = push_req(lr->co, lr);
    if (bad != NULL) {
        lua_settop(lr->co, 0);
        send_plain(lr, 400, bad);
        finish(lr, 1, 0);
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
