#include "db_pool.h"

#include <arpa/inet.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "db_tls.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000

enum conn_state { C_RESOLVING, C_CONNECTING, C_IDLE, C_LEASED, C_QUERY, C_STORE };

struct db_conn {
    db_pool_t *pool;
    enum conn_state state;
    int broken;
    int in_tx;
    int write_armed;
    int wait_status;
    MYSQL *mysql;
    h2o_socket_t *sock; /* a dup of the connection's fd, watched by the loop */
    h2o_hostinfo_getaddr_req_t *getaddr;
    h2o_linklist_t idle_link;
    h2o_timeout_entry_t timeout;
    h2o_timeout_entry_t defer; /* runs a step on the next loop turn, never inside the caller's call */
    db_query_cb qcb;
    void *qdata;
    char *sql;
    size_t sql_len;
    MYSQL_RES *res;
    MYSQL *cret;
    int iret;
    char addr[INET6_ADDRSTRLEN];
};

struct waiter {
    h2o_linklist_t link;
    db_pool_t *pool;
    db_acquire_cb cb;
    void *data;
    h2o_timeout_entry_t timeout;
};

struct db_pool {
    worker_t *w;
    const config_db_t *db;
    const config_t *cfg;
    const char *name;
    h2o_linklist_t idle;
    h2o_linklist_t waiters;
    unsigned nconns, nconnecting, nwaiting, nin_use;
    h2o_timeout_t query_timeout, connect_timeout;
    uint64_t down_until, backoff_ms;
    char errmsg[600];
    uint64_t errors, queries;
};

struct db_run {
    void *data;
    db_query_cb cb;
    db_conn_t *conn;
    char *sql;
};

static void conn_open(db_pool_t *pool);
static void conn_close(db_conn_t *c);
static void conn_available(db_conn_t *c);
static void step(db_conn_t *c, int ready);

db_pool_t *db_pool_create(worker_t *w, const config_db_t *db, const char *name)
{
    db_pool_t *pool = util_malloc(sizeof(*pool));
    memset(pool, 0, sizeof(*pool));
    pool->w = w;
    pool->db = db;
    pool->cfg = w->cfg;
    pool->name = name;
    h2o_linklist_init_anchor(&pool->idle);
    h2o_linklist_init_anchor(&pool->waiters);
    h2o_timeout_init(w->loop, &pool->query_timeout, (uint64_t)w->cfg->db_timeout_ms);
    h2o_timeout_init(w->loop, &pool->connect_timeout, (uint64_t)w->cfg->db_connect_timeout_ms);
    pool->backoff_ms = BACKOFF_MIN_MS;
    return pool;
}

void db_pool_close(db_pool_t *pool)
{
    while (!h2o_linklist_is_empty(&pool->idle))
        conn_close(H2O_STRUCT_FROM_MEMBER(db_conn_t, idle_link, pool->idle.next));
    /* leased connections belong to requests that the drain timeout abandoned: left to process exit */
    h2o_timeout_dispose(pool->w->loop, &pool->query_timeout);
    h2o_timeout_dispose(pool->w->loop, &pool->connect_timeout);
    free(pool);
}

void db_pool_get_stats(db_pool_t *pool, db_pool_stats_t *stats)
{
    stats->open = pool->nconns;
    stats->in_use = pool->nin_use;
    stats->waiting = pool->nwaiting;
    stats->errors = pool->errors;
    stats->queries = pool->queries;
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

/* Errors after which the connection cannot be trusted, and the server may be gone. */
static int is_connection_error(unsigned err)
{
    return (err >= 2000 && err < 3000) || err == ER_SERVER_SHUTDOWN || err == ER_CONNECTION_KILLED ||
           err == ER_QUERY_INTERRUPTED;
}

/* Errors that a retry may cure: the request answers 503, not 500. */
static int is_transient_error(unsigned err)
{
    return is_connection_error(err) || err == ER_LOCK_DEADLOCK || err == ER_LOCK_WAIT_TIMEOUT ||
           err == ER_CON_COUNT_ERROR || err == ER_TOO_MANY_USER_CONNECTIONS || err == 1290 /* --read-only */;
}

static void fail_waiters(db_pool_t *pool, const char *msg)
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
        cb(data, NULL, DB_EUNAVAILABLE, msg);
    }
}

