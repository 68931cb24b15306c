/*
 * server — the process: TLS, the listening sockets (one per worker, SO_REUSEPORT), the worker
 * threads and their ticks, the drain, and signals turned into messages to the workers. What runs
 * on each path is http's (http.h); the application is loaded by app (app.h).
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

#endif
