#include "shared_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* The LRU list: a store's `lru.next` is the most recently used entry, `lru.prev` the least. */
typedef struct link {
    struct link *prev, *next;
} link_t;

typedef struct entry {
    link_t lru; /* first: an entry is reached from its link */
    struct entry *hnext;
    uint64_t hash;
    uint64_t expires; /* ms on the store's clock; 0: never */
    size_t charge;
    uint32_t klen, vlen;
    int type;
    union {
        double number;
        int64_t integer;
        int boolean;
    } v;
    char data[]; /* the key, then a string value */
} entry_t;

struct shared_store {
    pthread_mutex_t lock;
    /* written at creation only */
    char *name;
    size_t capacity, index_bytes;
    size_t mask; /* buckets - 1 */
    uint64_t k0, k1;
    shared_store_clock_fn clock;
    /* guarded by lock */
    entry_t **buckets;
    link_t lru;
    size_t used, count;
    uint64_t evictions;
};

#define ALLOC_OVERHEAD 16
#define INDEX_BYTES_PER_BUCKET 512

size_t shared_store_entry_charge(size_t klen, size_t vlen)
{
    return ((sizeof(entry_t) + klen + vlen + 15) & ~(size_t)15) + ALLOC_OVERHEAD;
}

/* The coarse clock: a read of what the kernel last ticked (1 to 4 ms old), where CLOCK_MONOTONIC
 * may read a hardware counter (a quarter of a get's time on a virtual machine). */
static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* SipHash-1-3 keyed per store: keys come from clients, so the chains cannot be aimed at. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                               \
    do {                                                                                                                       \
        v0 += v1;                                                                                                              \
        v1 = ROTL(v1, 13);                                                                                                     \
        v1 ^= v0;                                                                                                              \
        v0 = ROTL(v0, 32);                                                                                                     \
        v2 += v3;                                                                                                              \
        v3 = ROTL(v3, 16);                                                                                                     \
        v3 ^= v2;                                                                                                              \
        v0 += v3;                                                                                                              \
        v3 = ROTL(v3, 21);                                                                                                     \
        v3 ^= v0;                                                                                                              \
        v2 += v1;                                                                                                              \
        v1 = ROTL(v1, 17);                                                                                                     \
        v1 ^= v2;                                                                                                              \
        v2 = ROTL(v2, 32);                                                                                                     \
    } while (0)

static uint64_t hash_key(const shared_store_t *s, const char *key, size_t len)
{
    const unsigned char *p = (const unsigned char *)key;
    uint64_t v0 = s->k0 ^ 0x736f6d6570736575ULL, v1 = s->k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = s->k0 ^ 0x6c7967656e657261ULL, v3 = s->k1 ^ 0x7465646279746573ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = 0;
        for (int j = 0; j < 8; ++j)
            m |= (uint64_t)p[i + (size_t)j] << (8 * j);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t j = 0; i + j < len; ++j)
        b |= (uint64_t)p[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

shared_store_t *shared_store_create(const char *name, size_t capacity, shared_store_clock_fn clock)
{
    if (capacity < SHARED_STORE_MIN_CAPACITY)
        abort(); /* config validates the sizes */
    shared_store_t *s = util_malloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    /* spins a little before sleeping: the sections are short */
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&s->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    s->name = util_strdup(name);
    s->capacity = capacity;
    size_t nb = 16;
    while (nb < capacity / INDEX_BYTES_PER_BUCKET)
        nb *= 2;
    s->mask = nb - 1;
    s->buckets = calloc(nb, sizeof(entry_t *));
    if (s->buckets == NULL)
        s->buckets = util_malloc(1); /* aborts with util's message: calloc is not wrapped */
    s->index_bytes = s->used = nb * sizeof(entry_t *);
    s->lru.next = s->lru.prev = &s->lru;
    util_random_bytes(&s->k0, sizeof(s->k0));
    util_random_bytes(&s->k1, sizeof(s->k1));
    s->clock = clock != NULL ? clock : monotonic_ms;
    return s;
}

void shared_store_free(shared_store_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i <= s->mask; ++i) {
        for (entry_t *e = s->buckets[i], *next; e != NULL; e = next) {
            next = e->hnext;
            free(e);
        }
    }
    free(s->buckets);
    free(s->name);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *shared_store_name(const shared_store_t *s)
{
    return s->name;
}

const char *shared_store_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case SHARED_STORE_ENOTFOUND: return "not found";
    case SHARED_STORE_EEXISTS: return "exists";
    case SHARED_STORE_ENOTNUM: return "not a number";
    case SHARED_STORE_ETOOBIG: return "too large for the store";
    case SHARED_STORE_EKEY: return "the key must be 1 to 250 bytes";
    case SHARED_STORE_ETTL: return "the ttl must be a number of seconds from 0 to 10 years";
    case SHARED_STORE_EBUF: return "the value is longer than the buffer";
    case SHARED_STORE_EVALUE: return "the value must be a string, a number or a boolean";
    default: return "unknown error";
    }
}

