/* Unit tests of core/util.c's base64url (RFC 4648 section 5, no padding), as scripts/lib/base64.lua
 * does it: known vectors, a round trip of random bytes, and what the decoder refuses; and the text of
 * a peer's address. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util.h"

static int encodes_to(const char *raw, size_t len, const char *want)
{
    char out[64];
    size_t n = UTIL_BASE64URL_LEN(len);
    util_base64url_encode(out, (const unsigned char *)raw, len);
    return n == strlen(want) && memcmp(out, want, n) == 0;
}

static long decode(const char *s, unsigned char *out)
{
    return util_base64url_decode(out, s, strlen(s));
}

static void test_vectors(void)
{
    CHECK(encodes_to("", 0, ""));
    CHECK(encodes_to("f", 1, "Zg"));
    CHECK(encodes_to("fo", 2, "Zm8"));
    CHECK(encodes_to("foo", 3, "Zm9v"));
    CHECK(encodes_to("foob", 4, "Zm9vYg"));
    CHECK(encodes_to("fooba", 5, "Zm9vYmE"));
    CHECK(encodes_to("foobar", 6, "Zm9vYmFy"));
    CHECK(encodes_to("\xfb\xff\xfe", 3, "-__-"));
    unsigned char out[64];
    CHECK(decode("Zm9vYmE", out) == 5 && memcmp(out, "fooba", 5) == 0);
    CHECK(decode("-__-", out) == 3 && memcmp(out, "\xfb\xff\xfe", 3) == 0);
    CHECK(decode("", out) == 0);
}

static void test_refused(void)
{
    unsigned char out[64];
    /* a length of 4n+1, padding, the other alphabet, a space, bits set past the last byte */
    const char *bad[] = {"Z", "Zm9vY", "Zm9=", "Zm8=", "Zm9v+A", "Zm9v/w", "Zm 9v", "Zh", "Zm9", "Zm9vYh"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        CHECK(decode(bad[i], out) == -1);
    CHECK(decode("Zm8", out) == 2 && memcmp(out, "fo", 2) == 0);
    CHECK(util_base64url_decode(out, "Zm\0v", 4) == -1); /* a NUL inside */
}

static void test_round_trip(void)
{
    srand(7);
    int bad = 0;
    for (int i = 0; i < 20000; ++i) {
        unsigned char raw[40], back[40];
        char enc[64];
        size_t len = (size_t)(rand() % 40);
        for (size_t j = 0; j < len; ++j)
            raw[j] = (unsigned char)rand();
        util_base64url_encode(enc, raw, len);
        long n = util_base64url_decode(back, enc, UTIL_BASE64URL_LEN(len));
        bad += n != (long)len || memcmp(raw, back, len) != 0;
    }
    CHECK(bad == 0);
}

/* The text of a peer's address: IPv4 digits without stdio, IPv6 as inet_ntop writes it. */
static void test_addr_text(void)
{
    char buf[UTIL_ADDR_TEXT_MAX];
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    const char *v4[] = {"127.0.0.1", "0.0.0.0", "255.255.255.255", "10.20.100.9", "192.168.1.254"};
    for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); ++i) {
        inet_pton(AF_INET, v4[i], &a4.sin_addr);
        CHECK(util_addr_text((struct sockaddr *)&a4, sizeof(a4), buf) == strlen(v4[i]));
        CHECK(strcmp(buf, v4[i]) == 0);
    }
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    const char *v6[] = {"::1", "2001:db8::ff00:42:8329", "::ffff:10.0.0.1", "fe80::1"};
    for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); ++i) {
        inet_pton(AF_INET6, v6[i], &a6.sin6_addr);
        CHECK(util_addr_text((struct sockaddr *)&a6, sizeof(a6), buf) == strlen(v6[i]));
        CHECK(strcmp(buf, v6[i]) == 0);
    }
    CHECK(util_addr_text((struct sockaddr *)&a4, sizeof(a4) - 1, buf) == 0 && buf[0] == '\0'); /* short */
    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK(util_addr_text(&un, sizeof(un), buf) == 0 && buf[0] == '\0');
}

int main(void)
{
    test_vectors();
    test_refused();
    test_round_trip();
    test_addr_text();
    return CHECK_DONE();
}
