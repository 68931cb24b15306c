/* Unit tests of core/multipart.c: the Content-Type boundary, the incremental parser under every
 * split of its input, the whole-body reader, its limits and errors, and safe file names. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "multipart.h"

static const multipart_limits_t limits = {16, MULTIPART_HEADER_MAX, 1024, 1 << 20};

/* ---- a transcript of the callbacks, to compare runs ---- */

struct transcript {
    char *s;
    size_t len, cap;
};

static void put(struct transcript *t, const char *s, size_t len)
{
    if (t->len + len + 1 > t->cap) {
        t->cap = (t->len + len + 1) * 2;
        t->s = realloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, len);
    t->len += len;
    t->s[t->len] = '\0';
}

static int on_part(void *ctx, const multipart_part_t *p)
{
    struct transcript *t = ctx;
    put(t, "[part name=", 11);
    put(t, p->name, p->name_len);
    if (p->filename != NULL) {
        put(t, " filename=", 10);
        put(t, p->filename, p->filename_len);
    }
    if (p->content_type != NULL) {
        put(t, " type=", 6);
        put(t, p->content_type, p->content_type_len);
    }
    put(t, "]", 1);
    return 0;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    put(ctx, data, len);
    return 0;
}

static int on_end(void *ctx)
{
    put(ctx, "[end]", 5);
    return 0;
}

static const multipart_callbacks_t cbs = {on_part, on_data, on_end};

/* Feeds body in pieces (cuts: increasing offsets, ncuts of them); the transcript ends with the
 * result code. The caller frees t->s. */
static int run(const char *b, const char *body, size_t len, const size_t *cuts, int ncuts, const multipart_limits_t *lim,
               struct transcript *t)
{
    memset(t, 0, sizeof(*t));
    put(t, "", 0);
    multipart_parser_t *p = multipart_parser_new(b, strlen(b), lim, &cbs, t);
    size_t at = 0;
    int err = 0;
    for (int i = 0; i <= ncuts && err == 0; ++i) {
        size_t to = i < ncuts ? cuts[i] : len;
        err = multipart_feed(p, body + at, to - at);
        at = to;
    }
    if (err == 0)
        err = multipart_finish(p);
    multipart_parser_free(p);
    char code[16];
    snprintf(code, sizeof(code), "=%d", err);
    put(t, code, strlen(code));
    return err;
}

/* The transcript for comparison: all of it on success; after an error only the code (how much
 * content was handed over before an error depends on the pieces). */
