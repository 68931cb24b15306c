#include "http.h"

#include "config.h"
#include "http_access_log.h"
#include "http_compress.h"
#include "http_headers.h"
#include "http_healthz.h"
#include "http_limits.h"
#include "http_metrics.h"
#include "http_readyz.h"
#include "http_static.h"

/* A path answered by one handler, with the limits before it and the headers and log after. */
static h2o_pathconf_t *begin_path(h2o_hostconf_t *host, const char *path)
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, path, 0);
    http_limits_register(pc);
    return pc;
}

static void end_path(h2o_pathconf_t *pc, const config_t *cfg, int is_static)
{
    http_headers_register(pc, is_static, cfg->hsts_max_age);
    http_access_log_register(pc);
}

void http_build(h2o_globalconf_t *gc, const config_t *cfg, void (*app)(h2o_pathconf_t *pathconf))
{
    h2o_hostconf_t *host = h2o_config_register_host(gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc;

    pc = begin_path(host, "/healthz");
    http_healthz_register(pc);
    end_path(pc, cfg, 0);

    pc = begin_path(host, "/readyz");
    http_readyz_register(pc);
    end_path(pc, cfg, 0);

    pc = begin_path(host, "/metrics");
    http_metrics_register(pc);
    app(pc); /* without METRICS_TOKEN, /metrics is the application's (404) */
    http_compress_register(pc, cfg);
    end_path(pc, cfg, 0);

    pc = begin_path(host, "/static/bootstrap");
    http_static_register(pc, cfg->bootstrap_dir, cfg);
    end_path(pc, cfg, 1);

    pc = begin_path(host, "/static");
    http_static_register(pc, cfg->static_dir, cfg);
    end_path(pc, cfg, 1);

    pc = begin_path(host, "/");
    app(pc);
    http_compress_register(pc, cfg);
    end_path(pc, cfg, 0);
}
