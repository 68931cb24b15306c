#include "timer_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "lua_host.h"
#include "metrics.h"
#include "migrate.h"
#include "util.h"
#include "worker.h"

#define TIMER_MT "h2lua.timer.handle"
#define ARGS_MAX 200              /* arguments kept for the function */
#define DELAY_MAX 1e9             /* seconds */
#define EVERY_MIN_US 1000         /* an `every` waits at least 1 ms between runs */
#define MIGRATIONS_POLL_US 100000 /* due timers wait for the migrations, looking again every 100 ms */

/* A worker's counts, across the versions its reloads load (worker_t.timers). */
struct timer_worker {
    metrics_timers_t n; /* pending, running, runs, errors */
    uint64_t max;       /* TIMERS_MAX: pending + running */
    metrics_t *metrics; /* the worker's, where n is published */
};

/* Publishes the counts for /metrics (after every change: one uncontended lock). */
static void publish(struct timer_worker *tw)
{
    metrics_publish_timers(tw->metrics, &tw->n);
}

/* A state's timers: a userdata in its registry, given back by its __gc when the state closes. */
struct timer_ctx {
    worker_t *w;
    lua_host_t *host;
    struct timer_worker *tw;
    int fd;             /* the timerfd, armed for the first pending timer; -1 until started */
    h2o_socket_t *sock; /* fd in the worker's loop */
    int started, retired;
    int broken;             /* no timerfd could be made: timers are refused */
    h2o_linklist_t pending; /* struct timer, by due time (equal: in the order made) */
    h2o_linklist_t firing;  /* due now, being started one by one */
    uint64_t npending;      /* in pending and firing */
    int timers_ref;         /* registry: table lightuserdata(timer) -> {[0] = handle, fn, args...} */
};

enum { T_PENDING, T_RUNNING, T_DONE };

/* A timer: the handle the application holds (a userdata). While pending or running, the ctx's
 * table holds it and its function and arguments; once done, only the application may. */
