#include "lua_watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define TICK_MS 100
#define RESIGNAL_MS 1000 /* a stuck worker is signalled again (its app may have caught the error) */

struct lua_watch {
    int worker_id;
    pthread_t thread;
    atomic_int attached;
    _Atomic uint64_t since_ms; /* monotonic ms when the thread entered Lua; 0: not in Lua */
    _Atomic(lua_State *) L;    /* the Lua thread it runs */
    pthread_mutex_t mu;        /* guards the request fields below */
    char request_id[17], method[16], path[256];
    /* the watchdog thread's own */
    uint64_t logged_since, signalled_ms;
};

static atomic_int tripped;
static atomic_int timeout_ms = 10000; /* read by the hook on the workers' threads */
static atomic_int stopping;
static pthread_t watchdog_thread;
static int started;
static lua_watch_t *const *watched;
static int nwatched;
static _Thread_local lua_watch_t *self; /* the worker thread's own watch (its signal handler reads it) */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

lua_watch_t *lua_watch_create(int worker_id)
{
    lua_watch_t *w = util_malloc(sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->worker_id = worker_id;
    atomic_init(&w->attached, 0);
    atomic_init(&w->since_ms, 0);
    atomic_init(&w->L, NULL);
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

int lua_watch_stuck(lua_watch_t *w, int limit_ms)
{
    uint64_t since = atomic_load(&w->since_ms);
    return since != 0 && now_ms() - since >= (uint64_t)limit_ms;
}

/* The count hook set by the signal handler: runs on the worker's thread, in Lua. */
static void on_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    int limit = atomic_load(&timeout_ms);
    if (self == NULL || !lua_watch_stuck(self, limit)) {
        lua_sethook(L, NULL, 0, 0); /* a later request: not this one's business */
        return;
    }
    luaL_error(L, "interrupted: this request or timer ran Lua for longer than LUA_TIMEOUT (%d s)", limit / 1000);
}

/* LUA_WATCHDOG_SIGNAL on a worker's thread: only atomics and lua_sethook (as lua.c's laction). */
static void on_signal(int sig)
{
    (void)sig;
    if (self == NULL || !lua_watch_stuck(self, atomic_load(&timeout_ms)))
        return;
    lua_State *L = atomic_load(&self->L);
    if (L != NULL)
        lua_sethook(L, on_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(LUA_WATCHDOG_SIGNAL, &sa, NULL);
}

void lua_watch_attach(lua_watch_t *w)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    self = w;
    w->thread = pthread_self();
    atomic_store(&w->attached, 1);
    pthread_once(&once, install);
}

static void copy_text(char *dst, size_t cap, const char *s, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

void lua_watch_enter(lua_watch_t *w, lua_State *L, const char *request_id, const char *method, size_t method_len,
                     const char *path, size_t path_len)
{
    pthread_mutex_lock(&w->mu);
    copy_text(w->request_id, sizeof(w->request_id), request_id, 16);
    copy_text(w->method, sizeof(w->method), method, method_len);
    copy_text(w->path, sizeof(w->path), path, path_len);
    pthread_mutex_unlock(&w->mu);
    atomic_store(&w->L, L);
    atomic_store(&w->since_ms, now_ms());
}

void lua_watch_leave(lua_watch_t *w)
{
    atomic_store(&w->since_ms, 0);
    atomic_store(&w->L, NULL);
}

int lua_watchdog_tripped(void)
{
    return atomic_load(&tripped);
}

static void check(lua_watch_t *w, int limit, uint64_t now)
{
    uint64_t since = atomic_load(&w->since_ms);
    if (since == 0 || now - since < (uint64_t)limit)
        return;
    if (w->logged_since != since) {
        char id[17], method[16], path[256], secs[24];
        pthread_mutex_lock(&w->mu);
        memcpy(id, w->request_id, sizeof(id));
        memcpy(method, w->method, sizeof(method));
        memcpy(path, w->path, sizeof(path));
        pthread_mutex_unlock(&w->mu);
        if (atomic_load(&w->since_ms) != since)
            return; /* it left meanwhile: the fields may be another request's */
        w->logged_since = since;
        w->signalled_ms = 0;
        atomic_store(&tripped, 1);
        snprintf(secs, sizeof(secs), "%.1f", (double)(now - since) / 1000);
        const char *extra[] = {"request_id", id, "method", method, "path", path, "seconds", secs};
        log_event("error", w->worker_id, "handler stuck in Lua (LUA_TIMEOUT): /healthz answers 503 from now on", extra, 4);
    }
    if (atomic_load(&w->attached) && now - w->signalled_ms >= RESIGNAL_MS) {
        w->signalled_ms = now;
        pthread_kill(w->thread, LUA_WATCHDOG_SIGNAL);
    }
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    struct timespec tick = {0, TICK_MS * 1000000L};
    while (!atomic_load(&stopping)) {
        nanosleep(&tick, NULL);
        int limit = atomic_load(&timeout_ms);
        uint64_t now = now_ms();
        for (int i = 0; i < nwatched; ++i)
            check(watched[i], limit, now);
    }
    return NULL;
}

int lua_watchdog_start(lua_watch_t *const *watches, int n, int limit_ms)
{
    watched = watches;
    nwatched = n;
    atomic_store(&timeout_ms, limit_ms);
    /* the workers' threads take the signal; the watchdog's own never does */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, LUA_WATCHDOG_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int r = pthread_create(&watchdog_thread, NULL, watchdog_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        log_errorf(-1, "cannot start the Lua watchdog thread: %s", strerror(r));
        return -r;
    }
    started = 1;
    return 0;
}

void lua_watchdog_stop(void)
{
    if (!started)
        return;
    atomic_store(&stopping, 1);
    pthread_join(watchdog_thread, NULL);
    started = 0;
}
