/* Unit tests of core/shared_store.c: values, modes, TTLs on a test clock, LRU eviction and its
 * order, the size accounting, and incr from several threads at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shared_store.h"

static uint64_t fake_now = 1000000;
static uint64_t fake_clock(void)
{
    return fake_now;
}

static shared_store_value_t str(const char *s)
{
    shared_store_value_t v = {.type = SHARED_STORE_STRING, .str = s, .len = strlen(s)};
    return v;
}
static shared_store_value_t num(double d)
{
    shared_store_value_t v = {.type = SHARED_STORE_NUMBER, .number = d};
    return v;
}
static shared_store_value_t integer(int64_t i)
{
    shared_store_value_t v = {.type = SHARED_STORE_INTEGER, .integer = i};
    return v;
}

#define K(s) (s), strlen(s)

static int set(shared_store_t *s, const char *k, shared_store_value_t v, double ttl, int mode, int *forcible)
{
    return shared_store_set(s, K(k), &v, ttl, mode, forcible);
}

/* Whether key holds the string want. */
static int has_str(shared_store_t *s, const char *k, const char *want)
{
    char buf[256];
    shared_store_value_t v;
    return shared_store_get(s, K(k), &v, buf, sizeof(buf)) == 0 && v.type == SHARED_STORE_STRING && v.len == strlen(want) &&
           memcmp(v.str, want, v.len) == 0;
}

static int absent(shared_store_t *s, const char *k)
{
    char buf[8];
    shared_store_value_t v;
    return shared_store_get(s, K(k), &v, buf, sizeof(buf)) == SHARED_STORE_ENOTFOUND;
}

