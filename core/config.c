#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_addr.h"
#include "util.h"

/* How a variable is read. */
enum var_kind {
    VAR_INT,    /* a whole decimal number in [min, max], stored times `scale` in an int field */
    VAR_SIZE,   /* the same in a size_t field */
    VAR_STR,    /* a string; unset or empty: the default (NULL: none) */
    VAR_SECRET, /* a string of at least `min` characters, wiped when freed */
    VAR_CHOICE, /* one of `choices`, stored as its index in an int field; unset: the first */
    VAR_DB,     /* read for each database endpoint by load_db (no config_t field) */
};

#define FIELD(f) offsetof(config_t, f)
#define NO_FIELD SIZE_MAX

/*
 * Every variable, in the order they are read and listed: the one table behind config_load,
 * `h2lua --help` and (checked by spec/e2e/config.test.mjs) the table of docs/configuration.md. A new variable is
 * one row here and, unless it is of a kind above, a line in config_load.
 */
static const struct config_var {
    const char *name;
    int kind;
    const char *def;   /* the default as text (NULL: none, or computed: see shown) */
    const char *shown; /* the default as --help shows it, when def does not say it */
    long min, max;     /* VAR_INT/VAR_SIZE: the range; VAR_SECRET: min is the least length */
    long scale;        /* VAR_INT: the field holds value * scale (seconds kept as milliseconds) */
    size_t field;
    const char *choices[4]; /* VAR_CHOICE: the values, in the order of the field's enum */
    const char *help;
} config_vars[] = {
    /* one variable a row */
    /* clang-format off */
    {"PORT", VAR_INT, "8080", NULL, 1, 65535, 1, FIELD(port), {0}, "TCP port to listen on"},
    {"HOST", VAR_STR, "0.0.0.0", NULL, 0, 0, 0, FIELD(host), {0}, "address to bind"},
    {"WORKERS", VAR_INT, NULL, "number of CPUs", 1, 256, 1, FIELD(workers), {0},
     "worker threads, each with its own event loop, socket and Lua state"},
    {"APP_ENV", VAR_CHOICE, "production", NULL, 0, 0, 0, FIELD(app_env), {"production", "development"},
     "production | development (tracebacks on error pages, random SECRET_KEY allowed)"},
    {"SECRET_KEY", VAR_SECRET, NULL, "required in production", 16, 0, 0, FIELD(secret_key), {0},
     "key for signed cookies and CSRF tokens, at least 16 characters"},
    {"LOG_FORMAT", VAR_CHOICE, "json", NULL, 0, 0, 0, FIELD(log_format), {"json", "text"},
     "json | text: format of the access and error logs"},
    {"LOG_LEVEL", VAR_CHOICE, "info", NULL, 0, 0, 0, FIELD(log_level), {"debug", "info", "warn", "error"},
     "debug | info | warn | error: least severe event line written (the core's and h2lua.log's)"},
    {"SCRIPTS_DIR", VAR_STR, "./scripts", NULL, 0, 0, 0, FIELD(scripts_dir), {0}, "the Lua application (app.lua and lib/)"},
    {"VIEWS_DIR", VAR_STR, "./views", NULL, 0, 0, 0, FIELD(views_dir), {0}, "the templates (*.etlua)"},
    {"STATIC_DIR", VAR_STR, NULL, "<VIEWS_DIR>/static", 0, 0, 0, FIELD(static_dir), {0}, "files served under /static/"},
    {"BOOTSTRAP_DIR", VAR_STR, "/usr/share/javascript/bootstrap5", NULL, 0, 0, 0, FIELD(bootstrap_dir), {0},
     "Bootstrap served under /static/bootstrap/"},
    {"MIGRATIONS_DIR", VAR_STR, "./db/migrations", NULL, 0, 0, 0, FIELD(migrations_dir), {0},
     "SQL migrations applied at start and by h2lua migrate"},
    {"TLS_CERT", VAR_STR, NULL, NULL, 0, 0, 0, FIELD(tls_cert), {0},
     "PEM certificate chain; with TLS_KEY serves HTTPS (HTTP/2 over ALPN with HTTP2=on)"},
    {"TLS_KEY", VAR_STR, NULL, NULL, 0, 0, 0, FIELD(tls_key), {0}, "PEM private key"},
    {"HSTS_MAX_AGE", VAR_INT, "31536000", NULL, 0, 63072000, 1, FIELD(hsts_max_age), {0},
     "seconds of Strict-Transport-Security on HTTPS responses (with TLS_CERT; 0: no header)"},
    {"HTTP2", VAR_CHOICE, "off", NULL, 0, 0, 0, FIELD(http2), {"off", "on"},
     "off | on: HTTP/2 (h2c and ALPN h2); off because libh2o 2.2.5 has no rapid-reset defence"},
    {"MAX_BODY", VAR_SIZE, "1048576", NULL, 1, 1L << 30, 1, FIELD(max_body), {0}, "largest request body in bytes (larger: 413)"},
    {"MAX_FORM_FIELDS", VAR_INT, "256", NULL, 1, 100000, 1, FIELD(max_form_fields), {0},
     "most fields in a form or query, or parts in a multipart/form-data body (more: 400)"},
    {"MAX_UPLOAD", VAR_SIZE, "1048576", NULL, 0, 1L << 30, 1, FIELD(max_upload), {0},
     "largest file in a multipart/form-data body in bytes (larger: 413; the body stays within MAX_BODY)"},
    {"MAX_HEADER_BYTES", VAR_INT, "8192", NULL, 1024, 1048576, 1, FIELD(max_header_bytes), {0},
     "largest request line plus headers in bytes (larger: 431; over 100 headers: 400)"},
    {"REQ_TIMEOUT", VAR_INT, "10", NULL, 1, 3600, 1000, FIELD(req_timeout_ms), {0},
     "seconds a client may take to send a request, and HTTP/2 idle timeout"},
    {"DRAIN_TIMEOUT", VAR_INT, "20", NULL, 0, 3600, 1000, FIELD(drain_timeout_ms), {0},
     "seconds to finish in-flight requests after SIGTERM"},
    {"LUA_TIMEOUT", VAR_INT, "10", NULL, 1, 3600, 1000, FIELD(lua_timeout_ms), {0},
     "seconds a worker may run Lua without returning to its loop; past it: logged, /healthz 503"},
    {"LUA_MEMORY_MAX", VAR_SIZE, "1024", NULL, 16, 1048576, 1048576, FIELD(lua_memory_max), {0},
     "megabytes each worker's Lua state may grow to while a handler runs (past it: that request 500)"},
    {"TIMERS_MAX", VAR_INT, "1024", NULL, 1, 1000000, 1, FIELD(timers_max), {0},
     "timers (h2lua.timer) pending or running per worker; beyond it: nil, \"too many pending timers\""},
    {"METRICS_TOKEN", VAR_SECRET, NULL, NULL, 16, 0, 0, FIELD(metrics_token), {0},
     "enables /metrics (Prometheus text) for requests with Authorization: Bearer <token>"},
    {"EMF_INTERVAL", VAR_INT, "60", NULL, 0, 86400, 1000, FIELD(emf_interval_ms), {0},
     "seconds between CloudWatch Embedded Metric Format lines on stdout (0: none)"},
    {"COMPRESS", VAR_CHOICE, "on", NULL, 0, 0, 0, FIELD(compress), {"on", "off"},
     "on | off: compress text responses of 1 KB or more for clients that accept it (brotli or gzip; static files once)"},
    {"COMPRESS_LEVEL", VAR_INT, "1", NULL, 1, 9, 1, FIELD(compress_level), {0},
     "gzip level of dynamic responses (static files get 9)"},
    {"WEBHOOK_URL", VAR_STR, NULL, NULL, 0, 0, 0, FIELD(webhook_url), {0},
     "http:// or https:// URL the entries app posts every change to (signed JSON events; unset: none)"},
    {"WEBHOOK_SECRET", VAR_SECRET, NULL, "required with WEBHOOK_URL", 16, 0, 0, FIELD(webhook_secret), {0},
     "key of the events' X-Webhook-Signature (HMAC-SHA256), at least 16 characters"},
    {"WEBHOOK_MAX_ATTEMPTS", VAR_INT, "12", NULL, 1, 1000, 1, FIELD(webhook_max_attempts), {0},
     "deliveries tried per event before it is given up (logged and counted)"},
    {"WEBHOOK_BACKOFF", VAR_INT, "2", NULL, 1, 3600, 1000, FIELD(webhook_backoff_ms), {0},
     "seconds before an event's first retry; doubled each retry, with jitter"},
    {"WEBHOOK_BACKOFF_MAX", VAR_INT, "300", NULL, 1, 86400, 1000, FIELD(webhook_backoff_max_ms), {0},
     "most seconds between two tries of an event"},
    {"DATABASE_URL", VAR_DB, NULL, NULL, 0, 0, 0, NO_FIELD, {0},
     "host, host:port or mysql://user:pass@host:port/name of the primary"},
    {"DATABASE_READ_URL", VAR_DB, NULL, NULL, 0, 0, 0, NO_FIELD, {0}, "the same for a read replica"},
    {"DATABASE_USERNAME", VAR_DB, "root", NULL, 0, 0, 0, NO_FIELD, {0}, "user, unless DATABASE_URL names one"},
    {"DATABASE_PASSWORD", VAR_DB, "", "empty", 0, 0, 0, NO_FIELD, {0}, "password, unless DATABASE_URL names one; never logged"},
    {"DATABASE_NAME", VAR_DB, "flaskcrud", NULL, 0, 0, 0, NO_FIELD, {0}, "database, unless DATABASE_URL names one"},
    {"DATABASE_PORT", VAR_DB, "3306", NULL, 1, 65535, 0, NO_FIELD, {0}, "port, unless DATABASE_URL names one"},
    {"DATABASE_TLS", VAR_CHOICE, "preferred", NULL, 0, 0, 0, FIELD(db_tls), {"off", "preferred", "required", "verify-identity"},
     "off | preferred (TLS when offered) | required | verify-identity (CA and host name)"},
    {"DATABASE_CA", VAR_STR, NULL, NULL, 0, 0, 0, FIELD(db_ca), {0},
     "PEM bundle of the CA that signs the database's certificate; needed by verify-identity"},
    {"HTTP_CLIENT_MAX", VAR_INT, "64", NULL, 1, 100000, 1, FIELD(http_client_max), {0},
     "outbound h2lua.http requests running at once per worker; beyond it: nil, \"too many outbound requests\""},
    {"DB_POOL_SIZE", VAR_INT, "8", NULL, 1, 1000, 1, FIELD(db_pool_size), {0}, "connections per worker to each database"},
    {"DB_QUEUE_MAX", VAR_INT, "1024", NULL, 0, 1000000, 1, FIELD(db_queue_max), {0},
     "queries waiting for a connection per worker; beyond it: 503 at once"},
    {"DB_TIMEOUT", VAR_INT, "5", NULL, 1, 3600, 1000, FIELD(db_timeout_ms), {0},
     "seconds a query may take (queueing included) before it fails with 503"},
    {"DB_CONNECT_TIMEOUT", VAR_INT, "3", NULL, 1, 600, 1000, FIELD(db_connect_timeout_ms), {0},
     "seconds to connect to the database"},
    {"DB_STMT_CACHE", VAR_INT, "64", NULL, 0, 100000, 1, FIELD(db_stmt_cache), {0},
     "prepared statements kept per database connection (0: statements sent as text)"},
    {"REPLICA_MAX_LAG", VAR_INT, "5", NULL, 0, 86400, 1, FIELD(replica_max_lag_s), {0},
     "seconds of replication lag past which reads go to the primary"},
    {"READ_YOUR_WRITES_S", VAR_INT, "5", NULL, 0, 86400, 1, FIELD(read_your_writes_s), {0},
     "seconds a client's reads go to the primary after its write (0: off)"},
    {"SHARED_STORES", VAR_STR, "limits:4m", NULL, 0, 0, 0, FIELD(shared_stores_spec), {0},
     "stores of h2lua.shared every worker sees: name:size[,name:size...], size in bytes or with k, m, g (e.g. cache:10m)"},
    {"TRUSTED_PROXIES", VAR_STR, NULL, "none", 0, 0, 0, FIELD(trusted_proxies_spec), {0},
     "CIDRs of the proxies whose X-Forwarded-For names the client (req.client_addr), e.g. 10.0.1.0/24,fd00::/8"},
    {"WRITE_LIMIT", VAR_STR, "120/60", NULL, 0, 0, 0, FIELD(write_limit_spec), {0},
     "the entries app's writes per client: N/SECONDS in each process (more: 429), or off"},
    /* clang-format on */
};