static int same(const struct transcript *a, const struct transcript *b)
{
    const char *ca = strrchr(a->s, '='), *cb = strrchr(b->s, '=');
    if (strcmp(ca, "=0") != 0 || strcmp(cb, "=0") != 0)
        return strcmp(ca, cb) == 0;
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

/* 1 when every split in two and three pieces, and byte by byte, gives the one-piece transcript. */
static int same_every_split(const char *b, const char *body, size_t len, const multipart_limits_t *lim)
{
    struct transcript whole, t;
    run(b, body, len, NULL, 0, lim, &whole);
    int ok = 1;
    for (size_t i = 0; i <= len && ok; ++i) {
        run(b, body, len, &i, 1, lim, &t);
        ok = same(&t, &whole);
        free(t.s);
        for (size_t j = i; j <= len && ok && len < 400; j += 3) {
            size_t cuts[2] = {i, j};
            run(b, body, len, cuts, 2, lim, &t);
            ok = same(&t, &whole);
            free(t.s);
        }
    }
    size_t *cuts = calloc(len + 1, sizeof(*cuts));
    for (size_t i = 0; i < len; ++i)
        cuts[i] = i;
    run(b, body, len, cuts, (int)len, lim, &t);
    ok = ok && same(&t, &whole);
    if (!ok)
        fprintf(stderr, "split transcript differs from whole:\n%s\n%s\n", whole.s, t.s);
    free(t.s);
    free(cuts);
    free(whole.s);
    return ok;
}

#define B "xYz-0123'()+_,./:=?"
#define D "--" B

/* content with CRLFs, a NUL, partial delimiters and a delimiter-like run that does not match */
static const char binary[] = "\r\n\r\n--\r\n-" B "\r\r\n--xYz-\0\xff\xfe\r\n--xYz-0123'()+_,./:=X-almost\r\n- -" B;
/* (the last boundary is not after CRLF, so it is content) */

static const char *sample(size_t *len)
{
    static char body[2048];
    static size_t n;
    if (n == 0) {
        char *p = body;
        p += sprintf(p, "preamble to ignore\r\n" D "  \t\r\n");
        p += sprintf(p, "Content-Disposition: form-data; name=\"title\"\r\n\r\nHello, w\xc3\xb6rld\r\n" D "\r\n");
        p += sprintf(p, "content-disposition: FORM-DATA ; NAME=csrf_token\r\n\r\n123.abc\r\n" D "\r\n");
        p += sprintf(p, "Content-Type:  image/png \r\nX-Other: ignored\r\nContent-Disposition: form-data; "
                        "name=\"photo\"; filename=\"../a b\\c.png\"\r\n\r\n");
        memcpy(p, binary, sizeof(binary) - 1);
        p += sizeof(binary) - 1;
        p += sprintf(p, "\r\n" D "\r\nContent-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n\r\n" D
                        "\r\nContent-Disposition: form-data; name=\"\"\r\n\r\n\r\n" D "--\r\nepilogue\r\n" D "\r\n");
        n = (size_t)(p - body);
    }
    *len = n;
    return body;
}

static void test_content_type(void)
{
    const char *b;
    size_t bl;
    int err;
#define CT(s) multipart_content_type(s, strlen(s), &b, &bl, &err)
    CHECK(CT("multipart/form-data; boundary=abc") == 1 && err == 0 && bl == 3 && memcmp(b, "abc", 3) == 0);
    CHECK(CT("Multipart/Form-Data;boundary=\"a b:c\"") == 1 && err == 0 && bl == 5 && memcmp(b, "a b:c", 5) == 0);
    CHECK(CT("multipart/form-data; charset=utf-8; BOUNDARY=----WebKitFormBoundaryx7") == 1 && err == 0 && bl == 24);
    CHECK(CT("multipart/form-data") == 1 && err == MULTIPART_EBOUNDARY && b == NULL);
    CHECK(CT("multipart/form-data; boundary=") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data; boundary=\"\"") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data; boundary=\"ends with space \"") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data; boundary=\"a\\\"b\"") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data; boundary=a; boundary=b") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data; boundary=a@b") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data boundary=a") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data; charset=utf-8 boundary=a") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data ;boundary=a ; ") == 1 && err == 0 && bl == 1);
    CHECK(CT("multipart/form-data; boundary=\"a\xff\"") == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-data; boundary=\"unterminated") == 1 && err == MULTIPART_EBOUNDARY);
    char ok70[128] = "multipart/form-data; boundary=", bad71[128];
    memset(ok70 + strlen(ok70), 'b', 70);
    strcpy(bad71, ok70);
    strcat(bad71, "b");
    CHECK(CT(ok70) == 1 && err == 0 && bl == 70);
    CHECK(CT(bad71) == 1 && err == MULTIPART_EBOUNDARY);
    CHECK(CT("multipart/form-datax; boundary=a") == 0);
    CHECK(CT("multipart/mixed; boundary=a") == 0);
    CHECK(CT("application/x-www-form-urlencoded") == 0);
    CHECK(CT("") == 0);
#undef CT
    multipart_callbacks_t none = {0};
    CHECK(multipart_parser_new("", 0, &limits, &none, NULL) == NULL);
    CHECK(multipart_parser_new("a b ", 4, &limits, &none, NULL) == NULL);
}

