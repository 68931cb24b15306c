#include "httpc.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* The most distinct pools (scheme, host, port, TLS policy) and CA files a worker keeps. */
#define MAX_POOLS 256
#define MAX_STORES 16

struct pool {
    char *key;
    h2o_socketpool_t sp;
    h2o_linklist_t link;
};

struct store {
    char *ca_file; /* NULL: the system CAs */
    X509_STORE *x509;
    h2o_linklist_t link;
};

struct httpc {
    h2o_context_t *ctx;
    unsigned max_running, running;
    unsigned npools, nstores;
    h2o_linklist_t pools, stores;
    h2o_timeout_t io_backstop; /* libh2o's own I/O timeout, past every deadline of ours */
};

enum tls_check { TLS_NOT_RUN, TLS_OK, TLS_FAILED };

struct httpc_op {
    httpc_t *hc;
    httpc_done_cb cb;
    void *data;
    /* what to send, kept for redirects */
    char *method;
    char *headers; /* the application's header lines, each ending in CRLF */
    size_t headers_len;
    int has_host, has_ua;
    h2o_iovec_t body;
    char *url; /* the current URL (NUL-terminated) */
    h2o_url_t parsed;
    int redirects_left, ssl_verify;
    int counted; /* in hc->running */
    size_t max_body;
    struct store *store;
    /* the attempt in flight */
    char *head; /* request line and headers */
    h2o_iovec_t reqbufs[2];
    h2o_http1client_ctx_t cctx;
    h2o_http1client_t *client; /* NULL once libh2o has let go of it */
    SSL_CTX *ssl_ctx;
    enum tls_check tls;
    char tls_error[160];
    /*
     * The op's clock: one timerfd on CLOCK_MONOTONIC (as h2lua.sleep's; the loop's own timeouts
     * follow the wall clock), set at the earliest of the phase's deadline (connecting, or reading:
     * moved on by every read) and the total one; once the outcome is known, set to fire at once so
     * that on_done runs from a callback of its own.
     */
    h2o_socket_t *timer;
    uint64_t armed_at; /* the deadline the timer is set to (monotonic ms); 0: not set */
    uint64_t phase_deadline, total_deadline, connect_ms, read_ms;
    int phase_is_connect, finishing;
    /* the outcome */
    const char *err; /* static, or err_buf */
    char err_buf[256];
    int status;
    httpc_header_t *rheaders;
    size_t nrheaders;
    char *rbody;
    size_t rbody_len, rbody_cap;
};

/* ---- validation ---- */

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(h2o_iovec_t s)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len; ++i)
        if (!is_tchar((unsigned char)s.base[i]) || s.base[i] == '\0')
            return 0;
    return 1;
}

