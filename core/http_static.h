/*
 * http_static — serves the files under a directory at a path (/static, /static/bootstrap).
 *
 * In production the files are read into memory once, at registration (on the main thread, before
 * the workers start; read-only after and shared by them, except the gzip copies, below), each with
 * the hash of its content (its fingerprint), an ETag and a Last-Modified. A GET or HEAD of a file
 * held in memory:
 *   - Cache-Control: public, max-age=31536000, immutable when the query is `v=<its fingerprint>`
 *     (the URL http_static_url gives), public, max-age=3600 otherwise;
 *   - 304 when If-None-Match names its ETag, or (without If-None-Match) If-Modified-Since is not
 *     older than the file;
 *   - with COMPRESS=on, a text file of 1 KB or more (CSS, JS, HTML, JSON, SVG, plain text) is sent
 *     compressed to a client that accepts it: brotli (quality 11) once its copy is made, else
 *     gzip (level 9). The gzip copy is made at the file's first such request (under a lock shared
 *     by the workers), the brotli copy by a thread of its own after the first request that accepts
 *     br; both are kept for the life of the process. Every such file carries
 *     Vary: Accept-Encoding, and each encoding its own ETag.
 * Everything else goes to libh2o's file handler, as before: development mode (files change under
 * the server), files over 8 MB or past 64 MB a directory, other methods, missing files and
 * directories.
 */
#ifndef H2LUA_HTTP_STATIC_H
#define H2LUA_HTTP_STATIC_H

#include <h2o.h>

#include "config.h"

/* Serves dir at pathconf's path. A directory that cannot be read serves nothing from memory (its
 * requests go to the file handler: 404). Must run before the workers start; can't fail (OOM
 * aborts). */
void http_static_register(h2o_pathconf_t *pathconf, const char *dir, const config_t *cfg);

/*
 * The fingerprinted URL of url_path ("/static/app.css" -> "/static/app.css?v=0123456789abcdef")
 * written NUL-terminated to out, or url_path itself when no registered directory holds that file
 * in memory (development mode, a missing file). Returns the length written, or -1 when outlen is
 * too small. Thread-safe: it reads what registration built.
 */
int http_static_url(const char *url_path, size_t len, char *out, size_t outlen);

#endif