#define NVARS (sizeof(config_vars) / sizeof(config_vars[0]))

static const struct config_var *lookup(const char *name)
{
    for (size_t i = 0; i < NVARS; ++i)
        if (strcmp(config_vars[i].name, name) == 0)
            return &config_vars[i];
    return NULL;
}

static const struct config_var *find_var(const char *name)
{
    const struct config_var *v = lookup(name);
    if (v == NULL)
        abort(); /* a name that is not in the table is a bug of this file */
    return v;
}

const char *config_default(const char *name)
{
    const struct config_var *v = lookup(name);
    return v != NULL ? v->def : NULL;
}

void config_print_help(FILE *out)
{
    fprintf(out, "usage: h2lua [serve]     run the server\n"
                 "       h2lua migrate     apply db/ migrations and exit\n"
                 "       h2lua healthcheck GET /healthz on 127.0.0.1:$PORT; exit 0 when it answers 200\n"
                 "       h2lua --version | --help\n\n"
                 "Configuration is read from the environment; an invalid value exits with code 2.\n\n");
    fprintf(out, "%-20s %-34s %s\n", "variable", "default", "meaning");
    for (size_t i = 0; i < NVARS; ++i) {
        const struct config_var *v = &config_vars[i];
        const char *def = v->shown != NULL ? v->shown : v->def != NULL ? v->def : "none";
        fprintf(out, "%-20s %-34s %s", v->name, def, v->help);
        if (v->kind == VAR_INT || v->kind == VAR_SIZE || (v->kind == VAR_DB && v->max != 0))
            fprintf(out, " (%ld-%ld)", v->min, v->max);
        fputc('\n', out);
    }
}

