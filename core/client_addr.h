/*
 * client_addr — the address of the client behind the proxies the operator trusts (TRUSTED_PROXIES).
 *
 * The peer of a connection is the client, unless the peer is a trusted proxy: then the client is
 * read from X-Forwarded-For, walking it from the right (the hop the nearest proxy added) and
 * skipping trusted addresses; the first untrusted one is the client. A client can write anything to
 * the left of what the proxies append, so nothing left of that address is ever read. An entry that
 * is not a plain IPv4 or IPv6 address stops the walk at the last good hop. No dependency on the
 * event loop: the server calls it for each request, the unit test and the fuzz target directly.
 */
#ifndef H2LUA_CLIENT_ADDR_H
#define H2LUA_CLIENT_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for an address as text (INET6_ADDRSTRLEN), with its NUL. */
#define CLIENT_ADDR_TEXT_MAX 46
/* Most networks in a TRUSTED_PROXIES list. */
#define CLIENT_ADDR_NETS_MAX 64

/* An address: IPv4 as an IPv4-mapped IPv6 address (::ffff:a.b.c.d), so that one comparison serves both. */
typedef struct client_addr_ip {
    uint8_t b[16];
} client_addr_ip_t;

/* A network: an address and its prefix length in bits (of the 128 of the mapped form). */
typedef struct client_addr_net {
    client_addr_ip_t ip;
    int bits;
} client_addr_net_t;

/* The trusted proxies. A zeroed one trusts nothing. */
typedef struct client_addr_trust {
    client_addr_net_t *nets; /* owned */
    size_t n;
} client_addr_trust_t;

/*
 * Parses a TRUSTED_PROXIES value: CIDRs ("10.0.1.0/24", "fd00::/8") or single addresses, separated
 * by commas (spaces around them allowed); empty or NULL trusts nothing. Host bits set below the
 * prefix are refused (a typo more often than a wish). Returns 0, or -1 with one line naming
 * TRUSTED_PROXIES in errbuf (and nothing to free). Out of memory aborts.
 */
int client_addr_parse_trust(const char *spec, client_addr_trust_t *out, char *errbuf, size_t errlen);

/* Frees what client_addr_parse_trust allocated. Safe on a zeroed one. */
void client_addr_trust_free(client_addr_trust_t *t);

/* Parses one address as text (IPv4 dotted quad or IPv6, nothing around it) of `len` bytes. Returns
 * 0, or -1 when it is not one. */
int client_addr_parse_ip(const char *s, size_t len, client_addr_ip_t *ip);

/* The address of a socket (AF_INET or AF_INET6). Returns 0, or -1 for another family. */
int client_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, client_addr_ip_t *ip);

/* Whether `ip` is in one of the trusted networks. */
int client_addr_is_trusted(const client_addr_trust_t *t, const client_addr_ip_t *ip);

/* Writes `ip` as text into buf (IPv4 dotted, mapped addresses as IPv4; IPv6 as inet_ntop writes
 * it). Returns the length. Can't fail. */
size_t client_addr_text(const client_addr_ip_t *ip, char buf[CLIENT_ADDR_TEXT_MAX]);

/*
 * The client's address: `peer` itself unless it is trusted; then the X-Forwarded-For values (the
 * `nvalues` headers in the order received, as if joined by commas) walked from the right as above:
 * the first untrusted entry, or, when every entry is trusted, the leftmost; an entry that is not an
 * address (empty, a port, garbage, too long) stops the walk and the last good hop is the answer.
 * Spaces and tabs around entries are ignored. Can't fail.
 */
void client_addr_resolve(const client_addr_trust_t *t, const client_addr_ip_t *peer, const char *const *values,
                         const size_t *lens, size_t nvalues, client_addr_ip_t *out);

#endif