/* ---- under the lock: no allocation, no free, no system call ---- */

static int expired(const entry_t *e, uint64_t now)
{
    return e->expires != 0 && e->expires <= now;
}

/* The entry of key and the slot that points to it, or NULL. */
static entry_t *find(shared_store_t *s, uint64_t h, const char *key, size_t klen, entry_t ***slot)
{
    entry_t **p = &s->buckets[h & s->mask];
    for (; *p != NULL; p = &(*p)->hnext) {
        entry_t *e = *p;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0) {
            *slot = p;
            return e;
        }
    }
    return NULL;
}

static void lru_unlink(entry_t *e)
{
    e->lru.prev->next = e->lru.next;
    e->lru.next->prev = e->lru.prev;
}

static void lru_push(shared_store_t *s, entry_t *e)
{
    e->lru.next = s->lru.next;
    e->lru.prev = &s->lru;
    s->lru.next->prev = &e->lru;
    s->lru.next = &e->lru;
}

static void touch(shared_store_t *s, entry_t *e)
{
    lru_unlink(e);
    lru_push(s, e);
}

/* Takes e (pointed to by *slot) out of the store onto the garbage list (linked by hnext), which the
 * caller frees once the lock is released. */
static void remove_entry(shared_store_t *s, entry_t *e, entry_t **slot, entry_t **garbage)
{
    *slot = e->hnext;
    lru_unlink(e);
    s->used -= e->charge;
    --s->count;
    e->hnext = *garbage;
    *garbage = e;
}

/* The entry of key and its slot, or NULL; an expired entry of key is taken out onto the garbage
 * list first, so NULL also means "expired". */
static entry_t *find_live(shared_store_t *s, uint64_t h, const char *key, size_t klen, uint64_t now, entry_t ***slot,
                          entry_t **garbage)
{
    entry_t *e = find(s, h, key, klen, slot);
    if (e != NULL && expired(e, now)) {
        remove_entry(s, e, *slot, garbage);
        return NULL;
    }
    return e;
}

/* Evicts least recently used entries until `need` more bytes fit (the caller checked that they fit
 * an empty store). Sets *forcible when a valid entry went. */
static void make_room(shared_store_t *s, size_t need, uint64_t now, entry_t **garbage, int *forcible)
{
    while (s->used + need > s->capacity && s->lru.prev != &s->lru) {
        entry_t *e = (entry_t *)s->lru.prev;
        if (!expired(e, now)) {
            *forcible = 1;
            ++s->evictions;
        }
        entry_t **p = &s->buckets[e->hash & s->mask];
        while (*p != e)
            p = &(*p)->hnext;
        remove_entry(s, e, p, garbage);
    }
}

static void insert(shared_store_t *s, entry_t *e)
{
    entry_t **b = &s->buckets[e->hash & s->mask];
    e->hnext = *b;
    *b = e;
    lru_push(s, e);
    s->used += e->charge;
    ++s->count;
}

static void read_value(const entry_t *e, shared_store_value_t *out)
{
    out->type = e->type;
    switch (e->type) {
    case SHARED_STORE_NUMBER: out->number = e->v.number; break;
    case SHARED_STORE_INTEGER: out->integer = e->v.integer; break;
    case SHARED_STORE_BOOLEAN: out->boolean = e->v.boolean; break;
    default: break;
    }
}

static void add_number(entry_t *e, const shared_store_value_t *d)
{
    if (e->type == SHARED_STORE_INTEGER && d->type == SHARED_STORE_INTEGER) {
        e->v.integer = (int64_t)((uint64_t)e->v.integer + (uint64_t)d->integer);
        return;
    }
    double a = e->type == SHARED_STORE_INTEGER ? (double)e->v.integer : e->v.number;
    double b = d->type == SHARED_STORE_INTEGER ? (double)d->integer : d->number;
    e->type = SHARED_STORE_NUMBER;
    e->v.number = a + b;
}

/* ---- outside the lock ---- */

static void free_list(entry_t *garbage)
{
    while (garbage != NULL) {
        entry_t *next = garbage->hnext;
        free(garbage);
        garbage = next;
    }
}

static int bad_key(size_t klen)
{
    return klen == 0 || klen > SHARED_STORE_KEY_MAX;
}

static int bad_ttl(double ttl)
{
    return !(ttl >= 0 && ttl <= SHARED_STORE_TTL_MAX);
}