struct timer {
    struct timer_ctx *ctx;
    h2o_linklist_t link;  /* in ctx->pending or ctx->firing while T_PENDING */
    uint64_t due_us;      /* monotonic; before the state starts: the delay */
    uint64_t interval_us; /* 0: timer.at */
    int state;
    int cancelled; /* an `every` cancelled while it ran */
    int nargs;
    char where[192]; /* the function's source:line */
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static struct timer *timer_of(h2o_linklist_t *link)
{
    return H2O_STRUCT_FROM_MEMBER(struct timer, link, link);
}

static void set_timerfd(struct timer_ctx *c, uint64_t at_us)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(at_us / 1000000);
    its.it_value.tv_nsec = (long)(at_us % 1000000) * 1000;
    if (at_us == 0)
        its.it_value.tv_nsec = 1; /* 0 would disarm it */
    timerfd_settime(c->fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Arms the timerfd for the first pending timer, or disarms it. */
static void arm(struct timer_ctx *c)
{
    if (c->sock == NULL)
        return;
    if (h2o_linklist_is_empty(&c->pending)) {
        struct itimerspec off;
        memset(&off, 0, sizeof(off));
        timerfd_settime(c->fd, TFD_TIMER_ABSTIME, &off, NULL);
        return;
    }
    set_timerfd(c, timer_of(c->pending.next)->due_us);
}

static void insert_pending(struct timer_ctx *c, struct timer *t)
{
    h2o_linklist_t *pos = c->pending.prev;
    while (pos != &c->pending && timer_of(pos)->due_us > t->due_us)
        pos = pos->prev;
    h2o_linklist_insert(pos->next, &t->link);
    t->state = T_PENDING;
    ++c->npending;
    ++c->tw->n.pending;
    publish(c->tw);
}

/* The ctx's table forgets t. L: the calling C function's, or the state's main thread from a loop
 * callback. Can't fail: removing a key allocates nothing. */
static void release(lua_State *L, struct timer *t)
{
    t->state = T_DONE;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ctx->timers_ref);
    lua_pushlightuserdata(L, t);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Takes a pending t off its list (it does not run). */
static void unlink_pending(struct timer *t)
{
    h2o_linklist_unlink(&t->link);
    --t->ctx->npending;
    --t->ctx->tw->n.pending;
    publish(t->ctx->tw);
}

static void on_done(void *ud, int failed)
{
    struct timer *t = ud;
    struct timer_ctx *c = t->ctx;
    --c->tw->n.running;
    ++c->tw->n.runs;
    if (failed)
        ++c->tw->n.errors;
    publish(c->tw);
    if (t->interval_us != 0 && !t->cancelled && !c->retired) {
        t->due_us = mono_us() + t->interval_us;
        insert_pending(c, t);
        arm(c);
        return;
    }
    release(c->host->L, t);
}

/* Starts t's function in a task of the state (from the loop, the state idle). */
static void run_timer(struct timer *t)
{
    struct timer_ctx *c = t->ctx;
    --c->npending;
    --c->tw->n.pending;
    ++c->tw->n.running;
    publish(c->tw);
    t->state = T_RUNNING;
    lua_req_t *lr = lua_host_task_new(c->host, "timer", t->where, on_done, t);
    lua_State *co = lua_req_coroutine(lr);
    lua_checkstack(co, t->nargs + 4); /* ARGS_MAX is far below the VMs' limits: can't fail */
    lua_rawgeti(co, LUA_REGISTRYINDEX, c->timers_ref);
    lua_pushlightuserdata(co, t);
    lua_rawget(co, -2);
    lua_remove(co, 1);
    for (int i = 1; i <= t->nargs + 1; ++i)
        lua_rawgeti(co, 1, i);
    lua_remove(co, 1);
    lua_host_resume(lr, t->nargs); /* lr may be gone from here on */
}

static void on_timerfd(h2o_socket_t *sock, const char *err)
{
    (void)err;
    struct timer_ctx *c = sock->data;
    uint64_t expirations;
    if (read(c->fd, &expirations, sizeof(expirations)) < 0) {
        /* EAGAIN: the timer was re-armed since it fired; what is due is found below anyway */
    }
    if (c->retired)
        return;
    uint64_t now = mono_us();
    if (!migrate_is_done()) {
        if (!h2o_linklist_is_empty(&c->pending) && timer_of(c->pending.next)->due_us <= now)
            set_timerfd(c, now + MIGRATIONS_POLL_US);
        else
            arm(c);
        return;
    }
    /* What is due now moves to `firing` first: a timer made by one that runs here (timer.at(0, ...)
     * from a timer) is due after `now` and waits for the loop's next turn. */
    while (!h2o_linklist_is_empty(&c->pending) && timer_of(c->pending.next)->due_us <= now) {
        h2o_linklist_t *l = c->pending.next;
        h2o_linklist_unlink(l);
        h2o_linklist_insert(&c->firing, l);
    }
    while (!h2o_linklist_is_empty(&c->firing)) {
        struct timer *t = timer_of(c->firing.next);
        h2o_linklist_unlink(&t->link);
        run_timer(t);
    }
    arm(c);
}

/* ---- the state's life (lua_host hooks) ---- */

static void drop_all(struct timer_ctx *c, h2o_linklist_t *list);

static void on_start(void *ud)
{
    struct timer_ctx *c = ud;
    c->started = 1;
    c->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (c->fd < 0) {
        /* out of file descriptors: this version runs without timers (they are refused), the server on */
        log_errorf(c->w->id, "timers are unavailable on this version of the application: timerfd_create: %s", strerror(errno));
        c->broken = 1;
        drop_all(c, &c->pending);
        return;
    }
    c->sock = h2o_evloop_socket_create(c->w->loop, c->fd, H2O_SOCKET_FLAG_DONT_READ);
    c->sock->data = c;
    h2o_socket_read_start(c->sock, on_timerfd);
    /* the timers made while app.lua loaded: their delays count from now */
    uint64_t now = mono_us();
    for (h2o_linklist_t *l = c->pending.next; l != &c->pending; l = l->next)
        timer_of(l)->due_us += now;
    arm(c);
}

static void drop_all(struct timer_ctx *c, h2o_linklist_t *list)
{
    while (!h2o_linklist_is_empty(list)) {
        struct timer *t = timer_of(list->next);
        unlink_pending(t);
        release(c->host->L, t);
    }
}

static void on_retire(void *ud)
{
    struct timer_ctx *c = ud;
    c->retired = 1;
    drop_all(c, &c->pending);
    drop_all(c, &c->firing);
    arm(c);
}

static int ctx_gc(lua_State *L)
{
    struct timer_ctx *c = lua_touserdata(L, 1);
    if (c->sock != NULL) {
        h2o_socket_read_stop(c->sock);
        h2o_socket_close(c->sock); /* closes fd */
        c->sock = NULL;
    }
    /* a state closed with timers pending (a reload that failed to load, the worker's end) */
    c->tw->n.pending -= c->npending;
    c->npending = 0;
    publish(c->tw);
    return 0;
}

/* ---- the module ---- */

static struct timer_ctx *ctx_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int make(lua_State *L, int every)
{
    const char *name = every ? "timer.every" : "timer.at";
    struct timer_ctx *c = ctx_of(L);
    lua_Number d = luaL_checknumber(L, 1);
    if (every)
        luaL_argcheck(L, d > 0 && d <= DELAY_MAX, 1, "the interval is a number of seconds above 0 and at most 1e9");
    else
        luaL_argcheck(L, d >= 0 && d <= DELAY_MAX, 1, "the delay is a number of seconds from 0 to 1e9");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 2;
    if (nargs > ARGS_MAX)
        return luaL_error(L, "%s: at most %d arguments for the function", name, ARGS_MAX);
    if (c->retired) {
        lua_pushnil(L);
        lua_pushstring(L, c->w->shutting_down ? "timers are stopped: the server is shutting down"
                                              : "timers are stopped: a reload replaced this version of the application");
        return 2;
    }
    if (c->broken) {
        lua_pushnil(L);
        lua_pushliteral(L, "timers are unavailable: no file descriptor for them (see the error log)");
        return 2;
    }
    if (c->tw->n.pending + c->tw->n.running >= c->tw->max) {
        lua_pushnil(L);
        lua_pushliteral(L, "too many pending timers");
        return 2;
    }
    /* everything that allocates first (it may raise): nothing is counted or listed yet */
    struct timer *t = lua_newuserdatauv(L, sizeof(*t), 0);
    memset(t, 0, sizeof(*t));
    luaL_setmetatable(L, TIMER_MT);
    int handle = lua_gettop(L);
    lua_Debug ar;
    lua_pushvalue(L, 2);
    if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
        snprintf(t->where, sizeof(t->where), "%s:%d", ar.short_src, ar.linedefined);
    else
        snprintf(t->where, sizeof(t->where), "%s", ar.short_src);
    lua_createtable(L, nargs + 1, 1);
    lua_pushvalue(L, handle);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i <= nargs; ++i) {
        lua_pushvalue(L, 2 + i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->timers_ref);
    lua_pushlightuserdata(L, t);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 2);

    t->ctx = c;
    t->nargs = nargs;
    uint64_t us = (uint64_t)(d * 1e6);
    if (every) {
        if (us < EVERY_MIN_US)
            us = EVERY_MIN_US;
        t->interval_us = us;
    }
    t->due_us = c->started ? mono_us() + us : us;
    insert_pending(c, t);
    arm(c);
    lua_settop(L, handle);
    return 1;
}

static int l_at(lua_State *L)
{
    return make(L, 0);
}

static int l_every(lua_State *L)
{
    return make(L, 1);
}

static int l_pending(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ctx_of(L)->tw->n.pending);
    return 1;
}