static void test_values_and_modes(void)
{
    shared_store_t *s = shared_store_create("t", 65536, fake_clock);
    int f;
    char buf[64];
    shared_store_value_t v;
    CHECK(strcmp(shared_store_name(s), "t") == 0);
    CHECK(absent(s, "a"));
    CHECK(set(s, "a", str("hello"), 0, SHARED_STORE_SET, &f) == 0 && f == 0);
    CHECK(has_str(s, "a", "hello"));
    CHECK(set(s, "e", str(""), 0, SHARED_STORE_SET, &f) == 0);
    CHECK(has_str(s, "e", ""));
    CHECK(set(s, "n", num(1.5), 0, SHARED_STORE_SET, &f) == 0);
    CHECK(shared_store_get(s, K("n"), &v, buf, sizeof(buf)) == 0 && v.type == SHARED_STORE_NUMBER && v.number == 1.5);
    CHECK(set(s, "i", integer(INT64_MAX), 0, SHARED_STORE_SET, &f) == 0);
    CHECK(shared_store_get(s, K("i"), &v, buf, sizeof(buf)) == 0 && v.type == SHARED_STORE_INTEGER && v.integer == INT64_MAX);
    shared_store_value_t b = {.type = SHARED_STORE_BOOLEAN, .boolean = 0};
    CHECK(shared_store_set(s, K("b"), &b, 0, SHARED_STORE_SET, &f) == 0);
    CHECK(shared_store_get(s, K("b"), &v, buf, sizeof(buf)) == 0 && v.type == SHARED_STORE_BOOLEAN && v.boolean == 0);
    /* a key is bytes: NULs and all */
    CHECK(shared_store_set(s, "x\0y", 3, &b, 0, SHARED_STORE_SET, &f) == 0);
    CHECK(absent(s, "x"));

    /* add only when absent, replace only when present */
    CHECK(set(s, "a", str("other"), 0, SHARED_STORE_ADD, &f) == SHARED_STORE_EEXISTS);
    CHECK(has_str(s, "a", "hello"));
    CHECK(set(s, "new", str("1"), 0, SHARED_STORE_REPLACE, &f) == SHARED_STORE_ENOTFOUND);
    CHECK(absent(s, "new"));
    CHECK(set(s, "new", str("1"), 0, SHARED_STORE_ADD, &f) == 0 && has_str(s, "new", "1"));
    CHECK(set(s, "new", str("2"), 0, SHARED_STORE_REPLACE, &f) == 0 && has_str(s, "new", "2"));

    /* nil deletes with set, is refused by add and replace */
    shared_store_value_t nil = {.type = SHARED_STORE_NIL};
    CHECK(shared_store_set(s, K("new"), &nil, 0, SHARED_STORE_ADD, &f) == SHARED_STORE_EVALUE);
    CHECK(shared_store_set(s, K("new"), &nil, 0, SHARED_STORE_SET, &f) == 0 && absent(s, "new"));
    CHECK(shared_store_set(s, K("new"), &nil, 0, SHARED_STORE_SET, &f) == 0);
    CHECK(shared_store_delete(s, K("a")) == 0 && absent(s, "a"));
    CHECK(shared_store_delete(s, K("a")) == SHARED_STORE_ENOTFOUND);

    /* a string longer than the buffer: EBUF and its length */
    CHECK(set(s, "long", str("0123456789"), 0, SHARED_STORE_SET, &f) == 0);
    CHECK(shared_store_get(s, K("long"), &v, buf, 4) == SHARED_STORE_EBUF && v.len == 10);

    /* keys: 1 to 250 bytes */
    char key[SHARED_STORE_KEY_MAX + 2];
    memset(key, 'k', sizeof(key));
    CHECK(shared_store_set(s, key, SHARED_STORE_KEY_MAX, &b, 0, SHARED_STORE_SET, &f) == 0);
    CHECK(shared_store_set(s, key, SHARED_STORE_KEY_MAX + 1, &b, 0, SHARED_STORE_SET, &f) == SHARED_STORE_EKEY);
    CHECK(shared_store_get(s, key, SHARED_STORE_KEY_MAX + 1, &v, buf, sizeof(buf)) == SHARED_STORE_EKEY);
    CHECK(shared_store_set(s, "", 0, &b, 0, SHARED_STORE_SET, &f) == SHARED_STORE_EKEY);
    /* ttls: from 0 to 10 years, a number */
    CHECK(set(s, "t", str("x"), -1, SHARED_STORE_SET, &f) == SHARED_STORE_ETTL);
    CHECK(set(s, "t", str("x"), 0.0 / 0.0, SHARED_STORE_SET, &f) == SHARED_STORE_ETTL);
    CHECK(set(s, "t", str("x"), 1e12, SHARED_STORE_SET, &f) == SHARED_STORE_ETTL);
    CHECK(strcmp(shared_store_strerror(SHARED_STORE_EEXISTS), "exists") == 0);
    shared_store_free(s);
}

static void test_incr(void)
{
    shared_store_t *s = shared_store_create("t", 65536, fake_clock);
    int f;
    shared_store_value_t out, one = integer(1), half = num(0.5), zero = integer(0);
    CHECK(shared_store_incr(s, K("c"), &one, NULL, 0, &out, &f) == SHARED_STORE_ENOTFOUND);
    CHECK(absent(s, "c"));
    CHECK(shared_store_incr(s, K("c"), &one, &zero, 0, &out, &f) == 0 && out.type == SHARED_STORE_INTEGER && out.integer == 1);
    CHECK(shared_store_incr(s, K("c"), &one, &zero, 0, &out, &f) == 0 && out.integer == 2); /* init only when absent */
    CHECK(shared_store_incr(s, K("c"), &half, NULL, 0, &out, &f) == 0 && out.type == SHARED_STORE_NUMBER && out.number == 2.5);
    shared_store_value_t max = integer(INT64_MAX);
    CHECK(set(s, "w", max, 0, SHARED_STORE_SET, &f) == 0);
    CHECK(shared_store_incr(s, K("w"), &one, NULL, 0, &out, &f) == 0 && out.integer == INT64_MIN); /* wraps as Lua's */
    CHECK(set(s, "s", str("x"), 0, SHARED_STORE_SET, &f) == 0);
    CHECK(shared_store_incr(s, K("s"), &one, &zero, 0, &out, &f) == SHARED_STORE_ENOTNUM);
    shared_store_value_t bad = str("1");
    CHECK(shared_store_incr(s, K("c"), &bad, NULL, 0, &out, &f) == SHARED_STORE_EVALUE);
    CHECK(shared_store_incr(s, K("c"), &one, &bad, 0, &out, &f) == SHARED_STORE_EVALUE);
    /* init_ttl applies to the entry incr creates, not to an existing one */
    double ttl = -1;
    CHECK(shared_store_incr(s, K("t"), &one, &zero, 10, &out, &f) == 0);
    CHECK(shared_store_ttl(s, K("t"), &ttl) == 0 && ttl == 10);
    CHECK(shared_store_incr(s, K("c"), &one, &zero, 10, &out, &f) == 0);
    CHECK(shared_store_ttl(s, K("c"), &ttl) == 0 && ttl == 0);
    shared_store_free(s);
}

