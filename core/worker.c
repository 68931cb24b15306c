#include "worker.h"

#include <stdio.h>

h2o_iovec_t worker_hdr_request_id = {H2O_STRLIT("x-request-id")};

void worker_next_request_id(worker_t *w, char buf[17])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t id = (uint64_t)w->request_id_base << 32 | (uint32_t)++w->request_seq;
    for (int i = 15; i >= 0; --i, id >>= 4)
        buf[i] = hex[id & 15];
    buf[16] = '\0';
}

h2o_iovec_t worker_find_request_id(h2o_req_t *req)
{
    for (size_t i = 0; i != req->res.headers.size; ++i)
        if (req->res.headers.entries[i].name == &worker_hdr_request_id)
            return req->res.headers.entries[i].value;
    return h2o_iovec_init(NULL, 0);
}
