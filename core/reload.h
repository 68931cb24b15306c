/*
 * reload — swaps a worker's application for a freshly loaded one between requests.
 *
 * reload_worker builds a new lua_State from SCRIPTS_DIR and VIEWS_DIR; on success new requests run
 * on it while requests and tasks (timers) already running finish on the old one, which is retired
 * (lua_host_retire: its pending timers are dropped) and closed when the last of them ends; the new
 * one is started (lua_host_start: the timers its app.lua made begin). On failure the running
 * version stays, the failure is logged with file and line, and in development every page shows it
 * until a later reload succeeds. A reload never touches the listening socket or the database pools.
 *
 * reload_watch_start, in development, watches SCRIPTS_DIR and VIEWS_DIR with inotify and calls
 * `trigger` (debounced) after a change; editors that save by rename are seen.
 */
#ifndef H2LUA_RELOAD_H
#define H2LUA_RELOAD_H

struct worker;
struct config;

/*
 * Runs on the worker's thread. Returns 0 when the new version serves, -1 when it was refused. The
 * version that serves takes the generation of the last reload_request() as its app_version.
 */
int reload_worker(struct worker *w);

/*
 * Counts a reload about to be posted to every worker (the process-wide reload generation, shared
 * and atomic; 0 at start). Workers that load the same request get the same app_version, so a page
 * rendered by one worker and a /_dev/events stream on another agree on which version is newer.
 */
void reload_request(void);

/* Starts the watcher thread (development only; a no-op in production). It reads cfg and calls trigger
 * until reload_watch_stop. Main thread only. */
void reload_watch_start(const struct config *cfg, void (*trigger)(void *arg), void *arg);

/* Ends the watcher thread and joins it (a reload it is triggering finishes first), so that neither the
 * configuration it reads nor the workers it posts to are used after. A no-op when none runs. Main
 * thread only; can't fail. */
void reload_watch_stop(void);

#endif
