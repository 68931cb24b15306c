#include "http_static.h"

#include <brotli/encode.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "log.h"
#include "util.h"

enum {
    MAX_FILE = 8 << 20,   /* larger files are left to the file handler */
    MAX_TOTAL = 64 << 20, /* and so is what is past this much in one directory */
    MIN_COMPRESS = 1024,  /* smaller bodies are sent as they are */
    MAX_MOUNTS = 8,
    MAX_DEPTH = 16,
};

#define IMMUTABLE "public, max-age=31536000, immutable"
#define SHORT_LIVED "public, max-age=3600"

/* One file held in memory. Everything but the gzip copy is written before the workers start. */
typedef struct static_file {
    char *path; /* relative to the mount, with its leading '/': "/css/bootstrap.min.css" */
    size_t path_len;
    h2o_iovec_t body;
    h2o_iovec_t mime;
    int compressible;                        /* a text type of MIN_COMPRESS bytes or more, and COMPRESS=on */
    char *gz;                                /* the gzip copy once made (atomic: NULL, then set once, under z_lock) */
    size_t gz_len;                           /* written before gz is published */
    char *br;                                /* the brotli copy once made by the brotli thread (atomic, as gz) */
    size_t br_len;                           /* written before br is published */
    int br_queued;                           /* under z_lock: handed to the brotli thread (once) */
    struct static_file *br_next;             /* under z_lock: the brotli thread's queue */
    char hash[17];                           /* the fingerprint: 16 hex digits of the SHA-256 of the body */
    char etag[20], etag_gz[24], etag_br[24]; /* "<hash>", "<hash>-gz", "<hash>-br", quotes included */
    char last_modified[H2O_TIMESTR_RFC1123_LEN + 1];
    time_t mtime;
} static_file_t;

/* The files of one directory, sorted by path. */
typedef struct static_store {
    static_file_t *files;
    size_t n, cap;
    size_t total;
} static_store_t;

typedef struct static_handler {
    h2o_handler_t super;
    static_store_t *store;
    size_t prefix_len; /* of the pathconf's path, without a trailing '/' */
} static_handler_t;

/* The mounts, for http_static_url: written by registration (main thread), read by the workers. */
static struct {
    char *prefix;
    size_t prefix_len;
    static_store_t *store;
} mounts[MAX_MOUNTS];
static size_t nmounts;

/*
 * The compressed copies, shared by the workers of the process. z_lock guards the making of the gzip
 * copies (level 9, ~10 ms for Bootstrap's CSS, made by the first request that wants one) and the
 * queue of the brotli thread: brotli at quality 11 takes ~0.3 s for the same file, too long for a
 * worker, so a request for a file whose brotli copy is not there yet gets the gzip copy and hands
 * the file to that thread (started by the first such request, from a worker: it inherits the
 * worker's signal mask), which makes the copies one by one and lives as long as the process.
 */
static pthread_mutex_t z_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t br_cond = PTHREAD_COND_INITIALIZER;
static static_file_t *br_queue;
static int br_thread_started;

/* ---- the store ---- */

