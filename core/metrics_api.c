#include "metrics_api.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app_metrics.h"
#include "form.h"
#include "log.h"
#include "lua_host.h"
#include "worker.h"

#define METRIC_MT "h2lua.metric"

/* A metric object of a Lua state. */
struct metric_ud {
    app_metric_t *m;
    app_series_t *plain; /* the one series of an unlabelled metric */
    int cache_ref;       /* registry ref of a table: label key -> series (lightuserdata) */
    int worker;
};

static struct metric_ud *check_metric(lua_State *L)
{
    return luaL_checkudata(L, 1, METRIC_MT);
}

/*
 * The series for the labels table at index idx (or none), created when new; NULL when its label
 * set is dropped (past the cap) or, without create, unknown. Raises on bad labels.
 */
static app_series_t *series_of(lua_State *L, struct metric_ud *u, int idx, int create, const char *fn)
{
    app_metric_t *m = u->m;
    size_t nl = app_metric_nlabels(m);
    int t = lua_type(L, idx);
    if (nl == 0) {
        if (t != LUA_TNIL && t != LUA_TNONE)
            luaL_error(L, "%s: '%s' has no labels", fn, app_metric_name(m));
        return u->plain;
    }
    if (t != LUA_TTABLE)
        luaL_error(L, "%s: '%s' needs its labels as a table (%s%s)", fn, app_metric_name(m), app_metric_label(m, 0),
                   nl > 1 ? ", ..." : "");
    const char *values[APP_METRICS_MAX_LABELS];
    size_t lens[APP_METRICS_MAX_LABELS];
    char key[APP_METRICS_MAX_LABELS * (APP_METRICS_VALUE_MAX + 1)];
    size_t klen = 0;
    int top = lua_gettop(L);
    for (size_t i = 0; i < nl; ++i) {
        lua_pushstring(L, app_metric_label(m, i));
        lua_rawget(L, idx);
        int vt = lua_type(L, -1);
        if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
            luaL_error(L, "%s: the label '%s' of '%s' must be a string (got a %s)", fn, app_metric_label(m, i),
                       app_metric_name(m), luaL_typename(L, -1));
        values[i] = lua_tolstring(L, -1, &lens[i]); /* a number is converted on this copy */
        if (lens[i] > APP_METRICS_VALUE_MAX || !form_utf8_valid(values[i], lens[i]))
            luaL_error(L, "%s: the label '%s' of '%s' must be UTF-8 of at most %d bytes", fn, app_metric_label(m, i),
                       app_metric_name(m), APP_METRICS_VALUE_MAX);
        memcpy(key + klen, values[i], lens[i]);
        klen += lens[i];
        key[klen++] = '\xff';
    }
    /* exactly the declared names: count the table's keys */
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (++count > nl) {
            lua_pop(L, 1);
            break;
        }
    }
    if (count != nl) {
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            int known = 0;
            if (lua_type(L, -1) == LUA_TSTRING)
                for (size_t i = 0; i < nl && !known; ++i)
                    known = strcmp(lua_tostring(L, -1), app_metric_label(m, i)) == 0;
            if (!known)
                luaL_error(L, "%s: '%s' has no label %s%s%s", fn, app_metric_name(m),
                           lua_type(L, -1) == LUA_TSTRING ? "'" : "(a ",
                           lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1),
                           lua_type(L, -1) == LUA_TSTRING ? "'" : ")");
        }
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->cache_ref);
    lua_pushlstring(L, key, klen);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    app_series_t *s = lua_touserdata(L, -1);
    if (s == NULL) {
        int first_drop = 0;
        s = app_metric_series(m, values, lens, create, &first_drop);
        if (s != NULL) {
            lua_pop(L, 1);
            lua_pushlightuserdata(L, s);
            lua_rawset(L, -3);
        } else if (first_drop) {
            char limit[16];
            snprintf(limit, sizeof(limit), "%d", APP_METRICS_MAX_SERIES);
            const char *extra[] = {"metric", app_metric_name(m), "limit", limit};
            log_event("warn", u->worker,
                      "an application metric has too many label sets: observations of new ones are dropped "
                      "(h2lua_app_metrics_dropped_total)",
                      extra, 2);
        }
    }
    lua_settop(L, top);
    return s;
}