static void test_ttl(void)
{
    shared_store_t *s = shared_store_create("t", 65536, fake_clock);
    int f;
    double ttl = -1;
    CHECK(set(s, "a", str("1"), 2, SHARED_STORE_SET, &f) == 0);
    CHECK(set(s, "b", str("2"), 0, SHARED_STORE_SET, &f) == 0);
    CHECK(set(s, "c", str("3"), 0.0001, SHARED_STORE_SET, &f) == 0); /* rounds up to 1 ms, not to never */
    CHECK(shared_store_ttl(s, K("a"), &ttl) == 0 && ttl == 2);
    CHECK(shared_store_ttl(s, K("b"), &ttl) == 0 && ttl == 0);
    CHECK(shared_store_ttl(s, K("nope"), &ttl) == SHARED_STORE_ENOTFOUND);
    fake_now += 1500;
    CHECK(shared_store_ttl(s, K("a"), &ttl) == 0 && ttl == 0.5);
    CHECK(has_str(s, "a", "1"));
    CHECK(absent(s, "c"));
    fake_now += 500;
    CHECK(absent(s, "a")); /* expires at exactly its ttl */
    CHECK(shared_store_ttl(s, K("a"), &ttl) == SHARED_STORE_ENOTFOUND);
    CHECK(has_str(s, "b", "2"));
    /* an expired key is absent for add and replace */
    CHECK(set(s, "x", str("old"), 1, SHARED_STORE_SET, &f) == 0);
    fake_now += 1000;
    CHECK(set(s, "x", str("r"), 0, SHARED_STORE_REPLACE, &f) == SHARED_STORE_ENOTFOUND);
    CHECK(set(s, "x", str("old"), 1, SHARED_STORE_SET, &f) == 0);
    fake_now += 1000;
    CHECK(set(s, "x", str("new"), 0, SHARED_STORE_ADD, &f) == 0 && has_str(s, "x", "new"));
    /* expire gives a new ttl; 0 removes it */
    CHECK(shared_store_expire(s, K("x"), 5) == 0);
    CHECK(shared_store_ttl(s, K("x"), &ttl) == 0 && ttl == 5);
    CHECK(shared_store_expire(s, K("x"), 0) == 0);
    CHECK(shared_store_ttl(s, K("x"), &ttl) == 0 && ttl == 0);
    CHECK(shared_store_expire(s, K("nope"), 1) == SHARED_STORE_ENOTFOUND);

    /* flush_expired removes what expired, up to max */
    shared_store_flush_all(s);
    shared_store_stats_t st;
    shared_store_get_stats(s, &st);
    CHECK(st.entries == 0);
    char key[16];
    for (int i = 0; i < 50; ++i) {
        snprintf(key, sizeof(key), "k%d", i);
        CHECK(set(s, key, str("v"), i < 30 ? 1 : 0, SHARED_STORE_SET, &f) == 0);
    }
    fake_now += 1000;
    CHECK(shared_store_flush_expired(s, 10) == 10);
    CHECK(shared_store_flush_expired(s, 0) == 20);
    CHECK(shared_store_flush_expired(s, 0) == 0);
    shared_store_get_stats(s, &st);
    CHECK(st.entries == 20);
    CHECK(has_str(s, "k30", "v") && absent(s, "k0"));
    shared_store_free(s);
}

