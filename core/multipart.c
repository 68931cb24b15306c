#include "multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "form.h"
#include "util.h"

const char *multipart_strerror(int err)
{
    switch (err) {
    case MULTIPART_EBOUNDARY: return "missing or invalid boundary";
    case MULTIPART_ESYNTAX: return "malformed delimiter line";
    case MULTIPART_EHEADER: return "malformed part headers";
    case MULTIPART_EHEADERSIZE: return "part headers too large";
    case MULTIPART_ENONAME: return "a part without Content-Disposition: form-data and a name";
    case MULTIPART_ETOOMANY: return "too many parts";
    case MULTIPART_EFILESIZE: return "a file is larger than MAX_UPLOAD";
    case MULTIPART_ETOOLARGE: return "the body is larger than MAX_BODY";
    case MULTIPART_EUNFINISHED: return "no closing delimiter";
    case MULTIPART_EUTF8: return "invalid UTF-8";
    case MULTIPART_ECONTROL: return "a NUL byte in a field";
    case MULTIPART_EABORT: return "aborted";
    default: return "malformed body";
    }
}

int multipart_status(int err)
{
    return err == MULTIPART_EFILESIZE || err == MULTIPART_ETOOLARGE ? 413 : 400;
}

/* ---- Content-Type ---- */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_tchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

static int is_bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("'()+_,-./:=? ", c) != NULL);
}

static int boundary_valid(const char *b, size_t len)
{
    if (len == 0 || len > MULTIPART_BOUNDARY_MAX || b[len - 1] == ' ')
        return 0;
    for (size_t i = 0; i < len; ++i)
        if (!is_bchar((unsigned char)b[i]))
            return 0;
    return 1;
}

int multipart_content_type(const char *ct, size_t len, const char **boundary, size_t *blen, int *err)
{
    static const char type[] = "multipart/form-data";
    const size_t tlen = sizeof(type) - 1;
    size_t i = 0;
    while (i < len && is_ows(ct[i]))
        ++i;
    if (len - i < tlen || strncasecmp(ct + i, type, tlen) != 0)
        return 0;
    i += tlen;
    if (i < len && ct[i] != ';' && !is_ows(ct[i]))
        return 0;
    *boundary = NULL;
    *blen = 0;
    *err = MULTIPART_EBOUNDARY;
    while (i < len) {
        while (i < len && is_ows(ct[i]))
            ++i;
        if (i == len)
            break;
        if (ct[i++] != ';')
            return 1; /* parameters are separated by ';' */
        while (i < len && is_ows(ct[i]))
            ++i;
        if (i == len)
            break;
        size_t ns = i;
        while (i < len && is_tchar((unsigned char)ct[i]))
            ++i;
        size_t ne = i;
        if (i == len || ct[i] != '=' || ne == ns)
            return 1; /* a malformed parameter: the boundary cannot be trusted */
        ++i;
        size_t vs, ve;
        if (i < len && ct[i] == '"') {
            vs = ++i;
            while (i < len && ct[i] != '"' && ct[i] != '\\')
                ++i;
            if (i == len || ct[i] != '"')
                return 1;
            ve = i++;
        } else {
            vs = i;
            while (i < len && is_tchar((unsigned char)ct[i]))
                ++i;
            ve = i;
        }
        if (ne - ns == 8 && strncasecmp(ct + ns, "boundary", 8) == 0) {
            if (*boundary != NULL || !boundary_valid(ct + vs, ve - vs)) {
                *boundary = NULL;
                return 1;
            }
            *boundary = ct + vs;
            *blen = ve - vs;
        }
    }
    if (*boundary != NULL)
        *err = 0;
    return 1;
}

/* ---- the incremental parser ---- */

enum state {
    S_PREAMBLE,    /* before the first delimiter: discarded */
    S_AFTER_DELIM, /* a delimiter was read: "--", padding or CRLF follows */
    S_DASH,        /* "-" after a delimiter */
    S_PAD,         /* spaces or tabs after a delimiter */
    S_PAD_CR,      /* CR after a delimiter */
    S_HEADERS,     /* a part's header block */
    S_BODY,        /* a part's content */
    S_EPILOGUE     /* after the close delimiter: discarded */
};

#define PAT_MAX (4 + MULTIPART_BOUNDARY_MAX)

