/*
 * http_compress — brotli or gzip of dynamic responses (the application's pages, JSON, streams, /metrics).
 *
 * With COMPRESS=on, a response is compressible when its status carries a body (not 204, 206 or
 * 304), it is not HEAD, the client speaks HTTP/1.1 or later, its content type is text (any text type,
 * JavaScript, JSON and +json, +xml such as SVG), it has no Content-Encoding already and its body is
 * 1 KB or more (a stream, of unknown length, counts as more). A compressible response carries
 * Vary: Accept-Encoding; to a client that accepts br it goes out as brotli at quality 1 (for a
 * page, fewer instructions than gzip at level 1 for about the same bytes), else to one that accepts
 * gzip gzipped at COMPRESS_LEVEL, without Content-Length. A body sent whole (the usual page) is
 * compressed in one call (BrotliEncoderCompress, or the worker's libdeflate compressor); a streamed
 * one chunk by chunk, each chunk flushed as it is sent (BROTLI_OPERATION_FLUSH, or Z_SYNC_FLUSH
 * through libh2o's zlib encoder): nothing is held back. Static files are not compressed here
 * (http_static sends its own copies, made once).
 */
#ifndef H2LUA_HTTP_COMPRESS_H
#define H2LUA_HTTP_COMPRESS_H

#include <h2o.h>

#include "config.h"

/*
 * After h2o_start_response: whether req's body goes through the compressor now on top of its
 * ostreams. A body sent whole through it (one h2o_send with H2O_SEND_STATE_FINAL) is read during
 * that h2o_send, so the caller's buffer need not outlive the call. Can't fail.
 */
int http_compress_reads_during_send(h2o_req_t *req);

/* Adds the filter to pathconf (nothing with COMPRESS=off). Can't fail (OOM aborts). */
void http_compress_register(h2o_pathconf_t *pathconf, const config_t *cfg);

#endif
