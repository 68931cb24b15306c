#include "db_pool.h"

#include <arpa/inet.h>
#include <errmsg.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "db_session.h"
#include "db_tls.h"
#include "log.h"
#include "util.h"

/* While the server is down, a probe connect every PROBE_MIN_MS..PROBE_MAX_MS (jittered). */
#define PROBE_STEPS 4
#define PROBE_MIN_MS 10
#define PROBE_STEP_MS 10

enum conn_state {
    C_RESOLVING,  /* waiting for the resolver threads */
    C_CONNECTING, /* mysql_real_connect_start/cont */
    C_IDLE,       /* in pool->idle, socket watched: readable means the server closed it */
    C_CHECKING,   /* mysql_ping_start/cont, before the connection is trusted again */
    C_LEASED,     /* held by a caller, no statement running */
    C_SEND,       /* mysql_send_query_start/cont */
    C_READ,       /* mysql_read_query_result_start/cont */
    C_STORE,      /* mysql_store_result_start/cont */
    C_STMT_CLOSE, /* mysql_stmt_close_start/cont: the least recently used statement leaves the cache */
    C_PREPARE,    /* mysql_stmt_prepare_start/cont */
    C_EXECUTE,    /* mysql_stmt_execute_start/cont */
    C_STMT_STORE, /* mysql_stmt_store_result_start/cont */
};

/*
 * A statement of a connection's cache, keyed by its text: prepared (stmt set), or remembered as
 * one the server would not prepare (text set: the holder sends it as text).
 */
struct stmt_entry {
    h2o_linklist_t lru; /* in db_conn.stmts, the most recently used last */
    uint64_t hash;
    char *sql;
    size_t len;
    MYSQL_STMT *stmt;
    int text;
};

struct db_conn {
    db_pool_t *pool;
    enum conn_state state;
    int leased;   /* counted in pool->nin_use: held by a caller (also while reconnecting for a retry) */
    int retrying; /* reconnecting in place to run the statement again */
    int retried;  /* the statement has been run again once already */
    int broken;
    int in_tx;
    int session_changed; /* a statement changed the session: the server said so, or its text (db_session.h) */
    int write_armed;
    int wait_status;
    uint64_t checked_epoch; /* pool->epoch when this connection last proved alive */
    MYSQL *mysql;
    h2o_socket_t *sock; /* a dup of the connection's fd, watched by the loop */
    h2o_hostinfo_getaddr_req_t *getaddr;
    h2o_linklist_t idle_link;
    h2o_linklist_t all_link; /* in pool->conns, from conn_open to conn_close */
    h2o_timeout_entry_t timeout;
    h2o_timeout_entry_t defer; /* runs a step on the next loop turn, never inside the caller's call */
    db_query_cb qcb;
    void *qdata;
    db_stmt_kind_t kind;
    char *sql;
    size_t sql_len;
    h2o_linklist_t stmts;     /* the statement cache (struct stmt_entry), emptied with the session */
    unsigned nstmts;          /* entries in stmts */
    int prepared;             /* the running statement is run by db_conn_execute */
    MYSQL_BIND *params;       /* its parameters (the caller's, valid until its callback) */
    unsigned nparams;         /* how many */
    struct stmt_entry *entry; /* its entry while it is prepared or executed */
    MYSQL_STMT *closing;      /* the evicted statement being closed (C_STMT_CLOSE) */
    int closing_stale;        /* it was closed because its columns changed: 1 run again, -1 fail */
    MYSQL_STMT *stored;       /* a statement whose rows were handed to a callback: freed before the next use */
    MYSQL_RES *res;
    MYSQL *cret;
    int iret;
    my_bool bret;
    char addr[INET6_ADDRSTRLEN];
};

struct waiter {
    h2o_linklist_t link;
    db_pool_t *pool;
    db_acquire_cb cb;
    void *data;
    h2o_timeout_entry_t timeout;
};

/* Shared by the pools of every worker for one database: how many connects have succeeded. */
struct pool_shared {
    const config_db_t *db;
    _Atomic uint64_t connects;
};

struct db_pool {
    h2o_context_t *ctx;
    h2o_evloop_t *loop;
    int worker_id;
    const config_db_t *db;
    const config_t *cfg;
    const char *name;
    struct pool_shared *shared;
    h2o_linklist_t idle;
    h2o_linklist_t conns; /* every connection, whatever its state */
    h2o_linklist_t waiters;
    int closing; /* db_pool_close runs: no connection is opened any more */
    unsigned nconns, nconnecting, nwaiting, nin_use;
    h2o_timeout_t query_timeout, connect_timeout;
    h2o_timeout_t probe_timeouts[PROBE_STEPS];
    h2o_timeout_entry_t probe;
    uint32_t rng;
    int down;                    /* the last connect failed; acquiring fails at once until a probe connects */
    uint64_t down_since;         /* loop time of the first failed connect */
    uint64_t down_seen_connects; /* shared->connects when it went down: another worker's success lifts it */
    uint64_t epoch;              /* bumped each time a connection is found dead */
    char errmsg[600];
    uint64_t errors, queries, retries, stale;
};

struct db_run {
    void *data;
    db_query_cb cb;
    db_conn_t *conn;
    char *sql;
};

static void conn_connect(db_conn_t *c);
static void conn_open(db_pool_t *pool);
static void conn_close(db_conn_t *c);
static void conn_available(db_conn_t *c);
static void conn_check(db_conn_t *c);
static void query_send(db_conn_t *c);
static void stmt_begin(db_conn_t *c);
static void stmt_cache_empty(db_conn_t *c);
static void query_finish(db_conn_t *c, int err, const char *msg, db_result_t *result);
static void step(db_conn_t *c, int ready);
static void on_readable(h2o_socket_t *sock, const char *err);
static void fail_waiters(db_pool_t *pool, int err, const char *msg);

/* ---- the pools' shared part ---- */

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_shared shared_slots[8];

/* The shared part for db, made at the first call; the same for every worker. */
static struct pool_shared *shared_for(const config_db_t *db)
{
    struct pool_shared *s = NULL;
    pthread_mutex_lock(&shared_lock);
    for (size_t i = 0; i < sizeof(shared_slots) / sizeof(shared_slots[0]); ++i) {
        if (shared_slots[i].db == db || shared_slots[i].db == NULL) {
            s = &shared_slots[i];
            s->db = db;
            break;
        }
    }
    pthread_mutex_unlock(&shared_lock);
    if (s == NULL)
        h2o_fatal("db_pool: more databases than shared slots");
    return s;
}