struct multipart_parser {
    multipart_limits_t limits;
    multipart_callbacks_t cb;
    void *ctx;
    int state;
    int err;
    char pat[PAT_MAX]; /* "\r\n--" boundary: what ends a part's content */
    size_t patlen;
    size_t fail[PAT_MAX + 1]; /* fail[m]: the longest proper border of pat[0..m) */
    size_t m;                 /* bytes of pat matched so far */
    size_t consumed;
    size_t pad;
    int parts;
    int is_file; /* the current part is a file */
    size_t size; /* the current part's content so far */
    char *hdr;   /* the current part's header block, then copies of its parameters */
    size_t hdr_len;
};

multipart_parser_t *multipart_parser_new(const char *boundary, size_t blen, const multipart_limits_t *limits,
                                         const multipart_callbacks_t *cb, void *ctx)
{
    if (!boundary_valid(boundary, blen))
        return NULL;
    multipart_parser_t *p = util_malloc(sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->limits = *limits;
    p->cb = *cb;
    p->ctx = ctx;
    memcpy(p->pat, "\r\n--", 4);
    memcpy(p->pat + 4, boundary, blen);
    p->patlen = 4 + blen;
    /* Knuth-Morris-Pratt: on a mismatch after m matched bytes, the match goes on from fail[m] */
    p->fail[0] = p->fail[1] = 0;
    for (size_t m = 2, k = 0; m <= p->patlen; ++m) {
        while (k > 0 && p->pat[k] != p->pat[m - 1])
            k = p->fail[k];
        if (p->pat[k] == p->pat[m - 1])
            ++k;
        p->fail[m] = k;
    }
    p->state = S_PREAMBLE;
    p->m = 2; /* the first delimiter may open the body: as if a CRLF came before it */
    p->hdr = util_malloc(2 * limits->max_header + 8);
    return p;
}

void multipart_parser_free(multipart_parser_t *p)
{
    if (p == NULL)
        return;
    free(p->hdr);
    free(p);
}

size_t multipart_consumed(const multipart_parser_t *p)
{
    return p->consumed;
}

/* Hands content over (preamble and epilogue bytes are dropped). Bytes are counted apart, by count,
 * where the byte that makes them content is read: so the limits trip at the same byte whatever
 * the pieces, while content is handed over in runs. */
static int content(multipart_parser_t *p, const char *data, size_t len)
{
    if (p->state != S_BODY || len == 0)
        return 0;
    if (p->cb.on_data != NULL && p->cb.on_data(p->ctx, data, len) != 0)
        return MULTIPART_EABORT;
    return 0;
}

/* n more bytes of the current part's content: MULTIPART_EFILESIZE past a file's limit. */
static int count(multipart_parser_t *p, size_t n)
{
    if (p->state != S_BODY)
        return 0;
    p->size += n;
    return p->is_file && p->size > p->limits.max_file ? MULTIPART_EFILESIZE : 0;
}

static int ieq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

struct span {
    const char *s;
    size_t len;
    int set;
};

/* Content-Disposition: form-data; name="x"; filename="y" */
static int parse_disposition(const char *v, size_t len, struct span *name, struct span *filename)
{
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)v[i]))
        ++i;
    if (!ieq(v, i, "form-data"))
        return MULTIPART_ENONAME;
    while (i < len) {
        while (i < len && is_ows(v[i]))
            ++i;
        if (i == len)
            break;
        if (v[i++] != ';')
            return MULTIPART_EHEADER;
        while (i < len && is_ows(v[i]))
            ++i;
        if (i == len)
            break; /* a trailing ';' */
        size_t ns = i;
        while (i < len && is_tchar((unsigned char)v[i]) && v[i] != '=')
            ++i;
        size_t ne = i;
        while (i < len && is_ows(v[i]))
            ++i;
        if (ne == ns || i == len || v[i] != '=')
            return MULTIPART_EHEADER;
        ++i;
        while (i < len && is_ows(v[i]))
            ++i;
        struct span val;
        if (i < len && v[i] == '"') {
            const char *q = memchr(v + i + 1, '"', len - i - 1);
            if (q == NULL)
                return MULTIPART_EHEADER;
            val.s = v + i + 1;
            val.len = (size_t)(q - val.s);
            i = (size_t)(q - v) + 1;
        } else {
            val.s = v + i;
            while (i < len && is_tchar((unsigned char)v[i]))
                ++i;
            val.len = (size_t)(v + i - val.s);
            if (val.len == 0)
                return MULTIPART_EHEADER;
        }
        val.set = 1;
        struct span *dst = ieq(v + ns, ne - ns, "name") ? name : ieq(v + ns, ne - ns, "filename") ? filename : NULL;
        if (dst != NULL) {
            if (dst->set)
                return MULTIPART_EHEADER;
            *dst = val;
        }
    }
    return name->set ? 0 : MULTIPART_ENONAME;
}

