/*
 * lua_host — one Lua 5.4 state per worker thread, running the application in scripts/.
 *
 * THE CONTRACT BETWEEN THE CORE AND THE LUA APPLICATION
 *
 * Loading. At start (and on reload) the worker creates a fresh lua_State, opens the standard
 * libraries, sets package.path to "<SCRIPTS_DIR>/?.lua;<SCRIPTS_DIR>/?/init.lua;" followed by the
 * default path (package.cpath keeps its default, where Debian's cjson lives), registers the module
 * `h2lua` (require "h2lua") and runs <SCRIPTS_DIR>/app.lua. app.lua must return a function
 * `handle(req) -> res`. Templates are compiled by the Lua side while app.lua loads (scripts/lib/view),
 * so a broken template fails the load.
 *
 * A request. Each request runs `handle(req)` in a fresh coroutine. A C function of the core may
 * yield that coroutine (the database calls do) and the core resumes it from an event-loop callback;
 * yielding from Lua code itself (coroutine.yield outside a coroutine the app made) is an error.
 * A yielding function of the core (db.*, tx:*, h2lua.sleep, out:flush/send/sleep) raises "... cannot
 * be called here" where that coroutine cannot yield (inside string.gsub or table.sort callbacks,
 * metamethods called by C functions such as tostring, message handlers, __gc) and inside a
 * coroutine the application made; metamethods run by Lua code itself yield fine on both VMs.
 * coroutine.resume/coroutine.close refuse a request's coroutine (raise).
 *
 * A task. A module of the core that runs application code of its own (h2lua.timer) runs it as a
 * task: a coroutine of the state with no HTTP request at all (lua_host_task_new). Everything said
 * above of a request's coroutine holds for a task's — the same yielding functions work in it with
 * the same errors where it cannot yield, the same LUA_MEMORY_MAX and LUA_TIMEOUT bounds (the
 * watchdog names it by its kind and function instead of method and path), coroutine.resume refuses
 * it — except that nothing is sent: what it returns is dropped, and an error is one log line
 * "<kind> error" {"worker", "task_id", "function": source:line, "error", "traceback"}. A state that
 * is replaced by a reload or stops at SIGTERM waits for its tasks as for its requests (reload: it
 * closes when the last of either ends; SIGTERM: they get the drain, DRAIN_TIMEOUT).
 *
 * WHAT APPLICATION CODE CAN DO TO THE SERVER: no Lua code the application can contain crashes,
 * hangs or corrupts the server; the worst it gets is a 500 for that request and an error line
 * naming the request (request_id, method, path) and the Lua error (for a task: the error line).
 * In particular:
 *   - any error value (nil, a table whose __tostring raises or returns no string, ...), a stack
 *     overflow (Lua or C), and a response table that raises when read (metamethods) or holds odd
 *     types are turned into text and read under lua_pcall: 500 and a log line, never a panic;
 *   - memory: while a request's Lua runs, the state may not grow past LUA_MEMORY_MAX; an
 *     allocation beyond it raises "not enough memory" in that request (500) and the state is
 *     collected. The core's own allocations outside the handler are not limited;
 *   - time: a worker that runs Lua for LUA_TIMEOUT without returning to the loop is reported by
 *     lua_watchdog (a log line; /healthz answers 503 on every worker from then on); its Lua is
 *     interrupted by a hook where the VM checks hooks (Lua 5.4 always, LuaJIT not in compiled
 *     loops), and a SIGTERM then ends the process without waiting for a worker still stuck.
 * Outside this promise: the `debug` library and LuaJIT's `ffi` (they can do anything). LuaJIT's
 * newproxy is not offered (lua_compat_openlibs), and calls nested through its C functions are
 * bounded there (lua_compat_cstack_mark) as 5.4 bounds them itself.
 *
 *   req.method       "GET", "POST", ... (HEAD is passed as "HEAD"; the router answers it from GET)
 *   req.path         the path, percent-decoded, without the query; valid UTF-8 (else the core
 *                    answered 400 before Lua ran)
 *   req.raw_path     the path as sent, with the query
 *   req.query_string the raw query without '?', "" when none
 *   req.headers      table, lower-case name -> value; repeated headers joined by ", "
 *                    ("cookie" joined by "; ")
 *   req.body         the request body as a string ("" when none); at most MAX_BODY bytes
 *   req.remote_addr  the peer address as text
 *   req.client_addr  the client's address as text: the peer's, or, when the peer is one of
 *                    TRUSTED_PROXIES, the rightmost untrusted address of X-Forwarded-For
 *                    (client_addr.h); IPv4-mapped IPv6 as IPv4; "" when the peer has none
 *   req.id           a request id (16 hex digits), also in the access log and X-Request-Id
 *   req.worker       the worker number, 0-based
 *   req.scheme       "http" or "https" (of the connection; the app may honour X-Forwarded-Proto)
 *   req.version      "HTTP/1.0", "HTTP/1.1" or "HTTP/2"
 *   The table holds method and path when handle(req) starts; each other field is made on its first
 *   access (lua_host_req_index) and then kept in the table, so pairs(req) lists only those read so
 *   far. They are made while their request runs (a field first read from another request's code,
 *   or after the request ended, is nil). A client gone early leaves them readable: the core keeps a
 *   copy of its request until the handler ends.
 *   lazily, decoded on first access and cached in the table:
 *   req.query        table name -> value from query_string
 *   req.form         table name -> value from an application/x-www-form-urlencoded or a
 *                    multipart/form-data body (an empty table for any other content type)
 *   req.files        the files of a multipart/form-data body (core/multipart.h): files[name] is
 *                    the first file sent with that name, files[1..n] all of them in order; each
 *                    {name, filename (as sent), safe_filename, content_type, size, data}; a file
 *                    input left empty is not there. An empty table for any other body.
 *   req.cookies      table name -> value from the Cookie header
 *   A malformed query/form (bad percent-encoding, invalid UTF-8, a repeated field, more than
 *   MAX_FORM_FIELDS fields or parts, a malformed multipart body) raises h2lua.http_error(400,
 *   message) on access; a file over MAX_UPLOAD raises h2lua.http_error(413, message). Either way
 *   nothing of that body is kept.
 *
 * The response: a table
 *   { status = 200, headers = { ["content-type"] = "...", ["set-cookie"] = { "a=1", "b=2" } },
 *     body = "..." }
 *   status defaults to 200, body to "". A header value that is a table sends one header line per
 *   element. Header names are sent in lower case. Without content-type the core sends
 *   "text/html; charset=utf-8". The core adds the security headers, x-request-id and, for HEAD,
 *   drops the body (content-length stays that of the body).
 *   Anything else returned, or an error escaping handle(), gives a plain 500 and a log line; the
 *   application is expected to catch its own errors and render its own error pages.
 *
 * The module `h2lua` (C functions; none of them blocks):
 *   h2lua.config              read-only copy of the configuration: app_env, scripts_dir, views_dir,
 *                             static_dir, port, workers, max_body, max_form_fields, max_upload,
 *                             version, write_limit and write_limit_window (WRITE_LIMIT; 0 and
 *                             0: off)
 *                             (secret_key is not in it; see hmac_sha256)
 *   h2lua.worker              this worker's number
 *   h2lua.http_error(status, message)   raises an error object {status=, message=} (a table with
 *                             metatable h2lua.HttpError) that the app maps to that status page
 *   h2lua.is_http_error(v)    true when v was made by http_error
 *   h2lua.parse_form(s)       -> table | nil, message   (the decoder behind req.query/req.form)
 *   h2lua.parse_cookies(s)    -> table                  (malformed pairs are skipped)
 *   h2lua.utf8_valid(s)       -> boolean
 *   h2lua.escape_html(v)      -> "" for nil, else tostring(v) with & < > " ' escaped (templates)
 *   h2lua.is_https(req)       -> boolean: req.scheme is "https", or the first element of its
 *                             X-Forwarded-Proto is (the one rule, form_is_https)
 *   h2lua.status_text         table status -> reason phrase (the core's, core/http_status.c)
 *   h2lua.concat(t, n)        -> t[1] .. t[n] joined (strings or numbers), through a buffer kept
 *                             by the state between calls (templates)
 *   h2lua.base64url_encode(s) -> s in base64url (RFC 4648 section 5) without padding
 *   h2lua.base64url_decode(s) -> the bytes, or nil for anything base64url_encode does not make
 *   h2lua.hmac_sha256(data)   -> 64 hex digits: HMAC-SHA256 keyed with SECRET_KEY
 *   h2lua.random_hex(n)       -> 2n hex digits from the OS CSPRNG
 *   h2lua.equal(a, b)         constant-time string comparison
 *   h2lua.now()               seconds since the epoch, as a float (the loop's cached clock)
 *   h2lua.app_state()         -> version, load_error, boot: this worker's reload generation of the
 *                             version that serves (0 at start), why the last reload failed (or nil),
 *                             and 16 hex digits naming this run of the process (another after a restart)
 *   h2lua.log_error(message, fields)    one JSON line on stderr: {"time","level":"error",
 *                             "worker","msg", ...fields (string/number/boolean values)}
 *
 * Other modules (require "h2lua.db", "h2lua.static", "h2lua.log", "h2lua.metrics", "h2lua.timer")
 * are each described in their binding's header (db_api.h, static_api.h, log_api.h, metrics_api.h,
 * timer_api.h: functions run later, in tasks).
 */
