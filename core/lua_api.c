#include "lua_api.h"

#include "lua_compat.h"
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "config.h"
#include "form.h"
#include "http_status.h"
#include "log.h"
#include "lua_host.h"
#include "multipart.h"
#include "stream.h"
#include "util.h"
#include "worker.h"

/* What the module's functions reach through their upvalue. */
struct api_ctx {
    const config_t *cfg;
    worker_t *w;
    EVP_MAC_CTX *hmac; /* HMAC-SHA256 keyed with SECRET_KEY once; re-initialised per use; NULL: none */
    char *out;         /* scratch (concat, base64url), kept between calls: it grows to the largest page once */
    size_t out_cap;
    h2o_linklist_t sleeps; /* the h2lua.sleep timers running (struct sleep_op) */
};

static struct api_ctx *ctx_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The state's scratch buffer with room for need bytes (contents kept when it grows); raises on OOM. */
static char *scratch(lua_State *L, struct api_ctx *c, size_t need)
{
    if (need > c->out_cap) {
        size_t cap = c->out_cap == 0 ? 16384 : c->out_cap;
        while (cap < need)
            cap *= 2;
        char *grown = realloc(c->out, cap);
        if (grown == NULL)
            luaL_error(L, "h2lua: out of memory");
        c->out = grown;
        c->out_cap = cap;
    }
    return c->out;
}

static int l_http_error(lua_State *L)
{
    lua_Integer status = luaL_checkinteger(L, 1);
    luaL_argcheck(L, status >= 400 && status <= 599, 1, "an HTTP error status is from 400 to 599");
    return lua_host_raise_http_error(L, (int)status, luaL_optstring(L, 2, ""));
}

static int l_is_http_error(lua_State *L)
{
    if (!lua_getmetatable(L, 1)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    luaL_getmetatable(L, LUA_HOST_HTTP_ERROR_MT);
    lua_pushboolean(L, lua_rawequal(L, -1, -2));
    return 1;
}

/* ---- decoders ---- */

struct fill_ctx {
    lua_State *L;
    int first_wins;
};

static int fill_field(void *p, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct fill_ctx *c = p;
    lua_pushlstring(c->L, name, nlen);
    if (c->first_wins) {
        lua_pushvalue(c->L, -1);
        if (lua_rawget(c->L, -3) != LUA_TNIL) {
            lua_pop(c->L, 2);
            return 0;
        }
        lua_pop(c->L, 1);
    }
    lua_pushlstring(c->L, value, vlen);
    lua_rawset(c->L, -3);
    return 0;
}

/* Pushes the decoded table, or nil and a message. */
static int push_form(lua_State *L, const char *s, size_t len, int max_fields)
{
    struct fill_ctx c = {L, 0};
    lua_newtable(L);
    int ret = form_parse(s, len, max_fields, fill_field, &c);
    if (ret < 0) {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_pushstring(L, form_strerror(ret));
        return 2;
    }
    return 1;
}

static int l_parse_form(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    return push_form(L, s, len, (int)luaL_optinteger(L, 2, ctx_of(L)->cfg->max_form_fields));
}

static void push_cookies(lua_State *L, const char *s, size_t len)
{
    struct fill_ctx c = {L, 1};
    lua_newtable(L);
    form_parse_cookies(s, len, fill_field, &c);
}

static int l_parse_cookies(lua_State *L)
{
    size_t len;
    const char *s = luaL_optlstring(L, 1, "", &len);
    push_cookies(L, s, len);
    return 1;
}

static int l_utf8_valid(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_pushboolean(L, form_utf8_valid(s, len));
    return 1;
}

/* escape_html(v): "" for nil, else tostring(v) with & < > " ' escaped; the same string when
 * nothing needs escaping (no copy). The templates' <%= %> runs this for every value: a string or
 * an integer (ids) takes a path without tostring's metamethod lookup and number formatting. */
static int l_escape_html(lua_State *L)
{
    size_t len;
    const char *s;
    switch (lua_type(L, 1)) {
    case LUA_TNONE:
    case LUA_TNIL: lua_pushliteral(L, ""); return 1;
    case LUA_TSTRING:
        lua_settop(L, 1);
        s = lua_tolstring(L, 1, &len);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, 1)) {
            /* decimal digits never need escaping */
            char buf[24], *end = buf + sizeof(buf), *d = end;
            lua_Integer n = lua_tointeger(L, 1);
            uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
            do {
                *--d = (char)('0' + u % 10);
                u /= 10;
            } while (u != 0);
            if (n < 0)
                *--d = '-';
            lua_pushlstring(L, d, (size_t)(end - d));
            return 1;
        }
        /* fall through */
    default: s = luaL_tolstring(L, 1, &len);
    }
    size_t i = util_html_safe_prefix(s, len);
    if (i == len)
        return 1;
    luaL_Buffer b;
    luaL_buffinitsize(L, &b, len + 32);
    luaL_addlstring(&b, s, i);
    for (; i < len; ++i) {
        const char *e = util_html_entity((unsigned char)s[i]);
        if (e != NULL)
            luaL_addstring(&b, e);
        else
            luaL_addchar(&b, s[i]);
    }
    luaL_pushresult(&b);
    return 1;
}