/* A header value: visible characters, spaces and tabs (obs-text allowed); no CR, LF, NUL. */
static int is_field_value(h2o_iovec_t s)
{
    for (size_t i = 0; i < s.len; ++i) {
        unsigned char c = (unsigned char)s.base[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Parses url (NUL-terminated, owned by the caller and kept while parsed is used). */
static int parse_url(const char *url, size_t len, h2o_url_t *parsed, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f) {
            snprintf(errbuf, errlen, "invalid url: control character or space at byte %zu", i + 1);
            return -1;
        }
    }
    if (h2o_url_parse(url, len, parsed) != 0 || parsed->host.len == 0) {
        snprintf(errbuf, errlen, "invalid url: expected http://host[:port]/path or https://...");
        return -1;
    }
    if (memchr(parsed->authority.base, '@', parsed->authority.len) != NULL) {
        snprintf(errbuf, errlen, "invalid url: user information in the URL is not supported");
        return -1;
    }
    for (size_t i = 0; i < parsed->host.len; ++i) {
        unsigned char c = (unsigned char)parsed->host.base[i];
        if (!(is_tchar(c) || c == ':' || c == '[' || c == ']') || c == '%') {
            snprintf(errbuf, errlen, "invalid url: bad character in the host");
            return -1;
        }
    }
    /* the fragment is not sent */
    const char *hash = memchr(parsed->path.base, '#', parsed->path.len);
    if (hash != NULL)
        parsed->path.len = (size_t)(hash - parsed->path.base);
    if (parsed->path.len == 0)
        parsed->path = h2o_iovec_init(H2O_STRLIT("/"));
    return 0;
}

/* ---- TLS ---- */

static struct store *get_store(httpc_t *hc, const char *ca_file, char *errbuf, size_t errlen)
{
    for (h2o_linklist_t *l = hc->stores.next; l != &hc->stores; l = l->next) {
        struct store *s = H2O_STRUCT_FROM_MEMBER(struct store, link, l);
        if ((s->ca_file == NULL && ca_file == NULL) ||
            (s->ca_file != NULL && ca_file != NULL && strcmp(s->ca_file, ca_file) == 0))
            return s;
    }
    if (hc->nstores >= MAX_STORES) {
        snprintf(errbuf, errlen, "too many CA files (at most %d per worker)", MAX_STORES);
        return NULL;
    }
    X509_STORE *x = X509_STORE_new();
    if (x == NULL)
        h2o_fatal("X509_STORE_new");
    int ok = ca_file == NULL ? X509_STORE_set_default_paths(x) : X509_STORE_load_file(x, ca_file);
    if (ok != 1) {
        X509_STORE_free(x);
        ERR_clear_error();
        snprintf(errbuf, errlen, "cannot load the CA file %s", ca_file != NULL ? ca_file : "(system)");
        return NULL;
    }
    struct store *s = util_malloc(sizeof(*s));
    s->ca_file = ca_file != NULL ? util_strdup(ca_file) : NULL;
    s->x509 = x;
    h2o_linklist_insert(&hc->stores, &s->link);
    ++hc->nstores;
    return s;
}

/*
 * OpenSSL's check of the server's chain (SSL_CTX_set_cert_verify_callback): the chain against the
 * store and the host name or IP address of the URL. The context's mode is SSL_VERIFY_NONE so that
 * libh2o's own name check (DNS names only) does not refuse an IP address the certificate names;
 * the outcome is kept in the op and on_connect refuses the connection before anything is sent.
 */
static int verify_chain(X509_STORE_CTX *sctx, void *arg)
{
    httpc_op_t *op = arg;
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(sctx);
    char host[256];
    h2o_iovec_t h = op->parsed.host;
    if (h.len >= 2 && h.base[0] == '[' && h.base[h.len - 1] == ']')
        h = h2o_iovec_init(h.base + 1, h.len - 2);
    size_t n = h.len < sizeof(host) - 1 ? h.len : sizeof(host) - 1;
    memcpy(host, h.base, n);
    host[n] = '\0';
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    int set = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : X509_VERIFY_PARAM_set1_host(param, host, n);
    if (set == 1 && X509_verify_cert(sctx) == 1) {
        op->tls = TLS_OK;
    } else {
        op->tls = TLS_FAILED;
        snprintf(op->tls_error, sizeof(op->tls_error), "%s",
                 set == 1 ? X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)) : "bad host name");
    }
    return 1;
}

/* ---- pools ---- */

static h2o_socketpool_t *get_pool(httpc_t *hc, httpc_op_t *op)
{
    int is_ssl = op->parsed.scheme == &H2O_URL_SCHEME_HTTPS;
    uint16_t port = h2o_url_get_port(&op->parsed);
    const char *ca = op->store != NULL && op->store->ca_file != NULL ? op->store->ca_file : "";
    size_t cap = op->parsed.host.len + strlen(ca) + 64;
    char *key = util_malloc(cap);
    snprintf(key, cap, "%s://%.*s:%u %d %s", is_ssl ? "https" : "http", (int)op->parsed.host.len, op->parsed.host.base,
             (unsigned)port, op->ssl_verify, ca);
    for (h2o_linklist_t *l = hc->pools.next; l != &hc->pools; l = l->next) {
        struct pool *p = H2O_STRUCT_FROM_MEMBER(struct pool, link, l);
        if (strcmp(p->key, key) == 0) {
            free(key);
            return &p->sp;
        }
    }
    if (hc->npools >= MAX_POOLS) {
        free(key);
        return NULL; /* a connection of its own, closed after the response */
    }
    struct pool *p = util_malloc(sizeof(*p));
    p->key = key;
    h2o_socketpool_init_by_hostport(&p->sp, op->parsed.host, port, is_ssl, SIZE_MAX);
    h2o_socketpool_set_timeout(&p->sp, hc->ctx->loop, HTTPC_IDLE_MS);
    h2o_linklist_insert(&hc->pools, &p->link);
    ++hc->npools;
    return &p->sp;
}