/* ---- creating and closing ---- */

db_pool_t *db_pool_create(h2o_context_t *ctx, int worker_id, const config_t *cfg, const config_db_t *db, const char *name)
{
    db_pool_t *pool = util_malloc(sizeof(*pool));
    memset(pool, 0, sizeof(*pool));
    pool->ctx = ctx;
    pool->loop = ctx->loop;
    pool->worker_id = worker_id;
    pool->db = db;
    pool->cfg = cfg;
    pool->name = name;
    pool->shared = shared_for(db);
    h2o_linklist_init_anchor(&pool->idle);
    h2o_linklist_init_anchor(&pool->conns);
    h2o_linklist_init_anchor(&pool->waiters);
    h2o_timeout_init(pool->loop, &pool->query_timeout, (uint64_t)cfg->db_timeout_ms);
    h2o_timeout_init(pool->loop, &pool->connect_timeout, (uint64_t)cfg->db_connect_timeout_ms);
    for (int i = 0; i < PROBE_STEPS; ++i)
        h2o_timeout_init(pool->loop, &pool->probe_timeouts[i], PROBE_MIN_MS + (uint64_t)i * PROBE_STEP_MS);
    util_random_bytes(&pool->rng, sizeof(pool->rng));
    pool->rng |= 1;
    return pool;
}

void db_pool_close(db_pool_t *pool)
{
    static const char why[] = "the worker stopped";
    pool->closing = 1;
    fail_waiters(pool, DB_ECLOSED, why);
    while (!h2o_linklist_is_empty(&pool->conns)) {
        db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, all_link, pool->conns.next);
        db_query_cb cb = c->qcb;
        void *data = c->qdata;
        conn_close(c); /* unlinks its timeouts and its deferred step, closes its sockets */
        if (cb != NULL)
            cb(data, DB_ECLOSED, why, NULL);
    }
    if (h2o_timeout_is_linked(&pool->probe))
        h2o_timeout_unlink(&pool->probe);
    /* every entry of these timeouts has been unlinked above: disposing of them is now allowed */
    h2o_timeout_dispose(pool->loop, &pool->query_timeout);
    h2o_timeout_dispose(pool->loop, &pool->connect_timeout);
    for (int i = 0; i < PROBE_STEPS; ++i)
        h2o_timeout_dispose(pool->loop, &pool->probe_timeouts[i]);
    free(pool);
}

void db_pool_get_stats(db_pool_t *pool, db_pool_stats_t *stats)
{
    stats->open = pool->nconns;
    stats->in_use = pool->nin_use;
    stats->waiting = pool->nwaiting;
    stats->errors = pool->errors;
    stats->queries = pool->queries;
    stats->retries = pool->retries;
    stats->stale = pool->stale;
}

db_pool_t *db_conn_pool(db_conn_t *conn)
{
    return conn->pool;
}

void db_conn_set_transaction(db_conn_t *conn, int open)
{
    conn->in_tx = open;
}

/* ---- failures ---- */

/* Calls every waiter's callback with (NULL, err, msg), oldest first, emptying the queue. */
static void fail_waiters(db_pool_t *pool, int err, const char *msg)
{
    while (!h2o_linklist_is_empty(&pool->waiters)) {
        struct waiter *wt = H2O_STRUCT_FROM_MEMBER(struct waiter, link, pool->waiters.next);
        h2o_linklist_unlink(&wt->link);
        if (h2o_timeout_is_linked(&wt->timeout))
            h2o_timeout_unlink(&wt->timeout);
        --pool->nwaiting;
        ++pool->errors;
        db_acquire_cb cb = wt->cb;
        void *data = wt->data;
        free(wt);
        cb(data, NULL, err, msg);
    }
}

/*
 * The one rule for a slot that frees or may be taken: a connection is opened when waiters
 * outnumber the connections being opened for them and the pool has room, unless the server is
 * down (the probe does it then) or the pool is closing. conn_close applies it to every slot a
 * connection gives up (released broken, killed, found stale, failed its check), acquiring to the
 * waiter it queues.
 */
static void pool_refill(db_pool_t *pool)
{
    if (!pool->closing && !pool->down && pool->nwaiting > pool->nconnecting && pool->nconns < (unsigned)pool->cfg->db_pool_size)
        conn_open(pool);
}

/*
 * A connection of the pool was found dead: every idle connection that has not proved alive since
 * is checked with a ping before its next use (the others of a restarted server go the same way,
 * found at once rather than by one failed statement each).
 */
static void pool_suspect(db_pool_t *pool)
{
    ++pool->epoch;
    while (!h2o_linklist_is_empty(&pool->idle))
        conn_check(H2O_STRUCT_FROM_MEMBER(db_conn_t, idle_link, pool->idle.next));
}

static uint64_t probe_delay_index(db_pool_t *pool)
{
    /* xorshift32: jitter, not secrecy */
    uint32_t x = pool->rng;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    pool->rng = x;
    return x % PROBE_STEPS;
}

static void schedule_probe(db_pool_t *pool)
{
    if (!h2o_timeout_is_linked(&pool->probe))
        h2o_timeout_link(pool->loop, &pool->probe_timeouts[probe_delay_index(pool)], &pool->probe);
}

static void on_probe(h2o_timeout_entry_t *entry)
{
    db_pool_t *pool = H2O_STRUCT_FROM_MEMBER(db_pool_t, probe, entry);
    if (!pool->down)
        return;
    if (pool->nconnecting == 0 && pool->nconns < (unsigned)pool->cfg->db_pool_size)
        conn_open(pool); /* on success the pool is up; on failure the probe is scheduled again */
    else
        schedule_probe(pool);
}