/* Parses a whole decimal integer within [min, max]. Returns 0 or -1. */
static int parse_int(const char *s, long min, long max, long *out)
{
    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* The integer of v: its value in the environment, else def. Returns 0 or CONFIG_EINVAL. */
static int get_int(const char *(*getenv_fn)(const char *), const struct config_var *v, long def, long *out, char *errbuf,
                   size_t errlen)
{
    const char *s = getenv_fn(v->name);
    if (s == NULL || *s == '\0') {
        *out = def;
        return 0;
    }
    if (parse_int(s, v->min, v->max, out) != 0)
        return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s must be an integer from %ld to %ld, got '%.40s'", v->name, v->min,
                         v->max, s);
    return 0;
}

/* The string of v: a copy of its value in the environment, else of its default, else NULL. */
static char *get_str(const char *(*getenv_fn)(const char *), const struct config_var *v)
{
    const char *s = getenv_fn(v->name);
    if (s == NULL || *s == '\0')
        return v->def == NULL ? NULL : util_strdup(v->def);
    return util_strdup(s);
}

static void db_free(config_db_t *db)
{
    free(db->host);
    free(db->user);
    if (db->password != NULL)
        util_secure_free(db->password);
    free(db->name);
    memset(db, 0, sizeof(*db));
}

static void replace(char **slot, char *v)
{
    free(*slot);
    *slot = v;
}

