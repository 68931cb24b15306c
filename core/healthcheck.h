/*
 * healthcheck — `h2lua healthcheck`, the container's HEALTHCHECK: GET /healthz on 127.0.0.1:$PORT
 * with a 3 s timeout. Returns the exit code: 0 when the answer is 200, 1 otherwise. Blocking; it is
 * a separate short-lived process, never part of the server.
 */
#ifndef H2LUA_HEALTHCHECK_H
#define H2LUA_HEALTHCHECK_H

int healthcheck_run(void);

#endif
