#include "stream.h"

#include "lua_compat.h"
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "worker.h"

#define STREAM_MT "h2lua.Stream"
/*
 * A sleep waits in slices on timeouts of fixed lengths, the longest that fits the time left, so that
 * it looks at the client and the drain at least every 100 ms and ends within a millisecond. The
 * timeouts belong to the worker thread's loop and live as long as it: libh2o's loop cannot have a
 * timeout disposed while it runs the timeouts, which is where a stream ends.
 */
static const uint64_t slice_lengths[] = {100, 50, 20, 10, 5, 2, 1};
#define NSLICES (sizeof(slice_lengths) / sizeof(slice_lengths[0]))
static _Thread_local h2o_timeout_t slices[NSLICES];
static _Thread_local h2o_loop_t *slices_loop; /* the loop the slices were made for */

enum { OWN_LUA = 1, OWN_H2O = 2, OWN_SEND = 4 }; /* OWN_SEND: inside h2o_send, which may dispose */
enum { WAIT_NONE, WAIT_FLUSH, WAIT_SLEEP };

/* The Lua object `out`: a full userdata pointing at its stream until the Lua side is over. */
struct stream_box {
    stream_t *st;
};

/* Lives in the request's pool; its dispose tells the stream libh2o is done with the request. */
struct stream_link {
    stream_t *st;
};

struct stream {
    h2o_generator_t gen;
    void *owner; /* the request running the Lua side, NULL once that side is over */
    const stream_owner_ops_t *ops;
    lua_State *co;  /* the owner's coroutine */
    h2o_req_t *req; /* NULL once the client has gone (stop) or the request was disposed */
    worker_t *w;
    struct stream_box *box; /* the Lua object, NULL once collected or the Lua side is over */
    int owners;             /* OWN_LUA | OWN_H2O: freed when both are gone */
    char *buf;              /* written, not yet sent (malloc'd) */
    size_t len, cap;
    char *inflight;          /* handed to h2o_send: freed at proceed, or when the request is disposed */
    int sending;             /* an IN_PROGRESS chunk awaits proceed */
    int in_send;             /* inside h2o_send (proceed may be called from there) */
    int ended;               /* the final (or error) state was sent, or the client has gone */
    int end_pending, end_ok; /* the Lua side ended while a chunk was in flight */
    int waiting;             /* WAIT_*: the coroutine is suspended in flush or sleep */
    uint64_t deadline;       /* of a sleep, loop time in ms */
    h2o_timeout_entry_t slice_entry;
    h2o_timeout_entry_t wake_entry; /* on the context's zero timeout: the client has gone */
};

static h2o_loop_t *loop_of(stream_t *st)
{
    return st->w->loop;
}

/* Why the stream is over for the handler, or NULL while it is open. */
static const char *reason(stream_t *st)
{
    if (st->req == NULL || st->ended)
        return "closed";
    if (st->w->shutting_down)
        return "shutdown";
    return NULL;
}

static void maybe_free(stream_t *st)
{
    if (st->owners != 0)
        return;
    free(st->buf);
    free(st->inflight);
    free(st);
}

static void timers_stop(stream_t *st)
{
    if (h2o_timeout_is_linked(&st->slice_entry))
        h2o_timeout_unlink(&st->slice_entry);
    if (h2o_timeout_is_linked(&st->wake_entry))
        h2o_timeout_unlink(&st->wake_entry);
}

/* Resumes the suspended coroutine: true, or nil and the reason. st may be freed on return. */
static void resume(stream_t *st, int ok)
{
    st->waiting = WAIT_NONE;
    if (h2o_timeout_is_linked(&st->slice_entry))
        h2o_timeout_unlink(&st->slice_entry);
    if (h2o_timeout_is_linked(&st->wake_entry))
        h2o_timeout_unlink(&st->wake_entry);
    lua_State *co = st->co;
    int n = 1;
    if (ok) {
        lua_pushboolean(co, 1);
    } else {
        const char *why = reason(st);
        lua_pushnil(co);
        lua_pushstring(co, why != NULL ? why : "closed");
        n = 2;
    }
    st->ops->resume(st->owner, n);
}

