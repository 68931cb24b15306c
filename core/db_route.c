#include "db_route.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db_pool.h"
#include "form.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define CHECK_INTERVAL_MS 1000
/* A replica that does not answer its check within this is hung: its reads move to the primary */
#define CHECK_TIMEOUT_MS 1000
/* MariaDB 10.5.1+ and MySQL 8.0.22+; MySQL 8.4 no longer knows SHOW SLAVE STATUS */
#define DB_ROUTE_CHECK_SQL "SHOW REPLICA STATUS"

/* The worker's routing state (w->route), only with a replica. */
struct db_route {
    worker_t *w;
    int replica_ok;        /* the last check found the replica up and within REPLICA_MAX_LAG */
    int checking;          /* a check is running */
    h2o_timeout_t timeout; /* 1 s between checks */
    h2o_timeout_entry_t tick;
    h2o_timeout_t check_timeout; /* CHECK_TIMEOUT_MS for a check to answer */
    h2o_timeout_entry_t check_late;
    db_run_t *run; /* the check running */
};

static void set_replica_ok(worker_t *w, int ok, const char *why)
{
    if (w->route == NULL || ok == w->route->replica_ok)
        return;
    w->route->replica_ok = ok;
    if (ok)
        log_infof(w->id, "replica usable: reads go to the replica");
    else
        log_warnf(w->id, "replica not usable (%s): reads go to the primary", why);
}

void db_route_replica_failed(worker_t *w, const char *why)
{
    set_replica_ok(w, 0, why);
}

static void on_check_done(void *data, int err, const char *msg, db_result_t *result)
{
    worker_t *w = data;
    w->route->checking = 0;
    w->route->run = NULL;
    if (h2o_timeout_is_linked(&w->route->check_late))
        h2o_timeout_unlink(&w->route->check_late);
    if (err == DB_EQUERY) {
        /* no privilege to read the replication status: a server that answers is usable */
        set_replica_ok(w, 1, NULL);
        return;
    }
    if (err != 0) {
        set_replica_ok(w, 0, msg);
        return;
    }
    MYSQL_ROW row = mysql_fetch_row(result->res);
    if (row == NULL) {
        set_replica_ok(w, 1, NULL); /* not a replica (no replication configured): always current */
        return;
    }
    unsigned nf = mysql_num_fields(result->res);
    MYSQL_FIELD *f = mysql_fetch_fields(result->res);
    for (unsigned i = 0; i < nf; ++i) {
        /* MariaDB 10.11 keeps Seconds_Behind_Master in SHOW REPLICA STATUS; MySQL 8.4 names it
         * Seconds_Behind_Source */
        if (strcmp(f[i].name, "Seconds_Behind_Master") != 0 && strcmp(f[i].name, "Seconds_Behind_Source") != 0)
            continue;
        if (row[i] == NULL) {
            set_replica_ok(w, 0, "replication is stopped (the replica's lag is NULL)");
        } else if (atol(row[i]) > w->cfg->replica_max_lag_s) {
            char why[96];
            snprintf(why, sizeof(why), "lag %s s > REPLICA_MAX_LAG %d s", row[i], w->cfg->replica_max_lag_s);
            set_replica_ok(w, 0, why);
        } else {
            set_replica_ok(w, 1, NULL);
        }
        return;
    }
    set_replica_ok(w, 1, NULL);
}

/*
 * The check did not answer in time: the replica is hung (stopped, or its port black-holed). Reads
 * go to the primary, and those waiting or running on the replica fail there now, which moves them
 * to the primary too (db_api), rather than each waiting DB_TIMEOUT.
 */