/* The header block hdr[0..len) (its lines each end with CRLF, the empty line excluded) is read. */
static int part_begin(multipart_parser_t *p, size_t len)
{
    if (++p->parts > p->limits.max_parts)
        return MULTIPART_ETOOMANY;
    struct span name = {0}, filename = {0}, type = {0};
    int have_disposition = 0;
    const char *h = p->hdr, *end = p->hdr + len;
    while (h < end) {
        const char *eol = h;
        while (*eol != '\r' && *eol != '\n')
            ++eol;
        if (eol[0] != '\r' || eol[1] != '\n')
            return MULTIPART_EHEADER; /* a bare LF, or CR */
        const char *colon = h;
        while (colon < eol && is_tchar((unsigned char)*colon))
            ++colon;
        if (colon == h || colon == eol || *colon != ':')
            return MULTIPART_EHEADER; /* no name (or a folded line), or no colon */
        const char *vs = colon + 1, *ve = eol;
        while (vs < ve && is_ows(*vs))
            ++vs;
        while (ve > vs && is_ows(ve[-1]))
            --ve;
        if (ieq(h, (size_t)(colon - h), "content-disposition")) {
            if (have_disposition)
                return MULTIPART_EHEADER;
            have_disposition = 1;
            int err = parse_disposition(vs, (size_t)(ve - vs), &name, &filename);
            if (err != 0)
                return err;
        } else if (ieq(h, (size_t)(colon - h), "content-type")) {
            if (type.set)
                return MULTIPART_EHEADER;
            type = (struct span){vs, (size_t)(ve - vs), 1};
        }
        h = eol + 2;
    }
    if (!have_disposition)
        return MULTIPART_ENONAME;
    /* NUL-terminated copies, after the block in hdr (each is a piece of the block, disjoint from
     * the others: together at most len + 3 bytes) */
    char *cur = p->hdr + len + 2;
    multipart_part_t part = {0};
    memmove(cur, name.s, name.len);
    cur[name.len] = '\0';
    part.name = cur, part.name_len = name.len, cur += name.len + 1;
    if (filename.set) {
        memmove(cur, filename.s, filename.len);
        cur[filename.len] = '\0';
        part.filename = cur, part.filename_len = filename.len, cur += filename.len + 1;
    }
    if (type.set) {
        memmove(cur, type.s, type.len);
        cur[type.len] = '\0';
        part.content_type = cur, part.content_type_len = type.len;
    }
    p->is_file = filename.set;
    p->size = 0;
    if (p->cb.on_part != NULL && p->cb.on_part(p->ctx, &part) != 0)
        return MULTIPART_EABORT;
    return 0;
}

/* One byte of a delimiter search (preamble or content); run is where unreported content starts. */
static int search(multipart_parser_t *p, const char *buf, size_t i, size_t *run)
{
    char c = buf[i];
    int err;
    if (p->m > 0 && p->pat[p->m] != c) {
        /* the bytes matched so far, but for the border kept, were content after all */
        do {
            size_t keep = p->fail[p->m];
            if ((err = count(p, p->m - keep)) != 0 || (err = content(p, p->pat, p->m - keep)) != 0)
                return err;
            p->m = keep;
        } while (p->m > 0 && p->pat[p->m] != c);
        *run = i;
    }
    if (p->pat[p->m] != c)
        return count(p, 1); /* content: reported with its run */
    if (p->m == 0 && (err = content(p, buf + *run, i - *run)) != 0)
        return err;
    *run = i + 1;
    if (++p->m < p->patlen)
        return 0;
    p->m = 0;
    if (p->state == S_BODY && p->cb.on_part_end != NULL && p->cb.on_part_end(p->ctx) != 0)
        return MULTIPART_EABORT;
    p->state = S_AFTER_DELIM;
    return 0;
}

