#include "lua_response.h"

#include "lua_compat.h"
#include <stdio.h>
#include <string.h>

#include "http_compress.h"
#include "http_status.h"
#include "util.h"
#include "worker.h"

static void proceed_noop(h2o_generator_t *self, h2o_req_t *req)
{
    (void)self, (void)req;
}

/* Status, reason, x-request-id and the core's cookie; the application's headers are there already. */
static void set_head(h2o_req_t *req, int status, const lua_response_core_t *core)
{
    /* the name pointer is the shared one, so that the filter and the logger find it */
    h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + 1);
    h2o_header_t *h = req->res.headers.entries + req->res.headers.size++;
    h->name = &worker_hdr_request_id;
    h->orig_name = NULL;
    h->value = h2o_strdup(&req->pool, core->request_id, 16); /* the caller's copy goes before the access log reads it */
    if (core->cookie != NULL) {
        size_t clen = strlen(core->cookie);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL,
                       h2o_strdup(&req->pool, core->cookie, clen).base, clen);
    }
    req->res.status = status;
    req->res.reason = http_status_reason(status);
}

static void send_body(h2o_req_t *req, int status, const char *body, size_t len, const lua_response_core_t *core)
{
    set_head(req, status, core);
    req->res.content_length = len;
    h2o_generator_t *gen = h2o_mem_alloc_pool(&req->pool, sizeof(*gen));
    gen->proceed = proceed_noop;
    gen->stop = NULL;
    h2o_start_response(req, gen);
    int is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_iovec_t buf = h2o_iovec_init(NULL, 0);
    if (!is_head && len != 0) {
        if (http_compress_reads_during_send(req)) {
            buf = h2o_iovec_init(body, len); /* compressed before h2o_send returns: no copy */
        } else {
            buf.base = h2o_mem_alloc_pool(&req->pool, len);
            memcpy(buf.base, body, len);
            buf.len = len;
        }
    }
    h2o_send(req, &buf, buf.len != 0 ? 1 : 0, H2O_SEND_STATE_FINAL);
}

void lua_response_send_plain(h2o_req_t *req, int status, const char *msg, const lua_response_core_t *core)
{
    req->res.headers = (h2o_headers_t){NULL, 0, 0};
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
    send_body(req, status, msg, strlen(msg), core);
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

/* Adds one header; returns an error message or NULL. */
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

const char *lua_response_send(h2o_req_t *req, lua_State *L, int idx, const lua_response_core_t *core, int *streamed)
{
    *streamed = 0;
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
        req->env.entries[req->env.size++] = h2o_iovec_init(H2O_STRLIT(WORKER_ENV_ROUTE));
        req->env.entries[req->env.size++] = h2o_strdup(&req->pool, r, rlen);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "stream") == LUA_TFUNCTION) {
        set_head(req, status, core); /* the function stays on top of L for the caller */
        *streamed = 1;
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
    send_body(req, status, body, len, core);
    lua_pop(L, 1);
    return NULL;
}

void lua_response_send_load_error(h2o_req_t *req, const char *err, unsigned version)
{
    static const char head[] = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Load error</title>"
                               "<script src=\"/_dev/reload.js\" data-version=\"%s.%u\" defer></script>"
                               "</head><body><h1>The application failed to load</h1><p>Fix the file and save: the "
                               "page comes back by itself.</p><pre id=\"load-error\">";
    static const char tail[] = "</pre></body></html>\n";
    size_t len = strlen(err), cap = sizeof(head) + 40 + len * UTIL_HTML_ENTITY_MAX + sizeof(tail);
    char *body = h2o_mem_alloc_pool(&req->pool, cap), *d = body;
    d += sprintf(d, head, util_boot_id(), version);
    d += util_escape_html(d, err, len);
    memcpy(d, tail, sizeof(tail) - 1);
    d += sizeof(tail) - 1;
    req->res.status = 500;
    req->res.reason = http_status_reason(500);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/html; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, (size_t)(d - body));
}
