/*
 * multipart — multipart/form-data bodies (RFC 7578, on RFC 2046's framing): a bounded, incremental
 * parser that gives the same result whatever pieces the body arrives in, and a one-shot reader of
 * a whole body that checks everything before handing over any part.
 * Pure functions and caller-owned state; no global state, safe from any thread. Out-of-memory
 * aborts (util_malloc).
 *
 * What is accepted: an optional preamble; delimiter lines "--boundary" followed by optional
 * spaces/tabs and CRLF; per part a header block of "Name: value" lines ended by an empty line
 * (no folded lines, no bare CR or LF), with exactly one Content-Disposition "form-data" that has a
 * name parameter (token or quoted-string; inside quotes every byte but '"' is literal, as browsers
 * send them: '"' and newlines percent-encoded); a part with a filename parameter is a file; the
 * close delimiter "--boundary--" and an ignored epilogue. Anything else is an error.
 */
#ifndef H2LUA_MULTIPART_H
#define H2LUA_MULTIPART_H

#include <stddef.h>

/* Error codes (all negative); multipart_strerror gives the text, multipart_status the HTTP status. */
enum {
    MULTIPART_EBOUNDARY = -1,   /* no boundary parameter, or one RFC 2046 does not allow (1-70 bchars) */
    MULTIPART_ESYNTAX = -2,     /* a delimiter line that is not followed by CRLF or "--" */
    MULTIPART_EHEADER = -3,     /* a part's header block is malformed */
    MULTIPART_EHEADERSIZE = -4, /* a part's header block is longer than max_header */
    MULTIPART_ENONAME = -5,     /* a part without Content-Disposition: form-data; name=... */
    MULTIPART_ETOOMANY = -6,    /* more parts than max_parts */
    MULTIPART_EFILESIZE = -7,   /* a file larger than max_file */
    MULTIPART_ETOOLARGE = -8,   /* a body larger than max_body */
    MULTIPART_EUNFINISHED = -9, /* the body ended before the close delimiter */
    MULTIPART_EUTF8 = -10,      /* a field's name or value (or a file's field name) is not valid UTF-8 */
    MULTIPART_ECONTROL = -11,   /* a NUL byte in a field's name or value */
    MULTIPART_EABORT = -12      /* a callback asked to stop */
};

const char *multipart_strerror(int err);

/* 413 for the size errors (EFILESIZE, ETOOLARGE), 400 for the others. */
int multipart_status(int err);

/* The longest boundary (RFC 2046) and the longest part header block by default. */
#define MULTIPART_BOUNDARY_MAX 70
#define MULTIPART_HEADER_MAX 8192

/*
 * Finds the boundary in a Content-Type value (ct[0..len)): 1 when the media type is
 * multipart/form-data (case-insensitive), else 0 (then nothing else is set). With 1, *boundary and
 * *blen give the boundary (within ct, quotes removed) or *err is MULTIPART_EBOUNDARY (missing,
 * empty, longer than 70, or bytes outside RFC 2046's bchars) and *boundary is NULL.
 */
int multipart_content_type(const char *ct, size_t len, const char **boundary, size_t *blen, int *err);

typedef struct multipart_limits {
    int max_parts;     /* parts (fields and files) in one body */
    size_t max_header; /* bytes of one part's header block */
    size_t max_file;   /* bytes of one file's content */
    size_t max_body;   /* bytes of the whole body */
} multipart_limits_t;

/* A part's headers, as the parser hands them to on_part: pointers valid only during the call. */
typedef struct multipart_part {
    const char *name; /* the name parameter, NUL-terminated, as sent */
    size_t name_len;
    const char *filename; /* the filename parameter as sent, NUL-terminated; NULL: a field */
    size_t filename_len;
    const char *content_type; /* the part's Content-Type, spaces trimmed; NULL when absent */
    size_t content_type_len;
} multipart_part_t;

