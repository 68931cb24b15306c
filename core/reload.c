#include "reload.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "log.h"
#include "lua_host.h"
#include "util.h"
#include "worker.h"

#define DEBOUNCE_MS 40

static atomic_uint generation; /* shared: the last reload_request() */

void reload_request(void)
{
    atomic_fetch_add(&generation, 1);
}

static double now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

int reload_worker(worker_t *w)
{
    double t0 = now_ms();
    lua_host_t *fresh;
    char err[4096];
    if (app_open(&fresh, w->cfg, w, err, sizeof(err)) != 0) {
        ++w->reloads_failed;
        char version[24], ms[32];
        snprintf(version, sizeof(version), "%u", w->app_version);
        snprintf(ms, sizeof(ms), "%.1f", now_ms() - t0);
        const char *extra[] = {"outcome", "refused", "running_version", version, "duration_ms", ms, "error", err};
        log_event("error", w->id, "reload refused: the new version does not load; the running one stays", extra, 4);
        free(w->load_error);
        w->load_error = util_strdup(err);
        return -1;
    }
    lua_host_t *old = w->lua;
    w->lua = fresh;
    lua_host_retire(old); /* its pending timers are dropped; what runs on it finishes */
    lua_host_start(fresh);
    free(w->load_error);
    w->load_error = NULL;
    w->app_version = atomic_load(&generation);
    ++w->reloads_ok;
    if (old->inflight == 0)
        lua_host_close(old); /* else the last request or task on it closes it */
    char version[24], ms[32];
    snprintf(version, sizeof(version), "%u", w->app_version);
    snprintf(ms, sizeof(ms), "%.1f", now_ms() - t0);
    const char *extra[] = {"outcome", "ok", "version", version, "duration_ms", ms};
    log_event("info", w->id, "reloaded scripts and views", extra, 3);
    return 0;
}

/* ---- the development watcher ---- */

struct watcher {
    int fd;      /* inotify */
    int stop_fd; /* eventfd, readable once reload_watch_stop was called */
    const config_t *cfg;
    void (*trigger)(void *);
    void *arg;
    pthread_t thread;
};

/* The process's one watcher (main thread only), or NULL. */
static struct watcher *watcher;

static void watch_tree(int fd, const char *dir, int depth)
{
    if (depth > 8)
        return;
    inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MODIFY);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(fd, path, depth + 1);
    }
    closedir(d);
}

static void *watch_main(void *arg)
{
    struct watcher *wt = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        struct pollfd p[2] = {{wt->fd, POLLIN, 0}, {wt->stop_fd, POLLIN, 0}};
        if (poll(p, 2, -1) <= 0)
            continue;
        int new_dir = 0;
        /* debounce: drain events until the tree has been quiet for DEBOUNCE_MS */
        do {
            if (p[1].revents & POLLIN)
                return NULL;
            ssize_t n = p[0].revents & POLLIN ? read(wt->fd, buf, sizeof(buf)) : 0;
            for (char *q = buf; n > 0 && q < buf + n;) {
                struct inotify_event *ev = (struct inotify_event *)q;
                if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
                    new_dir = 1;
                q += sizeof(*ev) + ev->len;
            }
        } while (poll(p, 2, DEBOUNCE_MS) > 0);
        if (new_dir) {
            watch_tree(wt->fd, wt->cfg->scripts_dir, 0);
            watch_tree(wt->fd, wt->cfg->views_dir, 0);
        }
        log_infof(-1, "change under %s or %s: reloading", wt->cfg->scripts_dir, wt->cfg->views_dir);
        wt->trigger(wt->arg);
    }
    return NULL;
}

void reload_watch_start(const config_t *cfg, void (*trigger)(void *arg), void *arg)
{
    if (cfg->app_env != CONFIG_ENV_DEVELOPMENT)
        return;
    struct watcher *wt = util_malloc(sizeof(*wt));
    wt->fd = inotify_init1(IN_CLOEXEC);
    wt->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (wt->fd < 0 || wt->stop_fd < 0) {
        log_warnf(-1, "inotify is not available: hot reload is off (SIGHUP still reloads)");
        if (wt->fd >= 0)
            close(wt->fd);
        if (wt->stop_fd >= 0)
            close(wt->stop_fd);
        free(wt);
        return;
    }
    wt->cfg = cfg;
    wt->trigger = trigger;
    wt->arg = arg;
    watch_tree(wt->fd, cfg->scripts_dir, 0);
    watch_tree(wt->fd, cfg->views_dir, 0);
    pthread_create(&wt->thread, NULL, watch_main, wt);
    watcher = wt;
    log_infof(-1, "hot reload: watching %s and %s", cfg->scripts_dir, cfg->views_dir);
}

void reload_watch_stop(void)
{
    struct watcher *wt = watcher;
    if (wt == NULL)
        return;
    uint64_t one = 1;
    if (write(wt->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        abort(); /* an eventfd counter at 0 takes a write: can't fail */
    pthread_join(wt->thread, NULL);
    close(wt->fd);
    close(wt->stop_fd);
    free(wt);
    watcher = NULL;
}
