#include "db_route.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db_pool.h"
#include "log.h"
#include "lua_host.h"
#include "util.h"
#include "worker.h"

#define CHECK_INTERVAL_MS 1000
/* MariaDB 10.5.1+ and MySQL 8.0.22+; MySQL 8.4 no longer knows SHOW SLAVE STATUS */
#define DB_ROUTE_CHECK_SQL "SHOW REPLICA STATUS"

static void set_replica_ok(worker_t *w, int ok, const char *why)
{
    if (ok == w->replica_ok)
        return;
    w->replica_ok = ok;
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
    w->replica_checking = 0;
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

static void on_tick(h2o_timeout_entry_t *entry)
{
    worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, replica_tick, entry);
    if (!w->replica_checking && !w->shutting_down) {
        const char *msg = NULL;
        if (db_pool_run(w->db_read, DB_ROUTE_CHECK_SQL, w, on_check_done, NULL, &msg) == 0)
            w->replica_checking = 1;
        else
            set_replica_ok(w, 0, msg);
    }
    h2o_timeout_link(w->loop, &w->replica_timeout, &w->replica_tick);
}

void db_route_start(worker_t *w)
{
    if (w->db_read == NULL)
        return;
    h2o_timeout_init(w->loop, &w->replica_timeout, CHECK_INTERVAL_MS);
    w->replica_tick.cb = on_tick;
    on_tick(&w->replica_tick);
}

/* The MAC of a read-your-writes cookie for `expiry`, as 32 hex digits. */
static void mac_of(const worker_t *w, long long expiry, char out[33])
{
    char data[48];
    int n = snprintf(data, sizeof(data), "ryw:%lld", expiry);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    HMAC(EVP_sha256(), w->cfg->secret_key, (int)strlen(w->cfg->secret_key), (unsigned char *)data, (size_t)n, md, &mdlen);
    util_hex_encode(out, md, 16);
}

/* 1 when the request carries a valid, unexpired read-your-writes cookie. */
static int has_ryw_cookie(worker_t *w, h2o_req_t *req)
{
    static const char name[] = DB_ROUTE_COOKIE "=";
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        for (size_t off = 0; off + sizeof(name) - 1 < v.len; ++off) {
            if ((off != 0 && v.base[off - 1] != ' ' && v.base[off - 1] != ';') ||
                memcmp(v.base + off, name, sizeof(name) - 1) != 0)
                continue;
            const char *p = v.base + off + sizeof(name) - 1, *end = v.base + v.len;
            char value[64];
            size_t len = 0;
            while (p + len < end && p[len] != ';' && len < sizeof(value) - 1)
                ++len;
            memcpy(value, p, len);
            value[len] = '\0';
            char *dot = strchr(value, '.');
            if (dot == NULL || strlen(dot + 1) != 32)
                continue;
            long long expiry = atoll(value);
            char mac[33];
            mac_of(w, expiry, mac);
            if (expiry >= (long long)time(NULL) && CRYPTO_memcmp(mac, dot + 1, 32) == 0)
                return 1;
        }
    }
    return 0;
}

db_pool_t *db_route_read_pool(worker_t *w, lua_req_t *lr)
{
    if (w->db_read == NULL || !w->replica_ok)
        return w->db;
    h2o_req_t *req = lr != NULL ? lua_req_h2o(lr) : NULL;
    if (req != NULL && w->cfg->read_your_writes_s > 0 && has_ryw_cookie(w, req))
        return w->db;
    return w->db_read;
}

void db_route_wrote(worker_t *w, lua_req_t *lr)
{
    if (w->db_read == NULL || w->cfg->read_your_writes_s == 0)
        return;
    h2o_req_t *req = lua_req_h2o(lr);
    if (req == NULL)
        return;
    int secure = req->scheme == &H2O_URL_SCHEME_HTTPS;
    ssize_t xfp = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-forwarded-proto"), -1);
    if (xfp >= 0 && h2o_memis(req->headers.entries[xfp].value.base, req->headers.entries[xfp].value.len, H2O_STRLIT("https")))
        secure = 1;
    long long expiry = (long long)time(NULL) + w->cfg->read_your_writes_s;
    char mac[33], cookie[160];
    mac_of(w, expiry, mac);
    snprintf(cookie, sizeof(cookie), DB_ROUTE_COOKIE "=%lld.%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s", expiry, mac,
             w->cfg->read_your_writes_s, secure ? "; Secure" : "");
    lua_req_set_cookie(lr, cookie);
}