static int step(multipart_parser_t *p, const char *buf, size_t i, size_t *run)
{
    char c = buf[i];
    switch (p->state) {
    case S_PREAMBLE:
    case S_BODY: return search(p, buf, i, run);
    case S_AFTER_DELIM:
        p->pad = 0;
        p->state = c == '-' ? S_DASH : is_ows(c) ? S_PAD : c == '\r' ? S_PAD_CR : -1;
        return p->state == -1 ? MULTIPART_ESYNTAX : 0;
    case S_DASH: p->state = S_EPILOGUE; return c == '-' ? 0 : MULTIPART_ESYNTAX;
    case S_PAD:
        if (is_ows(c))
            return ++p->pad > p->limits.max_header ? MULTIPART_ESYNTAX : 0;
        p->state = S_PAD_CR;
        return c == '\r' ? 0 : MULTIPART_ESYNTAX;
    case S_PAD_CR:
        p->state = S_HEADERS;
        p->hdr_len = 0;
        return c == '\n' ? 0 : MULTIPART_ESYNTAX;
    case S_HEADERS:
        if (p->hdr_len == p->limits.max_header)
            return MULTIPART_EHEADERSIZE;
        p->hdr[p->hdr_len++] = c;
        if (c != '\n' || p->hdr_len < 2 || p->hdr[p->hdr_len - 2] != '\r')
            return 0;
        if (p->hdr_len == 2)
            return MULTIPART_ENONAME; /* no headers at all */
        if (p->hdr_len < 4 || memcmp(p->hdr + p->hdr_len - 4, "\r\n\r\n", 4) != 0)
            return 0;
        int err = part_begin(p, p->hdr_len - 2);
        if (err != 0)
            return err;
        p->state = S_BODY;
        p->m = 0;
        *run = i + 1;
        return 0;
    default: return 0; /* S_EPILOGUE */
    }
}

int multipart_feed(multipart_parser_t *p, const char *buf, size_t len)
{
    if (p->err != 0)
        return p->err;
    size_t run = 0;
    int err = 0;
    for (size_t i = 0; i < len && err == 0; ++i) {
        if (p->m == 0 && (p->state == S_BODY || p->state == S_PREAMBLE || p->state == S_EPILOGUE)) {
            /* bytes that cannot start a delimiter are taken in one go, up to the limits: the byte
             * that reaches one goes through step as any other */
            size_t n = len - i, room = p->limits.max_body - p->consumed;
            if (n > room)
                n = room;
            if (p->state == S_BODY && p->is_file && n > p->limits.max_file - p->size)
                n = p->limits.max_file - p->size;
            const char *cr = p->state != S_EPILOGUE ? memchr(buf + i, '\r', n) : NULL;
            size_t skip = cr != NULL ? (size_t)(cr - (buf + i)) : n;
            p->consumed += skip;
            if (p->state == S_BODY)
                p->size += skip;
            if ((i += skip) == len)
                break;
        }
        if (p->consumed == p->limits.max_body) {
            err = MULTIPART_ETOOLARGE;
            break;
        }
        ++p->consumed;
        err = step(p, buf, i, &run);
    }
    if (err == 0 && p->state == S_BODY && p->m == 0)
        err = content(p, buf + run, len - run);
    return p->err = err;
}

int multipart_finish(multipart_parser_t *p)
{
    if (p->err == 0 && p->state != S_EPILOGUE)
        p->err = MULTIPART_EUNFINISHED;
    return p->err;
}

/* ---- a whole body ---- */

struct collect {
    multipart_parser_t *parser;
    const char *body;
    multipart_item_t *items;
    size_t *offs; /* per item: offsets in arena of name, filename (or SIZE_MAX), type (or SIZE_MAX) */
    int count, cap;
    char *arena;
    size_t arena_len, arena_cap;
};

static size_t arena_add(struct collect *c, const char *s, size_t len)
{
    if (s == NULL)
        return SIZE_MAX;
    if (c->arena_len + len + 1 > c->arena_cap) {
        c->arena_cap = (c->arena_len + len + 1) * 2;
        c->arena = util_realloc(c->arena, c->arena_cap);
    }
    size_t at = c->arena_len;
    memcpy(c->arena + at, s, len);
    c->arena[at + len] = '\0';
    c->arena_len += len + 1;
    return at;
}

static int collect_part(void *ctx, const multipart_part_t *part)
{
    struct collect *c = ctx;
    if (c->count == c->cap) {
        c->cap = c->cap == 0 ? 8 : c->cap * 2;
        c->items = util_realloc(c->items, (size_t)c->cap * sizeof(*c->items));
        c->offs = util_realloc(c->offs, (size_t)c->cap * 3 * sizeof(*c->offs));
    }
    multipart_item_t *it = c->items + c->count;
    size_t *o = c->offs + 3 * c->count++;
    memset(it, 0, sizeof(*it));
    o[0] = arena_add(c, part->name, part->name_len);
    o[1] = arena_add(c, part->filename, part->filename_len);
    o[2] = arena_add(c, part->content_type, part->content_type_len);
    it->name_len = part->name_len;
    it->filename_len = part->filename_len;
    it->content_type_len = part->content_type_len;
    it->data = c->body + multipart_consumed(c->parser);
    return 0;
}