#ifndef H2LUA_LUA_HOST_H
#define H2LUA_LUA_HOST_H

#include <h2o.h>
#include "lua_compat.h"

struct config;
struct worker;

/* A loaded application: a lua_State and a reference to its handle() function. */
typedef struct lua_host {
    lua_State *L;
    int handle_ref;    /* registry reference to handle() */
    int req_mt_ref;    /* registry reference to the req metatable */
    unsigned inflight; /* requests and tasks running on this state */
} lua_host_t;

/* Registry key of the req metatable (created by lua_host_open, empty; a module may fill it). */
#define LUA_HOST_REQUEST_MT "h2lua.request"
/* Registry key of the metatable of HTTP error objects (see lua_host_raise_http_error). */
#define LUA_HOST_HTTP_ERROR_MT "h2lua.HttpError"

/*
 * A module of the core the application may require: registers itself in the package.preload
 * table at the top of L's stack and leaves the stack as it found it. Can't fail (OOM aborts).
 */
typedef void (*lua_host_preload_fn)(lua_State *L, const struct config *cfg, struct worker *w);

/*
 * Creates a state, registers the preloads (a NULL-terminated list, in order; the host knows none
 * of them) and loads the application into it. Returns 0, or a negative code with a message for
 * people (file and line where Lua gives them) in errbuf. On failure *out is untouched and nothing
 * leaks.
 */