/* A connect failed: acquiring fails at once until a probe (or another worker) connects again. */
static void pool_down(db_pool_t *pool, const char *why)
{
    snprintf(pool->errmsg, sizeof(pool->errmsg), "database unavailable (%s): %s", pool->name, why);
    if (!pool->down) {
        pool->down = 1;
        pool->down_since = h2o_now(pool->loop);
        pool->down_seen_connects = atomic_load(&pool->shared->connects);
        log_warnf(pool->worker_id, "%s; probing every %d-%d ms", pool->errmsg, PROBE_MIN_MS,
                  PROBE_MIN_MS + (PROBE_STEPS - 1) * PROBE_STEP_MS);
        pool_suspect(pool);
    }
    pool->probe.cb = on_probe;
    schedule_probe(pool);
}

static void pool_up(db_pool_t *pool, const char *addr)
{
    atomic_fetch_add(&pool->shared->connects, 1);
    if (!pool->down)
        return;
    log_infof(pool->worker_id, "database %s is back (%s:%d) after %llu ms", pool->name, addr, pool->db->port,
              (unsigned long long)(h2o_now(pool->loop) - pool->down_since));
    pool->down = 0;
    if (h2o_timeout_is_linked(&pool->probe))
        h2o_timeout_unlink(&pool->probe);
}

/* ---- socket watching ---- */

static void disarm(db_conn_t *c)
{
    if (c->sock != NULL && h2o_socket_is_reading(c->sock))
        h2o_socket_read_stop(c->sock);
    c->wait_status = 0;
}

static int ensure_sock(db_conn_t *c)
{
    if (c->sock == NULL) {
        int fd = dup(mysql_get_socket(c->mysql));
        if (fd < 0)
            return -1;
        c->sock = h2o_evloop_socket_create(c->pool->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        c->sock->data = c;
    }
    return 0;
}

/*
 * 1 when nothing says the idle connection is dead: the server has sent nothing and not closed it.
 * An idle MySQL connection never has bytes to read; an EOF, a reset or an unsolicited error
 * packet ("shutdown in progress", "connection killed", "disconnected for inactivity") means the
 * server is done with it. One non-blocking recv, no round trip.
 */
static int idle_socket_alive(db_conn_t *c)
{
    char b;
    ssize_t r = recv(mysql_get_socket(c->mysql), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    db_conn_t *c = sock->data;
    if (c->state == C_IDLE) {
        /* the server closed an idle connection (or sent its last error): found dead before any use */
        ++c->pool->stale;
        db_pool_t *pool = c->pool;
        conn_close(c);
        pool_suspect(pool);
        return;
    }
    if ((c->wait_status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT)) == 0)
        return;
    disarm(c);
    step(c, MYSQL_WAIT_READ);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    db_conn_t *c = sock->data;
    c->write_armed = 0;
    if ((c->wait_status & MYSQL_WAIT_WRITE) == 0)
        return;
    disarm(c);
    step(c, MYSQL_WAIT_WRITE);
}

static void arm(db_conn_t *c, int status)
{
    if (ensure_sock(c) != 0) {
        c->broken = 1;
        return;
    }
    c->wait_status = status;
    if (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))
        h2o_socket_read_start(c->sock, on_readable);
    if ((status & MYSQL_WAIT_WRITE) && !c->write_armed) {
        c->write_armed = 1;
        h2o_socket_notify_write(c->sock, on_writable);
    }
}

static void stmt_entry_free(struct stmt_entry *e)
{
    free(e->sql);
    free(e);
}

/*
 * Empties the statement cache once the session is closed: mysql_close detached every statement
 * from the connection, so closing them frees memory and sends nothing.
 */
static void stmt_cache_empty(db_conn_t *c)
{
    if (c->entry != NULL && !h2o_linklist_is_linked(&c->entry->lru)) { /* being prepared: not in the cache yet */
        if (c->entry->stmt != NULL)
            mysql_stmt_close(c->entry->stmt);
        stmt_entry_free(c->entry);
    }
    c->entry = NULL;
    while (!h2o_linklist_is_empty(&c->stmts)) {
        struct stmt_entry *e = H2O_STRUCT_FROM_MEMBER(struct stmt_entry, lru, c->stmts.next);
        h2o_linklist_unlink(&e->lru);
        if (e->stmt != NULL)
            mysql_stmt_close(e->stmt);
        stmt_entry_free(e);
    }
    c->nstmts = 0;
    c->stored = NULL;
    /* a close cut short inside Connector/C (its one packet did not fit the socket) leaves the
     * statement half-closed: it is left to the process's end rather than freed twice */
    c->closing = NULL;
}

/* Frees the rows of the last prepared statement (kept in Connector/C until now; nothing is sent). */
static void stmt_free_stored(db_conn_t *c)
{
    if (c->stored != NULL) {
        mysql_stmt_free_result(c->stored);
        c->stored = NULL;
    }
}

/* Closes the MySQL session and the watched socket, keeping the db_conn_t. */
static void conn_drop_session(db_conn_t *c)
{
    if (c->sock != NULL) {
        disarm(c);
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    c->write_armed = 0;
    if (c->res != NULL) {
        mysql_free_result(c->res);
        c->res = NULL;
    }
    if (c->mysql != NULL) {
        /* a connection that may not answer: shut the socket so mysql_close cannot wait on it */
        if (c->broken || c->state != C_IDLE)
            shutdown(mysql_get_socket(c->mysql), SHUT_RDWR);
        mysql_close(c->mysql);
        c->mysql = NULL;
    }
    stmt_cache_empty(c);
}

/* ---- connecting ---- */

static void connect_failed(db_conn_t *c, const char *why)
{
    db_pool_t *pool = c->pool;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", why);
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    if (c->retrying) {
        /* the fresh connection for a retry could not be had: the statement fails, the holder releases */
        c->retrying = 0;
        c->broken = 1;
        conn_drop_session(c);
        c->state = C_LEASED;
        pool_down(pool, msg);
        query_finish(c, DB_EUNAVAILABLE, pool->errmsg, NULL);
        return;
    }
    pool_down(pool, msg); /* first: the slot this connection frees is not refilled while down */
    conn_close(c);
    if (pool->nconns == 0)
        fail_waiters(pool, DB_EUNAVAILABLE, pool->errmsg);
}

static void connect_done(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    if (c->cret == NULL) {
        char why[256], reason[192];
        snprintf(why, sizeof(why), "connect to %s:%d failed: %s", c->addr, pool->db->port,
                 db_tls_describe_error(c->mysql, pool->cfg, pool->db->host, reason, sizeof(reason)));
        connect_failed(c, why);
        return;
    }
    char tlserr[192];
    if (db_tls_check(c->mysql, pool->cfg, tlserr, sizeof(tlserr)) != 0) {
        /* DATABASE_TLS=required and the server gave a plain session: refused like a failed connect */
        connect_failed(c, tlserr);
        return;
    }
    pool_up(pool, c->addr);
    c->checked_epoch = pool->epoch;
    if (c->retrying) {
        c->retrying = 0;
        c->state = C_LEASED;
        if (c->prepared)
            stmt_begin(c);
        else
            query_send(c);
        return;
    }
    --pool->nconnecting;
    conn_available(c);
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, timeout, entry);
    char why[160];
    snprintf(why, sizeof(why), "connect to %s:%d timed out after %d s", c->addr[0] ? c->addr : c->pool->db->host,
             c->pool->db->port, c->pool->cfg->db_connect_timeout_ms / 1000);
    connect_failed(c, why);
}

