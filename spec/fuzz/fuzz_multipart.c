/* libFuzzer target: the multipart/form-data parser (core/multipart.c). The input's first byte
 * picks where the body is cut in two; the rest is the body, or a multipart Content-Type line, a
 * newline and the body.
 * Checks: the whole-body reader and the parser fed in two pieces agree on the result and on every
 * part; parts are within the limits; safe file names are safe. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "multipart.h"

static const multipart_limits_t limits = {8, 256, 512, 4096};

struct seen {
    int parts;
    size_t size, total;
    int in_part, is_file;
};

static int on_part(void *ctx, const multipart_part_t *p)
{
    struct seen *s = ctx;
    if (s->in_part || p->name[p->name_len] != '\0' || (p->filename != NULL && p->filename[p->filename_len] != '\0'))
        abort();
    ++s->parts;
    s->in_part = 1;
    s->size = 0;
    s->is_file = p->filename != NULL;
    return 0;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    struct seen *s = ctx;
    (void)data;
    if (!s->in_part || len == 0)
        abort();
    s->size += len;
    s->total += len;
    if (s->is_file && s->size > limits.max_file)
        abort();
    return 0;
}

static int on_end(void *ctx)
{
    struct seen *s = ctx;
    if (!s->in_part)
        abort();
    s->in_part = 0;
    return 0;
}

static void check_safe(const char *name, size_t len)
{
    char out[MULTIPART_SAFE_FILENAME_MAX + 1];
    size_t n = multipart_safe_filename(out, name, len);
    if (n == 0 || n > MULTIPART_SAFE_FILENAME_MAX || out[n] != '\0' || !form_utf8_valid(out, n) || out[0] == '.')
        abort();
    for (size_t i = 0; i < n; ++i)
        if ((unsigned char)out[i] < 0x20 || out[i] == '/' || out[i] == '\\' || out[i] == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut = data[0];
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    check_safe(s, len);
    /* a first line that is a multipart Content-Type gives the boundary; else the boundary is "b" */
    const char *nl = memchr(s, '\n', len), *b = "b", *body = s;
    size_t bl = 1, blen = len;
    if (nl != NULL) {
        const char *cb;
        size_t cbl;
        int err;
        if (multipart_content_type(s, (size_t)(nl - s), &cb, &cbl, &err)) {
            if (err != 0)
                return 0;
            if (cb == NULL || cbl == 0 || cbl > MULTIPART_BOUNDARY_MAX)
                abort();
            b = cb, bl = cbl, body = nl + 1, blen = len - (size_t)(nl - s) - 1;
        }
    }
    multipart_result_t r;
    int whole = multipart_read(body, blen, b, bl, &limits, &r);
    if (whole == 0) {
        if (r.count > limits.max_parts)
            abort();
        for (int i = 0; i < r.count; ++i) {
            const multipart_item_t *it = r.items + i;
            if (it->data < body || it->data + it->size > body + blen || !form_utf8_valid(it->name, it->name_len))
                abort();
            if (it->filename != NULL) {
                if (it->size > limits.max_file)
                    abort();
                check_safe(it->filename, it->filename_len);
            } else if (!form_utf8_valid(it->data, it->size)) {
                abort();
            }
        }
    } else if (r.items != NULL || r.count != 0) {
        abort();
    }

    struct seen sn = {0};
    multipart_callbacks_t cb = {on_part, on_data, on_end};
    multipart_parser_t *p = multipart_parser_new(b, bl, &limits, &cb, &sn);
    if (cut > blen)
        cut = blen;
    int err2 = multipart_feed(p, body, cut);
    if (err2 == 0)
        err2 = multipart_feed(p, body + cut, blen - cut);
    if (err2 == 0)
        err2 = multipart_finish(p);
    multipart_parser_free(p);
    /* the reader adds the UTF-8/NUL checks of fields; otherwise the two agree */
    if (whole != err2 && !(err2 == 0 && (whole == MULTIPART_EUTF8 || whole == MULTIPART_ECONTROL)))
        abort();
    if (whole == 0) {
        size_t total = 0;
        for (int i = 0; i < r.count; ++i)
            total += r.items[i].size;
        if (sn.parts != r.count || sn.total != total || sn.in_part)
            abort();
        multipart_result_free(&r);
    }
    return 0;
}