int lua_host_open(lua_host_t **out, const struct config *cfg, struct worker *worker, const lua_host_preload_fn *preloads,
                  char *errbuf, size_t errlen);

/*
 * Raises the HTTP error {status=, message=} (metatable LUA_HOST_HTTP_ERROR_MT) that the
 * application maps to that status page. Does not return.
 */
int lua_host_raise_http_error(lua_State *L, int status, const char *message);

/*
 * Creates the metatable `name` of a userdata type a module makes, unless L has it already: __index
 * is a new table of `methods`, __gc and __tostring are gc and tostring where not NULL, and
 * __metatable is `name`, so that Lua code can neither read nor replace the metatable. Leaves the
 * stack as it found it. Can't fail (out of memory raises, as lua_* do).
 */
void lua_host_new_type(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc, lua_CFunction tostring);

/* Closes the state; the caller guarantees no request or task is running on it. */
void lua_host_close(lua_host_t *host);

/*
 * The state of L (L is the state or any of its coroutines; valid from the preloads on, while the
 * state is open). Can't fail.
 */
lua_host_t *lua_host_of(lua_State *L);

/*
 * A state's life, for the modules that run work of their own on it (h2lua.timer). A module adds
 * its hooks from its preload (lua_host_add_hooks; at most 4 modules; `ud` is the module's, alive as
 * long as the state). Then:
 *   start(ud)  once, on the worker's thread with its loop running or about to run, when the state
 *              serves: at the worker's start for the state loaded at process start (which is loaded
 *              before the loop exists), after the swap for a reload's. Work the application asked
 *              for while app.lua loaded may begin now. A state whose load failed never starts.
 *   retire(ud) once, on the worker's thread, when the state will take no new work: a reload
 *              replaced it, or SIGTERM began the drain. The module stops what is pending; what is
 *              running (tasks) finishes. Never called for a state that is closed without retiring
 *              (a failed load, the worker's end after the drain).
 * A module's state is given back by a __gc of its own (lua_host_close runs it); neither hook is
 * called after the state closed. lua_host_start and lua_host_retire are called by the worker
 * (server.c) and by reload.c; each is a no-op the second time, and start after retire is too.
 */
