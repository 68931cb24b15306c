/* Unit tests of core/client_addr.c: TRUSTED_PROXIES parsing, and the client that a peer and its
 * X-Forwarded-For headers name — forged prefixes, IPv6, spaces, several headers, garbage. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "client_addr.h"

static client_addr_trust_t trust_of(const char *spec)
{
    client_addr_trust_t t;
    char err[256] = "";
    if (client_addr_parse_trust(spec, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "  refused '%s': %s\n", spec, err);
        CHECK(0);
    }
    return t;
}

/* The client as text for `peer` and the headers (NULL-terminated) under `trust`. */
static const char *client(const client_addr_trust_t *trust, const char *peer, const char **headers)
{
    static char out[CLIENT_ADDR_TEXT_MAX];
    client_addr_ip_t p, c;
    if (client_addr_parse_ip(peer, strlen(peer), &p) != 0)
        return "bad peer";
    size_t lens[16], n = 0;
    for (; headers != NULL && headers[n] != NULL; ++n)
        lens[n] = strlen(headers[n]);
    client_addr_resolve(trust, &p, headers, lens, n, &c);
    client_addr_text(&c, out);
    return out;
}

#define CLIENT_IS(trust, peer, want, ...)                                                                                      \
    do {                                                                                                                       \
        const char *hs_[] = {__VA_ARGS__, NULL};                                                                               \
        const char *got_ = client(trust, peer, hs_);                                                                           \
        if (strcmp(got_, want) != 0)                                                                                           \
            fprintf(stderr, "  peer %s: expected %s, got %s\n", peer, want, got_);                                             \
        CHECK(strcmp(got_, want) == 0);                                                                                        \
    } while (0)