/* is_https(req): the core's rule (form_is_https) over req.scheme and X-Forwarded-Proto */
static int l_is_https(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "scheme");
    const char *scheme = lua_tostring(L, -1);
    size_t len = 0;
    const char *xfp = NULL;
    if (lua_getfield(L, 1, "headers") == LUA_TTABLE) {
        lua_getfield(L, -1, "x-forwarded-proto");
        xfp = lua_tolstring(L, -1, &len);
    }
    lua_pushboolean(L, form_is_https(scheme != NULL && strcmp(scheme, "https") == 0, xfp, len));
    return 1;
}

/* base64url_encode(s) -> s in base64url without padding (scripts/lib/base64.lua's url_encode) */
static int l_base64url_encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char *out = scratch(L, ctx_of(L), UTIL_BASE64URL_LEN(len));
    util_base64url_encode(out, (const unsigned char *)s, len);
    lua_pushlstring(L, out, UTIL_BASE64URL_LEN(len));
    return 1;
}

/* base64url_decode(s) -> the bytes, or nil for anything base64url_encode does not make */
static int l_base64url_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char *out = (unsigned char *)scratch(L, ctx_of(L), len / 4 * 3 + 3);
    long n = util_base64url_decode(out, s, len);
    if (n < 0)
        lua_pushnil(L);
    else
        lua_pushlstring(L, (const char *)out, (size_t)n);
    return 1;
}

/* ---- crypto ---- */

/* The state's HMAC context, keyed once: a one-shot HMAC() fetches the digest and hashes the key
 * again on every call (about 6x the cost of the MAC of a cookie). NULL when OpenSSL refuses. */
static EVP_MAC_CTX *hmac_ctx_new(const char *key)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context keeps its own reference */
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_construct_end()};
    if (ctx != NULL && EVP_MAC_init(ctx, (const unsigned char *)key, strlen(key), params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* A running h2lua.sleep: listed in its state's api_ctx, so that the state always reaches it (a
 * drain that times out leaves it to process exit) and a state that closes stops it. */
struct sleep_op {
    lua_req_t *lr;
    h2o_socket_t *sock;
    h2o_linklist_t link;
};

static int api_ctx_gc(lua_State *L)
{
    struct api_ctx *c = lua_touserdata(L, 1);
    while (!h2o_linklist_is_empty(&c->sleeps)) {
        /* the state closes under a sleeping request: its coroutine is never resumed */
        struct sleep_op *op = H2O_STRUCT_FROM_MEMBER(struct sleep_op, link, c->sleeps.next);
        h2o_linklist_unlink(&op->link);
        h2o_socket_read_stop(op->sock);
        h2o_socket_close(op->sock);
        free(op);
    }
    EVP_MAC_CTX_free(c->hmac);
    c->hmac = NULL;
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
    return 0;
}

/* concat(t, n): t[1] .. t[n] (strings) joined, as table.concat(t, "", 1, n), through the state's
 * buffer that is kept between calls: no buffer grown by doubling on every render of a page. */
static int l_concat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_checkinteger(L, 2);
    struct api_ctx *c = ctx_of(L);
    size_t len = 0;
    for (lua_Integer i = 1; i <= n; ++i) {
        size_t l;
        lua_rawgeti(L, 1, i);
        const char *p = lua_tolstring(L, -1, &l);
        if (p == NULL)
            return luaL_error(L, "concat: item %d is a %s, not a string", (int)i, luaL_typename(L, -1));
        memcpy(scratch(L, c, len + l) + len, p, l);
        len += l;
        lua_pop(L, 1);
    }
    lua_pushlstring(L, c->out, len);
    return 1;
}

