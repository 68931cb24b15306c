#include "http_compress.h"

#include <brotli/encode.h>
#include <libdeflate.h>
#include <pthread.h>
#include <string.h>

enum { MIN_SIZE = 1024 };
/* brotli of dynamic responses: quality 1 (as fast as gzip at level 1 and smaller), and a 256 KB
 * window (a page is far smaller) */
enum { BR_QUALITY = 1, BR_LGWIN = 18 };

typedef struct compress_filter {
    h2o_filter_t super;
    int level;
} compress_filter_t;

typedef struct compress_ostream {
    h2o_ostream_t super;
    int level;
    h2o_compress_context_t *gz; /* zlib's, for a body sent in parts (a stream), opened at its first */
} compress_ostream_t;

typedef struct br_ostream {
    h2o_ostream_t super;
    BrotliEncoderState **enc; /* for a body sent in parts, made at its first (freed with the pool) */
} br_ostream_t;

/* Each worker thread's libdeflate compressor, made at its first use and freed when the thread ends:
 * a body sent whole (the usual page) is compressed in one call, with no state to set up. */
static pthread_key_t deflater_key;
static pthread_once_t deflater_once = PTHREAD_ONCE_INIT;

static void free_deflater(void *c)
{
    libdeflate_free_compressor(c);
}

static void make_deflater_key(void)
{
    if (pthread_key_create(&deflater_key, free_deflater) != 0)
        h2o_fatal("pthread_key_create failed");
}

static struct libdeflate_compressor *deflater(int level)
{
    pthread_once(&deflater_once, make_deflater_key);
    struct libdeflate_compressor *c = pthread_getspecific(deflater_key);
    if (c == NULL) {
        if ((c = libdeflate_alloc_compressor(level)) == NULL)
            h2o_fatal("no memory");
        pthread_setspecific(deflater_key, c);
    }
    return c;
}

/* Whether the media type (parameters ignored, case-insensitive) is text worth compressing. */
static int is_text_type(h2o_iovec_t v)
{
    size_t len = 0;
    while (len < v.len && v.base[len] != ';' && v.base[len] != ' ')
        ++len;
    const char *s = v.base;
#define IS(lit) h2o_lcstris(s, len, H2O_STRLIT(lit))
#define ENDS(lit) (len >= sizeof(lit) - 1 && h2o_lcstris(s + len - (sizeof(lit) - 1), sizeof(lit) - 1, H2O_STRLIT(lit)))
    if (len > 5 && h2o_lcstris(s, 5, H2O_STRLIT("text/")))
        return 1;
    return IS("application/json") || IS("application/javascript") || IS("application/ecmascript") || IS("application/xml") ||
           ENDS("+json") || ENDS("+xml");
#undef IS
#undef ENDS
}

static void do_send(h2o_ostream_t *_self, h2o_req_t *req, h2o_iovec_t *inbufs, size_t inbufcnt, h2o_send_state_t state)
{
    compress_ostream_t *self = (void *)_self;
    h2o_iovec_t *outbufs;
    size_t outbufcnt;
    if (self->gz == NULL && state == H2O_SEND_STATE_FINAL) {
        /* the whole body at once: one gzip member in one call */
        h2o_iovec_t in = inbufcnt == 1 ? inbufs[0] : h2o_concat_list(&req->pool, inbufs, inbufcnt);
        struct libdeflate_compressor *c = deflater(self->level);
        size_t cap = libdeflate_gzip_compress_bound(c, in.len);
        h2o_iovec_t out = h2o_iovec_init(h2o_mem_alloc_pool(&req->pool, cap), 0);
        if ((out.len = libdeflate_gzip_compress(c, in.base, in.len, out.base, cap)) == 0)
            h2o_fatal("libdeflate_gzip_compress: the bound was too small");
        h2o_ostream_send_next(&self->super, req, &out, 1, state);
        return;
    }
    if (self->gz == NULL)
        self->gz = h2o_compress_gzip_open(&req->pool, self->level);
    self->gz->transform(self->gz, inbufs, inbufcnt, state, &outbufs, &outbufcnt);
    h2o_ostream_send_next(&self->super, req, outbufs, outbufcnt, state);
}

static void free_br_encoder(void *p)
{
    BrotliEncoderState **enc = p;
    if (*enc != NULL)
        BrotliEncoderDestroyInstance(*enc);
}

typedef H2O_VECTOR(h2o_iovec_t) iovec_vector_t;

/* Runs enc over in with op (PROCESS, FLUSH or FINISH) to its end, appending what it gives out to
 * out (copies in the pool). */
