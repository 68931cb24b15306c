/*
 * http_status — the reason phrases of HTTP statuses (RFC 9110 wording): the one table the core
 * sends on the status line and exports to Lua as h2lua.status_text. Pure; safe from any thread.
 */
#ifndef H2LUA_HTTP_STATUS_H
#define H2LUA_HTTP_STATUS_H

#include <stddef.h>

typedef struct http_status {
    int status;
    const char *reason;
} http_status_t;

/* The known statuses in ascending order, ended by {0, NULL}. */
extern const http_status_t http_status_table[];

/* The reason phrase of status: the table's, else a generic one by class ("OK", "Redirect",
 * "Client Error", "Server Error"). Never NULL; static storage. */
const char *http_status_reason(int status);

#endif
