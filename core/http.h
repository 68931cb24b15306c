/*
 * http — the path table: which handlers, filters and loggers run on each path. Each of them is a
 * file of its own (http_<name>.[ch], as h2o's lib/handler/): it runs on a worker's thread and
 * reaches the worker through the h2o context; its register function adds it to a pathconf of the
 * shared configuration while the main thread builds it, and cannot fail (OOM aborts).
 */
#ifndef H2LUA_HTTP_H
#define H2LUA_HTTP_H

#include <h2o.h>

struct config;

/*
 * The path table: /healthz, /readyz, /metrics (the application's 404 without METRICS_TOKEN),
 * /static/bootstrap and /static (files), and / (the application), each with the limits first,
 * then the headers filter and the access logger. `app` registers the application's handler.
 */
void http_build(h2o_globalconf_t *gc, const struct config *cfg, void (*app)(h2o_pathconf_t *pathconf));

#endif