static int l_hmac_sha256(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    size_t keylen = 0;
    const char *key = luaL_optlstring(L, 2, NULL, &keylen);
    struct api_ctx *c = ctx_of(L);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t outlen = 0;
    /* util_hmac_sha256 hands OpenSSL the key's length as an int: a longer key would be cut */
    luaL_argcheck(L, key == NULL || (keylen > 0 && keylen <= INT_MAX && strlen(key) == keylen), 2,
                  "a key of 1 to 2^31-1 bytes, none of them NUL");
    /* the state's keyed context (keyed once with SECRET_KEY); util_hmac_sha256 is the rule */
    if (key != NULL) {
        util_hmac_sha256(key, data, len, mac);
        outlen = UTIL_HMAC_SHA256_LEN;
    } else if (c->hmac == NULL || EVP_MAC_init(c->hmac, NULL, 0, NULL) != 1 ||
               EVP_MAC_update(c->hmac, (const unsigned char *)data, len) != 1 ||
               EVP_MAC_final(c->hmac, mac, &outlen, sizeof(mac)) != 1) {
        util_hmac_sha256(c->cfg->secret_key, data, len, mac);
        outlen = UTIL_HMAC_SHA256_LEN;
    }
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    util_hex_encode(hex, mac, outlen);
    lua_pushstring(L, hex);
    return 1;
}

static int l_random_hex(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 1024, 1, "from 1 to 1024 bytes");
    char *hex = util_random_hex((size_t)n);
    lua_pushstring(L, hex);
    free(hex);
    return 1;
}

static int l_equal(lua_State *L)
{
    size_t alen, blen;
    const char *a = luaL_checklstring(L, 1, &alen), *b = luaL_checklstring(L, 2, &blen);
    lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
    return 1;
}

static int l_now(lua_State *L)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    lua_pushnumber(L, (lua_Number)tv.tv_sec + tv.tv_usec / 1e6);
    return 1;
}

