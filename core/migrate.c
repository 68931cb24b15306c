#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <mysql.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db_tls.h"
#include "log.h"
#include "util.h"

#define LOCK_NAME "h2lua.migrations"

/* MIGRATE_TLS: the TLS settings do not fit the server (db_tls_is_config_error, db_tls_check);
 * MIGRATE_STOPPED: migrate_stop ended the attempt. */
enum { MIGRATE_RETRY = -1, MIGRATE_REFUSED = -2, MIGRATE_TLS = -3, MIGRATE_STOPPED = -4 };

/*
 * What migrate_stop tells the background thread, shared and guarded by stop_lock: `stopping`, the
 * eventfd `stop_fd` (readable once stopping; polled while connecting) and `abortable`, the
 * connection migrate_stop may shut down to end a wait (for the named lock, for an answer), NULL while
 * there is none or while a migration's statements run (a migration that has begun runs to its end
 * and is recorded: cut short it could be half applied and not recorded).
 */
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static int stopping;
static int stop_fd = -1;
static MYSQL *abortable;

static int is_stopping(void)
{
    pthread_mutex_lock(&stop_lock);
    int stop = stopping;
    pthread_mutex_unlock(&stop_lock);
    return stop;
}

/* Makes db the connection migrate_stop may shut down (NULL: none). Returns 0, or -1 when stopping. */
static int set_abortable(MYSQL *db)
{
    pthread_mutex_lock(&stop_lock);
    abortable = db;
    int stop = stopping;
    pthread_mutex_unlock(&stop_lock);
    return stop ? -1 : 0;
}

/*
 * mysql_real_connect without blocking past migrate_stop: the connection is made with Connector/C's
 * non-blocking calls, waiting in poll on its socket and on stop_fd (none in `h2lua migrate`).
 * DB_CONNECT_TIMEOUT bounds the connect; a DNS lookup inside it is not abortable. Returns db, or NULL
 * with the error on db, or NULL with *stopped set when migrate_stop came first. The connection then
 * works with the ordinary blocking calls.
 */
static MYSQL *connect_abortable(MYSQL *db, const config_t *cfg, int *stopped)
{
    MYSQL *ret = NULL;
    *stopped = 0;
    mysql_options(db, MYSQL_OPT_NONBLOCK, 0);
    int st = mysql_real_connect_start(&ret, db, db_tls_host(cfg, &cfg->db, cfg->db.host), cfg->db.user, cfg->db.password,
                                      cfg->db.name, (unsigned)cfg->db.port, NULL, CLIENT_MULTI_STATEMENTS);
    while (st != 0) {
        struct pollfd p[2] = {{mysql_get_socket(db), 0, 0}, {stop_fd, POLLIN, 0}};
        if (st & MYSQL_WAIT_READ)
            p[0].events |= POLLIN;
        if (st & MYSQL_WAIT_WRITE)
            p[0].events |= POLLOUT;
        if (st & MYSQL_WAIT_EXCEPT)
            p[0].events |= POLLPRI;
        int timeout = (st & MYSQL_WAIT_TIMEOUT) ? (int)mysql_get_timeout_value_ms(db) : -1;
        int n = poll(p, stop_fd >= 0 ? 2 : 1, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            n = 0;
        }
        if (stop_fd >= 0 && (p[1].revents & POLLIN)) {
            *stopped = 1;
            return NULL;
        }
        int ready = n == 0 ? MYSQL_WAIT_TIMEOUT : 0;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
            ready |= MYSQL_WAIT_READ;
        if (p[0].revents & POLLOUT)
            ready |= MYSQL_WAIT_WRITE;
        if (p[0].revents & POLLPRI)
            ready |= MYSQL_WAIT_EXCEPT;
        st = mysql_real_connect_cont(&ret, db, ready);
    }
    return ret;
}

static atomic_int migrations_done;

int migrate_is_done(void)
{
    return atomic_load(&migrations_done);
}

struct migration {
    char *name;
    char *sql;
    size_t len;
    char checksum[65];
};

static int is_migration_name(const char *n)
{
    size_t len = strlen(n);
    if (len < 10 || strcmp(n + len - 4, ".sql") != 0 || n[4] != '_')
        return 0;
    for (int i = 0; i < 4; ++i)
        if (n[i] < '0' || n[i] > '9')
            return 0;
    for (size_t i = 5; i < len - 4; ++i)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
            return 0;
    return 1;
}

static int cmp_migration(const void *a, const void *b)
{
    return strcmp(((const struct migration *)a)->name, ((const struct migration *)b)->name);
}

static void free_migrations(struct migration *m, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        free(m[i].name);
        free(m[i].sql);
    }
    free(m);
}