static void br_run(BrotliEncoderState *enc, h2o_mem_pool_t *pool, BrotliEncoderOperation op, h2o_iovec_t in,
                   iovec_vector_t *out)
{
    size_t avail_in = in.len;
    const uint8_t *next_in = (const uint8_t *)in.base;
    for (;;) {
        size_t avail_out = 0;
        if (!BrotliEncoderCompressStream(enc, op, &avail_in, &next_in, &avail_out, NULL, NULL))
            h2o_fatal("BrotliEncoderCompressStream failed");
        while (BrotliEncoderHasMoreOutput(enc)) {
            size_t n = 0;
            const uint8_t *o = BrotliEncoderTakeOutput(enc, &n);
            h2o_vector_reserve(pool, out, out->size + 1);
            out->entries[out->size++] = h2o_strdup(pool, (const char *)o, n);
        }
        if (avail_in == 0 && (op != BROTLI_OPERATION_FINISH || BrotliEncoderIsFinished(enc)))
            return;
    }
}

static void br_send(h2o_ostream_t *_self, h2o_req_t *req, h2o_iovec_t *inbufs, size_t inbufcnt, h2o_send_state_t state)
{
    br_ostream_t *self = (void *)_self;
    if (*self->enc == NULL && state == H2O_SEND_STATE_FINAL) {
        /* the whole body at once: one call */
        h2o_iovec_t in = inbufcnt == 1 ? inbufs[0] : h2o_concat_list(&req->pool, inbufs, inbufcnt);
        size_t cap = BrotliEncoderMaxCompressedSize(in.len);
        h2o_iovec_t out = h2o_iovec_init(h2o_mem_alloc_pool(&req->pool, cap), cap);
        if (cap == 0 || !BrotliEncoderCompress(BR_QUALITY, BR_LGWIN, BROTLI_MODE_TEXT, in.len, (const uint8_t *)in.base,
                                               &out.len, (uint8_t *)out.base))
            h2o_fatal("BrotliEncoderCompress failed");
        h2o_ostream_send_next(&self->super, req, &out, 1, state);
        return;
    }
    if (*self->enc == NULL) {
        if ((*self->enc = BrotliEncoderCreateInstance(NULL, NULL, NULL)) == NULL)
            h2o_fatal("no memory");
        BrotliEncoderSetParameter(*self->enc, BROTLI_PARAM_QUALITY, BR_QUALITY);
        BrotliEncoderSetParameter(*self->enc, BROTLI_PARAM_LGWIN, BR_LGWIN);
        BrotliEncoderSetParameter(*self->enc, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
    }
    /* a part: compressed and flushed, so that it reaches the client at once */
    iovec_vector_t out = {NULL, 0, 0};
    for (size_t i = 0; i != inbufcnt; ++i)
        br_run(*self->enc, &req->pool, BROTLI_OPERATION_PROCESS, inbufs[i], &out);
    br_run(*self->enc, &req->pool, h2o_send_state_is_in_progress(state) ? BROTLI_OPERATION_FLUSH : BROTLI_OPERATION_FINISH,
           h2o_iovec_init(NULL, 0), &out);
    h2o_ostream_send_next(&self->super, req, out.entries, out.size, state);
}

static void on_setup_ostream(h2o_filter_t *_self, h2o_req_t *req, h2o_ostream_t **slot)
{
    compress_filter_t *self = (void *)_self;
    int status = req->res.status;
    if (status < 200 || status == 204 || status == 206 || status == 304 || req->version < 0x101)
        goto Next;
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        goto Next;
    if (req->res.content_length < MIN_SIZE)
        goto Next;
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_ENCODING, -1) != -1)
        goto Next;
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct == -1 || !is_text_type(req->res.headers.entries[ct].value))
        goto Next;

    h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY, H2O_STRLIT("accept-encoding"));
    int accepts = h2o_get_compressible_types(&req->headers);
    if ((accepts & H2O_COMPRESSIBLE_BROTLI) != 0) {
        req->res.content_length = SIZE_MAX;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("br"));
        br_ostream_t *os = (void *)h2o_add_ostream(req, sizeof(*os), slot);
        os->super.do_send = br_send;
        os->enc = h2o_mem_alloc_shared(&req->pool, sizeof(*os->enc), free_br_encoder);
        *os->enc = NULL;
        slot = &os->super.next;
        goto Next;
    }
    if ((accepts & H2O_COMPRESSIBLE_GZIP) == 0)
        goto Next;
    req->res.content_length = SIZE_MAX;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("gzip"));
    compress_ostream_t *os = (void *)h2o_add_ostream(req, sizeof(*os), slot);
    os->super.do_send = do_send;
    os->level = self->level;
    os->gz = NULL;
    slot = &os->super.next;

Next:
    h2o_setup_next_ostream(req, slot);
}

int http_compress_reads_during_send(h2o_req_t *req)
{
    return req->_ostr_top != NULL && (req->_ostr_top->do_send == do_send || req->_ostr_top->do_send == br_send);
}

void http_compress_register(h2o_pathconf_t *pathconf, const config_t *cfg)
{
    if (cfg->compress != CONFIG_COMPRESS_ON)
        return;
    compress_filter_t *f = (void *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->level = cfg->compress_level;
}