/* log_error(message [, fields]): string, number and boolean fields are logged as strings */
static int l_log_error(lua_State *L)
{
    const char *msg = luaL_checkstring(L, 1);
    const char *extra[64];
    size_t n = 0;
    lua_newtable(L); /* keeps the converted strings alive */
    int keep = lua_gettop(L), k = 0;
    if (lua_istable(L, 2)) {
        lua_pushnil(L);
        while (n < 32 && lua_next(L, 2) != 0) {
            int vt = lua_type(L, -1);
            if (lua_type(L, -2) == LUA_TSTRING && (vt == LUA_TSTRING || vt == LUA_TNUMBER || vt == LUA_TBOOLEAN)) {
                lua_pushvalue(L, -2);
                lua_rawseti(L, keep, ++k);
                luaL_tolstring(L, -1, NULL);
                lua_rawseti(L, keep, ++k);
                ++n;
            }
            lua_pop(L, 1);
        }
    }
    for (int i = 1; i <= k; ++i) {
        lua_rawgeti(L, keep, i);
        extra[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    log_event("error", ctx_of(L)->w->id, msg, extra, n);
    return 0;
}

/* ---- sleep: yields the request's coroutine on a timerfd ---- */

static void on_sleep_done(h2o_socket_t *sock, const char *err)
{
    (void)err;
    struct sleep_op *op = sock->data;
    lua_req_t *lr = op->lr;
    h2o_linklist_unlink(&op->link);
    free(op);
    h2o_socket_read_stop(sock);
    h2o_socket_close(sock);
    lua_host_resume(lr, 0);
}

static int l_sleep(lua_State *L)
{
    lua_Number secs = luaL_checknumber(L, 1);
    luaL_argcheck(L, secs >= 0 && secs <= 3600, 1, "from 0 to 3600 seconds");
    lua_req_t *lr = lua_host_req_yieldable(L, "h2lua.sleep");
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return luaL_error(L, "h2lua.sleep: timerfd_create failed");
    struct itimerspec its = {0};
    long long ns = (long long)(secs * 1e9);
    if (ns <= 0)
        ns = 1;
    its.it_value.tv_sec = ns / 1000000000;
    its.it_value.tv_nsec = ns % 1000000000;
    timerfd_settime(fd, 0, &its, NULL);
    h2o_socket_t *sock = h2o_evloop_socket_create(lua_req_worker(lr)->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    struct sleep_op *op = util_malloc(sizeof(*op));
    op->lr = lr;
    op->sock = sock;
    h2o_linklist_insert(&ctx_of(L)->sleeps, &op->link);
    sock->data = op;
    h2o_socket_read_start(sock, on_sleep_done);
    lua_host_suspend(lr);
    return lua_yield(L, 0);
}

/* ---- multipart/form-data bodies: req.form and req.files ---- */

struct multipart_call {
    multipart_result_t r;
    int duplicate; /* a field's name repeats */
};

static void set_lstr(lua_State *L, const char *key, const char *s, size_t len)
{
    lua_pushlstring(L, s, len);
    lua_setfield(L, -2, key);
}

/* Protected (lua_pcall): pushes the form and files tables made from a body multipart_read took. */
static int push_multipart_tables(lua_State *L)
{
    struct multipart_call *m = lua_touserdata(L, 1);
    lua_newtable(L); /* 2: form */
    lua_newtable(L); /* 3: files */
    int nfiles = 0;
    for (int i = 0; i < m->r.count; ++i) {
        const multipart_item_t *it = m->r.items + i;
        if (it->filename == NULL) {
            lua_pushlstring(L, it->name, it->name_len);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, 2) != LUA_TNIL) {
                m->duplicate = 1;
                return 0;
            }
            lua_pop(L, 1);
            lua_pushlstring(L, it->data, it->size);
            lua_rawset(L, 2);
            continue;
        }
        if (it->filename_len == 0 && it->size == 0)
            continue; /* a file input left empty */
        char safe[MULTIPART_SAFE_FILENAME_MAX + 1];
        size_t safe_len = multipart_safe_filename(safe, it->filename, it->filename_len);
        lua_createtable(L, 0, 6);
        set_lstr(L, "name", it->name, it->name_len);
        set_lstr(L, "filename", it->filename, it->filename_len);
        set_lstr(L, "safe_filename", safe, safe_len);
        if (it->content_type != NULL)
            set_lstr(L, "content_type", it->content_type, it->content_type_len);
        else
            set_lstr(L, "content_type", "application/octet-stream", 24);
        lua_pushinteger(L, (lua_Integer)it->size);
        lua_setfield(L, -2, "size");
        set_lstr(L, "data", it->data, it->size);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 3, ++nfiles);
        lua_pushlstring(L, it->name, it->name_len);
        if (lua_rawget(L, 3) == LUA_TNIL) { /* the first file of a name is files[name] */
            lua_pop(L, 1);
            lua_pushlstring(L, it->name, it->name_len);
            lua_insert(L, -2);
            lua_rawset(L, 3);
        } else {
            lua_pop(L, 2);
        }
    }
    return 2;
}

/*
 * Pushes req.form and req.files for a multipart/form-data body with this boundary, or raises
 * h2lua.http_error(400 or 413). The C result is freed before anything can raise.
 */
static int push_multipart(lua_State *L, const char *boundary, size_t blen, const char *body, size_t len, const config_t *cfg)
{
    struct multipart_call m = {0};
    multipart_limits_t limits = {cfg->max_form_fields, MULTIPART_HEADER_MAX, cfg->max_upload, cfg->max_body};
    int err = boundary != NULL ? multipart_read(body, len, boundary, blen, &limits, &m.r) : MULTIPART_EBOUNDARY;
    if (err == 0) {
        lua_pushcfunction(L, push_multipart_tables);
        lua_pushlightuserdata(L, &m);
        int rc = lua_pcall(L, 1, 2, 0);
        multipart_result_free(&m.r);
        if (rc != LUA_OK)
            return lua_error(L);
        if (!m.duplicate)
            return 0;
        lua_pop(L, 2);
    }
    char msg[128];
    if (multipart_status(err) == 413)
        snprintf(msg, sizeof(msg), "%s", multipart_strerror(err));
    else
        snprintf(msg, sizeof(msg), "malformed form: %s",
                 m.duplicate ? form_strerror(FORM_EDUPLICATE) : multipart_strerror(err));
    return lua_host_raise_http_error(L, multipart_status(err), msg);
}

/* Pushes the table of the form data s (len bytes; NULL: none), as req.form and req.query decode it;
 * raises http_error(400, "malformed <what>: <why>") when it is malformed. */
