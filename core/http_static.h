/*
 * http_static — serves the files under dir with the core's content types.
 */
#ifndef H2LUA_HTTP_STATIC_H
#define H2LUA_HTTP_STATIC_H

#include <h2o.h>

void http_static_register(h2o_pathconf_t *pathconf, const char *dir);

#endif