static void start_connect(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    const config_db_t *db = pool->db;
    c->state = C_CONNECTING;
    c->session_changed = 0;
    c->mysql = mysql_init(NULL);
    if (c->mysql == NULL)
        util_malloc((size_t)-1); /* the one out-of-memory path */
    mysql_options(c->mysql, MYSQL_OPT_NONBLOCK, 0);
    db_tls_apply(c->mysql, pool->cfg);
    mysql_options(c->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(c->mysql, MYSQL_INIT_COMMAND,
                  "SET time_zone='+00:00', sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
                  "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', session_track_state_change=ON");
    int st = mysql_real_connect_start(&c->cret, c->mysql, db_tls_host(pool->cfg, db, c->addr), db->user, db->password, db->name,
                                      (unsigned)db->port, NULL, 0);
    if (st != 0)
        arm(c, st);
    else
        connect_done(c);
}

static void on_resolved(h2o_hostinfo_getaddr_req_t *req, const char *errstr, struct addrinfo *res, void *data)
{
    (void)req;
    db_conn_t *c = data;
    c->getaddr = NULL;
    if (errstr != NULL || res == NULL) {
        char why[256];
        snprintf(why, sizeof(why), "cannot resolve '%s': %s", c->pool->db->host, errstr != NULL ? errstr : "no address");
        connect_failed(c, why);
        return;
    }
    struct addrinfo *ai = h2o_hostinfo_select_one(res);
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, c->addr, sizeof(c->addr), NULL, 0, NI_NUMERICHOST) != 0) {
        connect_failed(c, "cannot format the resolved address");
        return;
    }
    start_connect(c);
}

static void on_defer_connect(h2o_timeout_entry_t *entry)
{
    start_connect(H2O_STRUCT_FROM_MEMBER(db_conn_t, defer, entry));
}

/* Resolves the host (again: a failover moves the address behind the name) and connects c. */
static void conn_connect(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    c->state = C_RESOLVING;
    c->timeout.cb = on_connect_timeout;
    h2o_timeout_link(pool->loop, &pool->connect_timeout, &c->timeout);
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, pool->db->host, &a4) == 1 || inet_pton(AF_INET6, pool->db->host, &a6) == 1) {
        snprintf(c->addr, sizeof(c->addr), "%s", pool->db->host);
        c->defer.cb = on_defer_connect;
        h2o_timeout_link(pool->loop, &pool->ctx->zero_timeout, &c->defer);
        return;
    }
    char port[8];
    snprintf(port, sizeof(port), "%d", pool->db->port);
    c->getaddr =
        h2o_hostinfo_getaddr(&pool->ctx->receivers.hostinfo_getaddr, h2o_iovec_init(pool->db->host, strlen(pool->db->host)),
                             h2o_iovec_init(port, strlen(port)), AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP,
                             AI_ADDRCONFIG | AI_NUMERICSERV, on_resolved, c);
}

static void conn_open(db_pool_t *pool)
{
    db_conn_t *c = util_malloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->pool = pool;
    h2o_linklist_init_anchor(&c->stmts);
    h2o_linklist_insert(&pool->conns, &c->all_link);
    ++pool->nconns;
    ++pool->nconnecting;
    conn_connect(c);
}

/* Stops whatever c is waiting for (the resolver, a timeout, a deferred step) and closes its session. */
static void conn_stop(db_conn_t *c)
{
    if (c->getaddr != NULL) {
        h2o_hostinfo_getaddr_cancel(c->getaddr);
        c->getaddr = NULL;
    }
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    if (h2o_timeout_is_linked(&c->defer))
        h2o_timeout_unlink(&c->defer);
    conn_drop_session(c);
}

static void conn_close(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    if (h2o_linklist_is_linked(&c->idle_link))
        h2o_linklist_unlink(&c->idle_link);
    if (c->leased)
        --pool->nin_use;
    else if (c->state == C_RESOLVING || c->state == C_CONNECTING)
        --pool->nconnecting;
    conn_stop(c);
    free(c->sql);
    h2o_linklist_unlink(&c->all_link);
    --pool->nconns;
    free(c);
    pool_refill(pool);
}

/* ---- checking a connection that may be stale ---- */

static void check_done(db_conn_t *c)
{
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    db_pool_t *pool = c->pool;
    if (c->iret != 0) {
        ++pool->stale;
        conn_close(c); /* a waiter that counted on this connection gets a new one (pool_refill) */
        return;
    }
    c->checked_epoch = pool->epoch;
    conn_available(c);
}

static void on_check_timeout(h2o_timeout_entry_t *entry)
{
    db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, timeout, entry);
    c->broken = 1;
    c->iret = 1;
    disarm(c);
    check_done(c);
}

static void on_defer_check_done(h2o_timeout_entry_t *entry)
{
    check_done(H2O_STRUCT_FROM_MEMBER(db_conn_t, defer, entry));
}

/* Pings an unleased connection (removing it from the idle list); it becomes available if it answers. */
static void conn_check(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    if (h2o_linklist_is_linked(&c->idle_link))
        h2o_linklist_unlink(&c->idle_link);
    disarm(c);
    c->state = C_CHECKING;
    c->timeout.cb = on_check_timeout;
    h2o_timeout_link(pool->loop, &pool->query_timeout, &c->timeout);
    int st = mysql_ping_start(&c->iret, c->mysql);
    if (st != 0) {
        arm(c, st);
        return;
    }
    c->defer.cb = on_defer_check_done;
    h2o_timeout_link(pool->loop, &pool->ctx->zero_timeout, &c->defer);
}

