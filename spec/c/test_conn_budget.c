/* Unit tests of core/conn_budget.c: how many handlers one connection may keep running. */
#include "check.h"
#include "conn_budget.h"

/* Up to the limit every handler is counted; the next one crosses it, the ones after are refused. */
static void test_limit(void)
{
    conn_budget_t *b = conn_budget_create(3);
    for (int i = 0; i < 3; ++i)
        CHECK(conn_budget_enter(b, 7) == CONN_BUDGET_OK);
    CHECK(conn_budget_running(b, 7) == 3);
    CHECK(conn_budget_enter(b, 7) == CONN_BUDGET_CROSSED);
    CHECK(conn_budget_enter(b, 7) == CONN_BUDGET_OVER);
    conn_budget_leave(b, 7);
    CHECK(conn_budget_enter(b, 7) == CONN_BUDGET_OVER); /* once over, over while it has handlers */
    CHECK(conn_budget_running(b, 7) == 2);
    CHECK(conn_budget_closed(b) == 1);
    conn_budget_free(b);
}

/* Connections are counted apart; an entry goes when its last handler ends. */
static void test_connections_apart(void)
{
    conn_budget_t *b = conn_budget_create(2);
    CHECK(conn_budget_enter(b, 1) == CONN_BUDGET_OK);
    CHECK(conn_budget_enter(b, 1) == CONN_BUDGET_OK);
    CHECK(conn_budget_enter(b, 2) == CONN_BUDGET_OK);
    CHECK(conn_budget_enter(b, 1 + 256) == CONN_BUDGET_OK); /* whatever bucket it lands in */
    CHECK(conn_budget_running(b, 1) == 2);
    CHECK(conn_budget_running(b, 2) == 1);
    CHECK(conn_budget_running(b, 257) == 1);
    conn_budget_leave(b, 1);
    conn_budget_leave(b, 1);
    CHECK(conn_budget_running(b, 1) == 0);
    CHECK(conn_budget_enter(b, 1) == CONN_BUDGET_OK);
    conn_budget_leave(b, 99); /* unknown: nothing happens */
    CHECK(conn_budget_closed(b) == 0);
    conn_budget_free(b); /* frees entries still held (ASan would tell) */
}

/* Many connections at once, each under the limit: all counted, all released. */
static void test_many(void)
{
    conn_budget_t *b = conn_budget_create(200);
    for (uint64_t id = 1; id <= 5000; ++id)
        for (int i = 0; i < 3; ++i)
            CHECK(conn_budget_enter(b, id) == CONN_BUDGET_OK);
    CHECK(conn_budget_running(b, 4321) == 3);
    for (uint64_t id = 1; id <= 5000; ++id)
        for (int i = 0; i < 3; ++i)
            conn_budget_leave(b, id);
    CHECK(conn_budget_running(b, 4321) == 0);
    CHECK(conn_budget_closed(b) == 0);
    conn_budget_free(b);
}

/* A limit of 0 means 1: a connection can always run one handler. */
static void test_zero_limit(void)
{
    conn_budget_t *b = conn_budget_create(0);
    CHECK(conn_budget_enter(b, 5) == CONN_BUDGET_OK);
    CHECK(conn_budget_enter(b, 5) == CONN_BUDGET_CROSSED);
    conn_budget_free(b);
}

int main(void)
{
    test_limit();
    test_connections_apart();
    test_many();
    test_zero_limit();
    return CHECK_DONE();
}
