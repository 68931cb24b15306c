/* Unit tests of core/config.c: defaults, validation messages, DATABASE_URL forms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

/* A fake environment: NULL-terminated name/value pairs. */
static const char **fake_env;

static const char *fake_getenv(const char *name)
{
    for (const char **p = fake_env; p != NULL && *p != NULL; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static int load(config_t *cfg, char *err, const char **env)
{
    fake_env = env;
    err[0] = '\0';
    return config_load(cfg, fake_getenv, err, 512);
}

static void test_defaults(void)
{
    config_t cfg;
    char err[512];
    const char *env[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", NULL};
    CHECK(load(&cfg, err, env) == 0);
    CHECK(cfg.port == 8080);
    CHECK(cfg.workers >= 1);
    CHECK(cfg.app_env == CONFIG_ENV_PRODUCTION);
    CHECK(cfg.log_format == CONFIG_LOG_JSON);
    CHECK(cfg.max_body == 1048576);
    CHECK(cfg.max_upload == 1048576);
    CHECK(cfg.drain_timeout_ms == 20000);
    CHECK(cfg.db.host == NULL);
    CHECK(strcmp(cfg.db.name, "flaskcrud") == 0);
    CHECK(strcmp(cfg.static_dir, "./static") == 0);
    CHECK(cfg.http2 == 0);
    config_free(&cfg);
}

static void expect_error(const char **env, const char *needle)
{
    config_t cfg;
    char err[512];
    int ret = load(&cfg, err, env);
    CHECK(ret == CONFIG_EINVAL);
    if (strstr(err, needle) == NULL) {
        fprintf(stderr, "  expected '%s' in '%s'\n", needle, err);
        CHECK(0);
    }
}

static void test_invalid(void)
{
    const char *bad_port[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "PORT", "abc", NULL};
    expect_error(bad_port, "PORT must be an integer from 1 to 65535, got 'abc'");
    const char *big_port[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "PORT", "70000", NULL};
    expect_error(big_port, "PORT");
    const char *workers[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "WORKERS", "0", NULL};
    expect_error(workers, "WORKERS");
    const char *env[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "APP_ENV", "prod", NULL};
    expect_error(env, "APP_ENV must be 'production' or 'development'");
    const char *nokey[] = {"SCRIPTS_DIR", ".", "VIEWS_DIR", ".", NULL};
    expect_error(nokey, "SECRET_KEY is required");
    const char *shortkey[] = {"SECRET_KEY", "short", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", NULL};
    expect_error(shortkey, "SECRET_KEY must be at least 16");
    const char *logf[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "LOG_FORMAT", "xml", NULL};
    expect_error(logf, "LOG_FORMAT");
    const char *dir[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", "/nonexistent/dir", "VIEWS_DIR", ".", NULL};
    expect_error(dir, "SCRIPTS_DIR must be a readable directory");
    const char *tls[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "TLS_CERT", "x.pem", NULL};
    expect_error(tls, "TLS_CERT is set but TLS_KEY is not");
    const char *h2[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "HTTP2", "yes", NULL};
    expect_error(h2, "HTTP2 must be 'off' or 'on', got 'yes'");
    const char *body[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "MAX_BODY", "1k", NULL};
    expect_error(body, "MAX_BODY");
    const char *url[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR",      ".", "VIEWS_DIR",
                         ".",          "DATABASE_URL",     "postgres://x@y/z", NULL};
    expect_error(url, "DATABASE_URL must start with mysql://");
    const char *rurl[] = {"SECRET_KEY", "0123456789abcdef",  "SCRIPTS_DIR", ".", "VIEWS_DIR",
                          ".",          "DATABASE_READ_URL", "db:99999",    NULL};
    expect_error(rurl, "DATABASE_READ_URL");
}

static void test_development(void)
{
    config_t cfg;
    char err[512];
    const char *env[] = {"APP_ENV", "development", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", NULL};
    CHECK(load(&cfg, err, env) == 0);
    CHECK(cfg.secret_key_generated == 1 && strlen(cfg.secret_key) == 64);
    config_free(&cfg);
}

static void test_db_url(void)
{
    char err[512];
    config_db_t db = {0};
    db.port = 3306;
    CHECK(config_parse_db_url(&db, "mydb.abc.rds.amazonaws.com", err, sizeof(err)) == 0);
    CHECK(strcmp(db.host, "mydb.abc.rds.amazonaws.com") == 0 && db.port == 3306);
    CHECK(config_parse_db_url(&db, "10.0.3.7:3307", err, sizeof(err)) == 0);
    CHECK(strcmp(db.host, "10.0.3.7") == 0 && db.port == 3307);
    CHECK(config_parse_db_url(&db, "mysql://app:p%40ss:w@db.local:3310/shop", err, sizeof(err)) == 0);
    CHECK(strcmp(db.host, "db.local") == 0 && db.port == 3310);
    CHECK(strcmp(db.user, "app") == 0 && strcmp(db.password, "p@ss:w") == 0 && strcmp(db.name, "shop") == 0);
    CHECK(config_parse_db_url(&db, "mysql://u:a@b@127.0.0.1/x", err, sizeof(err)) == 0);
    CHECK(strcmp(db.password, "a@b") == 0 && strcmp(db.host, "127.0.0.1") == 0);
    CHECK(config_parse_db_url(&db, "mysql://[::1]:3306/x", err, sizeof(err)) == 0 && strcmp(db.host, "::1") == 0);
    CHECK(config_parse_db_url(&db, "mysql://u:secretpw@:3306/x", err, sizeof(err)) == CONFIG_EINVAL);
    CHECK(strstr(err, "secretpw") == NULL); /* the password never appears in messages */
    CHECK(config_parse_db_url(&db, "host:0", err, sizeof(err)) == CONFIG_EINVAL);
    CHECK(config_parse_db_url(&db, "host:abc", err, sizeof(err)) == CONFIG_EINVAL);
    CHECK(config_parse_db_url(&db, "ho st", err, sizeof(err)) == CONFIG_EINVAL);
    CHECK(config_parse_db_url(&db, "mysql://u:%zz@h/x", err, sizeof(err)) == CONFIG_EINVAL);
    CHECK(config_parse_db_url(&db, "mysql://h/bad;name", err, sizeof(err)) == CONFIG_EINVAL);
    CHECK(config_parse_db_url(&db, "", err, sizeof(err)) == CONFIG_EINVAL);
    free(db.host), free(db.user), free(db.password), free(db.name);
}

/* A temporary file holding `text`; its path in path (unlinked by the caller). */
static void temp_file(char *path, const char *text)
{
    strcpy(path, "/tmp/h2lua-test-ca-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static void test_database_tls(void)
{
    config_t cfg;
    char err[512], pem[64], junk[64];
    temp_file(pem, "# a bundle\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    temp_file(junk, "not a certificate\n");
#define BASE "SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", "."
    const char *def[] = {BASE, NULL};
    CHECK(load(&cfg, err, def) == 0);
    CHECK(cfg.db_tls == CONFIG_DB_TLS_PREFERRED && cfg.db_ca == NULL);
    config_free(&cfg);
    static const char *const modes[] = {"off", "preferred", "required"};
    for (int i = 0; i < 3; ++i) {
        const char *env[] = {BASE, "DATABASE_TLS", modes[i], NULL};
        CHECK(load(&cfg, err, env) == 0);
        CHECK(cfg.db_tls == i && strcmp(config_db_tls_name(cfg.db_tls), modes[i]) == 0);
        config_free(&cfg);
    }
    const char *verify[] = {BASE, "DATABASE_TLS", "verify-identity", "DATABASE_CA", pem, NULL};
    CHECK(load(&cfg, err, verify) == 0);
    CHECK(cfg.db_tls == CONFIG_DB_TLS_VERIFY_IDENTITY && strcmp(cfg.db_ca, pem) == 0);
    config_free(&cfg);

    const char *bad[] = {BASE, "DATABASE_TLS", "on", NULL};
    expect_error(bad, "DATABASE_TLS must be 'off', 'preferred', 'required' or 'verify-identity', got 'on'");
    const char *noca[] = {BASE, "DATABASE_TLS", "verify-identity", NULL};
    expect_error(noca, "DATABASE_CA is required with DATABASE_TLS=verify-identity");
    const char *unused[] = {BASE, "DATABASE_TLS", "required", "DATABASE_CA", pem, NULL};
    expect_error(unused, "DATABASE_CA is used only with DATABASE_TLS=verify-identity");
    const char *missing[] = {BASE, "DATABASE_TLS", "verify-identity", "DATABASE_CA", "/nonexistent/ca.pem", NULL};
    expect_error(missing, "DATABASE_CA must be a readable file, got '/nonexistent/ca.pem'");
    const char *notpem[] = {BASE, "DATABASE_TLS", "verify-identity", "DATABASE_CA", junk, NULL};
    expect_error(notpem, "DATABASE_CA must be a PEM bundle of certificates");
#undef BASE
    unlink(pem);
    unlink(junk);
}

static void test_webhook(void)
{
#define BASE "SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", "."
    config_t cfg;
    char err[512];
    const char *none[] = {BASE, NULL};
    CHECK(load(&cfg, err, none) == 0);
    CHECK(cfg.webhook_url == NULL && cfg.webhook_max_attempts == 12 && cfg.webhook_backoff_ms == 2000 &&
          cfg.webhook_backoff_max_ms == 300000);
    config_free(&cfg);
    const char *on[] = {BASE,
                        "WEBHOOK_URL",
                        "https://hooks.example/in",
                        "WEBHOOK_SECRET",
                        "fedcba9876543210",
                        "WEBHOOK_BACKOFF",
                        "1",
                        "WEBHOOK_BACKOFF_MAX",
                        "4",
                        NULL};
    CHECK(load(&cfg, err, on) == 0);
    CHECK(strcmp(cfg.webhook_url, "https://hooks.example/in") == 0 && strcmp(cfg.webhook_secret, "fedcba9876543210") == 0);
    CHECK(cfg.webhook_backoff_ms == 1000 && cfg.webhook_backoff_max_ms == 4000);
    config_free(&cfg);
    const char *scheme[] = {BASE, "WEBHOOK_URL", "ftp://x/y", "WEBHOOK_SECRET", "fedcba9876543210", NULL};
    expect_error(scheme, "WEBHOOK_URL must start with http:// or https://, got 'ftp://x/y'");
    const char *nosecret[] = {BASE, "WEBHOOK_URL", "http://127.0.0.1:9/", NULL};
    expect_error(nosecret, "WEBHOOK_SECRET is required when WEBHOOK_URL is set");
    const char *shortsecret[] = {BASE, "WEBHOOK_URL", "http://127.0.0.1:9/", "WEBHOOK_SECRET", "short", NULL};
    expect_error(shortsecret, "WEBHOOK_SECRET must be at least 16");
    const char *backoff[] = {BASE, "WEBHOOK_BACKOFF", "10", "WEBHOOK_BACKOFF_MAX", "5", NULL};
    expect_error(backoff, "WEBHOOK_BACKOFF_MAX must be at least WEBHOOK_BACKOFF (10 s), got 5 s");
    const char *attempts[] = {BASE, "WEBHOOK_MAX_ATTEMPTS", "0", NULL};
    expect_error(attempts, "WEBHOOK_MAX_ATTEMPTS");
#undef BASE
}

/* SHARED_STORES: names and sizes, and one message naming the variable for each mistake. */
static void test_shared_stores(void)
{
    config_t cfg;
    char err[512];
    const char *env[] = {"SECRET_KEY",
                         "0123456789abcdef",
                         "SCRIPTS_DIR",
                         ".",
                         "VIEWS_DIR",
                         ".",
                         "SHARED_STORES",
                         "cache:10m,counters:1M,tiny:16k,big_1:16g,bytes:20000",
                         NULL};
    CHECK(load(&cfg, err, env) == 0);
    CHECK(cfg.nshared_stores == 5);
    if (cfg.nshared_stores == 5) {
        CHECK(strcmp(cfg.shared_stores[0].name, "cache") == 0 && cfg.shared_stores[0].size == 10u << 20);
        CHECK(strcmp(cfg.shared_stores[1].name, "counters") == 0 && cfg.shared_stores[1].size == 1u << 20);
        CHECK(cfg.shared_stores[2].size == 16u << 10);
        CHECK(strcmp(cfg.shared_stores[3].name, "big_1") == 0 && cfg.shared_stores[3].size == (size_t)16 << 30);
        CHECK(cfg.shared_stores[4].size == 20000);
    }
    config_free(&cfg);
    const char *none[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", NULL};
    /* by default one store, for the entries app's rate limits */
    CHECK(load(&cfg, err, none) == 0 && cfg.nshared_stores == 1);
    CHECK(cfg.nshared_stores == 1 && strcmp(cfg.shared_stores[0].name, "limits") == 0 && cfg.shared_stores[0].size == 4u << 20);
    config_free(&cfg);
    static const char *const bad[][2] = {
        {"cache", "SHARED_STORES must be name:size"},
        {"cache:", "SHARED_STORES must be name:size"},
        {"cache:10mb", "SHARED_STORES must be name:size"},
        {"cache:-1", "SHARED_STORES must be name:size"},
        {"cache: 1m", "SHARED_STORES must be name:size"},
        {"cache:1m,", "SHARED_STORES must be name:size"},
        {"cache:1k", "the size of 'cache' must be from 16k to 16g"},
        {"cache:17g", "the size of 'cache' must be from 16k to 16g"},
        {"cache:999999999999999999999999", "the size of 'cache' must be from 16k to 16g"},
        {"cache:1m,cache:2m", "the store 'cache' is declared twice"},
        {"9lives:1m", "a store name is 1 to 64 letters"},
        {"a-b:1m", "a store name is 1 to 64 letters"},
        {":1m", "a store name is 1 to 64 letters"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        const char *env_bad[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR",
                                 ".",          "SHARED_STORES",    bad[i][0],     NULL};
        expect_error(env_bad, bad[i][1]);
    }
    /* 65 stores: one too many */
    char many[65 * 8 + 1] = "";
    for (int i = 0; i < 65; ++i)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%ss%d:16k", i ? "," : "", i);
    const char *env_many[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR",
                              ".",          "SHARED_STORES",    many,          NULL};
    expect_error(env_many, "SHARED_STORES: at most 64 stores");
}

/* TRUSTED_PROXIES: none by default; CIDRs; one line naming the variable for a bad one. */
static void test_trusted_proxies(void)
{
    config_t cfg;
    char err[512];
    const char *none[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", NULL};
    CHECK(load(&cfg, err, none) == 0 && cfg.trusted_proxies.n == 0);
    config_free(&cfg);
    const char *two[] = {"SECRET_KEY",      "0123456789abcdef",        "SCRIPTS_DIR", ".", "VIEWS_DIR", ".",
                         "TRUSTED_PROXIES", "10.0.1.0/24,10.0.2.0/24", NULL};
    CHECK(load(&cfg, err, two) == 0 && cfg.trusted_proxies.n == 2);
    config_free(&cfg);
    const char *bad[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR",
                         ".",          "TRUSTED_PROXIES",  "10.0.1.0/33", NULL};
    expect_error(bad, "TRUSTED_PROXIES: the prefix length of '10.0.1.0/33' must be from 0 to 32");
    const char *word[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR",
                          ".",          "TRUSTED_PROXIES",  "alb",         NULL};
    expect_error(word, "TRUSTED_PROXIES must be CIDRs");
}

/* WRITE_LIMIT: 120/60 by default, N/SECONDS or off. */
static void test_write_limit(void)
{
    config_t cfg;
    char err[512];
    const char *none[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", NULL};
    CHECK(load(&cfg, err, none) == 0 && cfg.write_limit == 120 && cfg.write_limit_window == 60);
    config_free(&cfg);
    const char *off[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "WRITE_LIMIT", "off", NULL};
    CHECK(load(&cfg, err, off) == 0 && cfg.write_limit == 0 && cfg.write_limit_window == 0);
    config_free(&cfg);
    const char *five[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR", ".", "WRITE_LIMIT", "5/2", NULL};
    CHECK(load(&cfg, err, five) == 0 && cfg.write_limit == 5 && cfg.write_limit_window == 2);
    config_free(&cfg);
    static const char *const bad[] = {
        "5", "5/", "/2", "0/60", "5/0", "5/86401", "1000001/1", "5/2s", "-5/2", "5 / 2", "99999999999999999999/1", "OFF"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        const char *env[] = {"SECRET_KEY", "0123456789abcdef", "SCRIPTS_DIR", ".", "VIEWS_DIR",
                             ".",          "WRITE_LIMIT",      bad[i],        NULL};
        expect_error(env, "WRITE_LIMIT must be N/SECONDS");
    }
}

int main(void)
{
    test_defaults();
    test_invalid();
    test_development();
    test_db_url();
    test_database_tls();
    test_webhook();
    test_shared_stores();
    test_trusted_proxies();
    test_write_limit();
    return CHECK_DONE();
}