static void hash_hex(const void *data, size_t len, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        h2o_fatal("EVP_Digest(sha256) failed");
    for (int i = 0; i < 8; ++i)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* Reads a file of size bytes into memory; NULL when it cannot be read whole. */
static char *read_whole(const char *path, size_t size)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    char *buf = util_malloc(size == 0 ? 1 : size);
    size_t got = fread(buf, 1, size, fp);
    int extra = fgetc(fp);
    fclose(fp);
    if (got != size || extra != EOF) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void add_file(static_store_t *st, const char *abs, const char *rel, const struct stat *sb, h2o_mimemap_t *mimemap,
                     int compress)
{
    if (sb->st_size > MAX_FILE || st->total + (size_t)sb->st_size > MAX_TOTAL)
        return;
    char *data = read_whole(abs, (size_t)sb->st_size);
    if (data == NULL)
        return;
    if (st->n == st->cap) {
        st->cap = st->cap == 0 ? 64 : st->cap * 2;
        st->files = realloc(st->files, st->cap * sizeof(*st->files));
        if (st->files == NULL)
            h2o_fatal("no memory");
    }
    static_file_t *f = st->files + st->n++;
    memset(f, 0, sizeof(*f));
    f->path = util_strdup(rel);
    f->path_len = strlen(rel);
    f->body = h2o_iovec_init(data, (size_t)sb->st_size);
    st->total += f->body.len;
    const char *dot = strrchr(rel, '.'), *slash = strrchr(rel, '/');
    h2o_mimemap_type_t *type = h2o_mimemap_get_type_by_extension(
        mimemap, dot != NULL && dot > slash ? h2o_iovec_init(dot + 1, strlen(dot + 1)) : h2o_iovec_init("", 0));
    f->mime = type->data.mimetype;
    f->compressible = compress && type->data.attr.is_compressible && f->body.len >= MIN_COMPRESS;
    hash_hex(f->body.base, f->body.len, f->hash);
    sprintf(f->etag, "\"%s\"", f->hash);
    sprintf(f->etag_gz, "\"%s-gz\"", f->hash);
    sprintf(f->etag_br, "\"%s-br\"", f->hash);
    f->mtime = sb->st_mtime;
    struct tm gmt;
    gmtime_r(&f->mtime, &gmt);
    h2o_time2str_rfc1123(f->last_modified, &gmt);
}

/* Adds the regular files under abs (following symbolic links; hidden names skipped). */
static void walk(static_store_t *st, const char *abs, const char *rel, int depth, h2o_mimemap_t *mimemap, int compress)
{
    DIR *d = opendir(abs);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        size_t alen = strlen(abs) + strlen(e->d_name) + 2, rlen = strlen(rel) + strlen(e->d_name) + 2;
        char *a = util_malloc(alen), *r = util_malloc(rlen);
        snprintf(a, alen, "%s/%s", abs, e->d_name);
        snprintf(r, rlen, "%s/%s", rel, e->d_name);
        struct stat sb;
        if (stat(a, &sb) == 0) {
            if (S_ISDIR(sb.st_mode) && depth < MAX_DEPTH)
                walk(st, a, r, depth + 1, mimemap, compress);
            else if (S_ISREG(sb.st_mode))
                add_file(st, a, r, &sb, mimemap, compress);
        }
        free(a);
        free(r);
    }
    closedir(d);
}

static int cmp_path(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : alen < blen ? -1 : alen > blen;
}

static int cmp_files(const void *a, const void *b)
{
    const static_file_t *x = a, *y = b;
    return cmp_path(x->path, x->path_len, y->path, y->path_len);
}

static static_file_t *lookup(static_store_t *st, const char *path, size_t len)
{
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_path(path, len, st->files[mid].path, st->files[mid].path_len);
        if (c == 0)
            return st->files + mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* The gzip copy of f, made at the first call. Returns it (its length may exceed the body's). */
static h2o_iovec_t gzip_of(static_file_t *f)
{
    char *gz = __atomic_load_n(&f->gz, __ATOMIC_ACQUIRE);
    if (gz != NULL)
        return h2o_iovec_init(gz, f->gz_len);
    pthread_mutex_lock(&z_lock);
    if ((gz = f->gz) == NULL) {
        z_stream zs;
        memset(&zs, 0, sizeof(zs));
        if (deflateInit2(&zs, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) != Z_OK)
            h2o_fatal("deflateInit2 failed");
        size_t cap = deflateBound(&zs, (uLong)f->body.len) + 32;
        gz = util_malloc(cap);
        zs.next_in = (Bytef *)f->body.base;
        zs.avail_in = (uInt)f->body.len;
        zs.next_out = (Bytef *)gz;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
            h2o_fatal("deflate failed");
        f->gz_len = cap - zs.avail_out;
        deflateEnd(&zs);
        __atomic_store_n(&f->gz, gz, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&z_lock);
    return h2o_iovec_init(gz, f->gz_len);
}

static void *br_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&z_lock);
        while (br_queue == NULL)
            pthread_cond_wait(&br_cond, &z_lock);
        static_file_t *f = br_queue;
        br_queue = f->br_next;
        pthread_mutex_unlock(&z_lock);
        size_t len = BrotliEncoderMaxCompressedSize(f->body.len);
        char *br = util_malloc(len);
        if (BrotliEncoderCompress(BROTLI_MAX_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, f->body.len,
                                  (const uint8_t *)f->body.base, &len, (uint8_t *)br)) {
            f->br_len = len;
            __atomic_store_n(&f->br, br, __ATOMIC_RELEASE);
        } else {
            free(br); /* the file keeps going out gzipped */
        }
    }
    return NULL;
}