typedef struct lua_host_hooks {
    void (*start)(void *ud);
    void (*retire)(void *ud);
    void *ud;
} lua_host_hooks_t;
void lua_host_add_hooks(lua_State *L, const lua_host_hooks_t *hooks);
void lua_host_start(lua_host_t *host);
void lua_host_retire(lua_host_t *host);

/* A request, or a task (see "A task" above), running in a coroutine. */
typedef struct lua_req lua_req_t;

/*
 * The request or task whose coroutine is L, for a C function named `what` ("db.query") that is
 * about to start something and yield L. Raises a Lua error (and starts nothing) when L may not
 * yield now: neither a request nor a task is running (app.lua loading, the core reading a
 * response), L is a coroutine the application made, or the code cannot yield
 * (lua_compat_check_yieldable). Call it first. A capability that needs an HTTP request (a response,
 * a cookie) checks lua_req_h2o (NULL for a task) or lua_req_is_task and raises its own error.
 */
lua_req_t *lua_host_req_yieldable(lua_State *L, const char *what);

/* 1 for a task (it never has an HTTP request), 0 for a request. */
int lua_req_is_task(lua_req_t *lr);

/*
 * A task: called when a coroutine of lr ends (returned: failed 0; raised, interrupted or yielded
 * with coroutine.yield: failed 1, the error already logged), once, before lr is freed and before
 * the state may close (a retired state closes when its last request or task ends).
 */
typedef void (*lua_host_task_done_fn)(void *ud, int failed);

/*
 * Creates a task on host (the worker's loop must run: call it from an event-loop callback, never
 * from Lua): a coroutine with an empty stack, counted in the worker's tasks_running and in
 * host->inflight until it ends. `kind` (a static string, "timer") and `where` (copied, truncated to
 * 255 bytes: the function's source:line) name it in log lines. The caller pushes the function and
 * its nargs arguments on lua_req_coroutine(lr) and starts it with lua_host_resume(lr, nargs); from
 * then on it runs under the yield protocol below like a request. Can't fail (OOM aborts).
 */
lua_req_t *lua_host_task_new(lua_host_t *host, const char *kind, const char *where, lua_host_task_done_fn done, void *ud);

/*
 * Counts (delta +1/-1) objects of the request that hold something only their __gc gives back when
 * the application drops them (an open transaction holds a connection). A request that ends with
 * a count above 0 runs a full collection, so that what it dropped is given back at once.
 */
void lua_req_hold(lua_req_t *lr, int delta);

/*
 * The id (16 hex digits) of the request whose coroutine this thread is running — code of its
 * handler, and whatever runs meanwhile (callbacks, coroutines the application resumes from it) —
 * or NULL (app.lua loading, no request running, a task running: it has no request). Can't fail.
 */
const char *lua_host_running_request_id(void);

/* The worker a request or task runs on. */
struct worker *lua_req_worker(lua_req_t *lr);

/*
 * The yield protocol for C functions: call lua_host_suspend(lr) and `return lua_yield(L, 0)`;
 * later, from an event-loop callback, push n values on lua_req_coroutine(lr) and call
 * lua_host_resume(lr, n): the values become the results of the C function. The request may have
 * been abandoned by its client meanwhile; the coroutine still runs to its end (so that a
 * transaction finishes) and its response is dropped. The same for a task. lr may be freed by
 * lua_host_resume (the coroutine ended): do not touch it after.
 */
void lua_host_suspend(lua_req_t *lr);
lua_State *lua_req_coroutine(lua_req_t *lr);
void lua_host_resume(lua_req_t *lr, int nargs);

/*
 * The __index of the req metatable for the core's own fields (raw_path, query_string, headers,
 * body, remote_addr, id, worker, scheme, version): with the table at 1 and the key at 2, pushes
 * the field, stores it in the table (rawset) and returns 1; returns 0 (nothing pushed) for any other
 * key, or when the table is not the req of the request running now. A module that sets the
 * metatable's __index calls it first. Can't fail but for memory.
 */
int lua_host_req_index(lua_State *L);

/* The h2o request, or NULL once its client is gone, and always NULL for a task. */
h2o_req_t *lua_req_h2o(lua_req_t *lr);

/* A Set-Cookie value the core adds to the response (the core's own cookies); copied; last wins. */
void lua_req_set_cookie(lua_req_t *lr, const char *cookie);

/*
 * Registers the h2o handler that runs the application for every path under `pathconf`.
 * The handler reaches the worker (and its lua_host) through the h2o context.
 */
void lua_host_register(h2o_pathconf_t *pathconf);

#endif
