#include "conn_budget.h"

#include <stdlib.h>

#include "util.h"

#define NBUCKETS 256 /* a power of two */

struct entry {
    uint64_t id;
    unsigned running;
    int over; /* crossed the limit: refuse whatever else it sends until it is gone */
    struct entry *next;
};

struct conn_budget {
    unsigned limit;
    uint64_t closed;
    struct entry *buckets[NBUCKETS];
};

static struct entry **slot(const conn_budget_t *b, uint64_t id)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ull; /* ids are sequential: spread them */
    return (struct entry **)&b->buckets[h >> 56 & (NBUCKETS - 1)];
}

static struct entry **find(const conn_budget_t *b, uint64_t id)
{
    struct entry **p = slot(b, id);
    while (*p != NULL && (*p)->id != id)
        p = &(*p)->next;
    return p;
}

conn_budget_t *conn_budget_create(unsigned limit)
{
    conn_budget_t *b = util_malloc(sizeof(*b));
    *b = (conn_budget_t){.limit = limit > 0 ? limit : 1};
    return b;
}

void conn_budget_free(conn_budget_t *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < NBUCKETS; ++i) {
        while (b->buckets[i] != NULL) {
            struct entry *e = b->buckets[i];
            b->buckets[i] = e->next;
            free(e);
        }
    }
    free(b);
}

int conn_budget_enter(conn_budget_t *b, uint64_t conn_id)
{
    struct entry **p = find(b, conn_id);
    if (*p == NULL) {
        struct entry *e = util_malloc(sizeof(*e));
        *e = (struct entry){.id = conn_id};
        *p = e;
    }
    struct entry *e = *p;
    if (e->over)
        return CONN_BUDGET_OVER;
    if (e->running >= b->limit) {
        e->over = 1;
        ++b->closed;
        return CONN_BUDGET_CROSSED;
    }
    ++e->running;
    return CONN_BUDGET_OK;
}

void conn_budget_leave(conn_budget_t *b, uint64_t conn_id)
{
    struct entry **p = find(b, conn_id);
    struct entry *e = *p;
    if (e == NULL || e->running == 0)
        return;
    if (--e->running == 0) {
        *p = e->next;
        free(e);
    }
}

unsigned conn_budget_running(const conn_budget_t *b, uint64_t conn_id)
{
    struct entry *e = *find(b, conn_id);
    return e != NULL ? e->running : 0;
}

uint64_t conn_budget_closed(const conn_budget_t *b)
{
    return b->closed;
}
