/* SPDX-License-Identifier: MIT */
/*
 * test_tcache.c: thread caches (src/tcache.c, src/thread.c), one thread:
 * the direct[] table of the malloc fast path, page ownership and queues
 * (avail, full, back to avail on a free), pages going back to the pool when
 * their blocks all come back, the one-slice current page kept, the bound on
 * kept empty pages, stale tcaches after a pool reset, the thread's last
 * explicit pool (tp_pool_malloc's fast path), and how far a recycling class
 * carves.
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

static uintptr_t owner_of(const tpi_page *page)
{
    return atomic_load_explicit(&page->owner, memory_order_relaxed);
}

/* After malloc(s), direct[] sends s to the page the block came from. */
static void test_direct(void)
{
    for (size_t s = 0; s <= TPI_SMALL_MAX; s++) {
        void *p = tp_malloc(s);
        tpi_tcache *tc = tpi_tls_default;
        tpi_page *page = tpi_page_of(p);
        int ok = CHECK_PTR_EQ(tc->direct[(s + 15) >> 4], page) &&
                 CHECK_PTR_EQ(tc->current[tpi_class_of(s)], page) && CHECK_EQ(page->class_index, tpi_class_of(s)) &&
                 CHECK_PTR_EQ(atomic_load(&page->tcache), tc) && CHECK_EQ(page->queue, TPI_QUEUE_AVAIL) &&
                 CHECK_EQ(owner_of(page) & ~TPI_PAGE_FLAGS, tpi_thread_id()) && CHECK_PTR_EQ(tc->pool, tp_pool_default());
        tp_free(p);
        if (!ok) {
            fprintf(stderr, "    size %zu\n", s);
            break;
        }
    }
    /* slab classes above 1 KiB have a current page but no direct[] slot */
    void *p = tp_malloc(5000);
    CHECK_PTR_EQ(tpi_tls_default->current[tpi_class_of(5000)], tpi_page_of(p));
    tp_free(p);
    /* above 8 KiB a block is a run: no page, a tag in its run chunk */
    p = tp_malloc(40 * KiB - 100);
    CHECK_EQ(tpi_registry_get((uintptr_t)p), TPI_REG_RUN);
    tpi_run *r = tpi_run_of(p);
    if (CHECK(r != NULL)) CHECK_EQ(r->pages, 10);
    CHECK_EQ(tp_usable_size(p), 40 * KiB);
    tp_free(p);
    /* freed, it waits in this thread's run cache and comes back next */
    CHECK_EQ(tpi_tls_default->runs.bins[10].count, 1);
    CHECK_PTR_EQ(tp_malloc(40 * KiB), p);
    tp_free(p);
    /* a shorter request cuts the front off a longer cached run; the rest
     * (6 pages) stays cached, and a request of its length takes it */
    unsigned rests = tpi_tls_default->runs.bins[6].count;
    CHECK_PTR_EQ(tp_malloc(16 * KiB), p);
    CHECK_EQ(tpi_tls_default->runs.bins[10].count, 0);
    CHECK_EQ(tpi_tls_default->runs.bins[6].count, rests + 1);
    CHECK_EQ(tp_usable_size(p), 16 * KiB);
    void *rest = tp_malloc(24 * KiB);
    CHECK_PTR_EQ(rest, (char *)p + 16 * KiB);
    tp_free(rest);
    tp_free(p);
}