/* ---- handing out connections ---- */

/* An unleased, live connection: give it to the oldest waiter, or make it idle (and watch it). */
static void conn_available(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    if (!h2o_linklist_is_empty(&pool->waiters)) {
        struct waiter *wt = H2O_STRUCT_FROM_MEMBER(struct waiter, link, pool->waiters.next);
        h2o_linklist_unlink(&wt->link);
        if (h2o_timeout_is_linked(&wt->timeout))
            h2o_timeout_unlink(&wt->timeout);
        --pool->nwaiting;
        db_acquire_cb cb = wt->cb;
        void *data = wt->data;
        free(wt);
        c->state = C_LEASED;
        c->leased = 1;
        ++pool->nin_use;
        cb(data, c, 0, NULL);
        return;
    }
    c->state = C_IDLE;
    h2o_linklist_insert(&pool->idle, &c->idle_link);
    if (ensure_sock(c) == 0) {
        c->wait_status = 0;
        h2o_socket_read_start(c->sock, on_readable);
    }
}

static void on_wait_timeout(h2o_timeout_entry_t *entry)
{
    struct waiter *wt = H2O_STRUCT_FROM_MEMBER(struct waiter, timeout, entry);
    db_pool_t *pool = wt->pool;
    h2o_linklist_unlink(&wt->link);
    --pool->nwaiting;
    ++pool->errors;
    snprintf(pool->errmsg, sizeof(pool->errmsg), "no %s database connection became free within %d s", pool->name,
             pool->cfg->db_timeout_ms / 1000);
    db_acquire_cb cb = wt->cb;
    void *data = wt->data;
    free(wt);
    cb(data, NULL, DB_EUNAVAILABLE, pool->errmsg);
}

int db_pool_acquire(db_pool_t *pool, db_conn_t **conn, db_acquire_cb cb, void *data, const char **msg)
{
    while (!h2o_linklist_is_empty(&pool->idle)) {
        /* the most recently used first: its socket is the least likely to have gone stale */
        db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, idle_link, pool->idle.prev);
        if (!idle_socket_alive(c)) {
            ++pool->stale;
            conn_close(c);
            pool_suspect(pool);
            continue;
        }
        h2o_linklist_unlink(&c->idle_link);
        disarm(c);
        c->state = C_LEASED;
        c->leased = 1;
        ++pool->nin_use;
        *conn = c;
        return 1;
    }
    if (pool->down && atomic_load(&pool->shared->connects) != pool->down_seen_connects) {
        /* another worker connected since this pool went down: the server is back, try at once */
        pool->down = 0;
        if (h2o_timeout_is_linked(&pool->probe))
            h2o_timeout_unlink(&pool->probe);
    }
    if (pool->down && pool->nconns == pool->nconnecting) {
        ++pool->errors;
        *msg = pool->errmsg;
        return DB_EUNAVAILABLE;
    }
    if (pool->nwaiting >= (unsigned)pool->cfg->db_queue_max) {
        ++pool->errors;
        snprintf(pool->errmsg, sizeof(pool->errmsg), "too many queries waiting for a %s database connection (%d)", pool->name,
                 pool->cfg->db_queue_max);
        *msg = pool->errmsg;
        return DB_EUNAVAILABLE;
    }
    struct waiter *wt = util_malloc(sizeof(*wt));
    memset(wt, 0, sizeof(*wt));
    wt->pool = pool;
    wt->cb = cb;
    wt->data = data;
    wt->timeout.cb = on_wait_timeout;
    h2o_linklist_insert(&pool->waiters, &wt->link);
    h2o_timeout_link(pool->loop, &pool->query_timeout, &wt->timeout);
    ++pool->nwaiting;
    pool_refill(pool);
    return 0;
}

/* The status flags of the server's last answer on c (0 without a session). */
static unsigned server_status(db_conn_t *c)
{
    unsigned st = 0;
    if (c->mysql != NULL)
        mariadb_get_infov(c->mysql, MARIADB_CONNECTION_SERVER_STATUS, &st);
    return st;
}

/*
 * 1 when the session is no longer the one every connection starts with (db_pool.h: a statement
 * changed it, or a transaction is left open, or strings are no longer read with backslash escapes).
 */
static int session_is_changed(db_conn_t *c)
{
    return c->session_changed || (server_status(c) & (SERVER_STATUS_IN_TRANS | SERVER_STATUS_NO_BACKSLASH_ESCAPES)) != 0;
}

void db_conn_release(db_conn_t *c)
{
    stmt_free_stored(c);
    if (c->broken || c->in_tx || c->state != C_LEASED || session_is_changed(c)) {
        conn_close(c);
        return;
    }
    db_pool_t *pool = c->pool;
    c->leased = 0;
    --pool->nin_use;
    if (c->checked_epoch < pool->epoch)
        conn_check(c); /* a sibling died since this one last proved alive */
    else
        conn_available(c);
}

/* ---- queries ---- */

static void query_finish(db_conn_t *c, int err, const char *msg, db_result_t *result)
{
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    free(c->sql);
    c->sql = NULL;
    if (c->state == C_SEND || c->state == C_READ || c->state == C_STORE || c->state == C_STMT_CLOSE || c->state == C_PREPARE ||
        c->state == C_EXECUTE || c->state == C_STMT_STORE)
        c->state = C_LEASED;
    if (c->entry != NULL && h2o_linklist_is_linked(&c->entry->lru))
        c->entry = NULL; /* one being prepared stays c's until the session is dropped */
    c->prepared = 0;
    c->params = NULL;
    if (server_status(c) & SERVER_SESSION_STATE_CHANGED)
        c->session_changed = 1;
    if (err != 0 && err != DB_ETEXT)
        ++c->pool->errors;
    else
        c->checked_epoch = c->pool->epoch;
    db_query_cb cb = c->qcb;
    void *data = c->qdata;
    c->qcb = NULL;
    cb(data, err, msg, result);
}

static void on_query_timeout(h2o_timeout_entry_t *entry);