/* The server seems gone: close idle connections (they are stale) and back off before connecting. */
static void server_down(db_pool_t *pool, const char *why)
{
    snprintf(pool->errmsg, sizeof(pool->errmsg), "database unavailable (%s): %s", pool->name, why);
    uint64_t now = h2o_now(pool->w->loop);
    if (pool->down_until < now)
        log_warnf(pool->w->id, "%s; retrying in %llu ms", pool->errmsg, (unsigned long long)pool->backoff_ms);
    pool->down_until = now + pool->backoff_ms;
    pool->backoff_ms = pool->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pool->backoff_ms * 2;
    while (!h2o_linklist_is_empty(&pool->idle))
        conn_close(H2O_STRUCT_FROM_MEMBER(db_conn_t, idle_link, pool->idle.next));
}

/* ---- socket watching ---- */

static void disarm(db_conn_t *c)
{
    if (c->sock != NULL && h2o_socket_is_reading(c->sock))
        h2o_socket_read_stop(c->sock);
    c->wait_status = 0;
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    db_conn_t *c = sock->data;
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
    if (c->sock == NULL) {
        int fd = dup(mysql_get_socket(c->mysql));
        if (fd < 0) {
            c->broken = 1;
            return;
        }
        c->sock = h2o_evloop_socket_create(c->pool->w->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        c->sock->data = c;
    }
    c->wait_status = status;
    if (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))
        h2o_socket_read_start(c->sock, on_readable);
    if ((status & MYSQL_WAIT_WRITE) && !c->write_armed) {
        c->write_armed = 1;
        h2o_socket_notify_write(c->sock, on_writable);
    }
}

/* ---- connecting ---- */

static void connect_failed(db_conn_t *c, const char *why)
{
    db_pool_t *pool = c->pool;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", why);
    conn_close(c);
    server_down(pool, msg);
    if (pool->nconns == 0)
        fail_waiters(pool, pool->errmsg);
}

static void connect_done(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    --pool->nconnecting;
    if (c->cret == NULL) {
        char why[256], reason[192];
        snprintf(why, sizeof(why), "connect to %s:%d failed: %s", c->addr, pool->db->port,
                 db_tls_describe_error(c->mysql, pool->cfg, pool->db->host, reason, sizeof(reason)));
        ++pool->nconnecting; /* conn_close counts it down */
        connect_failed(c, why);
        return;
    }
    if (pool->down_until != 0)
        log_infof(pool->w->id, "database %s is back (%s:%d)", pool->name, c->addr, pool->db->port);
    pool->down_until = 0;
    pool->backoff_ms = BACKOFF_MIN_MS;
    c->state = C_LEASED;
    ++pool->nin_use;
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
    c->mysql = mysql_init(NULL);
    if (c->mysql == NULL)
        util_malloc((size_t)-1); /* the one out-of-memory path */
    mysql_options(c->mysql, MYSQL_OPT_NONBLOCK, 0);
    db_tls_apply(c->mysql, pool->cfg);
    mysql_options(c->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(c->mysql, MYSQL_INIT_COMMAND,
                  "SET time_zone='+00:00', sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
                  "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'");
    int st = mysql_real_connect_start(&c->cret, c->mysql, db_tls_host(pool->cfg, db, c->addr), db->user, db->password,
                                      db->name, (unsigned)db->port, NULL, 0);
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

static void conn_open(db_pool_t *pool)
{
    db_conn_t *c = util_malloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->pool = pool;
    c->state = C_RESOLVING;
    ++pool->nconns;
    ++pool->nconnecting;
    c->timeout.cb = on_connect_timeout;
    h2o_timeout_link(pool->w->loop, &pool->connect_timeout, &c->timeout);
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, pool->db->host, &a4) == 1 || inet_pton(AF_INET6, pool->db->host, &a6) == 1) {
        snprintf(c->addr, sizeof(c->addr), "%s", pool->db->host);
        c->defer.cb = on_defer_connect;
        h2o_timeout_link(pool->w->loop, &pool->w->ctx.zero_timeout, &c->defer);
        return;
    }
    /* resolved again on every connect: a failover moves the address behind the name */
    char port[8];
    snprintf(port, sizeof(port), "%d", pool->db->port);
    c->getaddr = h2o_hostinfo_getaddr(&pool->w->ctx.receivers.hostinfo_getaddr,
                                      h2o_iovec_init(pool->db->host, strlen(pool->db->host)), h2o_iovec_init(port, strlen(port)),
                                      AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP, AI_ADDRCONFIG | AI_NUMERICSERV, on_resolved, c);
}