/* The number at idx, finite; raises otherwise. */
static double finite_arg(lua_State *L, int idx, const char *fn)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s: the value must be a number (got a %s)", fn, luaL_typename(L, idx));
    double v = (double)lua_tonumber(L, idx);
    if (!isfinite(v))
        luaL_error(L, "%s: the value must be a finite number", fn);
    return v;
}

static void check_type(lua_State *L, struct metric_ud *u, int ok, const char *fn)
{
    if (!ok)
        luaL_error(L, "%s: '%s' is a %s", fn, app_metric_name(u->m),
                   app_metric_type(u->m) == APP_METRIC_COUNTER ? "counter"
                   : app_metric_type(u->m) == APP_METRIC_GAUGE ? "gauge"
                                                               : "histogram");
}

/* inc/dec: (self [, n] [, labels]); n may be left out before labels */
static int add(lua_State *L, int sign, const char *fn)
{
    struct metric_ud *u = check_metric(L);
    int type = app_metric_type(u->m);
    check_type(L, u, type == APP_METRIC_GAUGE || (type == APP_METRIC_COUNTER && sign > 0), fn);
    double n = 1;
    int labels = 3;
    if (lua_type(L, 2) == LUA_TTABLE)
        labels = 2;
    else if (lua_type(L, 2) != LUA_TNIL && lua_type(L, 2) != LUA_TNONE)
        n = finite_arg(L, 2, fn);
    if (type == APP_METRIC_COUNTER && n < 0)
        return luaL_error(L, "%s: a counter only goes up (got %f)", fn, n);
    app_series_t *s = series_of(L, u, labels, 1, fn);
    if (s != NULL)
        app_series_add(s, sign * n);
    return 0;
}

static int l_inc(lua_State *L)
{
    return add(L, 1, "metric:inc");
}

static int l_dec(lua_State *L)
{
    return add(L, -1, "metric:dec");
}

/* set/observe: (self, v [, labels]) on a metric of that type; record takes v into the series */
static int record_value(lua_State *L, int type, void (*record)(app_series_t *, double), const char *fn)
{
    struct metric_ud *u = check_metric(L);
    check_type(L, u, app_metric_type(u->m) == type, fn);
    double v = finite_arg(L, 2, fn);
    app_series_t *s = series_of(L, u, 3, 1, fn);
    if (s != NULL)
        record(s, v);
    return 0;
}

static int l_set(lua_State *L)
{
    return record_value(L, APP_METRIC_GAUGE, app_series_set, "metric:set");
}

static int l_observe(lua_State *L)
{
    return record_value(L, APP_METRIC_HISTOGRAM, app_series_observe, "metric:observe");
}

/* Pushes v as an integer when it is a whole number an integer holds exactly (5.4 writes 1, not 1.0). */
static void push_value(lua_State *L, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, (lua_Number)v);
}

static int l_value(lua_State *L)
{
    struct metric_ud *u = check_metric(L);
    app_series_t *s = series_of(L, u, 2, 0, "metric:value");
    push_value(L, s != NULL ? app_series_value(s) : 0);
    if (app_metric_type(u->m) != APP_METRIC_HISTOGRAM)
        return 1;
    push_value(L, s != NULL ? (double)app_series_count(s) : 0);
    return 2;
}

static int l_tostring(lua_State *L)
{
    struct metric_ud *u = check_metric(L);
    lua_pushfstring(L, "h2lua.metric: %s", app_metric_name(u->m));
    return 1;
}

static int l_gc(lua_State *L)
{
    struct metric_ud *u = check_metric(L);
    if (u->cache_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, u->cache_ref);
        u->cache_ref = LUA_NOREF;
    }
    return 0;
}