static void push_form_or_400(lua_State *L, const char *s, size_t len, int max_fields, const char *what)
{
    if (s == NULL)
        s = "", len = 0;
    if (push_form(L, s, len, max_fields) == 2) {
        char msg[128];
        snprintf(msg, sizeof(msg), "malformed %s: %s", what, lua_tostring(L, -1));
        lua_host_raise_http_error(L, 400, msg);
    }
}

/* req[key] = the value at idx (counted before key is pushed), raw. */
static void cache(lua_State *L, const char *key, int idx)
{
    lua_pushstring(L, key);
    lua_pushvalue(L, idx);
    lua_rawset(L, 1);
}

/* req.form or req.files (k): both are decoded from a multipart body, and both cached. */
static int req_form_or_files(lua_State *L, const char *k)
{
    struct api_ctx *c = ctx_of(L);
    lua_getfield(L, 1, "headers");
    lua_getfield(L, -1, "content-type");
    size_t ctlen = 0, len = 0;
    const char *ct = lua_tolstring(L, -1, &ctlen), *boundary;
    size_t blen;
    int err;
    if (ct != NULL && multipart_content_type(ct, ctlen, &boundary, &blen, &err)) {
        lua_getfield(L, 1, "body");
        const char *s = lua_tolstring(L, -1, &len);
        push_multipart(L, boundary, blen, s != NULL ? s : "", s != NULL ? len : 0, c->cfg);
        cache(L, "files", -2);
        cache(L, "form", -3);
        if (k[1] == 'o')
            lua_pop(L, 1);
        return 1;
    }
    if (k[1] == 'i') { /* files of any other body: none */
        lua_newtable(L);
        cache(L, "files", -2);
        return 1;
    }
    const char *s = NULL;
    if (ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 &&
        (ct[33] == '\0' || ct[33] == ';' || ct[33] == ' ')) {
        lua_getfield(L, 1, "body");
        s = lua_tolstring(L, -1, &len);
    }
    push_form_or_400(L, s, len, c->cfg->max_form_fields, "form");
    cache(L, "form", -2);
    return 1;
}

/* ---- the req metatable: lazy query, form, files, cookies ---- */

static int req_index(lua_State *L)
{
    if (lua_host_req_index(L))
        return 1;
    size_t klen;
    const char *k = lua_tolstring(L, 2, &klen);
    if (k == NULL)
        return 0;
    struct api_ctx *c = ctx_of(L);
    if (strcmp(k, "form") == 0 || strcmp(k, "files") == 0) {
        return req_form_or_files(L, k);
    } else if (strcmp(k, "query") == 0) {
        size_t len = 0;
        lua_getfield(L, 1, "query_string");
        const char *s = lua_tolstring(L, -1, &len);
        push_form_or_400(L, s, len, c->cfg->max_form_fields, "query string");
    } else if (strcmp(k, "cookies") == 0) {
        lua_getfield(L, 1, "headers");
        lua_getfield(L, -1, "cookie");
        size_t len = 0;
        const char *s = lua_tolstring(L, -1, &len);
        push_cookies(L, s != NULL ? s : "", len);
    } else {
        return 0;
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

/* ---- the application's version on this worker (development tools) ---- */

static int l_app_state(lua_State *L)
{
    struct api_ctx *c = lua_touserdata(L, lua_upvalueindex(1));
    lua_pushinteger(L, (lua_Integer)c->w->app_version);
    if (c->w->load_error != NULL)
        lua_pushstring(L, c->w->load_error);
    else
        lua_pushnil(L);
    lua_pushstring(L, util_boot_id());
    return 3;
}

/* ---- the module ---- */

static int open_module(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"http_error", l_http_error},
        {"is_http_error", l_is_http_error},
        {"parse_form", l_parse_form},
        {"parse_cookies", l_parse_cookies},
        {"utf8_valid", l_utf8_valid},
        {"escape_html", l_escape_html},
        {"is_https", l_is_https},
        {"concat", l_concat},
        {"base64url_encode", l_base64url_encode},
        {"base64url_decode", l_base64url_decode},
        {"hmac_sha256", l_hmac_sha256},
        {"random_hex", l_random_hex},
        {"equal", l_equal},
        {"now", l_now},
        {"log_error", l_log_error},
        {"sleep", l_sleep},
        {"app_state", l_app_state},
        {NULL, NULL},
    };
    struct api_ctx *c = lua_touserdata(L, lua_upvalueindex(1));
    lua_newtable(L);
    lua_pushlightuserdata(L, c);
    luaL_setfuncs(L, funcs, 1);
#if H2LUA_LUAJIT
    /* the escape's two halves for LuaJIT's FFI (scripts/lib/template.lua): a call through the FFI is
     * compiled into the trace, where a call of a C function stops it */
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, UTIL_HTML_ENTITY_MAX);
    lua_setfield(L, -2, "html_entity_max"); /* the most bytes escape_html writes for one byte */
    lua_pushlightuserdata(L, (void *)(uintptr_t)util_html_safe_prefix);
    lua_setfield(L, -2, "html_safe_prefix"); /* size_t (const char *s, size_t len) */
    lua_pushlightuserdata(L, (void *)(uintptr_t)util_escape_html);
    lua_setfield(L, -2, "escape_html"); /* size_t (char *dst, const char *s, size_t len) */
    lua_setfield(L, -2, "ffi");
