/*
 * shared_api — the module `h2lua.shared` the application requires, backed by shared_store: the
 * stores SHARED_STORES declares, the same ones on every worker, kept across reloads (they live in
 * the process, not in a Lua state).
 *
 *   local shared = require "h2lua.shared"
 *   shared.cache (or shared["cache"])   the store named cache; nil for a name SHARED_STORES does
 *                                       not declare
 *
 * Methods, called with a colon, as ngx.shared.DICT's (docs/lua-api.md, "Shared store"):
 *   store:get(key)                      -> value | nil  (nil, err for a bad key)
 *   store:set(key, value, ttl?)         -> ok, err, forcible   (value nil: deletes)
 *   store:add(key, value, ttl?)         -> ok, err, forcible   (err "exists")
 *   store:replace(key, value, ttl?)     -> ok, err, forcible   (err "not found")
 *   store:incr(key, n, init?, init_ttl?) -> new value, nil, forcible | nil, err
 *   store:delete(key)                   -> true | nil, err
 *   store:ttl(key)                      -> seconds left (0: none) | nil, err
 *   store:expire(key, ttl)              -> true | nil, err
 *   store:flush_expired(max?)           -> how many were removed
 *   store:flush_all()
 *   store:capacity(), store:free_space() -> bytes
 * Values are strings, numbers and booleans. Every failure is returned (false or nil, and a message),
 * never raised, except a call on something that is not a store (store.get(key): raises).
 * None of them yields: they may be called from anywhere (while app.lua loads, in callbacks of
 * string.gsub and table.sort, metamethods, coroutines the application made).
 */
#ifndef H2LUA_SHARED_API_H
#define H2LUA_SHARED_API_H

#include "lua_compat.h"

struct config;
struct worker;

/* Registers package.preload["h2lua.shared"] with the stores of w (w->shared_stores); the preload
 * table is at the top of L's stack. */
void shared_api_preload(lua_State *L, const struct config *cfg, struct worker *w);

#endif
