/*
 * migrate — applies db/migrations/NNNN_name.sql in order, each exactly once, recorded in
 * `schema_migrations` (version, SHA-256 checksum, time), under the MySQL named lock
 * 'h2lua.migrations' so that any number of processes starting at once apply each once.
 * A migration edited after it was applied is refused (its checksum differs) with a message naming
 * it. A database created by the Flask service (table `entry`, `alembic_version`) is adopted as it
 * is: the migrations create only what is missing and never drop data.
 *
 * Uses a blocking connection of its own, on its own thread — never on a worker's loop.
 */
#ifndef H2LUA_MIGRATE_H
#define H2LUA_MIGRATE_H

struct config;

/* `h2lua migrate`: one attempt; returns the exit code (0 applied or nothing to do, 1 failed). */
int migrate_run_once(const struct config *cfg);

/*
 * At server start: applies the migrations on a background thread, retrying with backoff (1 s
 * doubling to 30 s) while the database is unreachable or a migration is refused, logging why.
 * With no database configured, migrate_is_done() is true at once.
 */
void migrate_start(const struct config *cfg);

/*
 * At exit, after the workers are gone: stops the retries of migrate_start and waits for an
 * attempt under way to end (at most DB_CONNECT_TIMEOUT + 2 s; past it, the process exits without
 * it), so that no thread uses the configuration or the libraries while the process exits. A no-op
 * when nothing was started.
 */
void migrate_stop(const struct config *cfg);

/* True once the migrations are applied. Safe from any thread. */
int migrate_is_done(void);

#endif