static int is_number(const shared_store_value_t *v)
{
    return v->type == SHARED_STORE_NUMBER || v->type == SHARED_STORE_INTEGER;
}

static uint64_t expiry(uint64_t now, double ttl)
{
    if (ttl <= 0)
        return 0;
    uint64_t ms = (uint64_t)(ttl * 1000.0 + 0.999);
    return now + (ms > 0 ? ms : 1);
}

/* A new entry (not in the store) for key with v (a number, integer, boolean or string). */
static entry_t *new_entry(uint64_t h, const char *key, size_t klen, const shared_store_value_t *v)
{
    size_t vlen = v->type == SHARED_STORE_STRING ? v->len : 0;
    entry_t *e = util_malloc(sizeof(entry_t) + klen + vlen);
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->charge = shared_store_entry_charge(klen, vlen);
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->type = v->type;
    memcpy(e->data, key, klen);
    switch (v->type) {
    case SHARED_STORE_STRING:
        if (vlen > 0)
            memcpy(e->data + klen, v->str, vlen);
        break;
    case SHARED_STORE_NUMBER: e->v.number = v->number; break;
    case SHARED_STORE_INTEGER: e->v.integer = v->integer; break;
    default: e->v.boolean = v->boolean != 0; break;
    }
    return e;
}

int shared_store_get(shared_store_t *s, const char *key, size_t klen, shared_store_value_t *out, char *buf, size_t cap)
{
    if (bad_key(klen))
        return SHARED_STORE_EKEY;
    uint64_t h = hash_key(s, key, klen), now = s->clock();
    entry_t *garbage = NULL, **slot;
    int ret = 0;
    pthread_mutex_lock(&s->lock);
    entry_t *e = find_live(s, h, key, klen, now, &slot, &garbage);
    if (e == NULL) {
        ret = SHARED_STORE_ENOTFOUND;
    } else {
        read_value(e, out);
        if (e->type == SHARED_STORE_STRING) {
            out->len = e->vlen;
            if (e->vlen > cap) {
                ret = SHARED_STORE_EBUF;
            } else {
                if (e->vlen > 0)
                    memcpy(buf, e->data + e->klen, e->vlen);
                out->str = buf;
            }
        }
        touch(s, e);
    }
    pthread_mutex_unlock(&s->lock);
    free_list(garbage);
    return ret;
}

int shared_store_set(shared_store_t *s, const char *key, size_t klen, const shared_store_value_t *v, double ttl, int mode,
                     int *forcible)
{
    *forcible = 0;
    if (bad_key(klen))
        return SHARED_STORE_EKEY;
    if (v->type == SHARED_STORE_NIL) {
        if (mode != SHARED_STORE_SET)
            return SHARED_STORE_EVALUE;
        int ret = shared_store_delete(s, key, klen);
        return ret == SHARED_STORE_ENOTFOUND ? 0 : ret;
    }
    if (v->type < SHARED_STORE_STRING || v->type > SHARED_STORE_BOOLEAN)
        return SHARED_STORE_EVALUE;
    if (bad_ttl(ttl))
        return SHARED_STORE_ETTL;
    size_t vlen = v->type == SHARED_STORE_STRING ? v->len : 0;
    if (vlen > s->capacity || shared_store_entry_charge(klen, vlen) > s->capacity - s->index_bytes)
        return SHARED_STORE_ETOOBIG;
    uint64_t h = hash_key(s, key, klen), now = s->clock();
    entry_t *e = new_entry(h, key, klen, v), *garbage = NULL, **slot;
    e->expires = expiry(now, ttl);
    int ret = 0;
    pthread_mutex_lock(&s->lock);
    entry_t *old = find_live(s, h, key, klen, now, &slot, &garbage);
    if (mode == SHARED_STORE_ADD && old != NULL) {
        ret = SHARED_STORE_EEXISTS;
    } else if (mode == SHARED_STORE_REPLACE && old == NULL) {
        ret = SHARED_STORE_ENOTFOUND;
    } else {
        if (old != NULL)
            remove_entry(s, old, slot, &garbage);
        make_room(s, e->charge, now, &garbage, forcible);
        insert(s, e);
        e = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    free(e);
    free_list(garbage);
    return ret;
}

int shared_store_incr(shared_store_t *s, const char *key, size_t klen, const shared_store_value_t *delta,
                      const shared_store_value_t *init, double init_ttl, shared_store_value_t *out, int *forcible)
{
    *forcible = 0;
    if (bad_key(klen))
        return SHARED_STORE_EKEY;
    if (!is_number(delta) || (init != NULL && !is_number(init)))
        return SHARED_STORE_EVALUE;
    if (init != NULL && bad_ttl(init_ttl))
        return SHARED_STORE_ETTL;
    uint64_t h = hash_key(s, key, klen), now = s->clock();
    entry_t *fresh = NULL, *garbage = NULL, **slot;
    int ret;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        entry_t *e = find_live(s, h, key, klen, now, &slot, &garbage);
        if (e != NULL) {
            if (e->type == SHARED_STORE_NUMBER || e->type == SHARED_STORE_INTEGER) {
                add_number(e, delta);
                read_value(e, out);
                touch(s, e);
                ret = 0;
            } else {
                ret = SHARED_STORE_ENOTNUM;
            }
            break;
        }
        if (init == NULL) {
            ret = SHARED_STORE_ENOTFOUND;
            break;
        }
        if (fresh != NULL) {
            add_number(fresh, delta);
            make_room(s, fresh->charge, now, &garbage, forcible);
            insert(s, fresh);
            read_value(fresh, out);
            fresh = NULL;
            ret = 0;
            break;
        }
        /* absent: allocate the entry outside the lock, then look again */
        pthread_mutex_unlock(&s->lock);
        fresh = new_entry(h, key, klen, init);
        fresh->expires = expiry(now, init_ttl);
    }
    pthread_mutex_unlock(&s->lock);
    free(fresh);
    free_list(garbage);
    return ret;
}