static int l_running(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ctx_of(L)->tw->n.running);
    return 1;
}

static int l_cancel(lua_State *L)
{
    struct timer *t = luaL_checkudata(L, 1, TIMER_MT);
    if (t->state == T_PENDING) {
        unlink_pending(t);
        release(L, t);
        arm(t->ctx);
        lua_pushboolean(L, 1);
    } else if (t->state == T_RUNNING && t->interval_us != 0 && !t->cancelled) {
        t->cancelled = 1; /* it is not scheduled again when this run ends */
        lua_pushboolean(L, 1);
    } else {
        lua_pushboolean(L, 0);
    }
    return 1;
}

static int open_module(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"at", l_at}, {"every", l_every}, {"pending", l_pending}, {"running", l_running}, {NULL, NULL},
    };
    lua_newtable(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    luaL_setfuncs(L, funcs, 1);
    return 1;
}

void timer_api_preload(lua_State *L, const config_t *cfg, worker_t *w)
{
    if (w->timers == NULL) {
        w->timers = util_malloc(sizeof(*w->timers));
        memset(w->timers, 0, sizeof(*w->timers));
        w->timers->max = (uint64_t)cfg->timers_max;
        w->timers->metrics = &w->metrics;
    }
    struct timer_ctx *c = lua_newuserdatauv(L, sizeof(*c), 0);
    memset(c, 0, sizeof(*c));
    c->w = w;
    c->host = lua_host_of(L);
    c->tw = w->timers;
    c->fd = -1;
    h2o_linklist_init_anchor(&c->pending);
    h2o_linklist_init_anchor(&c->firing);
    lua_newtable(L);
    c->timers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "h2lua.timer_ctx"); /* lives as long as the state */

    luaL_newmetatable(L, TIMER_MT);
    lua_newtable(L);
    lua_pushcfunction(L, l_cancel);
    lua_setfield(L, -2, "cancel");
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "h2lua.timer");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    lua_host_hooks_t hooks = {on_start, on_retire, c};
    lua_host_add_hooks(L, &hooks);

    lua_pushlightuserdata(L, c);
    lua_pushcclosure(L, open_module, 1);
    lua_setfield(L, -2, "h2lua.timer");
}

void timer_api_worker_free(worker_t *w)
{
    free(w->timers);
    w->timers = NULL;
}
