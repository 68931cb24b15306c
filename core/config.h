/*
 * config — the server's configuration, read from the environment and validated once at start.
 *
 * Every variable is described in one table (config.c) that also prints `h2lua --help`.
 * The configuration is built on the main thread before any worker starts and is read-only after;
 * workers share it without locks. Every thread that reads it (the workers, the migration thread, the
 * development watcher) is joined before server_run returns, so that main may then free it.
 */
#ifndef H2LUA_CONFIG_H
#define H2LUA_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client_addr.h"

enum { CONFIG_ENV_PRODUCTION = 0, CONFIG_ENV_DEVELOPMENT = 1 };
enum { CONFIG_LOG_JSON = 0, CONFIG_LOG_TEXT = 1 };
enum { CONFIG_COMPRESS_ON = 0, CONFIG_COMPRESS_OFF = 1 };
/* DATABASE_TLS, weakest first (what each means on a connection: core/db_tls.h). */
enum { CONFIG_DB_TLS_OFF = 0, CONFIG_DB_TLS_PREFERRED, CONFIG_DB_TLS_REQUIRED, CONFIG_DB_TLS_VERIFY_IDENTITY };

/* The DATABASE_TLS value of a CONFIG_DB_TLS_* mode ("off", "preferred", ...). Can't fail. */
const char *config_db_tls_name(int mode);

/* Error code of config_load: the environment holds an invalid value (the message names it). */
#define CONFIG_EINVAL (-22)

/* A MySQL endpoint as DATABASE_URL / DATABASE_READ_URL describe it. Strings are owned by config. */
typedef struct config_db {
    char *host;     /* host name or address; NULL when no database is configured */
    int port;       /* 3306 unless given */
    char *user;     /* may be "" */
    char *password; /* may be ""; never logged */
    char *name;     /* database name */
} config_db_t;

/* A store that SHARED_STORES declares (shared_store.h): its name (owned) and size in bytes. */
typedef struct config_shared_store {
    char *name;
    size_t size;
} config_shared_store_t;

#define CONFIG_SHARED_STORES_MAX 64
#define CONFIG_SHARED_STORE_NAME_MAX 64
#define CONFIG_SHARED_STORE_MIN ((size_t)16 << 10)
#define CONFIG_SHARED_STORE_MAX ((size_t)16 << 30)

typedef struct config {
    char *host; /* bind address */
    int port;
    int workers;
    int app_env;
    int log_format;
    int log_level; /* LOG_LEVEL: a LOG_* level of log.h (debug, info, warn, error) */
    char *secret_key;
    int secret_key_generated; /* 1 when SECRET_KEY was missing in development */
    char *scripts_dir;
    char *views_dir;
    char *static_dir;
    char *bootstrap_dir;
    char *migrations_dir;
    char *tls_cert;
    char *tls_key;
    int hsts_max_age; /* HSTS_MAX_AGE: seconds of Strict-Transport-Security on HTTPS responses; 0: none */
    int http2;        /* HTTP2=on: h2c (prior knowledge, Upgrade) and h2 over ALPN; off by default */
    size_t max_body;
    int max_form_fields; /* also the most parts of a multipart/form-data body */
    size_t max_upload;   /* MAX_UPLOAD: the largest file in a multipart/form-data body */
    int max_header_bytes;
    char *metrics_token;
    int emf_interval_ms;
    int compress;       /* CONFIG_COMPRESS_*: gzip text responses for clients that accept it */
    int compress_level; /* zlib level (1-9) of dynamic responses */
    int req_timeout_ms;
    int drain_timeout_ms;
    int lua_timeout_ms;         /* LUA_TIMEOUT: the watchdog's bound (lua_watchdog.h) */
    size_t lua_memory_max;      /* LUA_MEMORY_MAX in bytes: a Lua state's limit while a handler runs */
    int timers_max;             /* TIMERS_MAX: h2lua.timer timers pending or running per worker */
    config_db_t db;             /* the primary (writes) */
    config_db_t db_read;        /* the replica; host NULL when none */
    int db_tls;                 /* CONFIG_DB_TLS_*, for the primary and the replica */
    char *db_ca;                /* DATABASE_CA: PEM bundle path (verify-identity only), or NULL */
    char *webhook_url;          /* WEBHOOK_URL: where the entries app posts its events; NULL: none */
    char *webhook_secret;       /* WEBHOOK_SECRET: the events' HMAC key (set whenever webhook_url is) */
    int webhook_max_attempts;   /* tries per event before it is given up */
    int webhook_backoff_ms;     /* delay before the first retry, doubled each retry */
    int webhook_backoff_max_ms; /* the most delay between two tries */
    int http_client_max;
    int db_pool_size;
    int db_queue_max;
    int db_timeout_ms;
    int db_stmt_cache; /* DB_STMT_CACHE: prepared statements kept per connection, 0: text protocol */
    int db_connect_timeout_ms;
    int replica_max_lag_s;
    int read_your_writes_s;
    char *shared_stores_spec;             /* SHARED_STORES as given, or NULL */
    config_shared_store_t *shared_stores; /* parsed from it */
    size_t nshared_stores;
    char *trusted_proxies_spec;          /* TRUSTED_PROXIES as given, or NULL */
    client_addr_trust_t trusted_proxies; /* parsed from it; none: the peer is always the client */
    char *write_limit_spec;              /* WRITE_LIMIT as given */
    int write_limit;                     /* the entries app's writes per client per window; 0: off */
    int write_limit_window;              /* that window in seconds; 0: off */
} config_t;