int shared_store_delete(shared_store_t *s, const char *key, size_t klen)
{
    if (bad_key(klen))
        return SHARED_STORE_EKEY;
    uint64_t h = hash_key(s, key, klen), now = s->clock();
    entry_t *garbage = NULL, **slot;
    pthread_mutex_lock(&s->lock);
    entry_t *e = find(s, h, key, klen, &slot);
    int ret = e == NULL || expired(e, now) ? SHARED_STORE_ENOTFOUND : 0;
    if (e != NULL)
        remove_entry(s, e, slot, &garbage);
    pthread_mutex_unlock(&s->lock);
    free_list(garbage);
    return ret;
}

/* The TTL of key (get != 0) or a new one. */
static int ttl_op(shared_store_t *s, const char *key, size_t klen, double *ttl, int get)
{
    if (bad_key(klen))
        return SHARED_STORE_EKEY;
    if (!get && bad_ttl(*ttl))
        return SHARED_STORE_ETTL;
    uint64_t h = hash_key(s, key, klen), now = s->clock();
    entry_t *garbage = NULL, **slot;
    int ret = 0;
    pthread_mutex_lock(&s->lock);
    entry_t *e = find_live(s, h, key, klen, now, &slot, &garbage);
    if (e == NULL)
        ret = SHARED_STORE_ENOTFOUND;
    else if (get)
        *ttl = e->expires == 0 ? 0 : (double)(e->expires - now) / 1000.0;
    else
        e->expires = expiry(now, *ttl);
    pthread_mutex_unlock(&s->lock);
    free_list(garbage);
    return ret;
}

int shared_store_ttl(shared_store_t *s, const char *key, size_t klen, double *ttl)
{
    return ttl_op(s, key, klen, ttl, 1);
}

int shared_store_expire(shared_store_t *s, const char *key, size_t klen, double ttl)
{
    return ttl_op(s, key, klen, &ttl, 0);
}

/* Removes up to max entries (0: no limit) that are expired, or all when `all`, a batch of buckets
 * per hold of the lock. */
static size_t sweep(shared_store_t *s, size_t max, int all)
{
    size_t n = 0;
    uint64_t now = s->clock();
    for (size_t b = 0; b <= s->mask && (max == 0 || n < max); b += SHARED_STORE_SCAN_BATCH) {
        entry_t *garbage = NULL;
        pthread_mutex_lock(&s->lock);
        for (size_t i = b; i < b + SHARED_STORE_SCAN_BATCH && i <= s->mask; ++i) {
            entry_t **p = &s->buckets[i];
            while (*p != NULL && (max == 0 || n < max)) {
                entry_t *e = *p;
                if (all || expired(e, now)) {
                    remove_entry(s, e, p, &garbage);
                    ++n;
                } else {
                    p = &e->hnext;
                }
            }
        }
        pthread_mutex_unlock(&s->lock);
        free_list(garbage);
    }
    return n;
}

size_t shared_store_flush_expired(shared_store_t *s, size_t max)
{
    return sweep(s, max, 0);
}

void shared_store_flush_all(shared_store_t *s)
{
    sweep(s, 0, 1);
}

void shared_store_get_stats(shared_store_t *s, shared_store_stats_t *st)
{
    pthread_mutex_lock(&s->lock);
    st->capacity = s->capacity;
    st->used = s->used;
    st->entries = s->count;
    st->evictions = s->evictions;
    pthread_mutex_unlock(&s->lock);
}