/* Hands the buffer to libh2o in the given state. The caller checked that the client is there. */
static void do_send(stream_t *st, h2o_send_state_t state)
{
    h2o_iovec_t iov = h2o_iovec_init(st->buf, st->len);
    free(st->inflight);
    st->inflight = st->buf;
    st->buf = NULL;
    st->len = st->cap = 0;
    if (state != H2O_SEND_STATE_IN_PROGRESS)
        st->ended = 1;
    else
        st->sending = 1;
    st->in_send = 1;
    st->owners |= OWN_SEND;
    h2o_send(st->req, &iov, iov.len != 0 ? 1 : 0, state);
    st->in_send = 0;
    st->owners &= ~OWN_SEND;
}

static void send_end(stream_t *st, int ok)
{
    if (!ok) {
        free(st->buf);
        st->buf = NULL;
        st->len = st->cap = 0;
    }
    do_send(st, ok ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_ERROR);
}

static void arm_sleep(stream_t *st)
{
    uint64_t now = h2o_now(loop_of(st));
    uint64_t ms = st->deadline > now ? st->deadline - now : 0;
    if (ms == 0) {
        h2o_timeout_link(loop_of(st), &st->w->ctx.zero_timeout, &st->wake_entry);
        return;
    }
    if (slices_loop != loop_of(st)) {
        slices_loop = loop_of(st);
        for (size_t i = 0; i < NSLICES; ++i)
            h2o_timeout_init(slices_loop, &slices[i], slice_lengths[i]);
    }
    size_t i = 0;
    while (slice_lengths[i] > ms)
        ++i;
    h2o_timeout_link(loop_of(st), &slices[i], &st->slice_entry);
}

/* A sleep's slice ended, or the zero timeout fired (the client has gone, or a sleep of 0). */
static void check_waiter(stream_t *st)
{
    if (st->waiting == WAIT_FLUSH) {
        if (st->req == NULL || st->ended)
            resume(st, 0);
        return;
    }
    if (st->waiting != WAIT_SLEEP)
        return;
    if (reason(st) != NULL)
        resume(st, 0);
    else if (h2o_now(loop_of(st)) >= st->deadline)
        resume(st, 1);
    else
        arm_sleep(st);
}

static void on_slice(h2o_timeout_entry_t *entry)
{
    check_waiter(H2O_STRUCT_FROM_MEMBER(stream_t, slice_entry, entry));
}

static void on_wake(h2o_timeout_entry_t *entry)
{
    check_waiter(H2O_STRUCT_FROM_MEMBER(stream_t, wake_entry, entry));
}

/* The client has gone: no h2o_send any more; a waiting coroutine learns it from the loop. */
static void client_gone(stream_t *st)
{
    st->req = NULL;
    if (st->waiting != WAIT_NONE && !h2o_timeout_is_linked(&st->wake_entry)) {
        if (h2o_timeout_is_linked(&st->slice_entry))
            h2o_timeout_unlink(&st->slice_entry);
        h2o_timeout_link(loop_of(st), &st->w->ctx.zero_timeout, &st->wake_entry);
    }
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    stream_t *st = H2O_STRUCT_FROM_MEMBER(stream_t, gen, gen);
    free(st->inflight);
    st->inflight = NULL;
    st->sending = 0;
    if (st->in_send || st->req == NULL)
        return;
    if (st->end_pending) {
        st->end_pending = 0;
        send_end(st, st->end_ok);
        maybe_free(st); /* the request may have been disposed inside h2o_send */
        return;
    }
    if (st->waiting == WAIT_FLUSH)
        resume(st, 1);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    client_gone(H2O_STRUCT_FROM_MEMBER(stream_t, gen, gen));
}

static void on_link_dispose(void *p)
{
    struct stream_link *link = p;
    stream_t *st = link->st;
    client_gone(st);
    st->owners &= ~OWN_H2O;
    maybe_free(st);
}

/* ---- the Lua object ---- */

/* The stream of the object at index 1, raising when the Lua side is over. */
static stream_t *check_stream(lua_State *L)
{
    struct stream_box *box = luaL_checkudata(L, 1, STREAM_MT);
    if (box->st == NULL)
        luaL_error(L, "the stream is over (its function returned)");
    return box->st;
}

/* The stream of the object at index 1 for a call that suspends: only from its own request. */
static stream_t *check_own_stream(lua_State *L, const char *what)
{
    stream_t *st = check_stream(L);
    if (st->owner == NULL || L != st->co)
        luaL_error(L, "%s must be called from the stream's own function", what);
    lua_compat_check_yieldable(L, what); /* before anything starts: it yields */
    return st;
}

static int push_reason(lua_State *L, const char *why)
{
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
}

