/*
 * util — small helpers shared by every module: allocation that aborts on out-of-memory (the one
 * place where the core decides that OOM is fatal, as h2o does), hex, random bytes, wiping secrets,
 * HTML escaping, HMAC-SHA256 and the text of a peer's address (the one implementation of each).
 */
#ifndef H2LUA_UTIL_H
#define H2LUA_UTIL_H

#include <stddef.h>
#include <sys/socket.h>

/* malloc/realloc/strdup/strndup that abort with a message when memory is exhausted; never return
 * NULL. */
void *util_malloc(size_t sz);
void *util_realloc(void *p, size_t sz);
char *util_strdup(const char *s);
char *util_strndup(const char *s, size_t n);

/* Writes the message (printf's fmt, ...) to err, errlen bytes with the NUL (cut to fit), and returns
 * code: the one way a module's parser says why it failed (`return util_fail(CONFIG_EINVAL, ...)`). */
int util_fail(int code, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Wipes the NUL-terminated string before freeing it (passwords, keys). */
void util_secure_free(char *s);

/* The value of a hex digit, or -1. */
int util_hexval(int c);

/* Fills buf with n bytes from the OS CSPRNG (getrandom). Aborts if the OS cannot provide them. */
void util_random_bytes(void *buf, size_t n);

/* A new string of 2n lower-case hex digits from n random bytes. */
char *util_random_hex(size_t n);

/* This run of the process: 16 hex digits drawn at the first call, the same for every thread; a
 * restarted server has another (the development page reloader tells a restart by it). */
const char *util_boot_id(void);

/* Writes 2*len hex digits of src and a NUL to dst. */
void util_hex_encode(char *dst, const unsigned char *src, size_t len);

/* The most bytes util_escape_html writes for one input byte. */
#define UTIL_HTML_ENTITY_MAX 6

/* The entity that stands for c in HTML text and attribute values (& < > " '), or NULL when c
 * stands for itself. */
const char *util_html_entity(unsigned char c);

/* The length of the longest prefix of s[0..len) that util_escape_html leaves as it is (len when
 * nothing in s needs escaping). */
size_t util_html_safe_prefix(const char *s, size_t len);

/* Writes s[0..len) HTML-escaped to dst, which has room for len * UTIL_HTML_ENTITY_MAX bytes (no
 * NUL is added). Returns the bytes written. Can't fail. */
size_t util_escape_html(char *dst, const char *s, size_t len);

/* The numeric text of the IPv4 or IPv6 address in sa (no port: "127.0.0.1", "::1") into buf, which
 * has room for UTIL_ADDR_TEXT_MAX bytes, NUL-terminated. Returns its length; 0 (buf "") for another
 * family or a short len. IPv4 without stdio: every request's log line and req.remote_addr use it. */
#define UTIL_ADDR_TEXT_MAX 46
size_t util_addr_text(const struct sockaddr *sa, socklen_t len, char *buf);

/* The 32-byte HMAC-SHA256 of data[0..len) keyed with the NUL-terminated key. Can't fail. */
#define UTIL_HMAC_SHA256_LEN 32
void util_hmac_sha256(const char *key, const void *data, size_t len, unsigned char out[UTIL_HMAC_SHA256_LEN]);

/* Length of the base64url encoding (RFC 4648 section 5, no "=" padding) of len bytes. */
#define UTIL_BASE64URL_LEN(len) ((len) / 3 * 4 + ((len) % 3 == 0 ? 0 : (len) % 3 + 1))

/* Writes the base64url encoding of src (UTIL_BASE64URL_LEN(len) bytes, no NUL) to dst. */
void util_base64url_encode(char *dst, const unsigned char *src, size_t len);

/*
 * Decodes len characters of base64url without padding into dst (room for len * 3 / 4 bytes).
 * Returns the number of bytes, or -1 for anything url_encode does not make: a character outside
 * the alphabet, "=", a length of 4n+1, bits set past the last byte. Can't fail otherwise.
 */
long util_base64url_decode(unsigned char *dst, const char *src, size_t len);

#endif
