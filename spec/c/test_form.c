/* Unit tests of core/form.c: percent decoding, form and cookie parsing, UTF-8 validation. */
#include <string.h>

#include "check.h"
#include "form.h"

struct collected {
    char names[16][64], values[16][64];
    int n;
};

static int collect(void *p, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct collected *c = p;
    if (c->n < 16) {
        snprintf(c->names[c->n], 64, "%.*s", (int)nlen, name);
        snprintf(c->values[c->n], 64, "%.*s", (int)vlen, value);
    }
    ++c->n;
    return 0;
}

static int parse(const char *s, int max, struct collected *c)
{
    memset(c, 0, sizeof(*c));
    return form_parse(s, strlen(s), max, collect, c);
}

static void test_utf8(void)
{
    CHECK(form_utf8_valid("", 0));
    CHECK(form_utf8_valid("plain ascii", 11));
    CHECK(form_utf8_valid("\xc3\xa9", 2));          /* é */
    CHECK(form_utf8_valid("\xe4\xb8\xad", 3));      /* 中 */
    CHECK(form_utf8_valid("\xf0\x9f\x98\x80", 4));  /* 😀 */
    CHECK(!form_utf8_valid("\xc3", 1));             /* truncated */
    CHECK(!form_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    CHECK(!form_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    CHECK(!form_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!form_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!form_utf8_valid("\xff", 1));
    CHECK(!form_utf8_valid("a\x80", 2)); /* lone continuation */
}

static void test_percent(void)
{
    char out[64];
    CHECK(form_percent_decode(out, "a%20b", 5, 0) == 3 && memcmp(out, "a b", 3) == 0);
    CHECK(form_percent_decode(out, "a+b", 3, 1) == 3 && memcmp(out, "a b", 3) == 0);
    CHECK(form_percent_decode(out, "a+b", 3, 0) == 3 && memcmp(out, "a+b", 3) == 0);
    CHECK(form_percent_decode(out, "%e4%B8%ad", 9, 0) == 3 && memcmp(out, "\xe4\xb8\xad", 3) == 0);
    CHECK(form_percent_decode(out, "%", 1, 0) == FORM_EPERCENT);
    CHECK(form_percent_decode(out, "%4", 2, 0) == FORM_EPERCENT);
    CHECK(form_percent_decode(out, "%zz", 3, 0) == FORM_EPERCENT);
    CHECK(form_percent_decode(out, "ab%2", 4, 0) == FORM_EPERCENT);
}

static void test_form(void)
{
    struct collected c;
    CHECK(parse("title=Hello+world&description=caf%C3%A9", 10, &c) == 2);
    CHECK(strcmp(c.names[0], "title") == 0 && strcmp(c.values[0], "Hello world") == 0);
    CHECK(strcmp(c.names[1], "description") == 0 && strcmp(c.values[1], "caf\xc3\xa9") == 0);
    CHECK(parse("", 10, &c) == 0);
    CHECK(parse("a=1&&b=2&", 10, &c) == 2);
    CHECK(parse("flag", 10, &c) == 1 && strcmp(c.values[0], "") == 0);
    CHECK(parse("a=1=2", 10, &c) == 1 && strcmp(c.values[0], "1=2") == 0);
    CHECK(parse("a=1&a=2", 10, &c) == FORM_EDUPLICATE);
    CHECK(parse("a=1&b=2&c=3", 2, &c) == FORM_ETOOMANY);
    CHECK(parse("a=%ZZ", 10, &c) == FORM_EPERCENT);
    CHECK(parse("a=%ff", 10, &c) == FORM_EUTF8);
    CHECK(parse("a=%00", 10, &c) == FORM_ECONTROL);
    CHECK(parse("%C3%A9=1", 10, &c) == 1 && strcmp(c.names[0], "\xc3\xa9") == 0);
    CHECK(parse("a=%0D%0Ab", 10, &c) == 1 && strcmp(c.values[0], "\r\nb") == 0);
    CHECK(strcmp(form_strerror(FORM_EUTF8), "invalid UTF-8") == 0);
}

static void test_cookies(void)
{
    struct collected c;
    memset(&c, 0, sizeof(c));
    const char *h = "session=abc.def; theme=\"dark\";  bad; =nope; x=1 2; last=z";
    CHECK(form_parse_cookies(h, strlen(h), collect, &c) == 3);
    CHECK(strcmp(c.names[0], "session") == 0 && strcmp(c.values[0], "abc.def") == 0);
    CHECK(strcmp(c.names[1], "theme") == 0 && strcmp(c.values[1], "dark") == 0);
    CHECK(strcmp(c.names[2], "last") == 0 && strcmp(c.values[2], "z") == 0);
    memset(&c, 0, sizeof(c));
    CHECK(form_parse_cookies("", 0, collect, &c) == 0);
}

static void test_is_https(void)
{
    CHECK(form_is_https(1, NULL, 0));
    CHECK(!form_is_https(0, NULL, 0));
    CHECK(form_is_https(0, "https", 5));
    CHECK(form_is_https(0, " https ", 7));
    CHECK(form_is_https(0, "https, http", 11)); /* the first proxy's view counts */
    CHECK(!form_is_https(0, "http, https", 11));
    CHECK(!form_is_https(0, "http", 4));
    CHECK(!form_is_https(0, "httpsx", 6));
    CHECK(!form_is_https(0, "HTTPS", 5));
    CHECK(!form_is_https(0, "", 0));
}

int main(void)
{
    test_utf8();
    test_percent();
    test_form();
    test_cookies();
    test_is_https();
    return CHECK_DONE();
}
