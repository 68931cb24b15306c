#include "app.h"

#include "db_api.h"
#include "httpc_api.h"
#include "log_api.h"
#include "lua_api.h"
#include "lua_host.h"
#include "metrics_api.h"
#include "shared_api.h"
#include "static_api.h"

static const lua_host_preload_fn modules[] = {lua_api_preload,   db_api_preload,  static_api_preload,  shared_api_preload,
                                              httpc_api_preload, log_api_preload, metrics_api_preload, NULL};

int app_open(lua_host_t **out, const struct config *cfg, struct worker *w, char *errbuf, size_t errlen)
{
    return lua_host_open(out, cfg, w, modules, errbuf, errlen);
}