static void test_sample(void)
{
    size_t len;
    const char *body = sample(&len);
    multipart_result_t r;
    int err = multipart_read(body, len, B, strlen(B), &limits, &r);
    CHECK(err == 0);
    if (err != 0)
        fprintf(stderr, "sample: %s\n", multipart_strerror(err));
    CHECK(r.count == 5);
    if (r.count != 5)
        return;
    CHECK(strcmp(r.items[0].name, "title") == 0 && r.items[0].filename == NULL && r.items[0].content_type == NULL);
    CHECK(r.items[0].size == 13 && memcmp(r.items[0].data, "Hello, w\xc3\xb6rld", 13) == 0);
    CHECK(strcmp(r.items[1].name, "csrf_token") == 0 && r.items[1].size == 7 && memcmp(r.items[1].data, "123.abc", 7) == 0);
    CHECK(strcmp(r.items[2].name, "photo") == 0 && strcmp(r.items[2].filename, "../a b\\c.png") == 0);
    CHECK(r.items[2].filename_len == 12 && strcmp(r.items[2].content_type, "image/png") == 0);
    CHECK(r.items[2].size == sizeof(binary) - 1 && memcmp(r.items[2].data, binary, sizeof(binary) - 1) == 0);
    CHECK(strcmp(r.items[3].name, "empty") == 0 && r.items[3].filename != NULL && r.items[3].filename_len == 0);
    CHECK(r.items[3].size == 0);
    CHECK(r.items[4].name_len == 0 && r.items[4].size == 0);
    multipart_result_free(&r);
    CHECK(r.items == NULL && r.count == 0);

    /* the parser's transcript: the same for every way of cutting the body */
    struct transcript t;
    CHECK(run(B, body, len, NULL, 0, &limits, &t) == 0);
    CHECK(strncmp(t.s, "[part name=title]Hello, w\xc3\xb6rld[end][part name=csrf_token]123.abc[end]", 64) == 0);
    free(t.s);
    CHECK(same_every_split(B, body, len, &limits));
}

/* body must fail with err, the same way for every split */
static void expect(const char *body, size_t len, const multipart_limits_t *lim, int err, int line)
{
    multipart_result_t r;
    int got = multipart_read(body, len, B, strlen(B), lim, &r);
    if (got != err)
        fprintf(stderr, "line %d: multipart_read gave %d, expected %d\n", line, got, err);
    CHECK(got == err);
    if (got == 0)
        multipart_result_free(&r);
    CHECK(r.items == NULL && r.count == 0 && r.arena == NULL);
    if (err != MULTIPART_EUTF8 && err != MULTIPART_ECONTROL) { /* those are multipart_read's checks */
        struct transcript t;
        got = run(B, body, len, NULL, 0, lim, &t);
        free(t.s);
        CHECK(got == err);
        CHECK(same_every_split(B, body, len, lim));
    }
}

#define EXPECT(s, err) expect(s, sizeof(s) - 1, &limits, err, __LINE__)
#define PART(h, v) D "\r\n" h "\r\n\r\n" v "\r\n"
#define CD(n) "Content-Disposition: form-data; name=" n

