/*
 * shared_store — a named key-value store of a declared size that every thread of the process uses
 * at once (the one state that crosses worker threads), behind the Lua module `h2lua.shared`
 * (shared_api.h). No Lua here, no event loop: a store is plain memory and a mutex.
 *
 * Keys are byte strings of 1 to SHARED_STORE_KEY_MAX bytes; values are strings, numbers (double),
 * integers (int64, for Lua 5.4) and booleans. An entry may carry an expiry (a TTL in seconds on the
 * store's monotonic clock); an expired entry is never returned and is removed when an operation
 * meets it, when its room is needed, or by shared_store_flush_expired.
 *
 * Memory: the store charges each entry SHARED_STORE_ENTRY_CHARGE(key, value) bytes — its header,
 * key and string value, rounded up to 16, plus 16 for the allocator's own header — and its hash
 * index (one pointer per 512 bytes of capacity) once at creation, against its capacity. Used bytes
 * never exceed the capacity: a write that needs room evicts the least recently used entries (get,
 * set and incr make an entry the most recent); the caller learns (`forcible`) when a valid entry
 * was evicted, and the store counts them (an expired entry evicted this way is not counted). An
 * entry larger than what the store can ever hold is refused (SHARED_STORE_ETOOBIG).
 *
 * Threads: every operation takes the store's mutex for a short, bounded section: no allocation, no
 * free, no system call under it (entries are allocated before it is taken and freed after it is
 * released; the clock is read before). The sections that walk the store (flush_expired, flush_all)
 * release the mutex every SHARED_STORE_SCAN_BATCH buckets. Out of memory aborts (util_malloc).
 */
#ifndef H2LUA_SHARED_STORE_H
#define H2LUA_SHARED_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct shared_store shared_store_t;

#define SHARED_STORE_KEY_MAX 250
#define SHARED_STORE_SCAN_BATCH 64

/* What shared_store_* return besides 0. shared_store_strerror names each for people. */
#define SHARED_STORE_ENOTFOUND (-1) /* no such key (or it expired) */
#define SHARED_STORE_EEXISTS (-2)   /* add: the key holds a value */
#define SHARED_STORE_ENOTNUM (-3)   /* incr: the value is not a number */
#define SHARED_STORE_ETOOBIG (-4)   /* the entry is larger than the store can hold */
#define SHARED_STORE_EKEY (-5)      /* the key is empty or longer than SHARED_STORE_KEY_MAX */
#define SHARED_STORE_ETTL (-6)      /* the TTL is not a number of seconds from 0 to SHARED_STORE_TTL_MAX */
#define SHARED_STORE_EBUF (-7)      /* get: the string value is longer than the caller's buffer */
#define SHARED_STORE_EVALUE (-8)    /* a value of no storable type where one is needed */

#define SHARED_STORE_TTL_MAX (10.0 * 365 * 86400)

enum { SHARED_STORE_NIL = 0, SHARED_STORE_STRING, SHARED_STORE_NUMBER, SHARED_STORE_INTEGER, SHARED_STORE_BOOLEAN };

/* A value going in or coming out. `str` is borrowed: the caller's on the way in, the caller's
 * buffer on the way out. */
typedef struct shared_store_value {
    int type; /* SHARED_STORE_* */
    double number;
    int64_t integer;
    int boolean;
    const char *str;
    size_t len;
} shared_store_value_t;

/* The bytes an entry of a key of klen bytes and a string value of vlen bytes is charged (a number
 * or a boolean: vlen 0). */
size_t shared_store_entry_charge(size_t klen, size_t vlen);

/* The milliseconds of a monotonic clock; tests give their own. */
typedef uint64_t (*shared_store_clock_fn)(void);

/*
 * Creates the store `name` (copied) of `capacity` bytes, with the coarse monotonic clock
 * (CLOCK_MONOTONIC_COARSE: TTLs hold to within the kernel's tick, 1 to 4 ms) or `clock` when not
 * NULL. The capacity must hold the index and one entry: at least
 * SHARED_STORE_MIN_CAPACITY. Can't fail otherwise (out of memory aborts).
 */