/* Runs the statement again on a fresh connection in place of this one (the holder keeps c). */
static void query_retry(db_conn_t *c, const char *why)
{
    db_pool_t *pool = c->pool;
    ++pool->retries;
    c->retried = 1;
    c->retrying = 1;
    log_infof(pool->worker_id, "a %s database connection was found dead (%s): the statement runs again on a new one",
              pool->name, why);
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    conn_drop_session(c);
    pool_suspect(pool);
    conn_connect(c);
}

/* The statement failed with the server's or Connector/C's error err (text what). */
static void query_failed(db_conn_t *c, db_stmt_phase_t phase, unsigned err, const char *what)
{
    char msg[400];
    snprintf(msg, sizeof(msg), "(%u) %s", err, what);
    if (db_retry_is_connection_error(err)) {
        disarm(c);
        if (!c->retried && db_retry_allowed(c->kind, phase, err)) {
            query_retry(c, msg);
            return;
        }
        c->broken = 1;
        /* rare (a connection that died under a statement that may have run): worth a line */
        log_warnf(c->pool->worker_id, "a %s database connection died %s a statement that is not run twice (%s): %s",
                  c->pool->name, phase == DB_PHASE_SENT ? "after it was sent" : "before sending",
                  c->kind == DB_STMT_IN_TX ? "in a transaction"
                  : c->retried             ? "already run again once"
                                           : "a write",
                  msg);
        pool_suspect(c->pool);
    }
    query_finish(c, db_retry_is_transient_error(err) ? DB_EUNAVAILABLE : DB_EQUERY, msg, NULL);
}

static void query_error(db_conn_t *c, db_stmt_phase_t phase)
{
    query_failed(c, phase, mysql_errno(c->mysql), mysql_error(c->mysql));
}

static void on_query_timeout(h2o_timeout_entry_t *entry)
{
    db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, timeout, entry);
    char msg[128];
    snprintf(msg, sizeof(msg), "the %s database did not answer within %d s", c->pool->name, c->pool->cfg->db_timeout_ms / 1000);
    c->broken = 1;
    disarm(c);
    pool_suspect(c->pool);
    query_finish(c, DB_EUNAVAILABLE, msg, NULL);
}

static void query_read(db_conn_t *c)
{
    if (c->bret != 0) {
        query_error(c, DB_PHASE_SENT);
        return;
    }
    if (mysql_field_count(c->mysql) == 0) {
        db_result_t r = {NULL, NULL, mysql_affected_rows(c->mysql), mysql_insert_id(c->mysql)};
        query_finish(c, 0, NULL, &r);
        return;
    }
    c->state = C_STORE;
    int st = mysql_store_result_start(&c->res, c->mysql);
    if (st != 0)
        arm(c, st);
    else
        step(c, 0);
}

static void query_sent(db_conn_t *c)
{
    if (c->iret != 0) {
        query_error(c, DB_PHASE_UNSENT);
        return;
    }
    c->state = C_READ;
    int st = mysql_read_query_result_start(&c->bret, c->mysql);
    if (st != 0)
        arm(c, st);
    else
        query_read(c);
}

static void stmt_closed(db_conn_t *c);
static void stmt_prepared(db_conn_t *c);
static void stmt_executed(db_conn_t *c);
static void stmt_stored(db_conn_t *c);

/* A statement step just started (w: what mysql_stmt_*_start returned): wait for the socket, or
 * go on at once when it finished without waiting. */
static void stmt_step(db_conn_t *c, int w, void (*done)(db_conn_t *c))
{
    if (w != 0)
        arm(c, w);
    else
        done(c);
}

static void step(db_conn_t *c, int ready)
{
    int st;
    switch (c->state) {
    case C_CONNECTING:
        if ((st = mysql_real_connect_cont(&c->cret, c->mysql, ready)) != 0)
            arm(c, st);
        else
            connect_done(c);
        break;
    case C_CHECKING:
        if ((st = mysql_ping_cont(&c->iret, c->mysql, ready)) != 0)
            arm(c, st);
        else
            check_done(c);
        break;
    case C_SEND:
        if ((st = mysql_send_query_cont(&c->iret, c->mysql, ready)) != 0)
            arm(c, st);
        else
            query_sent(c);
        break;
    case C_READ:
        if ((st = mysql_read_query_result_cont(&c->bret, c->mysql, ready)) != 0)
            arm(c, st);
        else
            query_read(c);
        break;
    case C_STORE:
        if (ready != 0 && (st = mysql_store_result_cont(&c->res, c->mysql, ready)) != 0) {
            arm(c, st);
            break;
        }
        if (c->res == NULL) {
            query_error(c, DB_PHASE_SENT);
        } else {
            db_result_t r = {c->res, NULL, 0, 0};
            c->res = NULL;
            query_finish(c, 0, NULL, &r);
            mysql_free_result(r.res);
        }
        break;
    case C_STMT_CLOSE: stmt_step(c, mysql_stmt_close_cont(&c->bret, c->closing, ready), stmt_closed); break;
    case C_PREPARE: stmt_step(c, mysql_stmt_prepare_cont(&c->iret, c->entry->stmt, ready), stmt_prepared); break;
    case C_EXECUTE: stmt_step(c, mysql_stmt_execute_cont(&c->iret, c->entry->stmt, ready), stmt_executed); break;
    case C_STMT_STORE: stmt_step(c, mysql_stmt_store_result_cont(&c->iret, c->entry->stmt, ready), stmt_stored); break;
    default: break;
    }
}

static void on_defer_query_sent(h2o_timeout_entry_t *entry)
{
    query_sent(H2O_STRUCT_FROM_MEMBER(db_conn_t, defer, entry));
}

/* Sends c->sql; whatever happens is reported from the loop, never from inside this call. */
static void query_send(db_conn_t *c)
{
    c->state = C_SEND;
    if (db_session_untracked_change(c->sql, c->sql_len))
        c->session_changed = 1; /* also after a reconnect for a retry: set once the statement is sent */
    c->timeout.cb = on_query_timeout;
    h2o_timeout_link(c->pool->loop, &c->pool->query_timeout, &c->timeout);
    int st = mysql_send_query_start(&c->iret, c->mysql, c->sql, (unsigned long)c->sql_len);
    if (st != 0) {
        arm(c, st);
        return;
    }
    c->defer.cb = on_defer_query_sent;
    h2o_timeout_link(c->pool->loop, &c->pool->ctx->zero_timeout, &c->defer);
}

