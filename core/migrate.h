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

/*
 * `h2lua migrate`: one attempt; returns the exit code (0 applied or nothing to do, 1 failed, 2 the TLS
 * settings do not fit the server: see below).
 */
int migrate_run_once(const struct config *cfg);

/*
 * At server start: applies the migrations on a background thread, retrying with backoff (1 s
 * doubling to 30 s) while the database is unreachable or a migration is refused, logging why.
 * With no database configured, migrate_is_done() is true at once.
 * Its connection is the first the process makes, so it is where start-up finds out that the TLS
 * settings do not fit the primary (a certificate that does not verify against DATABASE_CA or does not
 * name the host; DATABASE_TLS=required and no TLS offered — db_tls.h): then it logs one line
 * "invalid configuration: DATABASE_TLS=...: <reason>" and ends the process with exit code 2, as an
 * invalid variable does. A database that is merely down is retried, as above.
 */
void migrate_start(const struct config *cfg);

/*
 * At exit, after the workers are gone: stops the retries of migrate_start and joins its thread, always,
 * so that the caller may then free the configuration (which that thread reads). The attempt under way
 * ends at once when it is connecting or waiting (for the named lock, for an answer): its connection is
 * shut down and the server releases the lock with it. A migration whose statements have begun runs to
 * its end and is recorded first (cut short it could be half applied and not recorded), bounded by the
 * connection's 60 s read timeout. Not abortable: a DNS lookup inside the connect. A no-op when nothing
 * was started. Main thread only.
 */
void migrate_stop(void);

/* True once the migrations are applied. Safe from any thread. */
int migrate_is_done(void);

#endif
