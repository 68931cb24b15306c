/*
 * server — the process: binds the listening sockets, builds the shared h2o configuration (routes,
 * static files, security headers, access log), starts the workers, and turns signals into
 * messages to them.
 */
#ifndef H2LUA_SERVER_H
#define H2LUA_SERVER_H

struct config;

/*
 * Runs the server until SIGTERM/SIGINT and the drain that follows. Returns the process exit code:
 * 0 after a clean drain, 1 when start-up failed (the reason logged: a port in use, an application
 * that does not load, a TLS file that does not parse).
 */
int server_run(const struct config *cfg);

#include <h2o.h>

/* The req->env key under which lua_host leaves the application's route for the metrics. */
#define SERVER_ENV_ROUTE "H2LUA_ROUTE"

/* The name of the x-request-id header; responses carry it with this exact pointer as name. */
extern h2o_iovec_t server_hdr_request_id;

#endif
