#include "lua_api.h"

#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "config.h"
#include "db_api.h"
#include "form.h"
#include "log.h"
#include "lua_host.h"
#include "stream.h"
#include "util.h"
#include "worker.h"

/* What the module's functions reach through their upvalue. */
struct api_ctx {
    const config_t *cfg;
    worker_t *w;
};

static struct api_ctx *ctx_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

int lua_api_raise_http_error(lua_State *L, int status, const char *message)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, LUA_API_HTTP_ERROR_MT);
    return lua_error(L);
}

static int l_http_error(lua_State *L)
{
    lua_Integer status = luaL_checkinteger(L, 1);
    luaL_argcheck(L, status >= 400 && status <= 599, 1, "an HTTP error status is from 400 to 599");
    return lua_api_raise_http_error(L, (int)status, luaL_optstring(L, 2, ""));
}

static int l_is_http_error(lua_State *L)
{
    if (!lua_getmetatable(L, 1)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    luaL_getmetatable(L, LUA_API_HTTP_ERROR_MT);
    lua_pushboolean(L, lua_rawequal(L, -1, -2));
    return 1;
}

static int http_error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "status");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "HTTP %s: %s", lua_tostring(L, -2), lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : "");
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
 * nothing needs escaping (no copy). The templates' <%= %> runs this for every value. */
static int l_escape_html(lua_State *L)
{
    static const unsigned char special[256] = {['&'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1, ['\''] = 1};
    if (lua_isnoneornil(L, 1)) {
        lua_pushliteral(L, "");
        return 1;
    }
    size_t len;
    const char *s = luaL_tolstring(L, 1, &len);
    size_t i = 0;
    while (i < len && !special[(unsigned char)s[i]])
        ++i;
    if (i == len)
        return 1;
    luaL_Buffer b;
    luaL_buffinitsize(L, &b, len + 32);
    luaL_addlstring(&b, s, i);
    for (; i < len; ++i) {
        switch (s[i]) {
        case '&': luaL_addstring(&b, "&amp;"); break;
        case '<': luaL_addstring(&b, "&lt;"); break;
        case '>': luaL_addstring(&b, "&gt;"); break;
        case '"': luaL_addstring(&b, "&quot;"); break;
        case '\'': luaL_addstring(&b, "&#39;"); break;
        default: luaL_addchar(&b, s[i]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- crypto ---- */

static int l_hmac_sha256(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    const char *key = ctx_of(L)->cfg->secret_key;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)data, len, mac, &maclen);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    util_hex_encode(hex, mac, maclen);
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

struct sleep_op {
    lua_req_t *lr;
};

static void on_sleep_done(h2o_socket_t *sock, const char *err)
{
    (void)err;
    struct sleep_op *op = sock->data;
    lua_req_t *lr = op->lr;
    free(op);
    h2o_socket_read_stop(sock);
    h2o_socket_close(sock);
    lua_host_resume(lr, 0);
}

static int l_sleep(lua_State *L)
{
    lua_Number secs = luaL_checknumber(L, 1);
    luaL_argcheck(L, secs >= 0 && secs <= 3600, 1, "from 0 to 3600 seconds");
    lua_req_t *lr = lua_host_req(L);
    if (lr == NULL)
        return luaL_error(L, "h2lua.sleep can only be called while handling a request");
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
    sock->data = op;
    h2o_socket_read_start(sock, on_sleep_done);
    lua_host_suspend(lr);
    return lua_yield(L, 0);
}

/* ---- the req metatable: lazy query, form, cookies ---- */

static int req_index(lua_State *L)
{
    size_t klen;
    const char *k = lua_tolstring(L, 2, &klen);
    if (k == NULL)
        return 0;
    struct api_ctx *c = ctx_of(L);
    if (strcmp(k, "query") == 0 || strcmp(k, "form") == 0) {
        int is_form = k[0] == 'f';
        size_t len = 0;
        const char *s = "";
        if (is_form) {
            lua_getfield(L, 1, "headers");
            lua_getfield(L, -1, "content-type");
            const char *ct = lua_tostring(L, -1);
            if (ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 &&
                (ct[33] == '\0' || ct[33] == ';' || ct[33] == ' ')) {
                lua_getfield(L, 1, "body");
                s = lua_tolstring(L, -1, &len);
                if (s == NULL)
                    s = "", len = 0;
            }
        } else {
            lua_getfield(L, 1, "query_string");
            s = lua_tolstring(L, -1, &len);
            if (s == NULL)
                s = "", len = 0;
        }
        if (push_form(L, s, len, c->cfg->max_form_fields) == 2) {
            char msg[128];
            snprintf(msg, sizeof(msg), "malformed %s: %s", is_form ? "form" : "query string", lua_tostring(L, -1));
            return lua_api_raise_http_error(L, 400, msg);
        }
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
    return 2;
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

    const config_t *cfg = c->cfg;
    lua_createtable(L, 0, 12);
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
    lua_pushboolean(L, cfg->db.host != NULL);
    lua_setfield(L, -2, "database");
    lua_pushstring(L, H2LUA_VERSION);
    lua_setfield(L, -2, "version");
    lua_setfield(L, -2, "config");
    lua_pushinteger(L, c->w->id);
    lua_setfield(L, -2, "worker");
    luaL_getmetatable(L, LUA_API_HTTP_ERROR_MT);
    lua_setfield(L, -2, "HttpError");
    return 1;
}

void lua_api_open(lua_State *L, const config_t *cfg, worker_t *w)
{
    struct api_ctx *c = lua_newuserdatauv(L, sizeof(*c), 0);
    c->cfg = cfg;
    c->w = w;
    lua_setfield(L, LUA_REGISTRYINDEX, "h2lua.api_ctx"); /* keeps it alive as long as the state */

    luaL_newmetatable(L, LUA_API_HTTP_ERROR_MT);
    lua_pushcfunction(L, http_error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    luaL_newmetatable(L, LUA_API_REQUEST_MT);
    lua_pushlightuserdata(L, c);
    lua_pushcclosure(L, req_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushlightuserdata(L, c);
    lua_pushcclosure(L, open_module, 1);
    lua_setfield(L, -2, "h2lua");
    db_api_preload(L, cfg, w);
    lua_pop(L, 1);
    stream_lua_open(L);
}
