/*
 * h2lua — entry point: parses the command line, loads the configuration and runs the command.
 * Exit codes: 0 done, 1 failure at run time, 2 invalid configuration or usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "healthcheck.h"
#include "log.h"
#include "migrate.h"
#include "server.h"

static const char *env(const char *name)
{
    return getenv(name);
}

/* `h2lua migrate` signs nothing: SECRET_KEY is not required for it. */
static const char *env_migrate(const char *name)
{
    const char *v = getenv(name);
    if ((v == NULL || *v == '\0') && strcmp(name, "SECRET_KEY") == 0)
        return "migrate-signs-nothing-0123456789";
    return v;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        config_print_help(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("h2lua %s\n", H2LUA_VERSION);
        return 0;
    }
    if (strcmp(cmd, "healthcheck") == 0)
        return healthcheck_run();
    if (argc > 2 || (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0)) {
        fprintf(stderr, "h2lua: unknown command '%s' (try h2lua --help)\n", cmd);
        return 2;
    }

    config_t cfg;
    char err[512];
    if (config_load(&cfg, strcmp(cmd, "migrate") == 0 ? env_migrate : env, err, sizeof(err)) != 0) {
        fprintf(stderr, "h2lua: invalid configuration: %s\n", err);
        return 2;
    }
    log_set_format(cfg.log_format);
    log_set_level(cfg.log_level);
    int ret;
    if (strcmp(cmd, "migrate") == 0) {
        ret = migrate_run_once(&cfg);
    } else {
        if (cfg.secret_key_generated)
            log_warnf(-1, "SECRET_KEY is not set: using a random key (sessions and CSRF tokens end with the process)");
        ret = server_run(&cfg);
    }
    config_free(&cfg);
    return ret;
}