/*
 * Fills *cfg from the environment through `getenv_fn` (getenv in production, a table in tests).
 * Returns 0, or CONFIG_EINVAL with one line for people in errbuf naming the variable and what is
 * expected ("PORT must be an integer from 1 to 65535, got 'abc'"). On failure cfg holds nothing
 * that needs freeing. Out of memory aborts.
 */
int config_load(config_t *cfg, const char *(*getenv_fn)(const char *name), char *errbuf, size_t errlen);

/* Frees what config_load allocated. Safe on a zeroed config. */
void config_free(config_t *cfg);

/* The default of variable `name` as the table gives it ("8080" for PORT), or NULL when it has
 * none or is not a variable. Static storage. */
const char *config_default(const char *name);

/* Prints the usage and the table of variables with their defaults. Can't fail. */
void config_print_help(FILE *out);

/*
 * Parses a DATABASE_URL value into *db: either "host", "host:port", "[v6addr]:port", or
 * "mysql://user:pass@host:port/name" (user, pass, port and name optional; %XX decoded in user and
 * pass). Fields the URL does not give keep the values already in *db. Returns 0 or CONFIG_EINVAL
 * with a message (which never contains the password) in errbuf.
 */
int config_parse_db_url(config_db_t *db, const char *url, char *errbuf, size_t errlen);

/*
 * Parses a SHARED_STORES value, "name:size[,name:size...]" (a size in bytes, or with k, m or g:
 * KiB, MiB, GiB), into a new array of *n stores. Names are letters, digits and '_', not starting
 * with a digit, at most CONFIG_SHARED_STORE_NAME_MAX bytes, each declared once; sizes from
 * CONFIG_SHARED_STORE_MIN to CONFIG_SHARED_STORE_MAX; at most CONFIG_SHARED_STORES_MAX stores.
 * Returns 0, or CONFIG_EINVAL with one line naming SHARED_STORES in errbuf (and nothing to free).
 */
int config_parse_shared_stores(const char *spec, config_shared_store_t **out, size_t *n, char *errbuf, size_t errlen);

/*
 * Parses a WRITE_LIMIT value: "N/SECONDS" (N from 1 to 1000000, SECONDS from 1 to 86400) into
 * *limit and *window, or "off" (or NULL) into 0 and 0. Returns 0, or CONFIG_EINVAL with one line
 * naming WRITE_LIMIT in errbuf.
 */
int config_parse_write_limit(const char *spec, int *limit, int *window, char *errbuf, size_t errlen);

#endif