static void on_check_late(h2o_timeout_entry_t *entry)
{
    struct db_route *r = H2O_STRUCT_FROM_MEMBER(struct db_route, check_late, entry);
    char why[96];
    snprintf(why, sizeof(why), "it did not answer its check within %d ms", CHECK_TIMEOUT_MS);
    set_replica_ok(r->w, 0, why);
    db_pool_abort(r->w->db_read, why); /* fails the check too, through on_check_done */
    if (r->checking) {
        db_pool_run_cancel(r->run);
        r->checking = 0;
        r->run = NULL;
    }
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    struct db_route *r = H2O_STRUCT_FROM_MEMBER(struct db_route, tick, entry);
    worker_t *w = r->w;
    if (!r->checking && !w->shutting_down) {
        const char *msg = NULL;
        if (db_pool_run(w->db_read, DB_ROUTE_CHECK_SQL, w, on_check_done, &r->run, &msg) == 0) {
            r->checking = 1;
            h2o_timeout_link(w->loop, &r->check_timeout, &r->check_late);
        } else {
            set_replica_ok(w, 0, msg);
        }
    }
    h2o_timeout_link(w->loop, &r->timeout, &r->tick);
}

void db_route_start(worker_t *w)
{
    if (w->db_read == NULL)
        return;
    struct db_route *r = util_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    r->w = w;
    h2o_timeout_init(w->loop, &r->timeout, CHECK_INTERVAL_MS);
    r->tick.cb = on_tick;
    h2o_timeout_init(w->loop, &r->check_timeout, CHECK_TIMEOUT_MS);
    r->check_late.cb = on_check_late;
    w->route = r;
    on_tick(&r->tick);
}

/* The MAC of a read-your-writes cookie for `expiry`, as 32 hex digits. */
static void mac_of(const worker_t *w, long long expiry, char out[33])
{
    char data[48];
    int n = snprintf(data, sizeof(data), "ryw:%lld", expiry);
    unsigned char md[UTIL_HMAC_SHA256_LEN];
    util_hmac_sha256(w->cfg->secret_key, data, (size_t)n, md);
    util_hex_encode(out, md, 16);
}

struct ryw_check {
    const worker_t *w;
    int valid;
};

/* A form_field_cb: stops at a valid, unexpired read-your-writes cookie. */
static int check_ryw_pair(void *p, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct ryw_check *c = p;
    if (nlen != sizeof(DB_ROUTE_COOKIE) - 1 || memcmp(name, DB_ROUTE_COOKIE, nlen) != 0)
        return 0;
    const char *dot = memchr(value, '.', vlen);
    if (dot == NULL || (size_t)(value + vlen - (dot + 1)) != 32)
        return 0;
    long long expiry = atoll(value);
    char mac[33];
    mac_of(c->w, expiry, mac);
    c->valid = expiry >= (long long)time(NULL) && CRYPTO_memcmp(mac, dot + 1, 32) == 0;
    return c->valid;
}

/* 1 when the request carries a valid, unexpired read-your-writes cookie. */
static int has_ryw_cookie(worker_t *w, h2o_req_t *req)
{
    struct ryw_check c = {w, 0};
    for (ssize_t i = -1; !c.valid && (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;)
        form_parse_cookies(req->headers.entries[i].value.base, req->headers.entries[i].value.len, check_ryw_pair, &c);
    return c.valid;
}

db_pool_t *db_route_read_pool(worker_t *w, h2o_req_t *req)
{
    if (w->db_read == NULL || w->route == NULL || !w->route->replica_ok)
        return w->db;
    if (req != NULL && w->cfg->read_your_writes_s > 0 && has_ryw_cookie(w, req))
        return w->db;
    return w->db_read;
}

const char *db_route_wrote(worker_t *w, h2o_req_t *req, char cookie[DB_ROUTE_COOKIE_MAX])
{
    if (w->db_read == NULL || w->cfg->read_your_writes_s == 0 || req == NULL)
        return NULL;
    ssize_t xfp = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-forwarded-proto"), -1);
    int secure = form_is_https(req->scheme == &H2O_URL_SCHEME_HTTPS, xfp >= 0 ? req->headers.entries[xfp].value.base : NULL,
                               xfp >= 0 ? req->headers.entries[xfp].value.len : 0);
    long long expiry = (long long)time(NULL) + w->cfg->read_your_writes_s;
    char mac[33];
    mac_of(w, expiry, mac);
    snprintf(cookie, DB_ROUTE_COOKIE_MAX, DB_ROUTE_COOKIE "=%lld.%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s", expiry, mac,
             w->cfg->read_your_writes_s, secure ? "; Secure" : "");
    return cookie;
}