static void conn_close(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    if (c->getaddr != NULL)
        h2o_hostinfo_getaddr_cancel(c->getaddr);
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    if (h2o_timeout_is_linked(&c->defer))
        h2o_timeout_unlink(&c->defer);
    if (h2o_linklist_is_linked(&c->idle_link))
        h2o_linklist_unlink(&c->idle_link);
    if (c->state == C_RESOLVING || c->state == C_CONNECTING)
        --pool->nconnecting;
    else if (c->state != C_IDLE)
        --pool->nin_use;
    if (c->sock != NULL) {
        disarm(c);
        h2o_socket_close(c->sock);
    }
    if (c->res != NULL)
        mysql_free_result(c->res);
    if (c->mysql != NULL) {
        /* a broken connection may not answer: shut the socket so mysql_close cannot wait on it */
        if (c->broken || c->state != C_IDLE)
            shutdown(mysql_get_socket(c->mysql), SHUT_RDWR);
        mysql_close(c->mysql);
    }
    free(c->sql);
    --pool->nconns;
    free(c);
}

/* ---- handing out connections ---- */

/* A leased connection became free: give it to the oldest waiter, or make it idle. */
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
        cb(data, c, 0, NULL);
        return;
    }
    c->state = C_IDLE;
    --pool->nin_use;
    h2o_linklist_insert(&pool->idle, &c->idle_link);
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
    if (!h2o_linklist_is_empty(&pool->idle)) {
        /* the most recently used first: its socket is the least likely to have gone stale */
        db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, idle_link, pool->idle.prev);
        h2o_linklist_unlink(&c->idle_link);
        c->state = C_LEASED;
        ++pool->nin_use;
        *conn = c;
        return 1;
    }
    uint64_t now = h2o_now(pool->w->loop);
    if (now < pool->down_until && pool->nconns == 0) {
        ++pool->errors;
        *msg = pool->errmsg;
        return DB_EUNAVAILABLE;
    }
    if (pool->nwaiting >= (unsigned)pool->cfg->db_queue_max) {
        ++pool->errors;
        snprintf(pool->errmsg, sizeof(pool->errmsg), "too many queries waiting for a %s database connection (%d)",
                 pool->name, pool->cfg->db_queue_max);
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
    h2o_timeout_link(pool->w->loop, &pool->query_timeout, &wt->timeout);
    ++pool->nwaiting;
    if (pool->nconns < (unsigned)pool->cfg->db_pool_size && pool->nconnecting < pool->nwaiting && now >= pool->down_until)
        conn_open(pool);
    return 0;
}

void db_conn_release(db_conn_t *c)
{
    if (c->broken || c->in_tx || c->state != C_LEASED) {
        conn_close(c);
        return;
    }
    conn_available(c);
}

/* ---- queries ---- */

static void query_finish(db_conn_t *c, int err, const char *msg, db_result_t *result)
{
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    free(c->sql);
    c->sql = NULL;
    if (c->state == C_QUERY || c->state == C_STORE)
        c->state = C_LEASED;
    if (err != 0)
        ++c->pool->errors;
    db_query_cb cb = c->qcb;
    void *data = c->qdata;
    c->qcb = NULL;
    cb(data, err, msg, result);
}

