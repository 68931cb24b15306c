/* libFuzzer target: TRUSTED_PROXIES and X-Forwarded-For (core/client_addr.c). The input's first
 * line is a TRUSTED_PROXIES value, the rest X-Forwarded-For headers, one a line. An accepted value
 * has at most CLIENT_ADDR_NETS_MAX networks, a refused one explains itself naming the variable; the
 * client is the peer or an address of the headers, and it is untrusted unless every hop was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    char *nl = memchr(in, '\n', size);
    if (nl != NULL)
        *nl = '\0';
    client_addr_trust_t t;
    char err[256] = "";
    if (client_addr_parse_trust(in, &t, err, sizeof(err)) != 0) {
        if (strstr(err, "TRUSTED_PROXIES") == NULL)
            abort();
        t = (client_addr_trust_t){0};
        if (client_addr_parse_trust("10.0.0.0/8,fd00::/8,127.0.0.1", &t, err, sizeof(err)) != 0)
            abort();
    }
    if (t.n > CLIENT_ADDR_NETS_MAX)
        abort();
    const char *values[64];
    size_t lens[64], n = 0;
    for (char *p = nl != NULL ? nl + 1 : in + size; p < in + size && n < 64;) {
        char *e = memchr(p, '\n', (size_t)(in + size - p));
        size_t len = e != NULL ? (size_t)(e - p) : (size_t)(in + size - p);
        values[n] = p;
        lens[n++] = len;
        p += len + 1;
    }
    client_addr_ip_t peer, client;
    if (client_addr_parse_ip("10.1.2.3", 8, &peer) != 0)
        abort();
    if (t.n > 0)
        peer = t.nets[0].ip; /* a trusted peer: the headers are read */
    client_addr_resolve(&t, &peer, values, lens, n, &client);
    char text[CLIENT_ADDR_TEXT_MAX];
    size_t len = client_addr_text(&client, text);
    client_addr_ip_t again;
    if (len == 0 || len >= CLIENT_ADDR_TEXT_MAX || client_addr_parse_ip(text, len, &again) != 0 ||
        memcmp(&again, &client, sizeof(client)) != 0)
        abort();
    int found = memcmp(&client, &peer, sizeof(peer)) == 0;
    for (size_t i = 0; i < n && !found; ++i)
        for (size_t a = 0; a < lens[i] && !found; ++a)
            for (size_t b = a + 1; b <= lens[i] && b - a < CLIENT_ADDR_TEXT_MAX && !found; ++b) {
                client_addr_ip_t ip;
                found = client_addr_parse_ip(values[i] + a, b - a, &ip) == 0 && memcmp(&ip, &client, sizeof(ip)) == 0;
            }
    if (!found)
        abort(); /* the client is the peer or one of the hops */
    client_addr_trust_free(&t);
    free(in);
    return 0;
}
