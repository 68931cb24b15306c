#include "httpc_api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "httpc.h"
#include "lua_host.h"
#include "util.h"
#include "worker.h"

#define DEFAULT_CONNECT_TIMEOUT 5
#define DEFAULT_READ_TIMEOUT 30
#define DEFAULT_TIMEOUT 60
#define DEFAULT_MAX_BODY (8 * 1024 * 1024)
#define DEFAULT_REDIRECTS 5
#define MAX_HEADERS 100

/* The module's state in one Lua state: the calls in flight, so that closing the state stops them. */
struct api_state {
    const config_t *cfg;
    worker_t *w;
    h2o_linklist_t calls;
};

struct call {
    lua_req_t *lr;
    httpc_op_t *op;
    h2o_linklist_t link;
};

static int state_gc(lua_State *L)
{
    struct api_state *st = lua_touserdata(L, 1);
    while (!h2o_linklist_is_empty(&st->calls)) {
        /* the state closes under a call: its coroutine is never resumed */
        struct call *c = H2O_STRUCT_FROM_MEMBER(struct call, link, st->calls.next);
        h2o_linklist_unlink(&c->link);
        httpc_cancel(c->op);
        free(c);
    }
    return 0;
}

static void on_done(void *data, const char *err, const httpc_response_t *res)
{
    struct call *c = data;
    lua_req_t *lr = c->lr;
    h2o_linklist_unlink(&c->link);
    free(c);
    lua_State *co = lua_req_coroutine(lr);
    lua_checkstack(co, 8);
    if (err != NULL) {
        lua_pushnil(co);
        lua_pushstring(co, err);
        lua_host_resume(lr, 2);
        return;
    }
    lua_createtable(co, 0, 4);
    lua_pushinteger(co, res->status);
    lua_setfield(co, -2, "status");
    lua_createtable(co, 0, (int)res->nheaders);
    for (size_t i = 0; i < res->nheaders; ++i) {
        const httpc_header_t *h = &res->headers[i];
        lua_pushlstring(co, h->name.base, h->name.len);
        lua_pushvalue(co, -1);
        lua_rawget(co, -3);
        if (lua_isnil(co, -1)) {
            lua_pop(co, 1);
            lua_pushlstring(co, h->value.base, h->value.len);
        } else {
            lua_pushliteral(co, ", ");
            lua_pushlstring(co, h->value.base, h->value.len);
            lua_concat(co, 3);
        }
        lua_rawset(co, -3);
    }
    lua_setfield(co, -2, "headers");
    lua_pushlstring(co, res->body.base, res->body.len);
    lua_setfield(co, -2, "body");
    lua_pushlstring(co, res->url.base, res->url.len);
    lua_setfield(co, -2, "url");
    lua_host_resume(lr, 1);
}

/* opts[name] as seconds in (0, 3600], in milliseconds; def when absent. Raises on a wrong value. */
static uint64_t opt_seconds(lua_State *L, int opts, const char *name, int def)
{
    if (opts == 0)
        return (uint64_t)def * 1000;
    lua_getfield(L, opts, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return (uint64_t)def * 1000;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "h2lua.http: opts.%s must be a number of seconds", name);
    lua_Number s = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(s > 0 && s <= 3600))
        luaL_error(L, "h2lua.http: opts.%s must be from 0 (excluded) to 3600 seconds", name);
    uint64_t ms = (uint64_t)(s * 1000);
    return ms == 0 ? 1 : ms;
}

/* opts[name] as a string, or NULL when absent. Raises when it is of another type. */
static const char *opt_string(lua_State *L, int opts, const char *name, size_t *len)
{
    if (opts == 0)
        return NULL;
    lua_getfield(L, opts, name); /* left on the stack: keeps the string alive */
    if (lua_isnil(L, -1))
        return NULL;
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "h2lua.http: opts.%s must be a string", name);
    return lua_tolstring(L, -1, len);
}

/*
 * The common body of request/get/post: url at index 1, opts at opts_idx (0: none), method and
 * body given by the convenience functions (NULL: from opts).
 */