/* Decodes %XX in [s, s+len) into a new string; NULL when an escape is malformed. */
static char *pct_dup(const char *s, size_t len)
{
    char *out = util_malloc(len + 1), *d = out;
    for (size_t i = 0; i < len; ++i) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len)
                goto Bad;
            if ((hi = util_hexval(s[i + 1])) < 0 || (lo = util_hexval(s[i + 2])) < 0)
                goto Bad;
            *d++ = (char)(hi << 4 | lo);
            i += 2;
        } else {
            *d++ = s[i];
        }
    }
    *d = '\0';
    return out;
Bad:
    free(out);
    return NULL;
}

/* Parses "host", "host:port" or "[v6]:port" in [s, s+len) into db. */
static int parse_hostport(config_db_t *db, const char *s, size_t len, const char *var, char *errbuf, size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t hostlen = len;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s: unterminated '[' in the host", var);
        host = s + 1;
        hostlen = (size_t)(close - host);
        if (close + 1 < s + len) {
            if (close[1] != ':')
                return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s: expected ':' after ']'", var);
            port = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon != NULL) {
            hostlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (hostlen == 0)
        return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s: the host is empty", var);
    for (size_t i = 0; i < hostlen; ++i) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':'))
            return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s: invalid character in the host name", var);
    }
    if (port != NULL) {
        char buf[8];
        size_t plen = (size_t)(s + len - port);
        long v;
        if (plen == 0 || plen >= sizeof(buf))
            return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s: the port must be an integer from 1 to 65535", var);
        memcpy(buf, port, plen);
        buf[plen] = '\0';
        if (parse_int(buf, 1, 65535, &v) != 0)
            return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s: the port must be an integer from 1 to 65535", var);
        db->port = (int)v;
    }
    replace(&db->host, util_strndup(host, hostlen));
    return 0;
}