static void append(stream_t *st, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (st->len + n > st->cap) {
        size_t cap = st->cap != 0 ? st->cap : 256;
        while (cap < st->len + n)
            cap *= 2;
        st->buf = util_realloc(st->buf, cap);
        st->cap = cap;
    }
    memcpy(st->buf + st->len, s, n);
    st->len += n;
}

static int l_write(lua_State *L)
{
    stream_t *st = check_stream(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    if (st->req == NULL || st->ended)
        return push_reason(L, "closed");
    append(st, s, n);
    lua_pushboolean(L, 1);
    return 1;
}

static int flush_k(lua_State *L, stream_t *st)
{
    if (st->req == NULL || st->ended)
        return push_reason(L, "closed");
    if (st->len == 0 && !st->sending) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (!st->sending)
        do_send(st, H2O_SEND_STATE_IN_PROGRESS);
    if (!st->sending && st->req != NULL) { /* libh2o took it at once */
        lua_pushboolean(L, 1);
        return 1;
    }
    if (st->req == NULL)
        return push_reason(L, "closed");
    st->waiting = WAIT_FLUSH;
    st->ops->suspend(st->owner);
    return lua_yield(L, 0);
}

static int l_flush(lua_State *L)
{
    return flush_k(L, check_own_stream(L, "out:flush"));
}

static int l_send(lua_State *L)
{
    stream_t *st = check_own_stream(L, "out:send");
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    if (st->req == NULL || st->ended)
        return push_reason(L, "closed");
    append(st, s, n);
    return flush_k(L, st);
}

static int l_sleep(lua_State *L)
{
    stream_t *st = check_own_stream(L, "out:sleep");
    lua_Number sec = luaL_checknumber(L, 2);
    const char *why = reason(st);
    if (why != NULL)
        return push_reason(L, why);
    if (!(sec > 0))
        sec = 0;
    if (sec > 86400)
        sec = 86400;
    st->deadline = h2o_now(loop_of(st)) + (uint64_t)(sec * 1000);
    st->waiting = WAIT_SLEEP;
    arm_sleep(st);
    st->ops->suspend(st->owner);
    return lua_yield(L, 0);
}

static int l_closed(lua_State *L)
{
    const char *why = reason(check_stream(L));
    if (why == NULL)
        lua_pushnil(L);
    else
        lua_pushstring(L, why);
    return 1;
}

static int l_gc(lua_State *L)
{
    struct stream_box *box = lua_touserdata(L, 1);
    if (box->st != NULL)
        box->st->box = NULL;
    box->st = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    struct stream_box *box = luaL_checkudata(L, 1, STREAM_MT);
    const char *why = box->st != NULL ? reason(box->st) : "over";
    lua_pushfstring(L, "h2lua.Stream (%s)", why != NULL ? why : "open");
    return 1;
}

void stream_lua_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"write", l_write}, {"flush", l_flush}, {"send", l_send}, {"sleep", l_sleep}, {"closed", l_closed}, {NULL, NULL},
    };
    luaL_newmetatable(L, STREAM_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}

/* ---- the core's side ---- */

stream_t *stream_start(void *owner, const stream_owner_ops_t *ops, lua_State *co, worker_t *w, h2o_req_t *req, lua_State *L,
                       int is_head)
{
    stream_t *st = util_malloc(sizeof(*st));
    memset(st, 0, sizeof(*st));
    st->owner = owner;
    st->ops = ops;
    st->co = co;
    st->req = req;
    st->w = w;
    st->owners = OWN_LUA | OWN_H2O;
    st->gen.proceed = on_proceed;
    st->gen.stop = on_stop;
    st->slice_entry.cb = on_slice;
    st->wake_entry.cb = on_wake;
    struct stream_link *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_link_dispose);
    link->st = st;

    struct stream_box *box = lua_newuserdatauv(L, sizeof(*box), 0);
    box->st = st;
    st->box = box;
    luaL_setmetatable(L, STREAM_MT);

    h2o_start_response(req, &st->gen);
    if (is_head)
        send_end(st, 1);
    return st;
}

void stream_end(stream_t *st, int ok)
{
    timers_stop(st);
    st->waiting = WAIT_NONE;
    st->owner = NULL;
    if (st->box != NULL)
        st->box->st = NULL;
    st->box = NULL;
    if (st->req != NULL && !st->ended) {
        if (st->sending) {
            st->end_pending = 1;
            st->end_ok = ok;
        } else {
            send_end(st, ok);
        }
    }
    st->owners &= ~OWN_LUA;
    maybe_free(st);
}
