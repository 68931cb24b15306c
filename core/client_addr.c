#include "client_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int client_addr_parse_ip(const char *s, size_t len, client_addr_ip_t *ip)
{
    char buf[CLIENT_ADDR_TEXT_MAX];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL)
        return -1;
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memcpy(ip->b, mapped_prefix, 12);
        memcpy(ip->b + 12, &a4, 4);
        return 0;
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        memcpy(ip->b, &a6, 16);
        return 0;
    }
    return -1;
}

int client_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, client_addr_ip_t *ip)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(ip->b, mapped_prefix, 12);
        memcpy(ip->b + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        memcpy(ip->b, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

size_t client_addr_text(const client_addr_ip_t *ip, char buf[CLIENT_ADDR_TEXT_MAX])
{
    if (memcmp(ip->b, mapped_prefix, 12) == 0) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        memcpy(&sin.sin_addr, ip->b + 12, 4);
        return util_addr_text((const struct sockaddr *)&sin, sizeof(sin), buf);
    }
    if (inet_ntop(AF_INET6, ip->b, buf, CLIENT_ADDR_TEXT_MAX) == NULL)
        buf[0] = '\0'; /* not reached: 16 bytes always have a text of fewer than 46 */
    return strlen(buf);
}

static int in_net(const client_addr_net_t *net, const client_addr_ip_t *ip)
{
    int full = net->bits / 8, rest = net->bits % 8;
    if (memcmp(net->ip.b, ip->b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->ip.b[full] & mask) == (ip->b[full] & mask);
}

int client_addr_is_trusted(const client_addr_trust_t *t, const client_addr_ip_t *ip)
{
    for (size_t i = 0; i < t->n; ++i)
        if (in_net(&t->nets[i], ip))
            return 1;
    return 0;
}

/* Parses "addr" or "addr/bits" of len bytes into *net; 0, or -1 with the reason in errbuf. */
static int parse_net(const char *s, size_t len, client_addr_net_t *net, char *errbuf, size_t errlen)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    if (client_addr_parse_ip(s, alen, &net->ip) != 0)
        return util_fail(-1, errbuf, errlen,
                         "TRUSTED_PROXIES must be CIDRs separated by commas (e.g. 10.0.1.0/24,fd00::/8), got '%.*s'",
                         (int)(len > 64 ? 64 : len), s);
    int v4 = memcmp(net->ip.b, mapped_prefix, 12) == 0, max = v4 ? 32 : 128;
    int bits = max;
    if (slash != NULL) {
        const char *p = slash + 1, *end = s + len;
        if (p == end || end - p > 3)
            bits = -1;
        else
            for (bits = 0; p < end; ++p)
                bits = *p >= '0' && *p <= '9' ? bits * 10 + (*p - '0') : 1000;
        if (bits < 0 || bits > max)
            return util_fail(-1, errbuf, errlen, "TRUSTED_PROXIES: the prefix length of '%.*s' must be from 0 to %d", (int)len,
                             s, max);
    }
    net->bits = v4 ? 96 + bits : bits;
    client_addr_net_t host_bits = *net;
    for (int i = net->bits; i < 128; ++i)
        host_bits.ip.b[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
    if (memcmp(host_bits.ip.b, net->ip.b, 16) != 0)
        return util_fail(-1, errbuf, errlen,
                         "TRUSTED_PROXIES: '%.*s' has bits set past its prefix length (a network is e.g. 10.0.1.0/24)",
                         (int)len, s);
    return 0;
}

int client_addr_parse_trust(const char *spec, client_addr_trust_t *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (spec == NULL)
        return 0;
    const char *p = spec;
    while (is_space(*p))
        ++p;
    if (*p == '\0')
        return 0;
    client_addr_net_t *nets = util_malloc(sizeof(*nets) * CLIENT_ADDR_NETS_MAX);
    size_t n = 0;
    for (;;) {
        while (is_space(*p))
            ++p;
        const char *start = p;
        while (*p != '\0' && *p != ',' && !is_space(*p))
            ++p;
        size_t len = (size_t)(p - start);
        while (is_space(*p))
            ++p;
        if (len == 0 || (*p != ',' && *p != '\0')) {
            free(nets);
            return util_fail(-1, errbuf, errlen,
                             "TRUSTED_PROXIES must be CIDRs separated by commas (e.g. 10.0.1.0/24,fd00::/8), got '%.64s'",
                             spec);
        }
        if (n == CLIENT_ADDR_NETS_MAX) {
            free(nets);
            return util_fail(-1, errbuf, errlen, "TRUSTED_PROXIES: at most %d networks", CLIENT_ADDR_NETS_MAX);
        }
        if (parse_net(start, len, &nets[n], errbuf, errlen) != 0) {
            free(nets);
            return -1;
        }
        ++n;
        if (*p == '\0')
            break;
        ++p; /* the comma */
    }
    out->nets = nets;
    out->n = n;
    return 0;
}

void client_addr_trust_free(client_addr_trust_t *t)
{
    free(t->nets);
    t->nets = NULL;
    t->n = 0;
}

void client_addr_resolve(const client_addr_trust_t *t, const client_addr_ip_t *peer, const char *const *values,
                         const size_t *lens, size_t nvalues, client_addr_ip_t *out)
{
    *out = *peer;
    if (!client_addr_is_trusted(t, peer))
        return;
    for (size_t v = nvalues; v-- > 0;) {
        const char *s = values[v];
        size_t end = lens[v];
        for (;;) { /* one entry a turn, from the right */
            size_t start = end;
            while (start > 0 && s[start - 1] != ',')
                --start;
            size_t a = start, b = end;
            while (a < b && is_space(s[a]))
                ++a;
            while (b > a && is_space(s[b - 1]))
                --b;
            client_addr_ip_t hop;
            if (client_addr_parse_ip(s + a, b - a, &hop) != 0)
                return; /* not an address: the last good hop */
            *out = hop;
            if (!client_addr_is_trusted(t, &hop))
                return;
            if (start == 0)
                break;
            end = start - 1;
        }
    }
}