/* The brotli copy of f, or {NULL, 0} while it is not made (f is then queued for it, once). */
static h2o_iovec_t brotli_of(static_file_t *f)
{
    char *br = __atomic_load_n(&f->br, __ATOMIC_ACQUIRE);
    if (br != NULL)
        return h2o_iovec_init(br, f->br_len);
    pthread_mutex_lock(&z_lock);
    if (!f->br_queued) {
        f->br_queued = 1;
        f->br_next = br_queue;
        br_queue = f;
        if (!br_thread_started) {
            pthread_t tid;
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&tid, &attr, br_main, NULL) != 0)
                h2o_fatal("pthread_create (brotli) failed");
            pthread_attr_destroy(&attr);
            br_thread_started = 1;
        }
        pthread_cond_signal(&br_cond);
    }
    pthread_mutex_unlock(&z_lock);
    return h2o_iovec_init(NULL, 0);
}

/* ---- the handler ---- */

static void proceed_noop(h2o_generator_t *self, h2o_req_t *req)
{
    (void)self, (void)req;
}

/* Whether the query string is exactly v=<hash>. */
static int is_fingerprinted(h2o_req_t *req, const static_file_t *f)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *q = req->path.base + req->query_at + 1;
    size_t qlen = req->path.len - req->query_at - 1;
    return qlen == 2 + 16 && memcmp(q, "v=", 2) == 0 && memcmp(q + 2, f->hash, 16) == 0;
}

/* If-None-Match (a list of ETags, weak or strong, or *) names etag, or there is none and
 * If-Modified-Since is not older than the file. */
static int not_modified(h2o_req_t *req, const static_file_t *f, const char *etag)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i != -1) {
        h2o_iovec_t v = req->headers.entries[i].value;
        return h2o_strstr(v.base, v.len, etag, strlen(etag)) != SIZE_MAX || h2o_memis(v.base, v.len, H2O_STRLIT("*"));
    }
    if ((i = h2o_find_header(&req->headers, H2O_TOKEN_IF_MODIFIED_SINCE, -1)) != -1) {
        struct tm tm;
        h2o_iovec_t v = req->headers.entries[i].value;
        if (h2o_time_parse_rfc1123(v.base, v.len, &tm) == 0)
            return timegm(&tm) >= f->mtime;
    }
    return 0;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    static_handler_t *self = (void *)_self;
    int is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (!is_head && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return -1;
    if (req->path_normalized.len <= self->prefix_len)
        return -1;
    static_file_t *f =
        lookup(self->store, req->path_normalized.base + self->prefix_len, req->path_normalized.len - self->prefix_len);
    if (f == NULL)
        return -1;

    h2o_iovec_t body = f->body;
    const char *etag = f->etag;
    h2o_headers_t *h = &req->res.headers;
    if (f->compressible) {
        h2o_add_header(&req->pool, h, H2O_TOKEN_VARY, NULL, H2O_STRLIT("accept-encoding"));
        int accepts = req->version >= 0x101 ? h2o_get_compressible_types(&req->headers) : 0;
        h2o_iovec_t br = (accepts & H2O_COMPRESSIBLE_BROTLI) != 0 ? brotli_of(f) : h2o_iovec_init(NULL, 0);
        if (br.base != NULL && br.len < body.len) {
            body = br;
            etag = f->etag_br;
            h2o_add_header(&req->pool, h, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("br"));
        } else if ((accepts & H2O_COMPRESSIBLE_GZIP) != 0) {
            h2o_iovec_t gz = gzip_of(f);
            if (gz.len < body.len) {
                body = gz;
                etag = f->etag_gz;
                h2o_add_header(&req->pool, h, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("gzip"));
            }
        }
    }
    h2o_add_header(&req->pool, h, H2O_TOKEN_ETAG, NULL, etag, strlen(etag));
    h2o_add_header(&req->pool, h, H2O_TOKEN_LAST_MODIFIED, NULL, f->last_modified, H2O_TIMESTR_RFC1123_LEN);
    if (is_fingerprinted(req, f))
        h2o_add_header(&req->pool, h, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT(IMMUTABLE));
    else
        h2o_add_header(&req->pool, h, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT(SHORT_LIVED));

    if (not_modified(req, f, etag)) {
        req->res.status = 304;
        req->res.reason = "Not Modified";
        h2o_send_inline(req, NULL, 0);
        return 0;
    }
    h2o_add_header(&req->pool, h, H2O_TOKEN_CONTENT_TYPE, NULL, f->mime.base, f->mime.len);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body.len;
    h2o_generator_t *gen = h2o_mem_alloc_pool(&req->pool, sizeof(*gen));
    gen->proceed = proceed_noop;
    gen->stop = NULL;
    h2o_start_response(req, gen);
    /* the body is the store's, which lives as long as the process */
    h2o_send(req, &body, is_head || body.len == 0 ? 0 : 1, H2O_SEND_STATE_FINAL);
    return 0;
}