static void test_errors(void)
{
    EXPECT("", MULTIPART_EUNFINISHED);
    EXPECT("no delimiter at all", MULTIPART_EUNFINISHED);
    EXPECT(PART(CD("a"), "1"), MULTIPART_EUNFINISHED);                      /* no close delimiter */
    EXPECT(PART(CD("a"), "1") D, MULTIPART_EUNFINISHED);                    /* cut after the delimiter */
    EXPECT(PART(CD("a"), "1") D "-", MULTIPART_EUNFINISHED);                /* half a close */
    EXPECT(D "\r\n" CD("a") "\r\n\r\nvalue" D "--", MULTIPART_EUNFINISHED); /* no CRLF before */
    EXPECT(D "x\r\n" CD("a") "\r\n\r\n1\r\n" D "--", MULTIPART_ESYNTAX);
    EXPECT(D "\n" CD("a") "\r\n\r\n1\r\n" D "--", MULTIPART_ESYNTAX); /* LF line ends */
    EXPECT(D " x\r\n" CD("a") "\r\n\r\n1\r\n" D "--", MULTIPART_ESYNTAX);
    EXPECT(D "-x", MULTIPART_ESYNTAX);
    EXPECT(D "\r\r\n", MULTIPART_ESYNTAX);
    EXPECT(PART(CD("a"), "1") D "X\r\n", MULTIPART_ESYNTAX); /* delimiter inside content: refused */
    EXPECT(PART("", "1") D "--", MULTIPART_ENONAME);         /* no headers: the value is a line */
    EXPECT(PART("Content-Type: text/plain", "1") D "--", MULTIPART_ENONAME);
    EXPECT(PART("Content-Disposition: form-data", "1") D "--", MULTIPART_ENONAME);
    EXPECT(PART("Content-Disposition: form-data; filename=\"a\"", "1") D "--", MULTIPART_ENONAME);
    EXPECT(PART("Content-Disposition: attachment; name=a", "1") D "--", MULTIPART_ENONAME);
    EXPECT(PART("Content-Disposition form-data; name=a", "1") D "--", MULTIPART_EHEADER);
    EXPECT(PART(": form-data; name=a", "1") D "--", MULTIPART_EHEADER);
    EXPECT(PART(CD("a") "\r\n folded", "1") D "--", MULTIPART_EHEADER);
    EXPECT(PART(CD("a") "\nX: y", "1") D "--", MULTIPART_EHEADER); /* bare LF */
    EXPECT(PART(CD("a") "\rX: y", "1") D "--", MULTIPART_EHEADER); /* bare CR */
    EXPECT(PART(CD("a") "\r\n" CD("b"), "1") D "--", MULTIPART_EHEADER);
    EXPECT(PART(CD("a") "\r\nContent-Type: a\r\nContent-Type: b", "1") D "--", MULTIPART_EHEADER);
    EXPECT(PART(CD("\"a"), "1") D "--", MULTIPART_EHEADER);       /* unterminated quote */
    EXPECT(PART(CD("a; name=b"), "1") D "--", MULTIPART_EHEADER); /* name twice */
    EXPECT(PART(CD("") "; x=1", "1") D "--", MULTIPART_EHEADER);  /* empty token value */
    EXPECT(PART(CD("a b"), "1") D "--", MULTIPART_EHEADER);
    EXPECT(PART(CD("a") "; filename", "1") D "--", MULTIPART_EHEADER);
    EXPECT(PART(CD("\"\xff\""), "1") D "--", MULTIPART_EUTF8);
    EXPECT(PART(CD("a"), "\xc3") D "--", MULTIPART_EUTF8);
    EXPECT(PART(CD("a"), "\xed\xa0\x80") D "--", MULTIPART_EUTF8);
    EXPECT(PART(CD("a"), "x\0y") D "--", MULTIPART_ECONTROL);
    EXPECT(PART(CD("\"a\0\""), "x") D "--", MULTIPART_ECONTROL);
    EXPECT(PART(CD("\"\xff\"; filename=x"), "data") D "--", MULTIPART_EUTF8); /* a file's field name */
    /* what is fine: */
    EXPECT(D "--", 0);                                                       /* no parts */
    EXPECT(PART(CD("a") "; filename=\"\xff\x01.txt\"", "\xff\0") D "--", 0); /* file content and name as sent */
    EXPECT(PART(CD("a") ";", "1") D "--\r\n", 0);                            /* a trailing ';' */
    EXPECT(PART(CD("a") "; size=3; Filename=\"x\"", "1") D "--", 0);

    /* the header block's bound: its last byte is the empty line's LF */
    multipart_limits_t lim = limits;
    const char h[] = PART(CD("a"), "1") D "--";
    size_t block = strlen(CD("a")) + 4;
    lim.max_header = block;
    expect(h, sizeof(h) - 1, &lim, 0, __LINE__);
    lim.max_header = block - 1;
    expect(h, sizeof(h) - 1, &lim, MULTIPART_EHEADERSIZE, __LINE__);
    lim.max_header = 20; /* padding after a delimiter is bounded by it too */
    EXPECT(D "                                 \r\n" CD("a") "\r\n\r\n1\r\n" D "--", 0);
    expect(D "                                 \r\n", strlen(D) + 35, &lim, MULTIPART_ESYNTAX, __LINE__);
}