int db_conn_query(db_conn_t *c, const char *sql, size_t len, db_stmt_kind_t kind, db_query_cb cb, void *data, const char **msg)
{
    if (c->broken) {
        *msg = "the database connection was lost";
        return DB_EUNAVAILABLE;
    }
    stmt_free_stored(c);
    c->sql = util_strndup(sql, len);
    c->sql_len = len;
    c->kind = kind;
    c->retried = 0;
    c->qcb = cb;
    c->qdata = data;
    ++c->pool->queries;
    query_send(c);
    return 0;
}

/* ---- prepared statements ---- */

static uint64_t stmt_hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < len; ++i)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* Makes e the cache's most recently used entry (c->nstmts counts it when new). */
static void stmt_cache_touch(db_conn_t *c, struct stmt_entry *e)
{
    if (h2o_linklist_is_linked(&e->lru))
        h2o_linklist_unlink(&e->lru);
    else
        ++c->nstmts;
    h2o_linklist_insert(&c->stmts, &e->lru);
}

/* The running statement is to be sent as text by its holder (DB_ETEXT). */
static void stmt_as_text(db_conn_t *c)
{
    query_finish(c, DB_ETEXT, "the server does not prepare this statement", NULL);
}

static void stmt_error(db_conn_t *c, db_stmt_phase_t phase)
{
    MYSQL_STMT *st = c->entry->stmt;
    query_failed(c, phase, mysql_stmt_errno(st), mysql_stmt_error(st));
}

static void stmt_execute(db_conn_t *c)
{
    MYSQL_STMT *st = c->entry->stmt;
    if (c->nparams > 0 && mysql_stmt_bind_param(st, c->params) != 0) {
        stmt_error(c, DB_PHASE_UNSENT);
        return;
    }
    c->state = C_EXECUTE;
    stmt_step(c, mysql_stmt_execute_start(&c->iret, st), stmt_executed);
}

/*
 * The statement ran but its result has other columns than when it was prepared (a table altered
 * by DDL in between: CR_NEW_STMT_METADATA): its rows are left unread on the connection. The
 * statement is closed without blocking (which reads them away), then prepared and run again
 * when that changes nothing (db_retry_classify: a read), else it fails with the error.
 */
static void stmt_stale(db_conn_t *c)
{
    struct stmt_entry *e = c->entry;
    h2o_linklist_unlink(&e->lru);
    --c->nstmts;
    c->entry = NULL;
    c->closing = e->stmt;
    c->closing_stale = db_retry_classify(c->sql, c->sql_len) == DB_STMT_READ ? 1 : -1;
    stmt_entry_free(e);
    c->state = C_STMT_CLOSE;
    stmt_step(c, mysql_stmt_close_start(&c->bret, c->closing), stmt_closed);
}

/*
 * 1 when the columns of the result just announced are named otherwise than when the statement was
 * prepared (a column renamed by DDL: Connector/C updates their types, not their names).
 */
static int stmt_renamed(db_conn_t *c, MYSQL_STMT *st)
{
    const MYSQL_FIELD *now = c->mysql->fields, *then = st->fields;
    if (now == NULL || then == NULL || c->mysql->field_count != st->field_count)
        return 0;
    for (unsigned i = 0; i < st->field_count; ++i)
        if (now[i].name_length != then[i].name_length || memcmp(now[i].name, then[i].name, now[i].name_length) != 0)
            return 1;
    return 0;
}

static void stmt_executed(db_conn_t *c)
{
    MYSQL_STMT *st = c->entry->stmt;
    if ((c->iret != 0 && mysql_stmt_errno(st) == CR_NEW_STMT_METADATA) || (c->iret == 0 && stmt_renamed(c, st))) {
        stmt_stale(c);
        return;
    }
    if (c->iret != 0) {
        stmt_error(c, DB_PHASE_SENT); /* db_retry: CR_SERVER_GONE_ERROR says it was not sent */
        return;
    }
    if (mysql_stmt_field_count(st) == 0) {
        db_result_t r = {NULL, NULL, mysql_stmt_affected_rows(st), mysql_stmt_insert_id(st)};
        query_finish(c, 0, NULL, &r);
        return;
    }
    c->state = C_STMT_STORE;
    stmt_step(c, mysql_stmt_store_result_start(&c->iret, st), stmt_stored);
}

static void stmt_stored(db_conn_t *c)
{
    MYSQL_STMT *st = c->entry->stmt;
    if (c->iret != 0) {
        stmt_error(c, DB_PHASE_SENT);
        return;
    }
    c->stored = st; /* freed when c is used or released again: the callback may release (and close) c */
    db_result_t r = {NULL, st, 0, 0};
    query_finish(c, 0, NULL, &r);
}

static void stmt_prepared(db_conn_t *c)
{
    struct stmt_entry *e = c->entry;
    if (c->iret != 0) {
        unsigned err = mysql_stmt_errno(e->stmt);
        if (db_retry_is_connection_error(err)) {
            stmt_error(c, DB_PHASE_UNSENT); /* preparing runs nothing */
            return;
        }
        /* refused (not preparable, or an error the text shows best): the text protocol from now
         * on; a failed prepare leaves nothing on the server, so this close sends nothing */
        mysql_stmt_close(e->stmt);
        e->stmt = NULL;
        e->text = 1;
    } else if (mysql_stmt_param_count(e->stmt) != c->nparams) {
        e->text = 1; /* the server counted the placeholders otherwise: the binder's count holds */
    }
    stmt_cache_touch(c, e);
    if (e->text) {
        stmt_as_text(c);
        return;
    }
    stmt_execute(c);
}

static void stmt_prepare(db_conn_t *c)
{
    struct stmt_entry *e = util_malloc(sizeof(*e));
    memset(e, 0, sizeof(*e));
    e->hash = stmt_hash(c->sql, c->sql_len);
    e->sql = util_strndup(c->sql, c->sql_len);
    e->len = c->sql_len;
    if ((e->stmt = mysql_stmt_init(c->mysql)) == NULL)
        util_malloc((size_t)-1); /* the one out-of-memory path */
    my_bool one = 1;
    mysql_stmt_attr_set(e->stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &one);
    c->entry = e;
    c->state = C_PREPARE;
    stmt_step(c, mysql_stmt_prepare_start(&c->iret, e->stmt, c->sql, (unsigned long)c->sql_len), stmt_prepared);
}

