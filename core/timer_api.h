/*
 * timer_api — the module `h2lua.timer` (require "h2lua.timer"): application functions run later,
 * once or every interval, on the worker that asked, each run in a task of the Lua host (its own
 * coroutine, no HTTP request, the whole yielding API: database, sleep, HTTP client).
 *
 *   timer.at(delay, fn, ...)       -> handle | nil, message: fn(...) once, delay seconds from now
 *   timer.every(interval, fn, ...) -> handle | nil, message: fn(...) every interval seconds; the
 *                                     next run is due `interval` after the previous one ended (a
 *                                     run never overlaps the last), whatever it returned or raised
 *   handle:cancel()                -> true when that stopped it (it was pending, or an `every`),
 *                                     false when it had already run, was cancelled or stopped
 *   timer.pending()                -> timers of this worker waiting for their time
 *   timer.running()                -> timers of this worker whose function is running
 *
 * delay: a finite number of seconds from 0 to 1e9; interval: the same, above 0 (at least 1 ms is
 * waited). A bad argument raises; being past the bound returns nil, "too many pending timers"
 * (TIMERS_MAX timers per worker, pending or running), and a state that stopped taking work
 * (reloaded, or SIGTERM) returns nil, "timers are stopped: ...". A version that starts while the
 * process is out of file descriptors (each version takes one timerfd per worker) runs without
 * timers: one error line, its pending ones dropped, and nil, "timers are unavailable: ..." after.
 * Timers made while app.lua loads wait: their delay counts from when the loaded version starts
 * serving on its worker. While a database is configured and its migrations are not applied yet, no
 * timer runs (they are due and wait, so that start-up work can use the database).
 * An error in fn (or an interruption at LUA_TIMEOUT) is one log line "timer error" with the worker,
 * the function's source:line, the error and its traceback; an `every` runs again after it.
 * Reload: the old version's pending timers are dropped, its running ones finish (and do not run
 * again); the new version's app.lua makes its own. SIGTERM: pending timers are dropped, running
 * ones get the drain (DRAIN_TIMEOUT) as requests do.
 *
 * Per-worker state (struct timer_worker) holds the counts and the bound, published to the
 * worker's metrics (metrics_publish_timers: /metrics) on every change; a state's timers live in
 * that state (a userdata each, the handle), so that closing the state gives everything back.
 */
#ifndef H2LUA_TIMER_API_H
#define H2LUA_TIMER_API_H

#include <stdint.h>

#include "lua_compat.h"

struct config;
struct worker;

/* A lua_host_preload_fn: registers package.preload["h2lua.timer"] (the preload table is at the
 * top of L's stack) and the state's hooks. Can't fail (OOM aborts). */
void timer_api_preload(lua_State *L, const struct config *cfg, struct worker *w);

/* Frees the worker's timer counts (after its last state closed, at the worker's end). */
void timer_api_worker_free(struct worker *w);

#endif
