#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* One row of `h2lua --help` and of the README's table. */
static const struct config_var {
    const char *name;
    const char *def;
    const char *help;
} config_vars[] = {
    {"PORT", "8080", "TCP port to listen on"},
    {"HOST", "0.0.0.0", "address to bind"},
    {"WORKERS", "number of CPUs", "worker threads, each with its own event loop, socket and Lua state (1-256)"},
    {"APP_ENV", "production", "production | development (tracebacks on error pages, random SECRET_KEY allowed)"},
    {"SECRET_KEY", "(required in production)", "key for signed cookies and CSRF tokens, at least 16 characters"},
    {"LOG_FORMAT", "json", "json | text: format of the access and error logs"},
    {"SCRIPTS_DIR", "./scripts", "the Lua application (app.lua and lib/)"},
    {"VIEWS_DIR", "./views", "the templates (*.etlua)"},
    {"STATIC_DIR", "<VIEWS_DIR>/static", "files served under /static/"},
    {"BOOTSTRAP_DIR", "/usr/share/javascript/bootstrap5", "Bootstrap served under /static/bootstrap/"},
    {"MIGRATIONS_DIR", "./db/migrations", "SQL migrations applied at start and by h2lua migrate"},
    {"TLS_CERT", "(none)", "PEM certificate chain; with TLS_KEY serves HTTPS (HTTP/2 over ALPN with HTTP2=on)"},
    {"TLS_KEY", "(none)", "PEM private key"},
    {"HTTP2", "off", "off | on: HTTP/2 (h2c and ALPN h2); off because libh2o 2.2.5 has no rapid-reset defence"},
    {"MAX_BODY", "1048576", "largest request body in bytes (larger: 413)"},
    {"MAX_FORM_FIELDS", "256", "most fields in a form or query (more: 400)"},
    {"MAX_HEADER_BYTES", "8192", "largest request line plus headers in bytes (larger: 431; over 100 headers: 400)"},
    {"REQ_TIMEOUT", "10", "seconds a client may take to send a request, and HTTP/2 idle timeout"},
    {"DRAIN_TIMEOUT", "20", "seconds to finish in-flight requests after SIGTERM"},
    {"METRICS_TOKEN", "(none)", "enables /metrics (Prometheus text) for requests with Authorization: Bearer <token>"},
    {"EMF_INTERVAL", "60", "seconds between CloudWatch Embedded Metric Format lines on stdout (0: none)"},
    {"DATABASE_URL", "(none)", "host, host:port or mysql://user:pass@host:port/name of the primary"},
    {"DATABASE_READ_URL", "(none)", "the same for a read replica"},
    {"DATABASE_USERNAME", "root", "user, unless DATABASE_URL names one"},
    {"DATABASE_PASSWORD", "(empty)", "password, unless DATABASE_URL names one; never logged"},
    {"DATABASE_NAME", "flaskcrud", "database, unless DATABASE_URL names one"},
    {"DATABASE_PORT", "3306", "port, unless DATABASE_URL names one"},
    {"DATABASE_TLS", "preferred", "off | preferred (TLS when offered) | required | verify-identity (CA and host name)"},
    {"DATABASE_CA", "(none)", "PEM bundle of the CA that signs the database's certificate; needed by verify-identity"},
    {"DB_POOL_SIZE", "8", "connections per worker to each database (1-1000)"},
    {"DB_QUEUE_MAX", "1024", "queries waiting for a connection per worker; beyond it: 503 at once"},
    {"DB_TIMEOUT", "5", "seconds a query may take (queueing included) before it fails with 503"},
    {"DB_CONNECT_TIMEOUT", "3", "seconds to connect to the database"},
    {"REPLICA_MAX_LAG", "5", "seconds of replication lag past which reads go to the primary"},
    {"READ_YOUR_WRITES_S", "5", "seconds a client's reads go to the primary after its write (0: off)"},
};

void config_print_help(FILE *out)
{
    fprintf(out, "usage: h2lua [serve]     run the server\n"
                 "       h2lua migrate     apply db/ migrations and exit\n"
                 "       h2lua healthcheck GET /healthz on 127.0.0.1:$PORT; exit 0 when it answers 200\n"
                 "       h2lua --version | --help\n\n"
                 "Configuration is read from the environment; an invalid value exits with code 2.\n\n");
    fprintf(out, "%-20s %-34s %s\n", "variable", "default", "meaning");
    for (size_t i = 0; i < sizeof(config_vars) / sizeof(config_vars[0]); ++i)
        fprintf(out, "%-20s %-34s %s\n", config_vars[i].name, config_vars[i].def, config_vars[i].help);
}