/* ---- one request ---- */

static void fail(httpc_op_t *op, const char *fmt, const char *detail);
static void finish_later(httpc_op_t *op);

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sets the timer: at once when the op is finishing, else at the earliest deadline. */
static void arm(httpc_op_t *op)
{
    struct itimerspec its = {0};
    int flags = 0;
    if (op->finishing) {
        its.it_value.tv_nsec = 1;
        op->armed_at = 0;
    } else {
        uint64_t at = op->total_deadline;
        if (op->phase_deadline != 0 && op->phase_deadline < at)
            at = op->phase_deadline;
        its.it_value.tv_sec = (time_t)(at / 1000);
        its.it_value.tv_nsec = (long)(at % 1000) * 1000000;
        flags = TFD_TIMER_ABSTIME;
        op->armed_at = at;
    }
    timerfd_settime(h2o_socket_get_fd(op->timer), flags, &its, NULL);
}

/* A new deadline for the phase; the timer is set again only when it must fire earlier. */
static void set_phase(httpc_op_t *op, int is_connect, uint64_t ms)
{
    op->phase_is_connect = is_connect;
    op->phase_deadline = mono_ms() + ms;
    if (!op->finishing && (op->armed_at == 0 || op->phase_deadline < op->armed_at))
        arm(op);
}

static void cancel_client(httpc_op_t *op)
{
    if (op->client != NULL) {
        h2o_http1client_cancel(op->client);
        op->client = NULL;
    }
}

static void on_done(httpc_op_t *op);

static void on_timer(h2o_socket_t *sock, const char *err)
{
    (void)err;
    httpc_op_t *op = sock->data;
    h2o_buffer_consume(&sock->input, sock->input->size);
    if (op->finishing) {
        on_done(op);
        return;
    }
    uint64_t now = mono_ms();
    if (now >= op->total_deadline) {
        cancel_client(op);
        fail(op, "timeout", NULL);
    } else if (op->phase_deadline != 0 && now >= op->phase_deadline) {
        cancel_client(op);
        fail(op, op->phase_is_connect ? "connect timeout" : "read timeout", NULL);
    } else {
        arm(op); /* a deadline that moved on since the timer was set */
    }
}

/* Records the outcome (the first one counts) and ends the op from a callback of its own. */
static void fail(httpc_op_t *op, const char *fmt, const char *detail)
{
    if (op->err == NULL) {
        snprintf(op->err_buf, sizeof(op->err_buf), fmt, detail != NULL ? detail : "");
        op->err = op->err_buf;
    }
    finish_later(op);
}

/* Fails op on a receive that libh2o ended with errstr (an error, not the end of the stream): its
 * I/O timeout is the read timeout, anything else "receive failed: <errstr><after>". */
static void fail_receive(httpc_op_t *op, const char *errstr, const char *after)
{
    if (strcmp(errstr, "I/O timeout") == 0) {
        fail(op, "read timeout", NULL);
    } else {
        char msg[sizeof(op->err_buf)];
        snprintf(msg, sizeof(msg), "receive failed: %s%s", errstr, after);
        fail(op, "%s", msg);
    }
}

