/*
 * db_tls — TLS to the database (DATABASE_TLS, DATABASE_CA) on a MariaDB Connector/C handle: the one
 * place that sets the options and reads the outcome, for the pool's connections (db_pool) and the
 * migrations' (migrate). What each mode means with Connector/C 3.3 (Debian 12's libmariadb3):
 *
 *   off              no TLS is asked for.
 *   preferred        MYSQL_OPT_SSL_ENFORCE alone. Despite its name, Connector/C 3.3 then uses TLS when
 *                    the server offers it and goes on in plain text when it does not (it refuses a
 *                    server without TLS only when verification is on). The certificate is not checked.
 *   required         the same, and a session that came up in plain text is refused after the handshake
 *                    (db_tls_check), since Connector/C 3.3 has no option that refuses it during the
 *                    handshake; the migrations' connection, the first of the process, checks it (so a
 *                    primary without TLS stops the start with exit 2). No password crosses in clear even
 *                    then: mysql_native_password sends a scramble, caching_sha2_password sends it
 *                    RSA-encrypted without TLS, and the clear-text plugin is never enabled. The
 *                    certificate is not checked: over an unverified session caching_sha2_password's full
 *                    authentication sends the password itself, which only verify-identity protects.
 *   verify-identity  MYSQL_OPT_SSL_ENFORCE + MYSQL_OPT_SSL_VERIFY_SERVER_CERT + MYSQL_OPT_SSL_CA: during
 *                    the handshake, before any credential is sent, the chain must lead to DATABASE_CA and
 *                    the certificate must name the host of DATABASE_URL (a DNS or IP subjectAltName).
 *                    Connector/C checks the name it was given to connect to, so the connection is made to
 *                    the host name, not to the address the pool resolved (db_tls_host): Connector/C
 *                    resolves the name again itself, a blocking lookup right after the pool's
 *                    non-blocking one succeeded (once per new connection; connections are pooled).
 *
 * Every function here runs on the caller's thread and can't fail unless it says so.
 */
#ifndef H2LUA_DB_TLS_H
#define H2LUA_DB_TLS_H

#include <mysql.h>
#include <stddef.h>

struct config;
struct config_db;

/* Sets the TLS options of cfg->db_tls / cfg->db_ca (and the TCP protocol) on a handle before its connect. */
void db_tls_apply(MYSQL *m, const struct config *cfg);

/* The host to hand to mysql_real_connect: db->host with verify-identity, else `addr` (the resolved one). */
const char *db_tls_host(const struct config *cfg, const struct config_db *db, const char *addr);

/*
 * After a connect succeeded: 0, or -1 with a line for people in err (naming DATABASE_TLS) when
 * DATABASE_TLS=required and the session is not encrypted; the caller then closes the handle.
 */
int db_tls_check(MYSQL *m, const struct config *cfg, char *err, size_t errlen);

/*
 * After a connect failed: 1 when the cause is the TLS configuration (a certificate that does not
 * verify against DATABASE_CA or does not name the host, or TLS required of a server that offers none)
 * — a configuration error, not an outage, which no retry cures; else 0.
 */
int db_tls_is_config_error(MYSQL *m, const struct config *cfg);

/*
 * Writes into buf the reason of a failed connect to `host` (DATABASE_URL's): Connector/C's message,
 * preceded or followed, when the TLS settings may be the cause, by what they are
 * ("DATABASE_TLS=verify-identity, DATABASE_CA=/x.pem: TLS/SSL error: ..."). Never holds the password.
 * Returns buf.
 */
const char *db_tls_describe_error(MYSQL *m, const struct config *cfg, const char *host, char *buf, size_t len);

#endif