/* A page fills, parks on the full queue, and returns to avail on a free. */
static void test_full_page(void)
{
    tp_pool *pool = tp_pool_create("tcache-full", NULL);
    size_t size = 1024;
    unsigned cls = tpi_class_of(size);
    uint32_t capacity = tpi_classes[cls].blocks;
    void **blocks = calloc(capacity + 1, sizeof *blocks);
    for (uint32_t i = 0; i < capacity; i++) blocks[i] = tp_pool_malloc(pool, size);
    tpi_page *page = tpi_page_of(blocks[0]);
    tpi_tcache *tc = atomic_load(&page->tcache);
    CHECK_PTR_EQ(tpi_thread_tcache(pool), tc);
    CHECK_EQ(tpi_page_used(page), capacity);
    CHECK_PTR_EQ(tpi_page_of(blocks[capacity - 1]), page);
    blocks[capacity] = tp_pool_malloc(pool, size); /* a second page */
    tpi_page *second = tpi_page_of(blocks[capacity]);
    CHECK(second != page);
    CHECK_EQ(page->queue, TPI_QUEUE_FULL);
    CHECK(owner_of(page) & TPI_PAGE_FULL);
    CHECK_PTR_EQ(tc->current[cls], second);
    CHECK_PTR_EQ(tc->full[cls].first, page);
    tp_free(blocks[3]);
    CHECK_EQ(page->queue, TPI_QUEUE_AVAIL);
    CHECK_EQ(owner_of(page) & TPI_PAGE_FULL, 0);
    CHECK_PTR_EQ(tc->full[cls].first, NULL);
    /* the freed block is handed out again */
    blocks[3] = NULL;
    for (uint32_t tries = 0; tries < capacity * 2 && blocks[3] == NULL; tries++) {
        void *q = tp_pool_malloc(pool, size);
        if (tpi_page_of(q) == page) blocks[3] = q;
    }
    CHECK(blocks[3] != NULL);
    for (uint32_t i = 0; i <= capacity; i++) tp_free(blocks[i]);
    free(blocks);
    tp_pool_destroy(pool);
}

/* Pages whose blocks all came back leave the tcache, but for the class's
 * one-slice current page and at most CACHE_KEEP_MAX kept ones. */
static void test_empty_pages(void)
{
    tp_pool *pool = tp_pool_create("tcache-empty", NULL);
    /* one block, freed: its one-slice page stays as the current page */
    void *p = tp_pool_malloc(pool, 64);
    tpi_page *page = tpi_page_of(p);
    tp_free(p);
    tpi_tcache *tc = tpi_thread_tcache(pool);
    CHECK_PTR_EQ(tc->current[tpi_class_of(64)], page);
    CHECK_EQ(tpi_page_used(page), 0);
    CHECK_EQ(page->slice_count, 1);

    /* many pages of one class, all freed: few stay */
    enum { N = 2000 };
    static void *blocks[N];
    unsigned cls = tpi_class_of(2048);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) blocks[i] = tp_pool_malloc(pool, 2048);
        for (int i = 0; i < N; i++) tp_free(blocks[i]);
    }
    size_t kept = 0, retained = 0;
    for (tpi_page *q = tc->avail[cls].first; q; q = q->next) {
        kept++;
        retained += q->retained;
        CHECK_EQ(tpi_page_used(q), 0);
    }
    printf("class %u: %zu empty pages kept (%zu retained, keep %u)\n", cls, kept, retained, tc->adapt[cls].keep);
    CHECK_LE(kept, 1 + (size_t)tpi_options.cache_keep_max);
    CHECK_EQ(retained, tc->adapt[cls].retained);
    CHECK_PTR_EQ(tc->full[cls].first, NULL);
    /* the pages that left are free slices of the pool again */
    size_t free_slices = 0;
    for (tpi_chunk *c = pool->chunks; c; c = c->next) free_slices += (size_t)__builtin_popcountll(c->free_slices);
    CHECK_GE(free_slices, (size_t)N * 2048 / TPI_SLICE_SIZE - kept);
    tp_pool_destroy(pool);
}

/* A reset or destroy makes the thread's tcache of the pool stale. */
static void test_stale_after_reset(void)
{
    tp_pool *pool = tp_pool_create("tcache-reset", NULL);
    void *p = tp_pool_malloc(pool, 100);
    tpi_tcache *before = tpi_thread_tcache(pool);
    CHECK_PTR_EQ(atomic_load(&tpi_page_of(p)->tcache), before);
    tp_pool_reset(pool);
    void *q = tp_pool_malloc(pool, 100);
    tpi_tcache *after = tpi_thread_tcache(pool);
    CHECK_PTR_EQ(atomic_load(&tpi_page_of(q)->tcache), after);
    CHECK_PTR_EQ(after->pool, pool);
    CHECK_EQ(tpi_page_used(after->current[tpi_class_of(100)]), 1); /* a fresh start */
    tp_free(q);
    tp_pool_destroy(pool);
    /* the pool's struct may be reused by the next pool: a new tcache too */
    tp_pool *again = tp_pool_create("tcache-reused", NULL);
    q = tp_pool_malloc(again, 100);
    CHECK_PTR_EQ(tp_pool_of(q), again);
    CHECK_PTR_EQ(atomic_load(&tpi_page_of(q)->tcache), tpi_thread_tcache(again));
    tp_free(q);
    tp_pool_destroy(again);
}