static int body_append(httpc_op_t *op, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (op->rbody_len + n > op->max_body)
        return -1;
    if (op->rbody_len + n > op->rbody_cap) {
        size_t cap = op->rbody_cap == 0 ? 16384 : op->rbody_cap;
        while (cap < op->rbody_len + n)
            cap *= 2;
        char *grown = realloc(op->rbody, cap);
        if (grown == NULL)
            h2o_fatal("no memory");
        op->rbody = grown;
        op->rbody_cap = cap;
    }
    memcpy(op->rbody + op->rbody_len, p, n);
    op->rbody_len += n;
    return 0;
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    httpc_op_t *op = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        op->client = NULL; /* libh2o closes it */
        fail_receive(op, errstr, " (the connection ended before the whole body)");
        return -1;
    }
    h2o_buffer_t *in = client->sock->input;
    if (body_append(op, in->bytes, in->size) != 0) {
        op->client = NULL;
        fail(op, "response too large (more than max_body)", NULL);
        return -1;
    }
    h2o_buffer_consume(&client->sock->input, in->size);
    if (errstr == h2o_http1client_error_is_eos) {
        op->client = NULL; /* libh2o returns it to the pool */
        finish_later(op);
    } else {
        set_phase(op, 0, op->read_ms);
    }
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, struct st_h2o_header_t *headers, size_t num_headers, int rlen)
{
    (void)minor_version, (void)msg, (void)rlen;
    httpc_op_t *op = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        op->client = NULL;
        fail_receive(op, errstr, "");
        return NULL;
    }
    op->status = status;
    op->rheaders = util_malloc(sizeof(*op->rheaders) * (num_headers + 1));
    op->nrheaders = 0;
    for (size_t i = 0; i < num_headers; ++i) {
        h2o_iovec_t name = *headers[i].name, value = headers[i].value;
        if (errstr == NULL && name.len == 14 && memcmp(name.base, "content-length", 14) == 0) {
            size_t cl = h2o_strtosize(value.base, value.len);
            if (cl != SIZE_MAX && cl > op->max_body) {
                op->client = NULL;
                fail(op, "response too large (more than max_body)", NULL);
                return NULL;
            }
        }
        httpc_header_t *h = &op->rheaders[op->nrheaders++];
        h->name = h2o_strdup(NULL, name.base, name.len); /* libh2o gives them in lower case */
        h->value = h2o_strdup(NULL, value.base, value.len);
    }
    if (errstr == h2o_http1client_error_is_eos) {
        op->client = NULL;
        finish_later(op);
        return NULL;
    }
    set_phase(op, 0, op->read_ms);
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs,
                                          size_t *reqbufcnt, int *method_is_head)
{
    httpc_op_t *op = client->data;
    if (errstr != NULL) {
        op->client = NULL;
        if (strcmp(errstr, "connection timeout") == 0 || strcmp(errstr, "I/O timeout") == 0)
            fail(op, "connect timeout", NULL);
        else if (op->tls == TLS_FAILED && op->ssl_verify)
            fail(op, "certificate verify failed: %s", op->tls_error);
        else
            fail(op, "connect failed: %s", errstr);
        return NULL;
    }
    /* a pooled connection was verified when it was made (pools are per TLS policy) */
    if (op->parsed.scheme == &H2O_URL_SCHEME_HTTPS && op->ssl_verify && op->tls == TLS_FAILED) {
        op->client = NULL;
        fail(op, "certificate verify failed: %s", op->tls_error);
        return NULL;
    }
    set_phase(op, 0, op->read_ms); /* sending the request, then waiting for the answer */
    *reqbufs = op->reqbufs;
    *reqbufcnt = op->body.len != 0 ? 2 : 1;
    *method_is_head = strcmp(op->method, "HEAD") == 0;
    return on_head;
}