/* ---- registration ---- */

static h2o_mimemap_t *create_mimemap(void)
{
    static const char *const types[][2] = {
        {"css", "text/css; charset=utf-8"},          {"js", "text/javascript; charset=utf-8"},
        {"html", "text/html; charset=utf-8"},        {"txt", "text/plain; charset=utf-8"},
        {"json", "application/json; charset=utf-8"}, {"svg", "image/svg+xml; charset=utf-8"},
        {"map", "application/json; charset=utf-8"},
    };
    h2o_mimemap_t *m = h2o_mimemap_create();
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); ++i)
        h2o_mimemap_define_mimetype(m, types[i][0], types[i][1], NULL);
    return m;
}

void http_static_register(h2o_pathconf_t *pathconf, const char *dir, const config_t *cfg)
{
    h2o_mimemap_t *mimemap = create_mimemap();
    if (cfg->app_env != CONFIG_ENV_DEVELOPMENT && nmounts < MAX_MOUNTS) {
        static_store_t *st = util_malloc(sizeof(*st));
        memset(st, 0, sizeof(*st));
        walk(st, dir, "", 0, mimemap, cfg->compress == CONFIG_COMPRESS_ON);
        if (st->n > 1)
            qsort(st->files, st->n, sizeof(*st->files), cmp_files);
        size_t plen = pathconf->path.len;
        while (plen > 0 && pathconf->path.base[plen - 1] == '/')
            --plen;
        static_handler_t *self = (void *)h2o_create_handler(pathconf, sizeof(*self));
        self->super.on_req = on_req;
        self->store = st;
        self->prefix_len = plen;
        mounts[nmounts].prefix = util_strndup(pathconf->path.base, plen);
        mounts[nmounts].prefix_len = plen;
        mounts[nmounts].store = st;
        ++nmounts;
    }
    h2o_file_register(pathconf, dir, NULL, mimemap, 0);
    h2o_mem_release_shared(mimemap);
}

int http_static_url(const char *url_path, size_t len, char *out, size_t outlen)
{
    const static_file_t *f = NULL;
    size_t best = 0;
    for (size_t i = 0; i < nmounts; ++i) {
        size_t pl = mounts[i].prefix_len;
        if (pl < best || len <= pl || memcmp(url_path, mounts[i].prefix, pl) != 0 || url_path[pl] != '/')
            continue;
        const static_file_t *g = lookup(mounts[i].store, url_path + pl, len - pl);
        if (g != NULL) {
            f = g;
            best = pl;
        }
    }
    size_t need = len + (f != NULL ? 3 + 16 : 0) + 1;
    if (need > outlen)
        return -1;
    memcpy(out, url_path, len);
    if (f != NULL) {
        memcpy(out + len, "?v=", 3);
        memcpy(out + len + 3, f->hash, 16);
    }
    out[need - 1] = '\0';
    return (int)(need - 1);
}