/* A class cycled tightly (malloc+free of one size) carves up to 16 KiB
 * before it recycles its frees; one recycled now and then among other
 * classes keeps the OS page it carved first (tcache.c, TPI_CYCLE_HOT_CALLS). */
static void test_cycle_length(void)
{
    tp_pool *tight = tp_pool_create("cycle-tight", NULL);
    for (int i = 0; i < 5000; i++) tp_free(tp_pool_malloc(tight, 64));
    tpi_page *page = tpi_thread_tcache(tight)->current[tpi_class_of(64)];
    CHECK_GE((size_t)page->carved * page->block_size, 16 * KiB);
    tp_pool_destroy(tight);

    tp_pool *mixed = tp_pool_create("cycle-mixed", NULL);
    enum { SIZES = 8 };
    void *blocks[SIZES];
    for (int i = 0; i < 5000; i++) {
        for (int k = 0; k < SIZES; k++) blocks[k] = tp_pool_malloc(mixed, (size_t)(k + 1) * 16);
        for (int k = 0; k < SIZES; k++) tp_free(blocks[k]);
    }
    page = tpi_thread_tcache(mixed)->current[tpi_class_of(64)];
    CHECK_LE((size_t)page->carved * page->block_size, TPI_OS_PAGE);
    tp_pool_destroy(mixed);
}

/* tp_pool_malloc finds the thread's last explicit pool without the table
 * (tpi_tls_last); another pool, a reset or the default pool goes by the
 * table, and an explicit pool found there becomes the last. */
static void test_last_pool(void)
{
    tp_pool *a = tp_pool_create("tcache-last-a", NULL), *b = tp_pool_create("tcache-last-b", NULL);
    void *p = tp_pool_malloc(a, 64);
    CHECK_PTR_EQ(tpi_tls_last.pool, a);
    CHECK_PTR_EQ(tpi_tls_last.tcache, tpi_thread_tcache(a));
    CHECK_PTR_EQ(atomic_load(&tpi_page_of(p)->tcache), tpi_tls_last.tcache);
    void *q = tp_pool_malloc(b, 64);
    CHECK_PTR_EQ(tpi_tls_last.pool, b);
    CHECK_PTR_EQ(tp_pool_of(q), b);
    tp_free(p);
    p = tp_pool_malloc(a, 64); /* back to a, by the table */
    CHECK_PTR_EQ(tpi_tls_last.pool, a);
    CHECK_PTR_EQ(tp_pool_of(p), a);
    /* The default pool, by NULL or by name, is nobody's last pool. */
    void *d = tp_pool_malloc(NULL, 64), *e = tp_pool_malloc(tp_pool_default(), 64);
    CHECK_PTR_EQ(tp_pool_of(d), tp_pool_default());
    CHECK_PTR_EQ(tp_pool_of(e), tp_pool_default());
    CHECK_PTR_EQ(tpi_tls_last.pool, a);
    tp_free(d);
    tp_free(e);
    /* A reset: the generation differs, the table gives a fresh tcache. */
    uint32_t gen = tpi_tls_last.gen;
    tp_free(p);
    tp_pool_reset(a);
    p = tp_pool_malloc(a, 64);
    CHECK_NE(tpi_tls_last.gen, gen);
    CHECK_EQ(tpi_tls_last.gen, atomic_load(&a->gen));
    CHECK_PTR_EQ(atomic_load(&tpi_page_of(p)->tcache), tpi_tls_last.tcache);
    CHECK_PTR_EQ(tpi_tls_last.tcache, tpi_thread_tcache(a));
    tp_free(p);
    tp_free(q);
    tp_pool_destroy(a);
    tp_pool_destroy(b);
}

TEST_MAIN(
    CASE(direct),
    CASE(full_page),
    CASE(empty_pages),
    CASE(stale_after_reset),
    CASE(cycle_length),
    CASE(last_pool))