static void test_limits(void)
{
    multipart_limits_t lim = limits;
    const char three[] = PART(CD("a"), "1") PART(CD("b") "; filename=f", "12345") PART(CD("c"), "") D "--";
    lim.max_parts = 3;
    expect(three, sizeof(three) - 1, &lim, 0, __LINE__);
    lim.max_parts = 2;
    expect(three, sizeof(three) - 1, &lim, MULTIPART_ETOOMANY, __LINE__);
    lim.max_parts = 3;
    lim.max_file = 5;
    expect(three, sizeof(three) - 1, &lim, 0, __LINE__);
    lim.max_file = 4;
    expect(three, sizeof(three) - 1, &lim, MULTIPART_EFILESIZE, __LINE__);
    lim.max_file = 0;
    expect(three, sizeof(three) - 1, &lim, MULTIPART_EFILESIZE, __LINE__);
    lim.max_file = 5;
    lim.max_body = sizeof(three) - 1;
    expect(three, sizeof(three) - 1, &lim, 0, __LINE__);
    lim.max_body = sizeof(three) - 2;
    expect(three, sizeof(three) - 1, &lim, MULTIPART_ETOOLARGE, __LINE__);
    /* fields are bounded by the body only; a file's bound counts the bytes of a partial delimiter
     * that turned out to be content */
    lim.max_body = 1 << 20;
    const char fld[] = PART(CD("a"), "a longer field value than five") D "--";
    expect(fld, sizeof(fld) - 1, &lim, 0, __LINE__);
    const char tricky[] = PART(CD("b") "; filename=f", "12\r\n--x") D "--";
    lim.max_file = 7;
    expect(tricky, sizeof(tricky) - 1, &lim, 0, __LINE__);
    lim.max_file = 6;
    expect(tricky, sizeof(tricky) - 1, &lim, MULTIPART_EFILESIZE, __LINE__);
    /* the first of two errors in the stream wins, whatever the pieces */
    const char both[] = PART(CD("b") "; filename=f", "123456789") "junk";
    lim.max_file = 4;
    lim.max_body = sizeof(both) - 3;
    expect(both, sizeof(both) - 1, &lim, MULTIPART_EFILESIZE, __LINE__);
    lim.max_file = 100;
    expect(both, sizeof(both) - 1, &lim, MULTIPART_ETOOLARGE, __LINE__);
}

/* Aborting from a callback stops the parser for good. */
static int stop_at_data(void *ctx, const char *data, size_t len)
{
    (void)ctx, (void)data, (void)len;
    return 1;
}

static void test_abort(void)
{
    const char body[] = PART(CD("a"), "1") D "--";
    multipart_callbacks_t cb = {NULL, stop_at_data, NULL};
    multipart_parser_t *p = multipart_parser_new(B, strlen(B), &limits, &cb, NULL);
    CHECK(multipart_feed(p, body, sizeof(body) - 1) == MULTIPART_EABORT);
    CHECK(multipart_feed(p, "", 0) == MULTIPART_EABORT);
    CHECK(multipart_finish(p) == MULTIPART_EABORT);
    multipart_parser_free(p);
    CHECK(multipart_status(MULTIPART_EFILESIZE) == 413 && multipart_status(MULTIPART_ETOOLARGE) == 413);
    CHECK(multipart_status(MULTIPART_EHEADER) == 400 && multipart_status(MULTIPART_ETOOMANY) == 400);
    CHECK(strcmp(multipart_strerror(MULTIPART_EUNFINISHED), "no closing delimiter") == 0);
}

/* A boundary whose delimiter has borders ("\r\n--" cannot recur in a boundary, but "-" runs can
 * overlap): the search falls back correctly. */