int config_parse_db_url(config_db_t *db, const char *url, char *errbuf, size_t errlen)
{
    static const char var[] = "DATABASE_URL";
    size_t len = strlen(url);
    if (len == 0)
        return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s is empty", var);
    if (len > 2048)
        return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s is longer than 2048 characters", var);
    for (size_t i = 0; i < len; ++i)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
            return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s must not contain spaces or control characters", var);

    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return parse_hostport(db, url, len, var, errbuf, errlen);
    if (!((sep - url == 5 && strncmp(url, "mysql", 5) == 0) || (sep - url == 7 && strncmp(url, "mariadb", 7) == 0)))
        return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s must start with mysql:// (or be a host name)", var);

    const char *p = sep + 3, *end = url + len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *auth_end = slash != NULL ? slash : end;
    const char *query = memchr(p, '?', (size_t)(end - p));
    if (query != NULL && query < auth_end)
        auth_end = query;
    /* the last '@' before the path separates the credentials (a password may hold '@' unescaped) */
    const char *at = NULL;
    for (const char *q = p; q < auth_end; ++q)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        char *user = pct_dup(p, (size_t)((colon != NULL ? colon : at) - p));
        if (user == NULL)
            return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s: invalid %%-escape in the user name", var);
        replace(&db->user, user);
        if (colon != NULL) {
            char *pw = pct_dup(colon + 1, (size_t)(at - colon - 1));
            if (pw == NULL)
                return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s: invalid %%-escape in the password", var);
            if (db->password != NULL)
                util_secure_free(db->password);
            db->password = pw;
        }
        p = at + 1;
    }
    int ret = parse_hostport(db, p, (size_t)(auth_end - p), var, errbuf, errlen);
    if (ret != 0)
        return ret;
    if (slash != NULL) {
        const char *name = slash + 1;
        const char *name_end = query != NULL && query > slash ? query : end;
        if (name_end > name) {
            for (const char *q = name; q < name_end; ++q)
                if (!(isalnum((unsigned char)*q) || *q == '_' || *q == '$' || *q == '-'))
                    return util_fail(CONFIG_EINVAL, errbuf, errlen,
                                     "%s: the database name may hold only letters, digits, '_', '-' and '$'", var);
            replace(&db->name, util_strndup(name, (size_t)(name_end - name)));
        }
    }
    return 0;
}

const char *config_db_tls_name(int mode)
{
    const struct config_var *v = find_var("DATABASE_TLS");
    return mode >= 0 && mode <= CONFIG_DB_TLS_VERIFY_IDENTITY ? v->choices[mode] : "?";
}

/* DATABASE_CA goes with verify-identity. The bundle is read once here so that a wrong path or a file
 * that holds no certificate is a start-up error, not a failed connection later. */
static int check_db_tls(const config_t *cfg, char *errbuf, size_t errlen)
{
    if (cfg->db_ca == NULL) {
        if (cfg->db_tls == CONFIG_DB_TLS_VERIFY_IDENTITY)
            return util_fail(CONFIG_EINVAL, errbuf, errlen,
                             "DATABASE_CA is required with DATABASE_TLS=verify-identity (a PEM bundle of the CA that signs the "
                             "database's certificate, e.g. the RDS bundle)");
        return 0;
    }
    if (cfg->db_tls != CONFIG_DB_TLS_VERIFY_IDENTITY)
        return util_fail(CONFIG_EINVAL, errbuf, errlen,
                         "DATABASE_CA is used only with DATABASE_TLS=verify-identity (the CA and the host name are checked "
                         "together), got DATABASE_TLS=%s",
                         config_db_tls_name(cfg->db_tls));
    FILE *fp = fopen(cfg->db_ca, "rb");
    if (fp == NULL)
        return util_fail(CONFIG_EINVAL, errbuf, errlen, "DATABASE_CA must be a readable file, got '%.200s' (%s)", cfg->db_ca,
                         strerror(errno));
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    enum { HEAD = 65536 }; /* the first certificate of a bundle starts near its top */
    char *head = util_malloc(HEAD);
    size_t n = fread(head, 1, HEAD, fp);
    int found = memmem(head, n, begin, sizeof(begin) - 1) != NULL;
    free(head);
    fclose(fp);
    if (!found)
        return util_fail(CONFIG_EINVAL, errbuf, errlen, "DATABASE_CA must be a PEM bundle of certificates ('%s'), got '%.200s'",
                         begin, cfg->db_ca);
    return 0;
}