#endif

    const config_t *cfg = c->cfg;
    lua_createtable(L, 0, 14);
    lua_pushstring(L, cfg->app_env == CONFIG_ENV_DEVELOPMENT ? "development" : "production");
    lua_setfield(L, -2, "app_env");
    lua_pushstring(L, cfg->scripts_dir);
    lua_setfield(L, -2, "scripts_dir");
    lua_pushstring(L, cfg->views_dir);
    lua_setfield(L, -2, "views_dir");
    lua_pushstring(L, cfg->static_dir);
    lua_setfield(L, -2, "static_dir");
    lua_pushinteger(L, cfg->port);
    lua_setfield(L, -2, "port");
    lua_pushinteger(L, cfg->workers);
    lua_setfield(L, -2, "workers");
    lua_pushinteger(L, (lua_Integer)cfg->max_body);
    lua_setfield(L, -2, "max_body");
    lua_pushinteger(L, cfg->max_form_fields);
    lua_setfield(L, -2, "max_form_fields");
    lua_pushinteger(L, (lua_Integer)cfg->max_upload);
    lua_setfield(L, -2, "max_upload");
    lua_pushboolean(L, cfg->db.host != NULL);
    lua_setfield(L, -2, "database");
    lua_pushstring(L, H2LUA_VERSION);
    lua_setfield(L, -2, "version");
    if (cfg->webhook_url != NULL) {
        lua_createtable(L, 0, 5);
        lua_pushstring(L, cfg->webhook_url);
        lua_setfield(L, -2, "url");
        lua_pushstring(L, cfg->webhook_secret);
        lua_setfield(L, -2, "secret");
        lua_pushinteger(L, cfg->webhook_max_attempts);
        lua_setfield(L, -2, "max_attempts");
        lua_pushnumber(L, cfg->webhook_backoff_ms / 1000.0);
        lua_setfield(L, -2, "backoff");
        lua_pushnumber(L, cfg->webhook_backoff_max_ms / 1000.0);
        lua_setfield(L, -2, "backoff_max");
        lua_setfield(L, -2, "webhook");
    }
    lua_pushinteger(L, cfg->write_limit);
    lua_setfield(L, -2, "write_limit");
    lua_pushinteger(L, cfg->write_limit_window);
    lua_setfield(L, -2, "write_limit_window");
    lua_setfield(L, -2, "config");
    lua_pushinteger(L, c->w->id);
    lua_setfield(L, -2, "worker");
    luaL_getmetatable(L, LUA_HOST_HTTP_ERROR_MT);
    lua_setfield(L, -2, "HttpError");
    lua_newtable(L);
    for (const http_status_t *st = http_status_table; st->status != 0; ++st) {
        lua_pushstring(L, st->reason);
        lua_rawseti(L, -2, st->status);
    }
    lua_setfield(L, -2, "status_text");
    return 1;
}

void lua_api_preload(lua_State *L, const config_t *cfg, worker_t *w)
{
    struct api_ctx *c = lua_newuserdatauv(L, sizeof(*c), 0);
    c->cfg = cfg;
    c->w = w;
    c->hmac = hmac_ctx_new(cfg->secret_key);
    c->out = NULL;
    c->out_cap = 0;
    h2o_linklist_init_anchor(&c->sleeps);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, api_ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "h2lua.api_ctx"); /* keeps it alive as long as the state */

    luaL_getmetatable(L, LUA_HOST_REQUEST_MT);
    lua_pushlightuserdata(L, c);
    lua_pushcclosure(L, req_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushlightuserdata(L, c);
    lua_pushcclosure(L, open_module, 1);
    lua_setfield(L, -2, "h2lua");
}
