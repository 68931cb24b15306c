/*
 * lua_watchdog — notices a worker whose thread has been running Lua for longer than LUA_TIMEOUT
 * (a handler that never returns to the event loop, e.g. `while true do end`).
 *
 * Each worker has a lua_watch_t, the one part of it other threads read: the worker marks when its
 * thread enters Lua (lua_watch_enter: resuming a request's or a task's (timer's) coroutine,
 * reading a result) and when it leaves (lua_watch_leave). One watchdog thread per process looks
 * at every watch every 100 ms.
 * A worker found in Lua for LUA_TIMEOUT or longer:
 *   - gets one error line {"msg":"handler stuck in Lua", "worker", "request_id", "method", "path",
 *     "seconds"} on stderr (a task: its id, its kind "timer" as method, its function as path);
 *   - trips the process: lua_watchdog_tripped() is true from then on, for the life of the process,
 *     so that /healthz answers 503 on every worker that can still answer and the load balancer
 *     replaces the task (a wedged worker holds its share of the connections forever);
 *   - is sent LUA_WATCHDOG_SIGNAL (again every second while it stays stuck), whose handler (on
 *     that worker's thread, as lua.c interrupts a script on SIGINT) sets a count hook on the Lua
 *     thread lua_watch_enter named; the hook raises "interrupted: ..." so that the handler fails
 *     with a 500 (a timer's run fails with one "timer error" line). Lua 5.4 checks hooks in
 *     every loop; LuaJIT does not in compiled code (a JIT-compiled `while true do end` goes
 *     on), 5.4's hooks are per coroutine (a loop inside a
 *     coroutine the application made is not reached), and a handler may catch the error and loop
 *     on: in those cases the health flag is what counts.
 * Shared data: the watches' fields are atomics or guarded by the watch's mutex; nothing else here
 * is shared.
 */
#ifndef H2LUA_LUA_WATCHDOG_H
#define H2LUA_LUA_WATCHDOG_H

#include <signal.h>
#include <stddef.h>

#include "lua_compat.h"

/* The signal the watchdog sends to a stuck worker's thread (not otherwise used by h2lua). */
#define LUA_WATCHDOG_SIGNAL SIGUSR2

typedef struct lua_watch lua_watch_t;

/* A watch for worker `worker_id`, not in Lua. Can't fail (OOM aborts). Freed by the process exit. */
lua_watch_t *lua_watch_create(int worker_id);

/*
 * Called on the worker's own thread (once, before it runs Lua): the thread the watchdog signals
 * and whose handler reaches this watch. Installs the signal handler (process-wide, idempotent).
 */
void lua_watch_attach(lua_watch_t *w);

/*
 * The worker's thread enters Lua: runs L (a request's coroutine, or the state while the core reads
 * a result) for the request `request_id` (16 hex digits), `method` and `path` (copied, truncated).
 * Can't fail.
 */
void lua_watch_enter(lua_watch_t *w, lua_State *L, const char *request_id, const char *method, size_t method_len,
                     const char *path, size_t path_len);

/* The thread left Lua (back to the event loop). Can't fail. */
void lua_watch_leave(lua_watch_t *w);

/* True when w's thread has been in Lua for timeout_ms or longer now (any thread may ask). */
int lua_watch_stuck(lua_watch_t *w, int timeout_ms);

/*
 * Starts the watchdog thread over the n watches with the bound timeout_ms. Returns 0, or a negative
 * errno when the thread cannot be created (then nothing is watched and a message is logged).
 */
int lua_watchdog_start(lua_watch_t *const *watches, int n, int timeout_ms);

/* Stops and joins the watchdog thread (a no-op when it did not start). */
void lua_watchdog_stop(void);

/* True once a worker has been found stuck (for the life of the process). Any thread. */
int lua_watchdog_tripped(void);

#endif