static void stmt_closed(db_conn_t *c)
{
    c->closing = NULL; /* a failed close: the connection is gone, which the prepare finds */
    if (c->closing_stale < 0) {
        c->closing_stale = 0;
        query_failed(c, DB_PHASE_SENT, CR_NEW_STMT_METADATA,
                     "a table changed while the statement ran: its result was not read");
        return;
    }
    c->closing_stale = 0;
    stmt_prepare(c);
}

/* Runs c->sql as a prepared statement: from the cache, or prepared now (the oldest one evicted). */
static void stmt_begin(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    if (db_session_untracked_change(c->sql, c->sql_len))
        c->session_changed = 1;
    c->timeout.cb = on_query_timeout;
    h2o_timeout_link(pool->loop, &pool->query_timeout, &c->timeout);
    uint64_t h = stmt_hash(c->sql, c->sql_len);
    for (h2o_linklist_t *l = c->stmts.prev; l != &c->stmts; l = l->prev) {
        struct stmt_entry *e = H2O_STRUCT_FROM_MEMBER(struct stmt_entry, lru, l);
        if (e->hash == h && e->len == c->sql_len && memcmp(e->sql, c->sql, c->sql_len) == 0) {
            stmt_cache_touch(c, e);
            if (e->text) {
                stmt_as_text(c);
                return;
            }
            c->entry = e;
            stmt_execute(c);
            return;
        }
    }
    if (c->nstmts >= (unsigned)pool->cfg->db_stmt_cache) {
        struct stmt_entry *old = H2O_STRUCT_FROM_MEMBER(struct stmt_entry, lru, c->stmts.next);
        h2o_linklist_unlink(&old->lru);
        --c->nstmts;
        MYSQL_STMT *st = old->stmt;
        stmt_entry_free(old);
        if (st != NULL) {
            c->closing = st;
            c->state = C_STMT_CLOSE;
            stmt_step(c, mysql_stmt_close_start(&c->bret, st), stmt_closed);
            return;
        }
    }
    stmt_prepare(c);
}

static void on_defer_stmt_begin(h2o_timeout_entry_t *entry)
{
    stmt_begin(H2O_STRUCT_FROM_MEMBER(db_conn_t, defer, entry));
}

int db_conn_execute(db_conn_t *c, const char *sql, size_t len, MYSQL_BIND *params, unsigned nparams, db_stmt_kind_t kind,
                    db_query_cb cb, void *data, const char **msg)
{
    if (c->broken) {
        *msg = "the database connection was lost";
        return DB_EUNAVAILABLE;
    }
    stmt_free_stored(c);
    c->sql = util_strndup(sql, len);
    c->sql_len = len;
    c->kind = kind;
    c->retried = 0;
    c->qcb = cb;
    c->qdata = data;
    c->prepared = 1;
    c->params = params;
    c->nparams = nparams;
    ++c->pool->queries;
    c->state = C_EXECUTE; /* from the next turn of the loop: no callback runs inside this call */
    c->defer.cb = on_defer_stmt_begin;
    h2o_timeout_link(c->pool->loop, &c->pool->ctx->zero_timeout, &c->defer);
    return 0;
}

void db_pool_abort(db_pool_t *pool, const char *why)
{
    char msg[sizeof(pool->errmsg)];
    snprintf(msg, sizeof(msg), "database unavailable (%s): %s", pool->name, why);
    log_warnf(pool->worker_id, "%s: its waiting and running statements fail now", msg);
    ++pool->epoch; /* a connection released from now on is pinged before it is idle again */
    fail_waiters(pool, DB_EUNAVAILABLE, msg);
    for (;;) {
        /* a callback may end or start statements: look again from the start after each (an aborted
         * connection is broken: no statement starts on it again, so each is failed once) */
        db_conn_t *c = NULL;
        for (h2o_linklist_t *l = pool->conns.next; l != &pool->conns; l = l->next) {
            db_conn_t *x = H2O_STRUCT_FROM_MEMBER(db_conn_t, all_link, l);
            if (x->qcb != NULL) {
                c = x;
                break;
            }
        }
        if (c == NULL)
            break;
        conn_stop(c);
        c->broken = 1;
        c->retrying = 0;
        c->state = C_LEASED;
        query_finish(c, DB_EUNAVAILABLE, msg, NULL);
    }
}

/* ---- one statement on a pooled connection, for the core's own checks ---- */

static void run_done(void *data, int err, const char *msg, db_result_t *result)
{
    db_run_t *r = data;
    if (err != DB_ECLOSED)
        db_conn_release(r->conn);
    if (r->cb != NULL && err != DB_ECLOSED)
        r->cb(r->data, err, msg, result);
    free(r->sql);
    free(r);
}

static void run_acquired(void *data, db_conn_t *conn, int err, const char *msg)
{
    db_run_t *r = data;
    if (err == 0) {
        r->conn = conn;
        if ((err = db_conn_query(conn, r->sql, strlen(r->sql), DB_STMT_READ, run_done, r, &msg)) == 0)
            return;
        db_conn_release(conn);
    }
    if (r->cb != NULL && err != DB_ECLOSED)
        r->cb(r->data, err, msg, NULL);
    free(r->sql);
    free(r);
}

int db_pool_run(db_pool_t *pool, const char *sql, void *data, db_query_cb cb, db_run_t **handle, const char **msg)
{
    db_run_t *r = util_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    r->data = data;
    r->cb = cb;
    r->sql = util_strdup(sql);
    db_conn_t *conn;
    int ret = db_pool_acquire(pool, &conn, run_acquired, r, msg);
    if (ret == 1) {
        r->conn = conn;
        ret = db_conn_query(conn, r->sql, strlen(r->sql), DB_STMT_READ, run_done, r, msg);
        if (ret != 0)
            db_conn_release(conn);
    }
    if (ret < 0) {
        free(r->sql);
        free(r);
        return ret;
    }
    if (handle != NULL)
        *handle = r;
    return 0;
}

void db_pool_run_cancel(db_run_t *handle)
{
    handle->cb = NULL;
}
