#include "worker.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"

h2o_iovec_t worker_hdr_request_id = {H2O_STRLIT("x-request-id")};

void worker_next_request_id(worker_t *w, char buf[17])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t id = (uint64_t)w->request_id_base << 32 | (uint32_t)++w->request_seq;
    for (int i = 15; i >= 0; --i, id >>= 4)
        buf[i] = hex[id & 15];
    buf[16] = '\0';
}

size_t worker_client_addr_of(const worker_t *w, const struct sockaddr *peer_sa, socklen_t peer_len,
                             const h2o_headers_t *headers, char out[CLIENT_ADDR_TEXT_MAX])
{
    const client_addr_trust_t *trust = &w->cfg->trusted_proxies;
    client_addr_ip_t peer, client;
    if (peer_len == 0 || client_addr_from_sockaddr(peer_sa, peer_len, &peer) != 0) {
        out[0] = '\0';
        return 0;
    }
    client = peer;
    if (client_addr_is_trusted(trust, &peer)) {
        /* the last WORKER_XFF_MAX X-Forwarded-For headers: the walk starts at the right */
        static const h2o_iovec_t name = {H2O_STRLIT("x-forwarded-for")};
        const char *values[WORKER_XFF_MAX];
        size_t lens[WORKER_XFF_MAX], n = 0;
        for (ssize_t i = -1; (i = h2o_find_header_by_str(headers, name.base, name.len, i)) >= 0;) {
            if (n == WORKER_XFF_MAX) {
                memmove(values, values + 1, sizeof(values[0]) * (n - 1));
                memmove(lens, lens + 1, sizeof(lens[0]) * (n - 1));
                --n;
            }
            values[n] = headers->entries[i].value.base;
            lens[n++] = headers->entries[i].value.len;
        }
        client_addr_resolve(trust, &peer, values, lens, n, &client);
    }
    return client_addr_text(&client, out);
}

size_t worker_client_addr(const worker_t *w, h2o_req_t *req, char out[CLIENT_ADDR_TEXT_MAX])
{
    struct sockaddr_storage ss;
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    return worker_client_addr_of(w, (void *)&ss, sslen, &req->headers, out);
}

h2o_iovec_t worker_find_request_id(h2o_req_t *req)
{
    for (size_t i = 0; i != req->res.headers.size; ++i)
        if (req->res.headers.entries[i].name == &worker_hdr_request_id)
            return req->res.headers.entries[i].value;
    return h2o_iovec_init(NULL, 0);
}