static int method_has_body(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/* Builds the request head for the current URL and starts connecting. */
static void attempt(httpc_op_t *op)
{
    httpc_t *hc = op->hc;
    free(op->head);
    size_t cap = strlen(op->method) + op->parsed.path.len + op->parsed.authority.len + op->headers_len + 128;
    op->head = util_malloc(cap);
    int n = snprintf(op->head, cap, "%s %.*s HTTP/1.1\r\n", op->method, (int)op->parsed.path.len, op->parsed.path.base);
    if (!op->has_host)
        n +=
            snprintf(op->head + n, cap - (size_t)n, "host: %.*s\r\n", (int)op->parsed.authority.len, op->parsed.authority.base);
    if (!op->has_ua)
        n += snprintf(op->head + n, cap - (size_t)n, "user-agent: h2lua/%s\r\n", H2LUA_VERSION);
    memcpy(op->head + n, op->headers, op->headers_len);
    n += (int)op->headers_len;
    if (op->body.len != 0 || method_has_body(op->method))
        n += snprintf(op->head + n, cap - (size_t)n, "content-length: %zu\r\n", op->body.len);
    n += snprintf(op->head + n, cap - (size_t)n, "\r\n");
    op->reqbufs[0] = h2o_iovec_init(op->head, (size_t)n);
    op->reqbufs[1] = op->body;

    int is_ssl = op->parsed.scheme == &H2O_URL_SCHEME_HTTPS;
    if (op->ssl_ctx != NULL) {
        SSL_CTX_free(op->ssl_ctx);
        op->ssl_ctx = NULL;
    }
    op->tls = TLS_NOT_RUN;
    if (is_ssl) {
        op->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (op->ssl_ctx == NULL)
            h2o_fatal("SSL_CTX_new");
        SSL_CTX_set_min_proto_version(op->ssl_ctx, TLS1_2_VERSION);
        SSL_CTX_set1_cert_store(op->ssl_ctx, op->store->x509);
        SSL_CTX_set_verify(op->ssl_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_cert_verify_callback(op->ssl_ctx, verify_chain, op);
    }
    op->cctx =
        (h2o_http1client_ctx_t){hc->ctx->loop, &hc->ctx->receivers.hostinfo_getaddr, &hc->io_backstop, NULL, op->ssl_ctx};
    op->finishing = 0;
    op->phase_deadline = 0;
    set_phase(op, 1, op->connect_ms);
    h2o_socketpool_t *pool = get_pool(hc, op);
    if (pool != NULL)
        h2o_http1client_connect_with_pool(&op->client, op, &op->cctx, pool, on_connect);
    else
        h2o_http1client_connect(&op->client, op, &op->cctx, op->parsed.host, h2o_url_get_port(&op->parsed), is_ssl, on_connect);
}

static void clear_response(httpc_op_t *op)
{
    for (size_t i = 0; i < op->nrheaders; ++i) {
        free(op->rheaders[i].name.base);
        free(op->rheaders[i].value.base);
    }
    free(op->rheaders);
    op->rheaders = NULL;
    op->nrheaders = 0;
    op->rbody_len = 0;
    op->status = 0;
}

static void op_free(httpc_op_t *op)
{
    cancel_client(op);
    h2o_socket_read_stop(op->timer);
    h2o_socket_close(op->timer);
    if (op->ssl_ctx != NULL)
        SSL_CTX_free(op->ssl_ctx);
    clear_response(op);
    free(op->rbody);
    free(op->head);
    free(op->method);
    free(op->headers);
    free(op->body.base);
    free(op->url);
    if (op->counted)
        --op->hc->running;
    free(op);
}

static const httpc_header_t *find_header(httpc_op_t *op, const char *name)
{
    for (size_t i = 0; i < op->nrheaders; ++i)
        if (strlen(name) == op->rheaders[i].name.len && memcmp(op->rheaders[i].name.base, name, op->rheaders[i].name.len) == 0)
            return &op->rheaders[i];
    return NULL;
}

/* A 3xx to follow: the next URL is set and the next attempt started; 0 when the response stands. */
static int follow_redirect(httpc_op_t *op)
{
    int s = op->status;
    if (op->err != NULL || !(s == 301 || s == 302 || s == 303 || s == 307 || s == 308))
        return 0;
    const httpc_header_t *loc = find_header(op, "location");
    if (loc == NULL || op->redirects_left < 0)
        return 0;
    if (op->redirects_left == 0) {
        op->err = "too many redirects";
        return 0;
    }
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    h2o_url_t rel, dest;
    char errbuf[128];
    int ok = 0;
    char *locz = h2o_strdup(&pool, loc->value.base, loc->value.len).base;
    if (h2o_url_parse_relative(locz, loc->value.len, &rel) == 0) {
        h2o_iovec_t full = h2o_url_resolve(&pool, &op->parsed, &rel, &dest);
        char *next = util_malloc(full.len + 1);
        memcpy(next, full.base, full.len);
        next[full.len] = '\0';
        h2o_url_t parsed;
        if (parse_url(next, full.len, &parsed, errbuf, sizeof(errbuf)) == 0) {
            int same_origin = parsed.scheme == op->parsed.scheme &&
                              h2o_url_get_port(&parsed) == h2o_url_get_port(&op->parsed) &&
                              h2o_lcstris(parsed.host.base, parsed.host.len, op->parsed.host.base, op->parsed.host.len);
            free(op->url);
            op->url = next;
            op->parsed = parsed;
            if (!same_origin && op->has_host) {
                op->err = "redirect to another origin with a host header set";
            } else {
                ok = 1;
            }
        } else {
            free(next);
        }
    }
    h2o_mem_clear_pool(&pool);
    if (!ok) {
        if (op->err == NULL)
            op->err = "bad redirect location";
        return 0;
    }
    --op->redirects_left;
    if (s == 303 || ((s == 301 || s == 302) && strcmp(op->method, "GET") != 0 && strcmp(op->method, "HEAD") != 0)) {
        free(op->method);
        op->method = util_strdup("GET");
        free(op->body.base);
        op->body = h2o_iovec_init(NULL, 0);
    }
    clear_response(op);
    attempt(op);
    return 1;
}

static void on_done(httpc_op_t *op)
{
    if (follow_redirect(op))
        return;
    /* the slot is free before the callback: a caller may start its next request from there */
    --op->hc->running;
    op->counted = 0;
    if (op->err != NULL) {
        op->cb(op->data, op->err, NULL);
    } else {
        httpc_response_t res = {op->status, op->rheaders, op->nrheaders,
                                h2o_iovec_init(op->rbody != NULL ? op->rbody : "", op->rbody_len),
                                h2o_iovec_init(op->url, strlen(op->url))};
        op->cb(op->data, NULL, &res);
    }
    op_free(op);
}

static void finish_later(httpc_op_t *op)
{
    if (!op->finishing) {
        op->finishing = 1;
        arm(op);
    }
}

/* ---- the contract ---- */

void httpc_init_process(void)
{
    h2o_hostinfo_max_threads = HTTPC_RESOLVER_THREADS;
}

httpc_t *httpc_create(h2o_context_t *ctx, unsigned max_running)
{
    httpc_t *hc = util_malloc(sizeof(*hc));
    memset(hc, 0, sizeof(*hc));
    hc->ctx = ctx;
    hc->max_running = max_running;
    h2o_linklist_init_anchor(&hc->pools);
    h2o_linklist_init_anchor(&hc->stores);
    h2o_timeout_init(ctx->loop, &hc->io_backstop, 2 * 3600 * 1000); /* timeouts are at most 3600 s */
    return hc;
}

unsigned httpc_running(httpc_t *hc)
{
    return hc->running;
}

int httpc_start(httpc_t *hc, const httpc_request_t *req, httpc_done_cb cb, void *data, httpc_op_t **out, char *errbuf,
                size_t errlen)
{
    if (!is_token(req->method) || req->method.len > 32) {
        snprintf(errbuf, errlen, "invalid method");
        return -1;
    }
    char *url = util_malloc(req->url.len + 1);
    memcpy(url, req->url.base, req->url.len);
    url[req->url.len] = '\0';
    h2o_url_t parsed;
    if (parse_url(url, req->url.len, &parsed, errbuf, errlen) != 0) {
        free(url);
        return -1;
    }
    /* the application's headers, checked and written once */
    size_t hlen = 0;
    int has_host = 0, has_ua = 0;
    for (size_t i = 0; i < req->nheaders; ++i) {
        h2o_iovec_t name = req->headers[i].name, value = req->headers[i].value;
        if (!is_token(name)) {
            snprintf(errbuf, errlen, "invalid header name (a token expected, no CR, LF or NUL)");
            free(url);
            return -1;
        }
        if (!is_field_value(value)) {
            snprintf(errbuf, errlen, "invalid value of header %.*s (CR, LF, NUL or a control character)",
                     (int)(name.len > 64 ? 64 : name.len), name.base);
            free(url);
            return -1;
        }
        if (h2o_lcstris(name.base, name.len, H2O_STRLIT("content-length")) ||
            h2o_lcstris(name.base, name.len, H2O_STRLIT("transfer-encoding")) ||
            h2o_lcstris(name.base, name.len, H2O_STRLIT("connection"))) {
            snprintf(errbuf, errlen, "header %.*s is set by the client", (int)name.len, name.base);
            free(url);
            return -1;
        }
        has_host |= h2o_lcstris(name.base, name.len, H2O_STRLIT("host"));
        has_ua |= h2o_lcstris(name.base, name.len, H2O_STRLIT("user-agent"));
        hlen += name.len + value.len + 4;
    }
    struct store *store = NULL;
    if (parsed.scheme == &H2O_URL_SCHEME_HTTPS && (store = get_store(hc, req->ca_file, errbuf, errlen)) == NULL) {
        free(url);
        return -1;
    }
    int tfd = -1;
    if (hc->running < hc->max_running && (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
        snprintf(errbuf, errlen, "cannot create a timer (out of file descriptors?)");
        free(url);
        return -1;
    }
    if (hc->running >= hc->max_running) {
        snprintf(errbuf, errlen, "too many outbound requests (HTTP_CLIENT_MAX=%u running on this worker)", hc->max_running);
        free(url);
        return -1;
    }

    httpc_op_t *op = util_malloc(sizeof(*op));
    memset(op, 0, sizeof(*op));
    op->hc = hc;
    op->cb = cb;
    op->data = data;
    op->method = h2o_strdup(NULL, req->method.base, req->method.len).base;
    op->headers = util_malloc(hlen + 1);
    for (size_t i = 0; i < req->nheaders; ++i) {
        h2o_iovec_t name = req->headers[i].name, value = req->headers[i].value;
        memcpy(op->headers + op->headers_len, name.base, name.len);
        op->headers_len += name.len;
        memcpy(op->headers + op->headers_len, ": ", 2);
        op->headers_len += 2;
        memcpy(op->headers + op->headers_len, value.base, value.len);
        op->headers_len += value.len;
        memcpy(op->headers + op->headers_len, "\r\n", 2);
        op->headers_len += 2;
    }
    op->has_host = has_host;
    op->has_ua = has_ua;
    if (req->body.len != 0)
        op->body = h2o_strdup(NULL, req->body.base, req->body.len);
    op->url = url;
    op->parsed = parsed;
    op->redirects_left = req->max_redirects > 0 ? req->max_redirects : -1;
    op->ssl_verify = req->ssl_verify;
    op->max_body = req->max_body;
    op->store = store;
    op->connect_ms = req->connect_timeout_ms;
    op->read_ms = req->read_timeout_ms;
    op->total_deadline = mono_ms() + req->total_timeout_ms;
    op->timer = h2o_evloop_socket_create(hc->ctx->loop, tfd, H2O_SOCKET_FLAG_DONT_READ);
    op->timer->data = op;
    h2o_socket_read_start(op->timer, on_timer);
    ++hc->running;
    op->counted = 1;
    *out = op;
    attempt(op);
    return 0;
}

void httpc_cancel(httpc_op_t *op)
{
    op_free(op);
}