static void test_overlaps(void)
{
    const char b[] = "--a--a-";
    const char body[] = "--"
                        "--a--a-"
                        "\r\n" CD("x") "; filename=f\r\n\r\n"
                                       "--a--a--a--a-\r\n----a--aX\r\n--\r\n----a--"
                                       "\r\n--"
                                       "--a--a-"
                                       "--";
    multipart_limits_t lim = limits;
    struct transcript t;
    CHECK(run(b, body, sizeof(body) - 1, NULL, 0, &lim, &t) == 0);
    const char want[] = "[part name=x filename=f]--a--a--a--a-\r\n----a--aX\r\n--\r\n----a--[end]=0";
    CHECK(t.len == sizeof(want) - 1 && memcmp(t.s, want, t.len) == 0);
    free(t.s);
    CHECK(same_every_split(b, body, sizeof(body) - 1, &lim));
}

static void test_safe_filename(void)
{
    char out[MULTIPART_SAFE_FILENAME_MAX + 1];
#define SAFE(s) (multipart_safe_filename(out, s, sizeof(s) - 1), out)
    CHECK(strcmp(SAFE("report.pdf"), "report.pdf") == 0);
    CHECK(strcmp(SAFE("../../etc/passwd"), "passwd") == 0);
    CHECK(strcmp(SAFE("C:\\Users\\me\\photo.jpg"), "photo.jpg") == 0);
    CHECK(strcmp(SAFE(".htaccess"), "htaccess") == 0);
    CHECK(strcmp(SAFE(".."), "upload") == 0);
    CHECK(strcmp(SAFE(""), "upload") == 0);
    CHECK(strcmp(SAFE("dir/"), "upload") == 0);
    CHECK(strcmp(SAFE(" . a.txt . "), "a.txt") == 0);
    CHECK(strcmp(SAFE("a\r\nb\x01\x7f\tc.txt"), "abc.txt") == 0);
    CHECK(strcmp(SAFE("a\0b"), "ab") == 0);
    CHECK(strcmp(SAFE("a<b>c:d\"e|f?g*h"), "a_b_c_d_e_f_g_h") == 0);
    CHECK(strcmp(SAFE("caf\xc3\xa9 \xe4\xb8\xad.txt"), "caf\xc3\xa9 \xe4\xb8\xad.txt") == 0);
    CHECK(strcmp(SAFE("bad\xff\xc3(.txt"), "bad__(.txt") == 0);
    CHECK(strcmp(SAFE("\xed\xa0\x80x"), "___x") == 0); /* a surrogate is not UTF-8 */
    CHECK(strcmp(SAFE("a\xc2\x85\xe2\x80\xae"
                      "b"),
                 "a\xe2\x80\xae"
                 "b") == 0); /* C1 control dropped */
    char longname[400];
    memset(longname, 'n', 300);
    strcpy(longname + 300, ".tar.gz");
    size_t n = multipart_safe_filename(out, longname, strlen(longname));
    CHECK(n == MULTIPART_SAFE_FILENAME_MAX && strcmp(out + n - 3, ".gz") == 0 && out[0] == 'n');
    for (int i = 0; i < 100; ++i)
        memcpy(longname + 3 * i, "\xe4\xb8\xad", 3); /* 中 x 100 = 300 bytes, no extension */
    n = multipart_safe_filename(out, longname, 300);
    CHECK(n == 126 && out[n] == '\0'); /* 42 whole characters */
    memset(longname, 'x', 300);
    memcpy(longname + 200, ".a-very-long-extension-indeed", 29);
    n = multipart_safe_filename(out, longname, 300);
    CHECK(n == MULTIPART_SAFE_FILENAME_MAX && out[n - 1] == 'x');
#undef SAFE
}

int main(void)
{
    test_content_type();
    test_sample();
    test_errors();
    test_limits();
    test_abort();
    test_overlaps();
    test_safe_filename();
    return CHECK_DONE();
}