static void test_parse_trust(void)
{
    client_addr_trust_t t = trust_of("10.0.1.0/24, 10.0.2.0/24,fd00::/8 ,127.0.0.1,::1");
    CHECK(t.n == 5);
    client_addr_trust_free(&t);
    t = trust_of("");
    CHECK(t.n == 0 && t.nets == NULL);
    t = trust_of("  ");
    CHECK(t.n == 0);
    t = trust_of(NULL);
    CHECK(t.n == 0);
    t = trust_of("0.0.0.0/0,::/0");
    CHECK(t.n == 2);
    client_addr_trust_free(&t);

    static const char *bad[][2] = {
        {"10.0.1.0/33", "prefix length of '10.0.1.0/33' must be from 0 to 32"},
        {"fd00::/129", "from 0 to 128"},
        {"10.0.1.0/", "prefix length"},
        {"10.0.1.0/2x", "prefix length"},
        {"10.0.1.0/-1", "prefix length"},
        {"10.0.1.1/24", "bits set past its prefix length"},
        {"10.0.1.0/24,", "TRUSTED_PROXIES must be CIDRs"},
        {",10.0.1.0/24", "TRUSTED_PROXIES must be CIDRs"},
        {"10.0.1.0/24 10.0.2.0/24", "TRUSTED_PROXIES must be CIDRs"},
        {"10.0.1/24", "TRUSTED_PROXIES must be CIDRs"},
        {"localhost", "TRUSTED_PROXIES must be CIDRs"},
        {"10.0.1.0:80", "TRUSTED_PROXIES must be CIDRs"},
        {"fe80::1%eth0", "TRUSTED_PROXIES must be CIDRs"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        client_addr_trust_t b;
        char err[256] = "";
        int ret = client_addr_parse_trust(bad[i][0], &b, err, sizeof(err));
        CHECK(ret == -1 && b.n == 0 && strstr(err, "TRUSTED_PROXIES") != NULL);
        if (strstr(err, bad[i][1]) == NULL) {
            fprintf(stderr, "  '%s': expected '%s' in '%s'\n", bad[i][0], bad[i][1], err);
            CHECK(0);
        }
    }
    char many[2048] = "";
    for (int i = 0; i < 65; ++i)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s10.0.%d.0/24", i ? "," : "", i);
    client_addr_trust_t m;
    char err[256];
    CHECK(client_addr_parse_trust(many, &m, err, sizeof(err)) == -1 && strstr(err, "at most 64") != NULL);
}

static void test_matching(void)
{
    client_addr_trust_t t = trust_of("10.0.1.0/24,172.16.0.0/12,fd00::/8,2001:db8::1,192.168.1.128/25");
    client_addr_ip_t ip;
    static const struct {
        const char *addr;
        int trusted;
    } cases[] = {
        {"10.0.1.0", 1},      {"10.0.1.255", 1},      {"10.0.2.1", 0},    {"172.31.255.255", 1}, {"172.32.0.0", 0},
        {"fd12::3", 1},       {"fe00::1", 0},         {"2001:db8::1", 1}, {"2001:db8::2", 0},    {"192.168.1.128", 1},
        {"192.168.1.127", 0}, {"::ffff:10.0.1.7", 1}, {"::10.0.1.7", 0},  {"11.0.1.7", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        CHECK(client_addr_parse_ip(cases[i].addr, strlen(cases[i].addr), &ip) == 0);
        if (client_addr_is_trusted(&t, &ip) != cases[i].trusted) {
            fprintf(stderr, "  %s: expected trusted=%d\n", cases[i].addr, cases[i].trusted);
            CHECK(0);
        }
    }
    client_addr_trust_free(&t);
    t = trust_of("0.0.0.0/0");
    CHECK(client_addr_parse_ip("8.8.8.8", 7, &ip) == 0 && client_addr_is_trusted(&t, &ip));
    CHECK(client_addr_parse_ip("::1", 3, &ip) == 0 && !client_addr_is_trusted(&t, &ip));
    client_addr_trust_free(&t);
}

static void test_resolve(void)
{
    client_addr_trust_t none = {0};
    client_addr_trust_t t = trust_of("10.0.1.0/24,10.0.2.0/24,fd00::/8");

    /* an untrusted peer: its own address, whatever the header says */
    CLIENT_IS(&none, "203.0.113.9", "203.0.113.9", "198.51.100.1");
    CLIENT_IS(&t, "203.0.113.9", "203.0.113.9", "198.51.100.1");
    /* a trusted peer without a header: the peer */
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", NULL);
    /* the ALB appended the client; the client's forged prefix is never read */
    CLIENT_IS(&t, "10.0.1.5", "198.51.100.7", "198.51.100.7");
    CLIENT_IS(&t, "10.0.1.5", "198.51.100.7", "1.2.3.4, 5.6.7.8, 198.51.100.7");
    CLIENT_IS(&t, "10.0.1.5", "198.51.100.7", "evil, 198.51.100.7");
    /* trusted hops on the right are skipped: the rightmost untrusted address */
    CLIENT_IS(&t, "10.0.1.5", "198.51.100.7", "1.2.3.4, 198.51.100.7, 10.0.2.9, 10.0.1.77");
    /* every hop trusted: the leftmost */
    CLIENT_IS(&t, "10.0.1.5", "10.0.2.3", "10.0.2.3, 10.0.1.4");
    /* spaces and tabs */
    CLIENT_IS(&t, "10.0.1.5", "198.51.100.7", "  1.2.3.4 ,\t198.51.100.7\t ");
    /* several headers: one list, the last header on the right */
    CLIENT_IS(&t, "10.0.1.5", "198.51.100.8", "1.2.3.4", "198.51.100.8");
    CLIENT_IS(&t, "10.0.1.5", "198.51.100.7", "198.51.100.7", "10.0.2.1, 10.0.1.9");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.9", "9.9.9.9, 10.0.2.1", "", "10.0.1.9"); /* an empty header is an empty entry */
    /* IPv6: peers, hops and clients; one text per address */
    CLIENT_IS(&t, "fd00::5", "2001:db8::7", "2001:DB8:0:0::7");
    CLIENT_IS(&t, "fd00::5", "2001:db8::7", "1.2.3.4, 2001:db8::7, fd00::1");
    CLIENT_IS(&t, "::ffff:10.0.1.5", "198.51.100.7", "198.51.100.7");
    CLIENT_IS(&t, "10.0.1.5", "198.51.100.7", "::ffff:198.51.100.7");
    /* garbage stops the walk at the last good hop */
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "garbage");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "198.51.100.7:443");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "[2001:db8::7]");
    CLIENT_IS(&t, "10.0.1.5", "10.0.2.2", "198.51.100.7, bad, 10.0.2.2");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "198.51.100.7,");
    CLIENT_IS(&t, "10.0.1.5", "10.0.2.2", "198.51.100.7,,10.0.2.2");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "1.2.3.4 5.6.7.8");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "01.2.3.4");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "1111:2222:3333:4444:5555:6666:7777:8888:9999");
    CLIENT_IS(&t, "10.0.1.5", "10.0.1.5", "unknown");
    const char nul[] = "1.2.3.4\0";
    client_addr_ip_t p, c;
    const char *vals[] = {nul};
    size_t lens[] = {8};
    CHECK(client_addr_parse_ip("10.0.1.5", 8, &p) == 0);
    client_addr_resolve(&t, &p, vals, lens, 1, &c);
    CHECK(memcmp(&c, &p, sizeof(c)) == 0);
    client_addr_trust_free(&t);
}

static void test_sockaddr(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    client_addr_ip_t ip;
    char text[CLIENT_ADDR_TEXT_MAX];
    CHECK(client_addr_from_sockaddr((void *)&sin, sizeof(sin), &ip) == 0);
    CHECK(client_addr_text(&ip, text) == 9 && strcmp(text, "127.0.0.1") == 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
    CHECK(client_addr_from_sockaddr((void *)&sin6, sizeof(sin6), &ip) == 0);
    CHECK(client_addr_text(&ip, text) == 3 && strcmp(text, "::1") == 0);
    CHECK(client_addr_from_sockaddr((void *)&sin6, sizeof(sin), &ip) == -1);
    struct sockaddr sa = {.sa_family = AF_UNIX};
    CHECK(client_addr_from_sockaddr(&sa, sizeof(sa), &ip) == -1);
}

int main(void)
{
    test_parse_trust();
    test_matching();
    test_resolve();
    test_sockaddr();
    return CHECK_DONE();
}