/* Entries of the same size fill the store; the next set evicts the least recently used, which
 * get and incr refresh; evictions are counted and reported as forcible. */
static void test_lru(void)
{
    enum { CAP = 8192 };
    shared_store_t *s = shared_store_create("t", CAP, fake_clock);
    shared_store_stats_t st;
    shared_store_get_stats(s, &st);
    size_t index = st.used, charge = shared_store_entry_charge(2, 100);
    CHECK(st.capacity == CAP && index > 0 && index < CAP / 32);
    size_t fit = (CAP - index) / charge;
    char value[101];
    memset(value, 'v', 100);
    value[100] = '\0';
    char key[24];
    int f;
    for (size_t i = 0; i < fit; ++i) {
        snprintf(key, sizeof(key), "%02zu", i);
        CHECK(set(s, key, str(value), 0, SHARED_STORE_SET, &f) == 0 && f == 0);
    }
    shared_store_get_stats(s, &st);
    CHECK(st.entries == fit && st.used == index + fit * charge && st.evictions == 0);
    /* "00" is refreshed by get: "01" is the least recent now */
    CHECK(has_str(s, "00", value));
    CHECK(set(s, "xx", str(value), 0, SHARED_STORE_SET, &f) == 0 && f == 1);
    CHECK(absent(s, "01") && has_str(s, "00", value));
    /* an incr refreshes as well: "02" goes next, then "03" */
    shared_store_value_t one = integer(1), out;
    CHECK(set(s, "03", integer(0), 0, SHARED_STORE_SET, &f) == 0); /* smaller: no eviction needed */
    CHECK(f == 0);
    CHECK(shared_store_incr(s, K("03"), &one, NULL, 0, &out, &f) == 0 && out.integer == 1);
    CHECK(set(s, "yy", str(value), 0, SHARED_STORE_SET, &f) == 0 && f == 1);
    CHECK(absent(s, "02") && !absent(s, "03"));
    shared_store_get_stats(s, &st);
    CHECK(st.evictions == 2 && st.used <= CAP);
    /* an expired entry makes room without counting as an eviction */
    shared_store_flush_all(s);
    shared_store_get_stats(s, &st);
    CHECK(st.used == index && st.entries == 0);
    for (size_t i = 0; i < fit; ++i) {
        snprintf(key, sizeof(key), "%02zu", i);
        CHECK(set(s, key, str(value), i == 0 ? 1 : 0, SHARED_STORE_SET, &f) == 0);
    }
    fake_now += 2000;
    CHECK(set(s, "zz", str(value), 0, SHARED_STORE_SET, &f) == 0 && f == 0);
    shared_store_get_stats(s, &st);
    CHECK(st.evictions == 2);
    /* a value larger than the whole store is refused, and evicts nothing */
    char *big = malloc(CAP);
    memset(big, 'b', CAP - 1);
    big[CAP - 1] = '\0';
    CHECK(set(s, "big", str(big), 0, SHARED_STORE_SET, &f) == SHARED_STORE_ETOOBIG);
    shared_store_get_stats(s, &st);
    CHECK(st.entries == fit);
    /* the largest value that fits an empty store is taken, evicting everything */
    size_t room = CAP - index - shared_store_entry_charge(3, 0) - 16;
    big[room] = '\0';
    CHECK(set(s, "big", str(big), 0, SHARED_STORE_SET, &f) == 0 && f == 1);
    shared_store_get_stats(s, &st);
    CHECK(st.entries == 1 && st.used <= CAP);
    char *buf = malloc(CAP);
    shared_store_value_t v;
    CHECK(shared_store_get(s, K("big"), &v, buf, CAP) == 0 && v.len == room && memcmp(v.str, big, room) == 0);
    free(buf);
    free(big);
    shared_store_free(s);
}

