#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

char *util_random_hex(size_t n)
{
    unsigned char *raw = util_malloc(n);
    char *out = util_malloc(2 * n + 1);
    util_random_bytes(raw, n);
    util_hex_encode(out, raw, n);
    free(raw);
    return out;
}