static int fail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return CONFIG_EINVAL;
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

static int get_int(const char *(*getenv_fn)(const char *), const char *name, long def, long min, long max, long *out,
                   char *errbuf, size_t errlen)
{
    const char *s = getenv_fn(name);
    if (s == NULL || *s == '\0') {
        *out = def;
        return 0;
    }
    if (parse_int(s, min, max, out) != 0)
        return fail(errbuf, errlen, "%s must be an integer from %ld to %ld, got '%.40s'", name, min, max, s);
    return 0;
}

static char *get_str(const char *(*getenv_fn)(const char *), const char *name, const char *def)
{
    const char *s = getenv_fn(name);
    if (s == NULL || *s == '\0')
        return def == NULL ? NULL : util_strdup(def);
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
            return fail(errbuf, errlen, "%s: unterminated '[' in the host", var);
        host = s + 1;
        hostlen = (size_t)(close - host);
        if (close + 1 < s + len) {
            if (close[1] != ':')
                return fail(errbuf, errlen, "%s: expected ':' after ']'", var);
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
        return fail(errbuf, errlen, "%s: the host is empty", var);
    for (size_t i = 0; i < hostlen; ++i) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':'))
            return fail(errbuf, errlen, "%s: invalid character in the host name", var);
    }
    if (port != NULL) {
        char buf[8];
        size_t plen = (size_t)(s + len - port);
        long v;
        if (plen == 0 || plen >= sizeof(buf))
            return fail(errbuf, errlen, "%s: the port must be an integer from 1 to 65535", var);
        memcpy(buf, port, plen);
        buf[plen] = '\0';
        if (parse_int(buf, 1, 65535, &v) != 0)
            return fail(errbuf, errlen, "%s: the port must be an integer from 1 to 65535", var);
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
        return fail(errbuf, errlen, "%s is empty", var);
    if (len > 2048)
        return fail(errbuf, errlen, "%s is longer than 2048 characters", var);
    for (size_t i = 0; i < len; ++i)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
            return fail(errbuf, errlen, "%s must not contain spaces or control characters", var);

    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return parse_hostport(db, url, len, var, errbuf, errlen);
    if (!((sep - url == 5 && strncmp(url, "mysql", 5) == 0) || (sep - url == 7 && strncmp(url, "mariadb", 7) == 0)))
        return fail(errbuf, errlen, "%s must start with mysql:// (or be a host name)", var);

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
            return fail(errbuf, errlen, "%s: invalid %%-escape in the user name", var);
        replace(&db->user, user);
        if (colon != NULL) {
            char *pw = pct_dup(colon + 1, (size_t)(at - colon - 1));
            if (pw == NULL)
                return fail(errbuf, errlen, "%s: invalid %%-escape in the password", var);
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
                    return fail(errbuf, errlen, "%s: the database name may hold only letters, digits, '_', '-' and '$'",
                                var);
            replace(&db->name, util_strndup(name, (size_t)(name_end - name)));
        }
    }
    return 0;
}

static const char *const db_tls_names[] = {"off", "preferred", "required", "verify-identity"};

const char *config_db_tls_name(int mode)
{
    return mode >= 0 && mode <= CONFIG_DB_TLS_VERIFY_IDENTITY ? db_tls_names[mode] : "?";
}

/* DATABASE_TLS and DATABASE_CA. The bundle is read once here so that a wrong path or a file that holds
 * no certificate is a start-up error, not a failed connection later. */
static int load_db_tls(config_t *cfg, const char *(*getenv_fn)(const char *), char *errbuf, size_t errlen)
{
    const char *s = getenv_fn("DATABASE_TLS");
    cfg->db_tls = CONFIG_DB_TLS_PREFERRED;
    if (s != NULL && *s != '\0') {
        cfg->db_tls = -1;
        for (int i = 0; i <= CONFIG_DB_TLS_VERIFY_IDENTITY; ++i)
            if (strcmp(s, db_tls_names[i]) == 0)
                cfg->db_tls = i;
        if (cfg->db_tls < 0)
            return fail(errbuf, errlen, "DATABASE_TLS must be 'off', 'preferred', 'required' or 'verify-identity', got '%.40s'",
                        s);
    }
    cfg->db_ca = get_str(getenv_fn, "DATABASE_CA", NULL);
    if (cfg->db_ca == NULL) {
        if (cfg->db_tls == CONFIG_DB_TLS_VERIFY_IDENTITY)
            return fail(errbuf, errlen,
                        "DATABASE_CA is required with DATABASE_TLS=verify-identity (a PEM bundle of the CA that signs the "
                        "database's certificate, e.g. the RDS bundle)");
        return 0;
    }
    if (cfg->db_tls != CONFIG_DB_TLS_VERIFY_IDENTITY)
        return fail(errbuf, errlen,
                    "DATABASE_CA is used only with DATABASE_TLS=verify-identity (the CA and the host name are checked "
                    "together), got DATABASE_TLS=%s",
                    db_tls_names[cfg->db_tls]);
    FILE *fp = fopen(cfg->db_ca, "rb");
    if (fp == NULL)
        return fail(errbuf, errlen, "DATABASE_CA must be a readable file, got '%.200s' (%s)", cfg->db_ca, strerror(errno));
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    enum { HEAD = 65536 }; /* the first certificate of a bundle starts near its top */
    char *head = util_malloc(HEAD);
    size_t n = fread(head, 1, HEAD, fp);
    int found = memmem(head, n, begin, sizeof(begin) - 1) != NULL;
    free(head);
    fclose(fp);
    if (!found)
        return fail(errbuf, errlen, "DATABASE_CA must be a PEM bundle of certificates ('%s'), got '%.200s'", begin,
                    cfg->db_ca);
    return 0;
}

