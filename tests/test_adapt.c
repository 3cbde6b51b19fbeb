/* SPDX-License-Identifier: MIT */
/*
 * test_adapt.c: the per-class capacity policy (src/adapt.c), alone with a
 * hand-driven tick, then inside a thread cache driven by a real workload.
 */
#include "../src/internal.h"

#include "test.h"

#include <stdlib.h>

static void test_policy_alone(void)
{
    tpi_adapt a;
    tpi_adapt_init(&a);
    CHECK(a.keep == 0);
    CHECK(!tpi_adapt_may_keep(&a));

    /* An acquire long after a release: no growth. */
    tpi_adapt_on_release(&a, 10);
    tpi_adapt_on_acquire(&a, 10 + TPI_ADAPT_WINDOW + 1, 8);
    CHECK(a.keep == 0);

    /* Acquires right after releases: 1, 2, 4, 8, then capped. */
    uint32_t tick = 100;
    unsigned expect[] = {1, 2, 4, 8, 8};
    for (unsigned i = 0; i < 5; i++) {
        tpi_adapt_on_release(&a, tick++);
        tpi_adapt_on_acquire(&a, tick++, 8);
        CHECK(a.keep == expect[i]);
    }
    for (unsigned i = 0; i < 8; i++) CHECK(tpi_adapt_may_keep(&a));
    CHECK(!tpi_adapt_may_keep(&a));
    CHECK(a.retained == 8);

    /* The cap is the CACHE_KEEP_MAX option. */
    tpi_adapt b;
    tpi_adapt_init(&b);
    CHECK(tp_option_set("cache_keep_max", "3") == 0);
    for (uint32_t t = 1; t < 9; t += 2) {
        tpi_adapt_on_release(&b, t);
        tpi_adapt_on_acquire(&b, t + 1, 8);
    }
    CHECK(b.keep == 3);
    CHECK(tp_option_set("cache_keep_max", "8") == 0);

    /* The caller's cap (a class's share of 1 MiB) binds below the option. */
    tpi_adapt c;
    tpi_adapt_init(&c);
    for (uint32_t t = 1; t < 9; t += 2) {
        tpi_adapt_on_release(&c, t);
        tpi_adapt_on_acquire(&c, t + 1, 1);
    }
    CHECK(c.keep == 1);
    /* A forced decay halves at once, whatever the period. */
    c.keep = 8;
    c.last_grow = 100;
    tpi_adapt_decay(&c, 101, true);
    CHECK(c.keep == 4);

    /* Idle: no change before the period, then halving, with the surplus. */
    CHECK(tpi_adapt_decay(&a, tick + TPI_ADAPT_PERIOD - 2, false) == 0);
    CHECK(a.keep == 8);
    CHECK(tpi_adapt_decay(&a, tick + TPI_ADAPT_PERIOD, false) == 4);
    CHECK(a.keep == 4);
    a.retained = 4; /* the caller gave the surplus back */
    CHECK(tpi_adapt_decay(&a, tick + 2 * TPI_ADAPT_PERIOD, false) == 2);
    a.retained = 2;
    CHECK(tpi_adapt_decay(&a, tick + 3 * TPI_ADAPT_PERIOD, false) == 1);
    a.retained = 1;
    CHECK(tpi_adapt_decay(&a, tick + 4 * TPI_ADAPT_PERIOD, false) == 1);
    CHECK(a.keep == 0);
}

/* Allocates one block more than a page holds, frees everything: the cycle
 * that makes a cache without memory take and return a page every round. */
static void page_boundary_round(unsigned cls)
{
    unsigned n = tpi_classes[cls].blocks + 1u;
    void **blocks = malloc(n * sizeof *blocks);
    for (unsigned i = 0; i < n; i++) blocks[i] = tp_malloc(tpi_classes[cls].block_size);
    for (unsigned i = 0; i < n; i++) tp_free(blocks[i]);
    free(blocks);
}

static void test_policy_in_tcache(void)
{
    unsigned cls = tpi_class_of(64);
    page_boundary_round(cls);
    tpi_tcache *tc = tpi_tls_default;
    for (int i = 0; i < 10; i++) page_boundary_round(cls);
    CHECK(tc->adapt[cls].keep >= 1);
    uint32_t ticks = tc->ticks;
    for (int i = 0; i < 100; i++) page_boundary_round(cls);
    CHECK(tc->ticks == ticks); /* no page moved between cache and pool */
    CHECK(tc->adapt[cls].retained >= 1);

    /* Page traffic in another class, none in this one: it shrinks back.
     * The other class only takes pages (blocks stay live), so it never grows. */
    unsigned other = tpi_class_of(8192);
    size_t per_page = tpi_classes[other].blocks, n = per_page * 4 * TPI_ADAPT_PERIOD, used = 0;
    void **live = malloc(n * sizeof *live);
    while (used < n && tc->adapt[cls].retained) {
        for (size_t k = 0; k < per_page; k++) live[used++] = tp_malloc(8192);
    }
    CHECK(tc->adapt[cls].keep == 0);
    CHECK(tc->adapt[cls].retained == 0);
    for (size_t k = 0; k < used; k++) tp_free(live[k]);
    free(live);
}

int main(void)
{
    test_policy_alone();
    test_policy_in_tcache();
    return test_report();
}