static int start(lua_State *L, const char *what, int opts, const char *method, int body_idx)
{
    struct api_state *st = lua_touserdata(L, lua_upvalueindex(1));
    lua_req_t *lr = lua_host_req_yieldable(L, what);
    size_t url_len;
    const char *url = lua_tolstring(L, 1, &url_len);

    httpc_request_t req;
    memset(&req, 0, sizeof(req));
    req.url = h2o_iovec_init(url, url_len);
    size_t mlen = 0;
    const char *m = method != NULL ? method : opt_string(L, opts, "method", &mlen);
    if (m == NULL)
        m = "GET";
    req.method = h2o_iovec_init(m, method != NULL || mlen == 0 ? strlen(m) : mlen);
    size_t blen = 0;
    const char *body;
    if (body_idx != 0) {
        body = lua_tolstring(L, body_idx, &blen);
    } else {
        body = opt_string(L, opts, "body", &blen);
    }
    req.body = h2o_iovec_init(body, body != NULL ? blen : 0);
    req.connect_timeout_ms = opt_seconds(L, opts, "connect_timeout", DEFAULT_CONNECT_TIMEOUT);
    req.read_timeout_ms = opt_seconds(L, opts, "read_timeout", DEFAULT_READ_TIMEOUT);
    req.total_timeout_ms = opt_seconds(L, opts, "timeout", DEFAULT_TIMEOUT);
    req.max_body = DEFAULT_MAX_BODY;
    req.ssl_verify = 1;
    req.ca_file = opt_string(L, opts, "ca_file", NULL);
    if (opts != 0) {
        lua_getfield(L, opts, "max_body");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < 0 || lua_tonumber(L, -1) > (1 << 30))
                return luaL_error(L, "h2lua.http: opts.max_body must be a number of bytes from 0 to 1073741824");
            req.max_body = (size_t)lua_tonumber(L, -1);
        }
        lua_getfield(L, opts, "follow_redirects");
        if (lua_type(L, -1) == LUA_TBOOLEAN) {
            req.max_redirects = lua_toboolean(L, -1) ? DEFAULT_REDIRECTS : 0;
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            lua_Number n = lua_tonumber(L, -1);
            if (!(n >= 0 && n <= HTTPC_MAX_REDIRECTS))
                return luaL_error(L, "h2lua.http: opts.follow_redirects must be a boolean or a number from 0 to %d",
                                  HTTPC_MAX_REDIRECTS);
            req.max_redirects = (int)n;
        } else if (!lua_isnil(L, -1)) {
            return luaL_error(L, "h2lua.http: opts.follow_redirects must be a boolean or a number");
        }
        lua_getfield(L, opts, "ssl_verify");
        if (lua_type(L, -1) == LUA_TBOOLEAN)
            req.ssl_verify = lua_toboolean(L, -1);
        else if (!lua_isnil(L, -1))
            return luaL_error(L, "h2lua.http: opts.ssl_verify must be a boolean");
        lua_pop(L, 3);
    }

    httpc_header_t headers[MAX_HEADERS];
    if (opts != 0) {
        lua_getfield(L, opts, "headers");
        int t = lua_gettop(L);
        if (!lua_isnil(L, t)) {
            if (!lua_istable(L, t))
                return luaL_error(L, "h2lua.http: opts.headers must be a table of name -> value");
            lua_newtable(L); /* keeps converted values alive */
            int keep = t + 1, k = 0;
            lua_pushnil(L);
            while (lua_next(L, t) != 0) {
                if (lua_type(L, -2) != LUA_TSTRING)
                    return luaL_error(L, "h2lua.http: opts.headers: names must be strings");
                int vt = lua_type(L, -1);
                if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
                    return luaL_error(L, "h2lua.http: opts.headers[\"%s\"] must be a string or a number", lua_tostring(L, -2));
                if (req.nheaders == MAX_HEADERS)
                    return luaL_error(L, "h2lua.http: opts.headers: at most %d headers", MAX_HEADERS);
                size_t nlen, vlen;
                const char *n = lua_tolstring(L, -2, &nlen); /* kept by the headers table */
                lua_Number num = lua_tonumber(L, -1);
                if (vt == LUA_TNUMBER && num == floor(num) && fabs(num) < 1e15) {
                    char digits[32]; /* 42.0 is sent as 42 on both VMs */
                    snprintf(digits, sizeof(digits), "%.0f", (double)num);
                    lua_pushstring(L, digits);
                } else {
                    lua_pushvalue(L, -1);
                }
                const char *v = lua_tolstring(L, -1, &vlen); /* a number becomes its text, kept in keep */
                lua_rawseti(L, keep, ++k);
                headers[req.nheaders].name = h2o_iovec_init(n, nlen);
                headers[req.nheaders].value = h2o_iovec_init(v, vlen);
                ++req.nheaders;
                lua_pop(L, 1);
            }
        }
    }
    req.headers = headers;

    worker_t *w = lua_req_worker(lr);
    if (w->httpc == NULL)
        w->httpc = httpc_create(&w->ctx, (unsigned)st->cfg->http_client_max);
    struct call *c = util_malloc(sizeof(*c));
    c->lr = lr;
    char err[256];
    if (httpc_start(w->httpc, &req, on_done, c, &c->op, err, sizeof(err)) != 0) {
        free(c);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    h2o_linklist_insert(&st->calls, &c->link);
    lua_host_suspend(lr);
    return lua_yield(L, 0);
}

static int opts_index(lua_State *L, int idx, const char *what)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    if (!lua_istable(L, idx))
        return luaL_error(L, "%s: opts must be a table", what);
    return idx;
}

static void check_url(lua_State *L, const char *what)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_error(L, "%s: url must be a string, not %s", what, luaL_typename(L, 1));
}

static int l_request(lua_State *L)
{
    check_url(L, "h2lua.http.request");
    return start(L, "h2lua.http.request", opts_index(L, 2, "h2lua.http.request"), NULL, 0);
}

static int l_get(lua_State *L)
{
    check_url(L, "h2lua.http.get");
    return start(L, "h2lua.http.get", opts_index(L, 2, "h2lua.http.get"), "GET", 0);
}

static int l_post(lua_State *L)
{
    check_url(L, "h2lua.http.post");
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "h2lua.http.post: body must be a string, not %s", luaL_typename(L, 2));
    return start(L, "h2lua.http.post", opts_index(L, 3, "h2lua.http.post"), "POST", 2);
}

static int open_http(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"request", l_request}, {"get", l_get}, {"post", l_post}, {NULL, NULL}};
    lua_newtable(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    luaL_setfuncs(L, funcs, 1);
    return 1;
}

void httpc_api_preload(lua_State *L, const config_t *cfg, worker_t *w)
{
    struct api_state *st = lua_newuserdatauv(L, sizeof(*st), 0);
    st->cfg = cfg;
    st->w = w;
    h2o_linklist_init_anchor(&st->calls);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "h2lua.http_state"); /* lives as long as the state */
    lua_pushcclosure(L, open_http, 1);
    lua_setfield(L, -2, "h2lua.http");
}
