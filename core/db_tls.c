#include "db_tls.h"

#include <errmsg.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/* MySQL's ER_SECURE_TRANSPORT_REQUIRED (not in MariaDB's mysqld_error.h): a plain-text login under
 * require_secure_transport=ON. */
#define MYSQL_ER_SECURE_TRANSPORT_REQUIRED 3159

void db_tls_apply(MYSQL *m, const config_t *cfg)
{
    unsigned proto = MYSQL_PROTOCOL_TCP; /* "localhost" would otherwise mean the unix socket */
    my_bool yes = 1;
    mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &proto);
    if (cfg->db_tls == CONFIG_DB_TLS_OFF)
        return;
    mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &yes);
    if (cfg->db_tls == CONFIG_DB_TLS_VERIFY_IDENTITY) {
        mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
        mysql_optionsv(m, MYSQL_OPT_SSL_CA, cfg->db_ca);
    }
}

const char *db_tls_host(const config_t *cfg, const config_db_t *db, const char *addr)
{
    return cfg->db_tls == CONFIG_DB_TLS_VERIFY_IDENTITY ? db->host : addr;
}

int db_tls_check(MYSQL *m, const config_t *cfg, char *err, size_t errlen)
{
    if (cfg->db_tls < CONFIG_DB_TLS_REQUIRED || mysql_get_ssl_cipher(m) != NULL)
        return 0;
    snprintf(err, errlen, "DATABASE_TLS=%s: the server does not offer TLS", config_db_tls_name(cfg->db_tls));
    return -1;
}

int db_tls_is_config_error(MYSQL *m, const config_t *cfg)
{
    if (cfg->db_tls != CONFIG_DB_TLS_VERIFY_IDENTITY || mysql_errno(m) != CR_SSL_CONNECTION_ERROR)
        return 0;
    /* CR_SSL_CONNECTION_ERROR also reports a handshake cut by the network; a verdict on the certificate
     * reads "Validation of SSL server certificate failed" (the host name), OpenSSL's X509 verification
     * strings (all about a "certificate": "self-signed certificate in certificate chain", "unable to get
     * local issuer certificate", "certificate has expired"...), or, for a server without TLS, "SSL is
     * required, but the server does not support it". */
    const char *e = mysql_error(m);
    return strstr(e, "certificate") != NULL || strstr(e, "does not support") != NULL;
}

const char *db_tls_describe_error(MYSQL *m, const config_t *cfg, const char *host, char *buf, size_t len)
{
    unsigned err = mysql_errno(m);
    const char *msg = mysql_error(m);
    if (err == CR_SSL_CONNECTION_ERROR && cfg->db_tls == CONFIG_DB_TLS_VERIFY_IDENTITY &&
        strstr(msg, "Validation of SSL server certificate failed") != NULL)
        snprintf(buf, len, "DATABASE_TLS=verify-identity: the server's certificate does not name the host '%s' (%s)", host,
                 msg);
    else if (err == CR_SSL_CONNECTION_ERROR && cfg->db_tls == CONFIG_DB_TLS_VERIFY_IDENTITY)
        snprintf(buf, len, "DATABASE_TLS=verify-identity, DATABASE_CA=%s: %s", cfg->db_ca, msg);
    else if (err == CR_SSL_CONNECTION_ERROR)
        snprintf(buf, len, "DATABASE_TLS=%s: %s", config_db_tls_name(cfg->db_tls), msg);
    else if (err == MYSQL_ER_SECURE_TRANSPORT_REQUIRED)
        snprintf(buf, len, "%s (DATABASE_TLS=%s)", msg, config_db_tls_name(cfg->db_tls));
    else if (err == ER_ACCESS_DENIED_ERROR && cfg->db_tls == CONFIG_DB_TLS_OFF)
        /* MariaDB answers a plain-text login under require_secure_transport=ON with this same error */
        snprintf(buf, len, "%s (DATABASE_TLS=off: a server that requires TLS refuses plain-text logins this way too)", msg);
    else
        snprintf(buf, len, "%s", msg);
    return buf;
}
