/*
 * util — small helpers shared by every module: allocation that aborts on out-of-memory (the one
 * place where the core decides that OOM is fatal, as h2o does), hex, random bytes, wiping secrets.
 */
#ifndef H2LUA_UTIL_H
#define H2LUA_UTIL_H

#include <stddef.h>

/* malloc/realloc/strdup/strndup that abort with a message when memory is exhausted; never return
 * NULL. */
void *util_malloc(size_t sz);
void *util_realloc(void *p, size_t sz);
char *util_strdup(const char *s);
char *util_strndup(const char *s, size_t n);

/* Wipes the NUL-terminated string before freeing it (passwords, keys). */
void util_secure_free(char *s);

/* The value of a hex digit, or -1. */
int util_hexval(int c);

/* Fills buf with n bytes from the OS CSPRNG (getrandom). Aborts if the OS cannot provide them. */
void util_random_bytes(void *buf, size_t n);

/* A new string of 2n lower-case hex digits from n random bytes. */
char *util_random_hex(size_t n);

/* Writes 2*len hex digits of src and a NUL to dst. */
void util_hex_encode(char *dst, const unsigned char *src, size_t len);

#endif