/* The array at idx as strings into out (at most max); raises on anything else. */
static size_t string_array(lua_State *L, int idx, const char **out, size_t max, const char *what, const char *fn)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNIL || t == LUA_TNONE)
        return 0;
    if (t != LUA_TTABLE)
        luaL_error(L, "%s: %s must be an array of strings (got a %s)", fn, what, luaL_typename(L, idx));
    size_t n = lua_rawlen(L, idx);
    if (n > max)
        luaL_error(L, "%s: more than %d %s", fn, (int)max, what);
    for (size_t i = 0; i < n; ++i) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: %s must be an array of strings (got a %s)", fn, what, luaL_typename(L, -1));
        out[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the table keeps the string */
    }
    return n;
}

static int declare(lua_State *L, int type, const char *fn)
{
    app_metrics_t *r = lua_touserdata(L, lua_upvalueindex(1));
    int worker = (int)lua_tointeger(L, lua_upvalueindex(2));
    const char *name = luaL_checkstring(L, 1);
    size_t help_len;
    const char *help = luaL_checklstring(L, 2, &help_len);
    double buckets[APP_METRICS_MAX_BUCKETS];
    size_t nbuckets = 0;
    int labels_idx = 3;
    if (type == APP_METRIC_HISTOGRAM) {
        labels_idx = 4;
        if (lua_type(L, 3) != LUA_TTABLE)
            return luaL_error(L, "%s: the buckets must be an array of numbers (got a %s)", fn, luaL_typename(L, 3));
        nbuckets = lua_rawlen(L, 3);
        if (nbuckets > APP_METRICS_MAX_BUCKETS)
            return luaL_error(L, "%s: more than %d buckets", fn, APP_METRICS_MAX_BUCKETS);
        for (size_t i = 0; i < nbuckets; ++i) {
            lua_rawgeti(L, 3, (lua_Integer)i + 1);
            if (lua_type(L, -1) != LUA_TNUMBER)
                return luaL_error(L, "%s: the buckets must be an array of numbers (got a %s)", fn, luaL_typename(L, -1));
            buckets[i] = (double)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    }
    const char *labels[APP_METRICS_MAX_LABELS];
    size_t nlabels = string_array(L, labels_idx, labels, APP_METRICS_MAX_LABELS, "the label names", fn);
    app_metric_t *m;
    char err[768];
    if (app_metrics_declare(r, type, name, help, help_len, labels, nlabels, buckets, nbuckets, &m, err, sizeof(err)) != 0)
        return luaL_error(L, "%s: %s", fn, err);
    struct metric_ud *u = lua_newuserdata(L, sizeof(*u));
    u->m = m;
    u->plain = NULL;
    u->cache_ref = LUA_NOREF;
    u->worker = worker;
    luaL_setmetatable(L, METRIC_MT);
    if (nlabels == 0) {
        int first_drop;
        u->plain = app_metric_series(m, NULL, NULL, 1, &first_drop); /* the first series: never past the cap */
    } else {
        lua_newtable(L);
        u->cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 1;
}

static int l_counter(lua_State *L)
{
    return declare(L, APP_METRIC_COUNTER, "h2lua.metrics.counter");
}

static int l_gauge(lua_State *L)
{
    return declare(L, APP_METRIC_GAUGE, "h2lua.metrics.gauge");
}

static int l_histogram(lua_State *L)
{
    return declare(L, APP_METRIC_HISTOGRAM, "h2lua.metrics.histogram");
}

static int open_metrics(lua_State *L)
{
    static const luaL_Reg methods[] = {{"inc", l_inc},         {"dec", l_dec},     {"set", l_set},
                                       {"observe", l_observe}, {"value", l_value}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"counter", l_counter}, {"gauge", l_gauge}, {"histogram", l_histogram}, {NULL, NULL}};
    lua_host_new_type(L, METRIC_MT, methods, l_gc, l_tostring);
    lua_newtable(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(2));
    luaL_setfuncs(L, funcs, 2);
    return 1;
}

void metrics_api_preload(lua_State *L, const struct config *cfg, struct worker *w)
{
    (void)cfg;
    lua_pushlightuserdata(L, w->app_metrics);
    lua_pushinteger(L, w->id);
    lua_pushcclosure(L, open_metrics, 2);
    lua_setfield(L, -2, "h2lua.metrics");
}