/* N threads, M incr each, on one key: N*M exactly; with sets and gets of other keys mixed in. */
enum { NTHREADS = 8, M = 200000 };
static shared_store_t *shared;
static pthread_barrier_t start; /* the threads begin together */

static void *hammer(void *arg)
{
    int id = (int)(intptr_t)arg, f;
    shared_store_value_t one = integer(1), zero = integer(0), out;
    char key[16], buf[32];
    pthread_barrier_wait(&start);
    for (int i = 0; i < M; ++i) {
        if (shared_store_incr(shared, K("hits"), &one, &zero, 0, &out, &f) != 0)
            abort();
        if (i % 64 == 0) {
            snprintf(key, sizeof(key), "t%d-%d", id, i % 1024);
            set(shared, key, str("some value"), 0, SHARED_STORE_SET, &f);
            shared_store_get(shared, K(key), &out, buf, sizeof(buf));
        }
    }
    return NULL;
}

static void test_threads(void)
{
    shared = shared_store_create("t", 1 << 20, NULL);
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; ++i)
        pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)i);
    for (int i = 0; i < NTHREADS; ++i)
        pthread_join(t[i], NULL);
    shared_store_value_t v;
    char buf[8];
    CHECK(shared_store_get(shared, K("hits"), &v, buf, sizeof(buf)) == 0 && v.type == SHARED_STORE_INTEGER &&
          v.integer == (int64_t)NTHREADS * M);
    shared_store_free(shared);
    pthread_barrier_destroy(&start);
}

/* Threads that set values of many sizes with TTLs, get, delete and sweep in a store too small for
 * them: the accounting holds (never over the capacity; back to the index alone once emptied). */
enum { EVICTING_THREADS = 4, EVICTING_OPS = 20000 };

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    static const char filler[1500] = {0};
    char key[32], buf[1600];
    shared_store_value_t v = {.type = SHARED_STORE_STRING, .str = filler}, out;
    int f;
    for (int i = 0; i < EVICTING_OPS; ++i) {
        seed = seed * 1103515245u + 12345u;
        snprintf(key, sizeof(key), "k%u", (seed >> 8) % 500);
        v.len = (seed >> 4) % sizeof(filler);
        switch ((seed >> 20) % 6) {
        case 0: shared_store_delete(shared, K(key)); break;
        case 1: shared_store_get(shared, K(key), &out, buf, sizeof(buf)); break;
        case 2: shared_store_flush_expired(shared, 5); break;
        default: shared_store_set(shared, K(key), &v, (seed >> 24) % 2 ? 0.001 : 0, SHARED_STORE_SET, &f); break;
        }
        shared_store_stats_t st;
        shared_store_get_stats(shared, &st);
        if (st.used > st.capacity)
            abort();
    }
    return NULL;
}

static void test_threads_evicting(void)
{
    shared = shared_store_create("t", 16384, NULL);
    shared_store_stats_t st;
    shared_store_get_stats(shared, &st);
    size_t index = st.used;
    pthread_t t[EVICTING_THREADS];
    for (int i = 0; i < EVICTING_THREADS; ++i)
        pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i);
    for (int i = 0; i < EVICTING_THREADS; ++i)
        pthread_join(t[i], NULL);
    shared_store_get_stats(shared, &st);
    CHECK(st.used <= st.capacity && st.evictions > 0);
    shared_store_flush_all(shared);
    shared_store_get_stats(shared, &st);
    CHECK(st.used == index && st.entries == 0);
    shared_store_free(shared);
}

int main(void)
{
    test_values_and_modes();
    test_incr();
    test_ttl();
    test_lru();
    test_threads();
    test_threads_evicting();
    return CHECK_DONE();
}