/* Reads and checksums every migration file, sorted by name. Returns the count or -1 (err set). */
static long read_migrations(const char *dir, struct migration **out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "MIGRATIONS_DIR '%s' cannot be read", dir);
        return -1;
    }
    size_t n = 0, cap = 16;
    struct migration *m = util_malloc(cap * sizeof(*m));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_migration_name(e->d_name))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        if (fp == NULL)
            continue;
        fseek(fp, 0, SEEK_END);
        long size = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        char *sql = util_malloc((size_t)size + 1);
        size_t got = fread(sql, 1, (size_t)size, fp);
        fclose(fp);
        sql[got] = '\0';
        if (n == cap)
            m = realloc(m, (cap *= 2) * sizeof(*m));
        if (m == NULL)
            util_malloc((size_t)-1);
        m[n].name = util_strdup(e->d_name);
        m[n].sql = sql;
        m[n].len = got;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen;
        EVP_Digest(sql, got, md, &mdlen, EVP_sha256(), NULL);
        util_hex_encode(m[n].checksum, md, mdlen);
        ++n;
    }
    closedir(d);
    qsort(m, n, sizeof(*m), cmp_migration);
    *out = m;
    return (long)n;
}

/* Runs one (possibly multi-statement) text, draining every result. Returns 0 or -1. */
static int exec_all(MYSQL *db, const char *sql, size_t len)
{
    if (mysql_real_query(db, sql, (unsigned long)len) != 0)
        return -1;
    int status;
    do {
        MYSQL_RES *res = mysql_store_result(db);
        if (res != NULL)
            mysql_free_result(res);
        else if (mysql_field_count(db) != 0)
            return -1;
    } while ((status = mysql_next_result(db)) == 0);
    return status > 0 ? -1 : 0;
}

/* The single value of a one-row query, copied into buf; returns 0 or -1. */
static int query_value(MYSQL *db, const char *sql, char *buf, size_t len)
{
    if (mysql_query(db, sql) != 0)
        return -1;
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL)
        return -1;
    MYSQL_ROW row = mysql_fetch_row(res);
    snprintf(buf, len, "%s", row != NULL && row[0] != NULL ? row[0] : "");
    mysql_free_result(res);
    return 0;
}

static int apply(const config_t *cfg, char *err, size_t errlen)
{
    struct migration *m = NULL;
    long n = read_migrations(cfg->migrations_dir, &m, err, errlen);
    if (n < 0)
        return MIGRATE_REFUSED;

    MYSQL *db = mysql_init(NULL);
    unsigned timeout = (unsigned)(cfg->db_connect_timeout_ms / 1000), rw = 60;
    db_tls_apply(db, cfg);
    mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &rw);
    mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &rw);
    mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    int ret = MIGRATE_RETRY, locked = 0, stopped;
    char value[128];
    char reason[512];
    if (connect_abortable(db, cfg, &stopped) == NULL) {
        if (stopped) {
            snprintf(err, errlen, "while connecting");
            ret = MIGRATE_STOPPED;
            goto Exit;
        }
        snprintf(err, errlen, "cannot connect to %s:%d: %s", cfg->db.host, cfg->db.port,
                 db_tls_describe_error(db, cfg, cfg->db.host, reason, sizeof(reason)));
        if (db_tls_is_config_error(db, cfg))
            ret = MIGRATE_TLS;
        goto Exit;
    }
    if (set_abortable(db) != 0) {
        snprintf(err, errlen, "once connected");
        ret = MIGRATE_STOPPED;
        goto Exit;
    }
    if (db_tls_check(db, cfg, reason, sizeof(reason)) != 0) {
        snprintf(err, errlen, "%s (%s:%d)", reason, cfg->db.host, cfg->db.port);
        ret = MIGRATE_TLS;
        goto Exit;
    }
    if (query_value(db, "SELECT GET_LOCK('" LOCK_NAME "', 60)", value, sizeof(value)) != 0 || strcmp(value, "1") != 0) {
        snprintf(err, errlen, "cannot take the lock '%s': %s", LOCK_NAME, mysql_errno(db) ? mysql_error(db) : "timeout");
        goto Exit;
    }
    locked = 1;
    static const char create[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                 " version VARCHAR(255) NOT NULL PRIMARY KEY,"
                                 " checksum CHAR(64) NOT NULL,"
                                 " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
                                 ") DEFAULT CHARSET=utf8mb4";
    if (exec_all(db, create, sizeof(create) - 1) != 0) {
        snprintf(err, errlen, "cannot create schema_migrations: %s", mysql_error(db));
        ret = MIGRATE_REFUSED;
        goto Exit;
    }
    int applied = 0;
    for (long i = 0; i < n; ++i) {
        char sql[512];
        snprintf(sql, sizeof(sql), "SELECT checksum FROM schema_migrations WHERE version = '%s'", m[i].name);
        if (mysql_query(db, sql) != 0) {
            snprintf(err, errlen, "cannot read schema_migrations: %s", mysql_error(db));
            goto Exit;
        }
        MYSQL_RES *res = mysql_store_result(db);
        MYSQL_ROW row = res != NULL ? mysql_fetch_row(res) : NULL;
        int known = row != NULL;
        int same = known && row[0] != NULL && strcmp(row[0], m[i].checksum) == 0;
        if (res != NULL)
            mysql_free_result(res);
        if (known) {
            if (!same) {
                snprintf(err, errlen,
                         "migration %s was edited after it was applied (its checksum differs from the one recorded in "
                         "schema_migrations); restore it and add a new migration instead",
                         m[i].name);
                ret = MIGRATE_REFUSED;
                goto Exit;
            }
            continue;
        }
        if (set_abortable(NULL) != 0) {
            snprintf(err, errlen, "before migration %s", m[i].name);
            ret = MIGRATE_STOPPED;
            goto Exit;
        }
        if (exec_all(db, m[i].sql, m[i].len) != 0) {
            snprintf(err, errlen, "migration %s failed: (%u) %s", m[i].name, mysql_errno(db), mysql_error(db));
            ret = MIGRATE_REFUSED;
            goto Exit;
        }
        snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations (version, checksum) VALUES ('%s', '%s')", m[i].name,
                 m[i].checksum);
        if (exec_all(db, sql, strlen(sql)) != 0) {
            snprintf(err, errlen, "cannot record migration %s: %s", m[i].name, mysql_error(db));
            goto Exit;
        }
        log_infof(-1, "migration %s applied", m[i].name);
        ++applied;
        set_abortable(db); /* stopping is seen before the next migration */
    }
    if (applied == 0)
        log_infof(-1, "migrations: the database is up to date (%ld known)", n);
    ret = 0;
