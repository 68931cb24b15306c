#include "worker.h"

#include <stdio.h>
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

size_t worker_client_addr(const worker_t *w, h2o_req_t *req, char out[CLIENT_ADDR_TEXT_MAX])
{
    const client_addr_trust_t *trust = &w->cfg->trusted_proxies;
    struct sockaddr_storage ss;
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    client_addr_ip_t peer, client;
    if (sslen == 0 || client_addr_from_sockaddr((void *)&ss, sslen, &peer) != 0) {
        out[0] = '\0';
        return 0;
    }
    client = peer;
    if (client_addr_is_trusted(trust, &peer)) {
        static const h2o_iovec_t name = {H2O_STRLIT("x-forwarded-for")};
        size_t n = 0;
        for (ssize_t i = -1; (i = h2o_find_header_by_str(&req->headers, name.base, name.len, i)) >= 0;)
            ++n;
        const char **values = h2o_mem_alloc_pool(&req->pool, sizeof(*values) * (n + 1));
        size_t *lens = h2o_mem_alloc_pool(&req->pool, sizeof(*lens) * (n + 1));
        n = 0;
        for (ssize_t i = -1; (i = h2o_find_header_by_str(&req->headers, name.base, name.len, i)) >= 0; ++n) {
            values[n] = req->headers.entries[i].value.base;
            lens[n] = req->headers.entries[i].value.len;
        }
        client_addr_resolve(trust, &peer, values, lens, n, &client);
    }
    return client_addr_text(&client, out);
}

h2o_iovec_t worker_find_request_id(h2o_req_t *req)
{
    for (size_t i = 0; i != req->res.headers.size; ++i)
        if (req->res.headers.entries[i].name == &worker_hdr_request_id)
            return req->res.headers.entries[i].value;
    return h2o_iovec_init(NULL, 0);
}