static int load_db(config_db_t *db, const char *(*getenv_fn)(const char *), const char *url_var, char *errbuf,
                   size_t errlen)
{
    long port = 0;
    int ret;
    if ((ret = get_int(getenv_fn, "DATABASE_PORT", 3306, 1, 65535, &port, errbuf, errlen)) != 0)
        return ret;
    db->port = (int)port;
    db->user = get_str(getenv_fn, "DATABASE_USERNAME", "root");
    db->password = get_str(getenv_fn, "DATABASE_PASSWORD", "");
    db->name = get_str(getenv_fn, "DATABASE_NAME", "flaskcrud");
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

int config_load(config_t *cfg, const char *(*getenv_fn)(const char *name), char *errbuf, size_t errlen)
{
    long v = 0;
    int ret;
    const char *s;
    memset(cfg, 0, sizeof(*cfg));

#define INT_VAR(field, name, def, min, max)                                                                                    \
    do {                                                                                                                       \
        if ((ret = get_int(getenv_fn, name, def, min, max, &v, errbuf, errlen)) != 0)                                          \
            goto Error;                                                                                                        \
        cfg->field = v;                                                                                                        \
    } while (0)

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    if (ncpu > 256)
        ncpu = 256;
    INT_VAR(port, "PORT", 8080, 1, 65535);
    INT_VAR(workers, "WORKERS", ncpu, 1, 256);
    INT_VAR(max_body, "MAX_BODY", 1048576, 1, 1L << 30);
    INT_VAR(max_form_fields, "MAX_FORM_FIELDS", 256, 1, 100000);
    INT_VAR(max_header_bytes, "MAX_HEADER_BYTES", 8192, 1024, 1048576);
    INT_VAR(req_timeout_ms, "REQ_TIMEOUT", 10, 1, 3600);
    cfg->req_timeout_ms *= 1000;
    INT_VAR(drain_timeout_ms, "DRAIN_TIMEOUT", 20, 0, 3600);
    cfg->drain_timeout_ms *= 1000;
    INT_VAR(emf_interval_ms, "EMF_INTERVAL", 60, 0, 86400);
    cfg->emf_interval_ms *= 1000;
    INT_VAR(db_pool_size, "DB_POOL_SIZE", 8, 1, 1000);
    INT_VAR(db_queue_max, "DB_QUEUE_MAX", 1024, 0, 1000000);
    INT_VAR(db_timeout_ms, "DB_TIMEOUT", 5, 1, 3600);
    cfg->db_timeout_ms *= 1000;
    INT_VAR(db_connect_timeout_ms, "DB_CONNECT_TIMEOUT", 3, 1, 600);
    INT_VAR(replica_max_lag_s, "REPLICA_MAX_LAG", 5, 0, 86400);
    INT_VAR(read_your_writes_s, "READ_YOUR_WRITES_S", 5, 0, 86400);
    cfg->db_connect_timeout_ms *= 1000;
#undef INT_VAR

    s = getenv_fn("APP_ENV");
    if (s == NULL || *s == '\0' || strcmp(s, "production") == 0) {
        cfg->app_env = CONFIG_ENV_PRODUCTION;
    } else if (strcmp(s, "development") == 0) {
        cfg->app_env = CONFIG_ENV_DEVELOPMENT;
    } else {
        ret = fail(errbuf, errlen, "APP_ENV must be 'production' or 'development', got '%.40s'", s);
        goto Error;
    }
    s = getenv_fn("LOG_FORMAT");
    if (s == NULL || *s == '\0' || strcmp(s, "json") == 0) {
        cfg->log_format = CONFIG_LOG_JSON;
    } else if (strcmp(s, "text") == 0) {
        cfg->log_format = CONFIG_LOG_TEXT;
    } else {
        ret = fail(errbuf, errlen, "LOG_FORMAT must be 'json' or 'text', got '%.40s'", s);
        goto Error;
    }

    s = getenv_fn("HTTP2");
    if (s == NULL || *s == '\0' || strcmp(s, "off") == 0) {
        cfg->http2 = 0;
    } else if (strcmp(s, "on") == 0) {
        cfg->http2 = 1;
    } else {
        ret = fail(errbuf, errlen, "HTTP2 must be 'on' or 'off', got '%.40s'", s);
        goto Error;
    }

    cfg->secret_key = get_str(getenv_fn, "SECRET_KEY", NULL);
    if (cfg->secret_key == NULL) {
        if (cfg->app_env == CONFIG_ENV_PRODUCTION) {
            ret = fail(errbuf, errlen, "SECRET_KEY is required when APP_ENV=production (at least 16 characters)");
            goto Error;
        }
        cfg->secret_key = util_random_hex(32);
        cfg->secret_key_generated = 1;
    } else if (strlen(cfg->secret_key) < 16) {
        ret = fail(errbuf, errlen, "SECRET_KEY must be at least 16 characters long");
        goto Error;
    }

    cfg->host = get_str(getenv_fn, "HOST", "0.0.0.0");
    cfg->scripts_dir = get_str(getenv_fn, "SCRIPTS_DIR", "./scripts");
    cfg->views_dir = get_str(getenv_fn, "VIEWS_DIR", "./views");
    if ((s = getenv_fn("STATIC_DIR")) != NULL && *s != '\0') {
        cfg->static_dir = util_strdup(s);
    } else {
        cfg->static_dir = util_malloc(strlen(cfg->views_dir) + sizeof("/static"));
        sprintf(cfg->static_dir, "%s/static", cfg->views_dir);
    }
    cfg->bootstrap_dir = get_str(getenv_fn, "BOOTSTRAP_DIR", "/usr/share/javascript/bootstrap5");
    cfg->metrics_token = get_str(getenv_fn, "METRICS_TOKEN", NULL);
    if (cfg->metrics_token != NULL && strlen(cfg->metrics_token) < 16) {
        ret = fail(errbuf, errlen, "METRICS_TOKEN must be at least 16 characters long");
        goto Error;
    }
    cfg->migrations_dir = get_str(getenv_fn, "MIGRATIONS_DIR", "./db/migrations");
    cfg->tls_cert = get_str(getenv_fn, "TLS_CERT", NULL);
    cfg->tls_key = get_str(getenv_fn, "TLS_KEY", NULL);
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        ret = fail(errbuf, errlen, "%s is set but %s is not: give both or neither",
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
            ret = fail(errbuf, errlen, "%s must be a readable directory, got '%.200s' (%s)", dirs[i].var, dir,
                       strerror(errno));
            goto Error;
        }
    }
    if (cfg->tls_cert != NULL) {
        if (access(cfg->tls_cert, R_OK) != 0) {
            ret = fail(errbuf, errlen, "TLS_CERT must be a readable file, got '%.200s'", cfg->tls_cert);
            goto Error;
        }
        if (access(cfg->tls_key, R_OK) != 0) {
            ret = fail(errbuf, errlen, "TLS_KEY must be a readable file, got '%.200s'", cfg->tls_key);
            goto Error;
        }
    }

    if ((ret = load_db(&cfg->db, getenv_fn, "DATABASE_URL", errbuf, errlen)) != 0)
        goto Error;
    if ((ret = load_db(&cfg->db_read, getenv_fn, "DATABASE_READ_URL", errbuf, errlen)) != 0)
        goto Error;
    if ((ret = load_db_tls(cfg, getenv_fn, errbuf, errlen)) != 0)
        goto Error;
    return 0;

Error:
    config_free(cfg);
    return ret;
}

void config_free(config_t *cfg)
{
    free(cfg->host);
    if (cfg->secret_key != NULL)
        util_secure_free(cfg->secret_key);
    free(cfg->scripts_dir);
    free(cfg->views_dir);
    free(cfg->static_dir);
    free(cfg->bootstrap_dir);
    free(cfg->migrations_dir);
    if (cfg->metrics_token != NULL)
        util_secure_free(cfg->metrics_token);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->db_ca);
    db_free(&cfg->db);
    db_free(&cfg->db_read);
    memset(cfg, 0, sizeof(*cfg));
}