static int collect_data(void *ctx, const char *data, size_t len)
{
    (void)data; /* the content is contiguous in the body: only its size is needed */
    struct collect *c = ctx;
    c->items[c->count - 1].size += len;
    return 0;
}

static int check_text(const char *s, size_t len)
{
    if (memchr(s, '\0', len) != NULL)
        return MULTIPART_ECONTROL;
    return form_utf8_valid(s, len) ? 0 : MULTIPART_EUTF8;
}

int multipart_read(const char *body, size_t len, const char *boundary, size_t blen, const multipart_limits_t *limits,
                   multipart_result_t *out)
{
    memset(out, 0, sizeof(*out));
    struct collect c = {0};
    c.body = body;
    multipart_callbacks_t cb = {collect_part, collect_data, NULL};
    c.parser = multipart_parser_new(boundary, blen, limits, &cb, &c);
    if (c.parser == NULL)
        return MULTIPART_EBOUNDARY;
    int err = multipart_feed(c.parser, body, len);
    if (err == 0)
        err = multipart_finish(c.parser);
    multipart_parser_free(c.parser);
    for (int i = 0; i < c.count && err == 0; ++i) {
        multipart_item_t *it = c.items + i;
        size_t *o = c.offs + 3 * i;
        it->name = c.arena + o[0];
        it->filename = o[1] != SIZE_MAX ? c.arena + o[1] : NULL;
        it->content_type = o[2] != SIZE_MAX ? c.arena + o[2] : NULL;
        if ((err = check_text(it->name, it->name_len)) == 0 && it->filename == NULL)
            err = check_text(it->data, it->size);
    }
    free(c.offs);
    if (err != 0) {
        free(c.items);
        free(c.arena);
        return err;
    }
    out->items = c.items;
    out->count = c.count;
    out->arena = c.arena;
    return 0;
}

void multipart_result_free(multipart_result_t *r)
{
    free(r->items);
    free(r->arena);
    memset(r, 0, sizeof(*r));
}

/* ---- safe file names ---- */

/* The length of the valid UTF-8 character at s (at most len bytes), or 0. */
static size_t utf8_char(const unsigned char *s, size_t len)
{
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    return n != 0 && n <= len && form_utf8_valid((const char *)s, n) ? n : 0;
}

static int trimmed(char c)
{
    return c == '.' || c == ' ';
}

size_t multipart_safe_filename(char *dst, const char *name, size_t len)
{
    const unsigned char *s = (const unsigned char *)name, *end = s + len;
    for (const unsigned char *q = s; q < end; ++q)
        if (*q == '/' || *q == '\\')
            s = q + 1;
    char *tmp = util_malloc((size_t)(end - s) + 1);
    size_t t = 0;
    while (s < end) {
        size_t n = utf8_char(s, (size_t)(end - s));
        if (n == 0) {
            tmp[t++] = '_';
            ++s;
        } else if (n == 1) {
            if (*s >= 0x20 && *s != 0x7f)
                tmp[t++] = strchr("<>:\"|?*", *s) != NULL ? '_' : (char)*s;
            ++s;
        } else {
            if (!(n == 2 && s[0] == 0xc2 && s[1] < 0xa0)) { /* C1 controls dropped */
                memcpy(tmp + t, s, n);
                t += n;
            }
            s += n;
        }
    }
    size_t b = 0;
    while (b < t && trimmed(tmp[b]))
        ++b;
    while (t > b && trimmed(tmp[t - 1]))
        --t;
    size_t n = t - b;
    const char *src = tmp + b;
    if (n > MULTIPART_SAFE_FILENAME_MAX) {
        const char *dot = NULL;
        for (size_t k = n; k-- > 1;)
            if (src[k] == '.') {
                dot = src + k;
                break;
            }
        size_t ext = dot != NULL && n - (size_t)(dot - src) <= 16 ? n - (size_t)(dot - src) : 0;
        size_t keep = MULTIPART_SAFE_FILENAME_MAX - ext;
        while (keep > 0 && ((unsigned char)src[keep] & 0xc0) == 0x80)
            --keep; /* cut before a character, not inside one */
        memcpy(dst, src, keep);
        memcpy(dst + keep, src + n - ext, ext);
        n = keep + ext;
    } else {
        memcpy(dst, src, n);
    }
    if (n == 0) {
        memcpy(dst, "upload", 6);
        n = 6;
    }
    dst[n] = '\0';
    free(tmp);
    return n;
}
