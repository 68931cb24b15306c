/*
 * form — decoders for what clients send: percent-encoding, application/x-www-form-urlencoded
 * bodies and query strings, Cookie headers, and the UTF-8 check applied to all of them.
 * Pure functions with no global state; safe from any thread.
 */
#ifndef H2LUA_FORM_H
#define H2LUA_FORM_H

#include <stddef.h>

/* Error codes; form_strerror gives the text for people. */
enum {
    FORM_EPERCENT = -1,   /* a '%' not followed by two hex digits */
    FORM_EUTF8 = -2,      /* the decoded bytes are not valid UTF-8 */
    FORM_ETOOMANY = -3,   /* more fields than the cap */
    FORM_EDUPLICATE = -4, /* the same field name twice */
    FORM_ECONTROL = -5,   /* a NUL byte in a decoded name or value */
    FORM_EABORT = -6      /* the callback asked to stop */
};

const char *form_strerror(int err);

/*
 * 1 when s[0..len) is valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF), else 0.
 */
int form_utf8_valid(const char *s, size_t len);

/*
 * Percent-decodes src[0..len) into dst (at least len bytes; the result is never longer).
 * With plus_as_space, '+' becomes ' ' (forms and queries; not paths). Returns the decoded length,
 * or FORM_EPERCENT. Does not check UTF-8.
 */
long form_percent_decode(char *dst, const char *src, size_t len, int plus_as_space);

/*
 * Called once per field with the decoded, UTF-8-checked name and value (NUL-terminated; pointers
 * valid only during the call). Return 0 to continue, non-zero to stop with FORM_EABORT.
 */
typedef int (*form_field_cb)(void *ctx, const char *name, size_t name_len, const char *value, size_t value_len);

/*
 * Parses "a=1&b=x%20y" calling cb for each field in order. Empty pieces ("a=1&&b=2") are skipped;
 * a piece without '=' is a field with an empty value. Fails with FORM_ETOOMANY past max_fields,
 * FORM_EDUPLICATE when a name repeats (so that "which of the two counts" never arises), and the
 * decode errors above. Returns the number of fields or a negative code; on error cb may already
 * have been called for earlier fields.
 */
int form_parse(const char *s, size_t len, int max_fields, form_field_cb cb, void *ctx);

/*
 * Parses a Cookie header ("a=1; b=2") calling cb for each pair with name and value as sent
 * (surrounding spaces and one pair of double quotes around the value removed). Malformed pairs
 * (no '=', empty name, bytes outside the cookie grammar) are skipped; the first of repeated names
 * wins as browsers send the most specific first. Returns the number of pairs passed to cb.
 */
int form_parse_cookies(const char *s, size_t len, form_field_cb cb, void *ctx);

/*
 * 1 when a request counts as HTTPS (the one rule for Secure cookies): it came over TLS, or the
 * first element of its X-Forwarded-Proto (xfp[0..len), set by the load balancer; NULL when
 * absent), spaces around it ignored, is "https". Else 0.
 */
int form_is_https(int tls, const char *xfp, size_t len);

#endif
