#include "util.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>

static void oom(void)
{
    fputs("{\"level\":\"fatal\",\"msg\":\"out of memory\"}\n", stderr);
    abort();
}

void *util_malloc(size_t sz)
{
    void *p = malloc(sz == 0 ? 1 : sz);
    if (p == NULL)
        oom();
    return p;
}

void *util_realloc(void *p, size_t sz)
{
    p = realloc(p, sz == 0 ? 1 : sz);
    if (p == NULL)
        oom();
    return p;
}

char *util_strdup(const char *s)
{
    return util_strndup(s, strlen(s));
}

char *util_strndup(const char *s, size_t n)
{
    char *p = util_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int util_fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

void util_secure_free(char *s)
{
    volatile char *v = s;
    while (*v != '\0')
        *v++ = '\0';
    free(s);
}

int util_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void util_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            fputs("{\"level\":\"fatal\",\"msg\":\"getrandom failed\"}\n", stderr);
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

void util_hex_encode(char *dst, const unsigned char *src, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; ++i) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 15];
    }
    dst[2 * len] = '\0';
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void util_base64url_encode(char *dst, const unsigned char *src, size_t len)
{
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)src[i] << 16 | (unsigned)src[i + 1] << 8 | src[i + 2];
        *dst++ = b64url[v >> 18], *dst++ = b64url[v >> 12 & 63], *dst++ = b64url[v >> 6 & 63], *dst++ = b64url[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)src[i] << 16;
        *dst++ = b64url[v >> 18], *dst++ = b64url[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)src[i] << 16 | (unsigned)src[i + 1] << 8;
        *dst++ = b64url[v >> 18], *dst++ = b64url[v >> 12 & 63], *dst++ = b64url[v >> 6 & 63];
    }
}

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

long util_base64url_decode(unsigned char *dst, const char *src, size_t len)
{
    if (len % 4 == 1)
        return -1;
    unsigned char *d = dst;
    unsigned v = 0;
    size_t i = 0;
    for (; i < len; ++i) {
        int x = b64url_val((unsigned char)src[i]);
        if (x < 0)
            return -1;
        v = v << 6 | (unsigned)x;
        if (i % 4 == 3) {
            *d++ = (unsigned char)(v >> 16), *d++ = (unsigned char)(v >> 8), *d++ = (unsigned char)v;
            v = 0;
        }
    }
    if (len % 4 == 2) {
        if (v & 0xf) /* 12 bits for one byte: the last 4 must be 0 */
            return -1;
        *d++ = (unsigned char)(v >> 4);
    } else if (len % 4 == 3) {
        if (v & 0x3) /* 18 bits for two bytes */
            return -1;
        *d++ = (unsigned char)(v >> 10), *d++ = (unsigned char)(v >> 2);
    }
    return (long)(d - dst);
}

char *util_random_hex(size_t n)
{
    unsigned char *raw = util_malloc(n);
    char *out = util_malloc(2 * n + 1);
    util_random_bytes(raw, n);
    util_hex_encode(out, raw, n);
    free(raw);
    return out;
}

const char *util_html_entity(unsigned char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    default: return NULL;
    }
}

size_t util_html_safe_prefix(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && util_html_entity((unsigned char)s[i]) == NULL)
        ++i;
    return i;
}

size_t util_escape_html(char *dst, const char *s, size_t len)
{
    char *d = dst;
    for (size_t i = 0; i < len; ++i) {
        const char *e = util_html_entity((unsigned char)s[i]);
        if (e == NULL) {
            *d++ = s[i];
        } else {
            size_t n = strlen(e);
            memcpy(d, e, n);
            d += n;
        }
    }
    return (size_t)(d - dst);
}

void util_hmac_sha256(const char *key, const void *data, size_t len, unsigned char out[UTIL_HMAC_SHA256_LEN])
{
    unsigned outlen = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), data, len, out, &outlen);
}

size_t util_addr_text(const struct sockaddr *sa, socklen_t len, char *buf)
{
    buf[0] = '\0';
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        char *d = buf;
        for (int i = 0; i < 4; ++i) {
            unsigned v = b[i];
            if (v >= 100)
                *d++ = (char)('0' + v / 100);
            if (v >= 10)
                *d++ = (char)('0' + v / 10 % 10);
            *d++ = (char)('0' + v % 10);
            *d++ = i < 3 ? '.' : '\0';
        }
        return (size_t)(d - buf - 1);
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        if (inet_ntop(AF_INET6, &s6->sin6_addr, buf, UTIL_ADDR_TEXT_MAX) != NULL)
            return strlen(buf);
        buf[0] = '\0';
    }
    return 0;
}

static pthread_once_t boot_once = PTHREAD_ONCE_INIT;
static char boot_id[17];

static void make_boot_id(void)
{
    char *hex = util_random_hex(8);
    memcpy(boot_id, hex, sizeof(boot_id));
    free(hex);
}

const char *util_boot_id(void)
{
    pthread_once(&boot_once, make_boot_id);
    return boot_id;
}