/* The parser's callbacks; each returns 0 to go on, non-zero to stop with MULTIPART_EABORT. */
typedef struct multipart_callbacks {
    int (*on_part)(void *ctx, const multipart_part_t *part); /* a part's headers were read */
    int (*on_data)(void *ctx, const char *data, size_t len); /* the next bytes of its content */
    int (*on_part_end)(void *ctx);                           /* its content is complete */
} multipart_callbacks_t;

/* The parser's state: opaque; allocated by multipart_parser_new. */
typedef struct multipart_parser multipart_parser_t;

/*
 * A parser for a body with this boundary (as multipart_content_type gives it; copied). Never fails
 * for a valid boundary (OOM aborts); NULL when the boundary is invalid. Free with
 * multipart_parser_free. Nothing is called before the first multipart_feed.
 */
multipart_parser_t *multipart_parser_new(const char *boundary, size_t blen, const multipart_limits_t *limits,
                                         const multipart_callbacks_t *cb, void *ctx);

void multipart_parser_free(multipart_parser_t *p);

/*
 * Feeds the next len bytes of the body. Returns 0, or a negative code; an error is final (every
 * later call returns it). Calls on_part/on_data/on_part_end in order as the body is read; on_data
 * may be called with any split of a part's content (pointers into buf, or into the parser), and
 * the content is exactly the bytes between the header block's empty line and the CRLF that starts
 * the next delimiter. Whatever the pieces, the same callbacks are made and the same code is
 * returned at the same byte of the body; only how much content of a part was handed over before
 * an error depends on them. The parser holds at most one part's header block (max_header bytes)
 * and a partial delimiter, never content.
 */
int multipart_feed(multipart_parser_t *p, const char *buf, size_t len);

/* The body is over: 0 when the close delimiter was read, else the error (MULTIPART_EUNFINISHED). */
int multipart_finish(multipart_parser_t *p);

/* The number of body bytes consumed so far (the offset of the next byte fed). */
size_t multipart_consumed(const multipart_parser_t *p);

/* One part of a whole body read by multipart_read: pointers into the body, or into the result. */
typedef struct multipart_item {
    const char *name; /* NUL-terminated */
    size_t name_len;
    const char *filename; /* NUL-terminated; NULL: a field */
    size_t filename_len;
    const char *content_type; /* NUL-terminated; NULL when the part had none */
    size_t content_type_len;
    const char *data; /* into the body (not NUL-terminated) */
    size_t size;
} multipart_item_t;

typedef struct multipart_result {
    multipart_item_t *items; /* in the body's order */
    int count;
    char *arena; /* the names, filenames and types */
} multipart_result_t;

/*
 * Reads a whole body (body[0..len)) with this boundary. Returns 0 and fills *out (free with
 * multipart_result_free) only when the whole body is well-formed and within the limits, and every
 * field's name and value and every file's field name is valid UTF-8 without NUL; else a negative
 * code and *out is empty. Repeated names are kept (the caller decides).
 */
int multipart_read(const char *body, size_t len, const char *boundary, size_t blen, const multipart_limits_t *limits,
                   multipart_result_t *out);

void multipart_result_free(multipart_result_t *r);

/* The longest name multipart_safe_filename makes, in bytes. */
#define MULTIPART_SAFE_FILENAME_MAX 128

/*
 * Writes into dst (at least MULTIPART_SAFE_FILENAME_MAX + 1 bytes) a file name made from name as
 * sent that is safe to use as one path component: its last component after '/' or '\'; control
 * bytes dropped; bytes of invalid UTF-8 and the characters <>:"|?* replaced by '_'; leading dots
 * and spaces and trailing dots and spaces removed; at most MULTIPART_SAFE_FILENAME_MAX bytes (cut
 * at a character, keeping an extension of up to 16 bytes); "upload" when nothing is left.
 * NUL-terminated; returns its length. Can't fail.
 */
size_t multipart_safe_filename(char *dst, const char *name, size_t len);

#endif