static int load_db(config_db_t *db, const char *(*getenv_fn)(const char *), const char *url_var, char *errbuf, size_t errlen)
{
    long port = 0;
    int ret;
    const struct config_var *port_var = find_var("DATABASE_PORT");
    if ((ret = get_int(getenv_fn, port_var, atol(port_var->def), &port, errbuf, errlen)) != 0)
        return ret;
    db->port = (int)port;
    db->user = get_str(getenv_fn, find_var("DATABASE_USERNAME"));
    db->password = get_str(getenv_fn, find_var("DATABASE_PASSWORD"));
    db->name = get_str(getenv_fn, find_var("DATABASE_NAME"));
    const char *url = getenv_fn(url_var);
    if (url == NULL || *url == '\0')
        return 0;
    if ((ret = config_parse_db_url(db, url, errbuf, errlen)) != 0) {
        /* name the variable that was actually read */
        if (strcmp(url_var, "DATABASE_URL") != 0 && strncmp(errbuf, "DATABASE_URL", 12) == 0) {
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "%s%s", url_var, errbuf + 12);
            snprintf(errbuf, errlen, "%s", tmp);
        }
        return ret;
    }
    return 0;
}

/* Reads the variable v into its field of cfg. Returns 0 or CONFIG_EINVAL. */
static int load_var(config_t *cfg, const struct config_var *v, const char *(*getenv_fn)(const char *), char *errbuf,
                    size_t errlen)
{
    void *field = (char *)cfg + v->field;
    const char *s = getenv_fn(v->name);
    long n = 0;
    int ret;
    switch (v->kind) {
    case VAR_INT:
    case VAR_SIZE: {
        long def = v->def != NULL ? atol(v->def) : 0;
        if (v->field == FIELD(workers)) {
            def = sysconf(_SC_NPROCESSORS_ONLN);
            def = def < v->min ? v->min : def > v->max ? v->max : def;
        }
        if ((ret = get_int(getenv_fn, v, def, &n, errbuf, errlen)) != 0)
            return ret;
        if (v->kind == VAR_SIZE)
            *(size_t *)field = (size_t)n * (size_t)v->scale;
        else
            *(int *)field = (int)(n * v->scale);
        return 0;
    }
    case VAR_STR:
    case VAR_SECRET:
        *(char **)field = get_str(getenv_fn, v);
        if (v->kind == VAR_SECRET && *(char **)field != NULL && strlen(*(char **)field) < (size_t)v->min)
            return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s must be at least %ld characters long", v->name, v->min);
        return 0;
    case VAR_CHOICE: {
        int n = 0;
        while (n < 4 && v->choices[n] != NULL)
            ++n;
        const char *want = s != NULL && *s != '\0' ? s : v->def;
        for (int i = 0; i < n; ++i) {
            if (strcmp(want, v->choices[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        char list[160] = "";
        for (int i = 0; i < n; ++i)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s'%s'",
                     i == 0       ? ""
                     : i == n - 1 ? " or "
                                  : ", ",
                     v->choices[i]);
        return util_fail(CONFIG_EINVAL, errbuf, errlen, "%s must be %s, got '%.40s'", v->name, list, s);
    }
    default: return 0; /* VAR_DB: load_db */
    }
}

int config_load(config_t *cfg, const char *(*getenv_fn)(const char *name), char *errbuf, size_t errlen)
{
    int ret;
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NVARS; ++i) {
        const struct config_var *v = &config_vars[i];
        if ((ret = load_var(cfg, v, getenv_fn, errbuf, errlen)) != 0)
            goto Error;
        if (v->field == FIELD(secret_key) && cfg->secret_key == NULL) {
            if (cfg->app_env == CONFIG_ENV_PRODUCTION) {
                ret = util_fail(CONFIG_EINVAL, errbuf, errlen,
                                "SECRET_KEY is required when APP_ENV=production (at least 16 characters)");
                goto Error;
            }
            cfg->secret_key = util_random_hex(32);
            cfg->secret_key_generated = 1;
        }
        if (v->field == FIELD(static_dir) && cfg->static_dir == NULL) {
            cfg->static_dir = util_malloc(strlen(cfg->views_dir) + sizeof("/static"));
            sprintf(cfg->static_dir, "%s/static", cfg->views_dir);
        }
    }

    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "%s is set but %s is not: give both or neither",
                        cfg->tls_cert != NULL ? "TLS_CERT" : "TLS_KEY", cfg->tls_cert != NULL ? "TLS_KEY" : "TLS_CERT");
        goto Error;
    }

    static const struct {
        const char *var;
        size_t off;
    } dirs[] = {{"SCRIPTS_DIR", offsetof(config_t, scripts_dir)}, {"VIEWS_DIR", offsetof(config_t, views_dir)}};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); ++i) {
        const char *dir = *(char **)((char *)cfg + dirs[i].off);
        if (access(dir, R_OK | X_OK) != 0) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "%s must be a readable directory, got '%.200s' (%s)", dirs[i].var,
                            dir, strerror(errno));
            goto Error;
        }
    }
    if (cfg->tls_cert != NULL) {
        if (access(cfg->tls_cert, R_OK) != 0) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "TLS_CERT must be a readable file, got '%.200s'", cfg->tls_cert);
            goto Error;
        }
        if (access(cfg->tls_key, R_OK) != 0) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "TLS_KEY must be a readable file, got '%.200s'", cfg->tls_key);
            goto Error;
        }
    }

    if (cfg->webhook_url != NULL) {
        if (strncmp(cfg->webhook_url, "http://", 7) != 0 && strncmp(cfg->webhook_url, "https://", 8) != 0) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "WEBHOOK_URL must start with http:// or https://, got '%.200s'",
                            cfg->webhook_url);
            goto Error;
        }
        if (cfg->webhook_secret == NULL) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen,
                            "WEBHOOK_SECRET is required when WEBHOOK_URL is set (at least 16 characters)");
            goto Error;
        }
    }
    if (cfg->webhook_backoff_max_ms < cfg->webhook_backoff_ms) {
        ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "WEBHOOK_BACKOFF_MAX must be at least WEBHOOK_BACKOFF (%d s), got %d s",
                        cfg->webhook_backoff_ms / 1000, cfg->webhook_backoff_max_ms / 1000);
        goto Error;
    }

    if ((ret = load_db(&cfg->db, getenv_fn, "DATABASE_URL", errbuf, errlen)) != 0)
        goto Error;
    if ((ret = load_db(&cfg->db_read, getenv_fn, "DATABASE_READ_URL", errbuf, errlen)) != 0)
        goto Error;
    if ((ret = check_db_tls(cfg, errbuf, errlen)) != 0)
        goto Error;
    if (cfg->shared_stores_spec != NULL && (ret = config_parse_shared_stores(cfg->shared_stores_spec, &cfg->shared_stores,
                                                                             &cfg->nshared_stores, errbuf, errlen)) != 0)
        goto Error;
    if ((ret = client_addr_parse_trust(cfg->trusted_proxies_spec, &cfg->trusted_proxies, errbuf, errlen)) != 0) {
        ret = CONFIG_EINVAL;
        goto Error;
    }
    if ((ret = config_parse_write_limit(cfg->write_limit_spec, &cfg->write_limit, &cfg->write_limit_window, errbuf, errlen)) !=
        0)
        goto Error;
    return 0;

