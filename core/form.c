#include "form.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *form_strerror(int err)
{
    switch (err) {
    case FORM_EPERCENT: return "invalid percent-encoding";
    case FORM_EUTF8: return "invalid UTF-8";
    case FORM_ETOOMANY: return "too many fields";
    case FORM_EDUPLICATE: return "a field is given more than once";
    case FORM_ECONTROL: return "a NUL byte in a field";
    case FORM_EABORT: return "aborted";
    default: return "malformed input";
    }
}

int form_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s;
        if (c < 0x80) {
            ++s;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(end - s) <= n)
            return 0;
        for (size_t i = 1; i <= n; ++i) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += n + 1;
    }
    return 1;
}

long form_percent_decode(char *dst, const char *src, size_t len, int plus_as_space)
{
    char *d = dst;
    for (size_t i = 0; i < len; ++i) {
        char c = src[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return FORM_EPERCENT;
            if ((hi = util_hexval((unsigned char)src[i + 1])) < 0 || (lo = util_hexval((unsigned char)src[i + 2])) < 0)
                return FORM_EPERCENT;
            *d++ = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_as_space) {
            *d++ = ' ';
        } else {
            *d++ = c;
        }
    }
    return (long)(d - dst);
}

/* A set of decoded names, to refuse repeated fields in O(1) per field. */
struct name_set {
    uint32_t *slots; /* index + 1 into names, 0 = empty */
    size_t cap;      /* power of two */
    const char **names;
    size_t *lens;
    size_t count;
};

static uint32_t hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; ++i)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Returns 1 when the name was already present, else adds it and returns 0. */
static int name_set_add(struct name_set *set, const char *name, size_t len)
{
    size_t i = hash(name, len) & (set->cap - 1);
    while (set->slots[i] != 0) {
        size_t k = set->slots[i] - 1;
        if (set->lens[k] == len && memcmp(set->names[k], name, len) == 0)
            return 1;
        i = (i + 1) & (set->cap - 1);
    }
    set->names[set->count] = name;
    set->lens[set->count] = len;
    set->slots[i] = (uint32_t)++set->count;
    return 0;
}

static int decode_piece(char *dst, const char *src, size_t len, size_t *outlen)
{
    long n = form_percent_decode(dst, src, len, 1);
    if (n < 0)
        return (int)n;
    if (memchr(dst, '\0', (size_t)n) != NULL)
        return FORM_ECONTROL;
    if (!form_utf8_valid(dst, (size_t)n))
        return FORM_EUTF8;
    dst[n] = '\0';
    *outlen = (size_t)n;
    return 0;
}

int form_parse(const char *s, size_t len, int max_fields, form_field_cb cb, void *ctx)
{
    /* count pieces to size the scratch space: decoded text never exceeds the input */
    size_t pieces = 1;
    for (size_t i = 0; i < len; ++i)
        if (s[i] == '&')
            ++pieces;
    size_t nmax = pieces < (size_t)max_fields ? pieces : (size_t)max_fields;
    struct name_set set = {0};
    set.cap = 8;
    while (set.cap < nmax * 2)
        set.cap <<= 1;
    set.slots = util_malloc(set.cap * sizeof(*set.slots));
    memset(set.slots, 0, set.cap * sizeof(*set.slots));
    set.names = util_malloc(nmax * sizeof(*set.names));
    set.lens = util_malloc(nmax * sizeof(*set.lens));
    char *scratch = util_malloc(len + 2 * pieces + 1), *sp = scratch;

    int ret = 0, count = 0;
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *piece_end = amp != NULL ? amp : end;
        if (piece_end > p) {
            if (count == max_fields) {
                ret = FORM_ETOOMANY;
                goto Exit;
            }
            const char *eq = memchr(p, '=', (size_t)(piece_end - p));
            const char *name_end = eq != NULL ? eq : piece_end;
            char *name = sp, *value;
            size_t name_len = 0, value_len = 0;
            if ((ret = decode_piece(name, p, (size_t)(name_end - p), &name_len)) != 0)
                goto Exit;
            value = name + name_len + 1;
            if (eq != NULL) {
                if ((ret = decode_piece(value, eq + 1, (size_t)(piece_end - eq - 1), &value_len)) != 0)
                    goto Exit;
            } else {
                value[0] = '\0';
            }
            sp = value + value_len + 1;
            if (name_set_add(&set, name, name_len)) {
                ret = FORM_EDUPLICATE;
                goto Exit;
            }
            ++count;
            if (cb(ctx, name, name_len, value, value_len) != 0) {
                ret = FORM_EABORT;
                goto Exit;
            }
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    ret = count;
Exit:
    free(set.slots);
    free(set.names);
    free(set.lens);
    free(scratch);
    return ret;
}

static int is_cookie_name_char(unsigned char c)
{
    /* RFC 6265 token: visible ASCII except separators */
    return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

static int is_cookie_value_char(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e);
}

int form_parse_cookies(const char *s, size_t len, form_field_cb cb, void *ctx)
{
    int count = 0;
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pend = semi != NULL ? semi : end;
        while (p < pend && (*p == ' ' || *p == '\t'))
            ++p;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        if (eq != NULL && eq > p) {
            const char *ne = eq, *vb = eq + 1, *ve = pend;
            while (ve > vb && (ve[-1] == ' ' || ve[-1] == '\t'))
                --ve;
            if (ve - vb >= 2 && *vb == '"' && ve[-1] == '"')
                ++vb, --ve;
            int ok = 1;
            for (const char *q = p; q < ne && ok; ++q)
                ok = is_cookie_name_char((unsigned char)*q);
            for (const char *q = vb; q < ve && ok; ++q)
                ok = is_cookie_value_char((unsigned char)*q);
            if (ok) {
                char name[256];
                size_t nlen = (size_t)(ne - p), vlen = (size_t)(ve - vb);
                if (nlen < sizeof(name)) {
                    memcpy(name, p, nlen);
                    name[nlen] = '\0';
                    char *value = util_strndup(vb, vlen);
                    int stop = cb(ctx, name, nlen, value, vlen);
                    free(value);
                    ++count;
                    if (stop)
                        return count;
                }
            }
        }
        if (semi == NULL)
            break;
        p = semi + 1;
    }
    return count;
}

int form_is_https(int tls, const char *xfp, size_t len)
{
    if (tls)
        return 1;
    if (xfp == NULL)
        return 0;
    size_t i = 0, j;
    while (i < len && (xfp[i] == ' ' || xfp[i] == '\t'))
        ++i;
    for (j = i; j < len && xfp[j] != ',' && xfp[j] != ' ' && xfp[j] != '\t'; ++j)
        ;
    return j - i == 5 && memcmp(xfp + i, "https", 5) == 0;
}
