/*
 * http_access_log — one JSON access-log line per response, and the request counted in the
 * worker's metrics under the application's route (WORKER_ENV_ROUTE) or the path prefix.
 */
#ifndef H2LUA_HTTP_ACCESS_LOG_H
#define H2LUA_HTTP_ACCESS_LOG_H

#include <h2o.h>

void http_access_log_register(h2o_pathconf_t *pathconf);

#endif
