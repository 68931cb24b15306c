/*
 * log_api — the module `h2lua.log` the application requires: event lines of its own, through the
 * core's logger (log.h), on stderr, in LOG_FORMAT, filtered by LOG_LEVEL.
 *
 *   log.debug(msg [, fields])   log.info(...)   log.warn(...)   log.error(...)
 *       One line: time, level, worker, request_id (when the call runs while a request's coroutine
 *       runs: its handler, callbacks, coroutines it resumes), msg, then the fields sorted by key.
 *       A call below LOG_LEVEL returns at once and checks nothing. Never yields: callable anywhere
 *       (app.lua loading, string.gsub and table.sort callbacks, metamethods, coroutines).
 *       msg: a string or a number; anything else raises.
 *       fields: nil or a table read raw (no __index, __pairs or __tostring runs); keys must be
 *       strings of 1 to LOG_API_KEY_MAX bytes and not one of the core's keys (time, level, worker,
 *       request_id, msg, truncated) — else it raises; values: strings as strings, finite numbers
 *       as JSON numbers (NaN and infinities as the strings "nan", "inf", "-inf"), booleans as
 *       booleans, any other value as the string "<table>", "<function>", ... (its type).
 *       Bounds: msg past LOG_API_MSG_MAX bytes and string values past LOG_API_VALUE_MAX are cut
 *       (at a character boundary), fields past LOG_API_MAX_FIELDS (in key order) are left out;
 *       the line then carries "truncated":true.
 *   log.level                   "debug", "info", "warn" or "error": LOG_LEVEL
 *   log.enabled(level)          true when a line of that level is written; raises on another name
 */
#ifndef H2LUA_LOG_API_H
#define H2LUA_LOG_API_H

#include "lua_compat.h"

#define LOG_API_MSG_MAX 4096
#define LOG_API_VALUE_MAX 1024
#define LOG_API_KEY_MAX 64
#define LOG_API_MAX_FIELDS 64

struct config;
struct worker;

/* Registers package.preload["h2lua.log"]; the preload table is at the top of L's stack. */
void log_api_preload(lua_State *L, const struct config *cfg, struct worker *w);

#endif