Error:
    config_free(cfg);
    return ret;
}

void config_free(config_t *cfg)
{
    for (size_t i = 0; i < NVARS; ++i) {
        const struct config_var *v = &config_vars[i];
        if (v->kind != VAR_STR && v->kind != VAR_SECRET)
            continue;
        char **field = (char **)((char *)cfg + v->field);
        if (v->kind == VAR_SECRET && *field != NULL)
            util_secure_free(*field);
        else
            free(*field);
    }
    db_free(&cfg->db);
    db_free(&cfg->db_read);
    for (size_t i = 0; i < cfg->nshared_stores; ++i)
        free(cfg->shared_stores[i].name);
    free(cfg->shared_stores);
    client_addr_trust_free(&cfg->trusted_proxies);
    memset(cfg, 0, sizeof(*cfg));
}

static void free_stores(config_shared_store_t *list, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        free(list[i].name);
    free(list);
}

int config_parse_shared_stores(const char *spec, config_shared_store_t **out, size_t *n, char *errbuf, size_t errlen)
{
    static const char usage[] = "SHARED_STORES must be name:size[,name:size...] (a size in bytes, or with k, m or g)";
    config_shared_store_t *list = util_malloc(sizeof(*list) * CONFIG_SHARED_STORES_MAX);
    size_t count = 0;
    const char *p = spec;
    int ret = 0;
    for (;;) {
        const char *end = p + strcspn(p, ","), *colon = memchr(p, ':', (size_t)(end - p));
        if (colon == NULL) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "%s, got '%.80s'", usage, spec);
            break;
        }
        size_t nlen = (size_t)(colon - p);
        int good = nlen > 0 && nlen <= CONFIG_SHARED_STORE_NAME_MAX && !isdigit((unsigned char)p[0]);
        for (size_t i = 0; good && i < nlen; ++i)
            good = isalnum((unsigned char)p[i]) || p[i] == '_';
        if (!good) {
            ret = util_fail(
                CONFIG_EINVAL, errbuf, errlen,
                "SHARED_STORES: a store name is 1 to %d letters, digits or '_', not starting with a digit, got '%.*s'",
                CONFIG_SHARED_STORE_NAME_MAX, (int)(nlen > 80 ? 80 : nlen), p);
            break;
        }
        for (size_t i = 0; i < count && good; ++i)
            good = !(strlen(list[i].name) == nlen && memcmp(list[i].name, p, nlen) == 0);
        if (!good) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "SHARED_STORES: the store '%.*s' is declared twice", (int)nlen, p);
            break;
        }
        if (count == CONFIG_SHARED_STORES_MAX) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "SHARED_STORES: at most %d stores", CONFIG_SHARED_STORES_MAX);
            break;
        }
        /* the size: digits and one optional unit */
        const char *q = colon + 1;
        unsigned long long size = 0;
        int digits = 0, over = 0;
        for (; q < end && isdigit((unsigned char)*q); ++q, ++digits) {
            if (size > (ULLONG_MAX - 9) / 10)
                over = 1;
            else
                size = size * 10 + (unsigned long long)(*q - '0');
        }
        int shift = 0;
        static const char units[] = "kKmMgG";
        const char *unit = q < end && q + 1 == end ? memchr(units, *q, 6) : NULL;
        if (unit != NULL) {
            shift = 10 * (int)((unit - units) / 2 + 1);
            ++q;
        }
        if (digits == 0 || q != end) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen, "%s, got '%.*s' for '%.*s'", usage,
                            (int)(end - colon - 1 > 40 ? 40 : end - colon - 1), colon + 1, (int)nlen, p);
            break;
        }
        if (over || size > (unsigned long long)CONFIG_SHARED_STORE_MAX >> shift || (size << shift) < CONFIG_SHARED_STORE_MIN) {
            ret = util_fail(CONFIG_EINVAL, errbuf, errlen,
                            "SHARED_STORES: the size of '%.*s' must be from 16k to 16g, got '%.*s'", (int)nlen, p,
                            (int)(end - colon - 1 > 40 ? 40 : end - colon - 1), colon + 1);
            break;
        }
        list[count].name = util_strndup(p, nlen);
        list[count].size = (size_t)(size << shift);
        ++count;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    if (ret != 0) {
        free_stores(list, count);
        return ret;
    }
    *out = list;
    *n = count;
    return 0;
}

int config_parse_write_limit(const char *spec, int *limit, int *window, char *errbuf, size_t errlen)
{
    *limit = *window = 0;
    if (spec == NULL || strcmp(spec, "off") == 0)
        return 0;
    long n = 0, s = 0;
    const char *p = spec;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && n <= 1000000000L; ++p, ++digits)
        n = n * 10 + (*p - '0');
    int ok = digits > 0 && *p == '/';
    if (ok) {
        digits = 0;
        for (++p; *p >= '0' && *p <= '9' && s <= 1000000000L; ++p, ++digits)
            s = s * 10 + (*p - '0');
        ok = digits > 0 && *p == '\0';
    }
    if (!ok || n < 1 || n > 1000000 || s < 1 || s > 86400)
        return util_fail(
            CONFIG_EINVAL, errbuf, errlen,
            "WRITE_LIMIT must be N/SECONDS (N from 1 to 1000000 writes per SECONDS from 1 to 86400) or off, got '%.40s'", spec);
    *limit = (int)n;
    *window = (int)s;
    return 0;
}