#define SHARED_STORE_MIN_CAPACITY 4096
shared_store_t *shared_store_create(const char *name, size_t capacity, shared_store_clock_fn clock);

/* Frees the store and its entries; no other thread may use it any more. */
void shared_store_free(shared_store_t *s);

/* The name given at creation. */
const char *shared_store_name(const shared_store_t *s);

/* For people: "not found", "exists", ... for a SHARED_STORE_E* code. Static storage. */
const char *shared_store_strerror(int code);

/*
 * The value of key into *out: 0, or SHARED_STORE_ENOTFOUND / SHARED_STORE_EKEY. A string value is
 * copied into buf (cap bytes) and out->str points there; when it is longer than cap, returns
 * SHARED_STORE_EBUF with out->len its length (call again with a buffer that large: the value may
 * have changed meanwhile).
 */
int shared_store_get(shared_store_t *s, const char *key, size_t klen, shared_store_value_t *out, char *buf, size_t cap);

/* The modes of shared_store_set. */
enum { SHARED_STORE_SET = 0, SHARED_STORE_ADD, SHARED_STORE_REPLACE };

/*
 * Stores v under key with a TTL in seconds (0: never expires). SET stores whatever the key held
 * (a NIL value deletes it); ADD only when the key holds nothing (else SHARED_STORE_EEXISTS);
 * REPLACE only when it holds something (else SHARED_STORE_ENOTFOUND). Sets *forcible to 1 when a
 * valid entry was evicted to make room, else 0. Returns 0 or a SHARED_STORE_E* code (EKEY, ETTL,
 * ETOOBIG, EVALUE for a NIL value with ADD or REPLACE, EEXISTS, ENOTFOUND).
 */
int shared_store_set(shared_store_t *s, const char *key, size_t klen, const shared_store_value_t *v, double ttl, int mode,
                     int *forcible);

/*
 * Adds delta (NUMBER or INTEGER) to the number under key, atomically, and writes the sum to *out.
 * Two INTEGERs add as int64 (wrapping), anything else as doubles. When the key holds nothing and
 * init (NUMBER or INTEGER) is given, stores init + delta with init_ttl seconds (0: none); without
 * init that is SHARED_STORE_ENOTFOUND. An existing entry keeps its TTL. *forcible as in set.
 * Returns 0 or SHARED_STORE_ENOTFOUND, ENOTNUM, EKEY, ETTL, EVALUE (delta or init not a number).
 */
int shared_store_incr(shared_store_t *s, const char *key, size_t klen, const shared_store_value_t *delta,
                      const shared_store_value_t *init, double init_ttl, shared_store_value_t *out, int *forcible);

/* Removes key. Returns 0, SHARED_STORE_ENOTFOUND or SHARED_STORE_EKEY. */
int shared_store_delete(shared_store_t *s, const char *key, size_t klen);

/* The seconds key has left into *ttl (0: it never expires). Returns 0, ENOTFOUND or EKEY. */
int shared_store_ttl(shared_store_t *s, const char *key, size_t klen, double *ttl);

/* Gives key a new TTL in seconds (0: never expires). Returns 0, ENOTFOUND, EKEY or ETTL. */
int shared_store_expire(shared_store_t *s, const char *key, size_t klen, double ttl);

/* Removes up to max expired entries (0: all of them). Returns how many it removed. */
size_t shared_store_flush_expired(shared_store_t *s, size_t max);

/* Removes every entry. */
void shared_store_flush_all(shared_store_t *s);

/* What /metrics shows of a store: a consistent snapshot. */
typedef struct shared_store_stats {
    size_t capacity; /* the declared size */
    size_t used;     /* bytes charged: the index and the entries */
    size_t entries;
    uint64_t evictions; /* valid entries evicted to make room, since creation */
} shared_store_stats_t;
void shared_store_get_stats(shared_store_t *s, shared_store_stats_t *st);

/* The stores of the process, as SHARED_STORES declares them; created once before the workers
 * start, never changed after, freed after they have all ended. */
typedef struct shared_store_list {
    size_t n;
    shared_store_t **stores;
} shared_store_list_t;

#endif