Exit:
    set_abortable(NULL);
    if (ret == MIGRATE_STOPPED || is_stopping()) {
        /* the socket may be shut down: the server releases the lock with the connection */
        shutdown(mysql_get_socket(db), SHUT_RDWR);
        if (ret == MIGRATE_RETRY)
            ret = MIGRATE_STOPPED; /* what failed failed because of the stop */
    } else if (locked) {
        query_value(db, "SELECT RELEASE_LOCK('" LOCK_NAME "')", value, sizeof(value));
    }
    mysql_close(db);
    free_migrations(m, (size_t)n);
    return ret;
}

int migrate_run_once(const config_t *cfg)
{
    char err[1024];
    if (cfg->db.host == NULL) {
        log_errorf(-1, "DATABASE_URL is not set: nothing to migrate");
        return 1;
    }
    int ret = apply(cfg, err, sizeof(err));
    if (ret == MIGRATE_TLS) {
        log_errorf(-1, "invalid configuration: %s", err);
        return 2;
    }
    if (ret != 0) {
        log_errorf(-1, "migrations failed: %s", err);
        return 1;
    }
    return 0;
}

/* The background thread of migrate_start. */
static pthread_t migrate_tid;
static int migrate_running;

static void *migrate_thread(void *arg)
{
    const config_t *cfg = arg;
    unsigned delay = 1;
    for (;;) {
        char err[1024];
        int ret = apply(cfg, err, sizeof(err));
        if (ret == 0) {
            atomic_store(&migrations_done, 1);
            break;
        }
        if (ret == MIGRATE_STOPPED) {
            log_infof(-1, "migrations: stopped (%s)", err);
            break;
        }
        if (ret == MIGRATE_TLS) {
            /* a certificate that does not verify is a configuration error, not an outage: no retry
             * cures it, and serving 503 for ever would hide it */
            log_errorf(-1, "invalid configuration: %s", err);
            _exit(2);
        }
        log_errorf(-1, "migrations not applied, retrying in %u s: %s", delay, err);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += delay;
        pthread_mutex_lock(&stop_lock);
        while (!stopping && pthread_cond_timedwait(&stop_cond, &stop_lock, &until) == 0)
            ;
        int stop = stopping;
        pthread_mutex_unlock(&stop_lock);
        if (stop)
            break;
        delay = delay * 2 > 30 ? 30 : delay * 2;
    }
    return NULL;
}

void migrate_start(const config_t *cfg)
{
    if (cfg->db.host == NULL) {
        atomic_store(&migrations_done, 1);
        return;
    }
    mysql_library_init(0, NULL, NULL);
    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd < 0)
        log_warnf(-1, "migrations: no eventfd (%s): a stop waits for a connect under way", strerror(errno));
    pthread_create(&migrate_tid, NULL, migrate_thread, (void *)cfg);
    migrate_running = 1;
}

void migrate_stop(void)
{
    if (!migrate_running)
        return;
    pthread_mutex_lock(&stop_lock);
    stopping = 1;
    pthread_cond_signal(&stop_cond);
    if (stop_fd >= 0) {
        uint64_t one = 1;
        if (write(stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
            log_warnf(-1, "migrations: the stop could not be signalled (%s)", strerror(errno));
    }
    if (abortable != NULL)
        shutdown(mysql_get_socket(abortable), SHUT_RDWR); /* ends a wait for the lock or an answer */
    pthread_mutex_unlock(&stop_lock);
    pthread_join(migrate_tid, NULL);
    migrate_running = 0;
    if (stop_fd >= 0)
        close(stop_fd);
    stop_fd = -1;
}