static void query_error(db_conn_t *c)
{
    unsigned err = mysql_errno(c->mysql);
    char msg[400];
    snprintf(msg, sizeof(msg), "(%u) %s", err, mysql_error(c->mysql));
    if (is_connection_error(err)) {
        c->broken = 1;
        disarm(c);
        server_down(c->pool, msg);
    }
    query_finish(c, is_transient_error(err) ? DB_EUNAVAILABLE : DB_EQUERY, msg, NULL);
}

static void on_query_timeout(h2o_timeout_entry_t *entry)
{
    db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, timeout, entry);
    char msg[128];
    snprintf(msg, sizeof(msg), "the %s database did not answer within %d s", c->pool->name,
             c->pool->cfg->db_timeout_ms / 1000);
    c->broken = 1;
    disarm(c);
    query_finish(c, DB_EUNAVAILABLE, msg, NULL);
}

static void query_sent(db_conn_t *c)
{
    if (c->iret != 0) {
        query_error(c);
        return;
    }
    if (mysql_field_count(c->mysql) == 0) {
        db_result_t r = {NULL, mysql_affected_rows(c->mysql), mysql_insert_id(c->mysql)};
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
    case C_QUERY:
        if ((st = mysql_real_query_cont(&c->iret, c->mysql, ready)) != 0)
            arm(c, st);
        else
            query_sent(c);
        break;
    case C_STORE:
        if (ready != 0 && (st = mysql_store_result_cont(&c->res, c->mysql, ready)) != 0) {
            arm(c, st);
            break;
        }
        if (c->res == NULL) {
            query_error(c);
        } else {
            db_result_t r = {c->res, 0, 0};
            c->res = NULL;
            query_finish(c, 0, NULL, &r);
            mysql_free_result(r.res);
        }
        break;
    default:
        break;
    }
}

static void on_defer_query_sent(h2o_timeout_entry_t *entry)
{
    query_sent(H2O_STRUCT_FROM_MEMBER(db_conn_t, defer, entry));
}

int db_conn_query(db_conn_t *c, const char *sql, size_t len, db_query_cb cb, void *data, const char **msg)
{
    if (c->broken) {
        *msg = "the database connection was lost";
        return DB_EUNAVAILABLE;
    }
    c->sql = util_strndup(sql, len);
    c->sql_len = len;
    c->qcb = cb;
    c->qdata = data;
    c->state = C_QUERY;
    c->timeout.cb = on_query_timeout;
    h2o_timeout_link(c->pool->w->loop, &c->pool->query_timeout, &c->timeout);
    ++c->pool->queries;
    int st = mysql_real_query_start(&c->iret, c->mysql, c->sql, (unsigned long)len);
    if (st != 0) {
        arm(c, st);
        return 0;
    }
    /* finished at once: report from the loop, never from inside this call */
    c->defer.cb = on_defer_query_sent;
    h2o_timeout_link(c->pool->w->loop, &c->pool->w->ctx.zero_timeout, &c->defer);
    return 0;
}

/* ---- one statement on a pooled connection, for the core's own checks ---- */

static void run_done(void *data, int err, const char *msg, db_result_t *result)
{
    db_run_t *r = data;
    db_conn_release(r->conn);
    if (r->cb != NULL)
        r->cb(r->data, err, msg, result);
    free(r->sql);
    free(r);
}

static void run_acquired(void *data, db_conn_t *conn, int err, const char *msg)
{
    db_run_t *r = data;
    if (err == 0) {
        r->conn = conn;
        if ((err = db_conn_query(conn, r->sql, strlen(r->sql), run_done, r, &msg)) == 0)
            return;
        db_conn_release(conn);
    }
    if (r->cb != NULL)
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
        ret = db_conn_query(conn, r->sql, strlen(r->sql), run_done, r, msg);
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
