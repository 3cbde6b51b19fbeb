/* SPDX-License-Identifier: MIT */
/*
 * test_chunk.c: chunks (src/chunk.c): the registry's answer for tierpool's
 * pointers of every tier and for everyone else's, tp_pool_of, and a chunk's
 * slices: finding, taking, returning and purging runs.
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

#include <stdlib.h>

static int a_global;

static void test_registry_ours(void)
{
    tp_pool *pool = tp_pool_create("chunk", NULL);
    CHECK(pool != NULL);
    struct {
        tp_pool *pool;
        size_t size;
        uint8_t reg;
    } cases[] = {
        {NULL, 16, TPI_REG_SLAB},        {NULL, 3000, TPI_REG_SLAB},        {NULL, 8 * KiB, TPI_REG_SLAB},
        {NULL, 8 * KiB + 1, TPI_REG_RUN}, {NULL, 64 * KiB, TPI_REG_RUN},     {NULL, 1 * MiB, TPI_REG_RUN},
        {NULL, 1 * MiB + 1, TPI_REG_HUGE}, {pool, 16, TPI_REG_SLAB},         {pool, 200 * KiB, TPI_REG_RUN},
        {pool, 9 * MiB, TPI_REG_HUGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size = cases[i].size;
        char *p = tp_pool_malloc(cases[i].pool, size);
        if (!CHECK(p != NULL)) continue;
        tp_pool *owner = cases[i].pool ? cases[i].pool : tp_pool_default();
        CHECK_EQ(tpi_registry_get((uintptr_t)p), cases[i].reg);
        CHECK_PTR_EQ(tp_pool_of(p), owner);
        CHECK_PTR_EQ(tp_pool_of(p + size - 1), owner); /* interior pointers too */
        if (cases[i].reg == TPI_REG_SLAB) {
            tpi_chunk *c = tpi_chunk_of(p);
            tpi_page *page = tpi_page_of(p);
            CHECK_EQ(c->magic, TPI_CHUNK_MAGIC);
            CHECK_PTR_EQ(c->pool, owner);
            CHECK_PTR_EQ(page->chunk, c);
            CHECK_GE(page->block_size, size);
            CHECK(p >= tpi_page_start(page) && p + size <= tpi_page_start(page) + ((size_t)page->slice_count << TPI_SLICE_SHIFT));
            /* the whole chunk is registered, header slice included */
            CHECK_EQ(tpi_registry_get((uintptr_t)c), TPI_REG_SLAB);
            CHECK_EQ(tpi_registry_get((uintptr_t)c + TPI_CHUNK_SIZE - 1), TPI_REG_SLAB);
        } else if (cases[i].reg == TPI_REG_RUN) {
            /* a run: page-aligned, its pages and no more, its tag at its first page only */
            tpi_run_chunk *c = (tpi_run_chunk *)tpi_chunk_of(p);
            tpi_run *r = tpi_run_of(p);
            CHECK_EQ(c->magic, TPI_RUN_MAGIC);
            CHECK_PTR_EQ(c->pool, owner);
            CHECK_EQ((uintptr_t)p % TPI_OS_PAGE, 0);
            if (CHECK(r != NULL)) CHECK_EQ(r->pages, (size + TPI_OS_PAGE - 1) / TPI_OS_PAGE);
            CHECK_EQ(tp_usable_size(p), (size + TPI_OS_PAGE - 1) / TPI_OS_PAGE * TPI_OS_PAGE);
            CHECK_PTR_EQ(tpi_run_of(p + TPI_OS_PAGE), NULL);
            CHECK_PTR_EQ(tpi_run_of(p + 16), NULL);
            CHECK_EQ(tpi_registry_get((uintptr_t)c + TPI_CHUNK_SIZE - 1), TPI_REG_RUN);
        } else {
            /* the block's first chunk is HUGE, the rest of the mapping REST */
            uintptr_t end = (uintptr_t)p + size - 1;
            for (uintptr_t a = ((uintptr_t)p | TPI_CHUNK_MASK) + 1; a <= end; a += TPI_CHUNK_SIZE)
                CHECK_EQ(tpi_registry_get(a), TPI_REG_HUGE_REST);
        }
        tp_free(p);
        if (cases[i].reg == TPI_REG_HUGE) {
            CHECK_EQ(tpi_registry_get((uintptr_t)p), TPI_REG_NONE); /* unmapped at once */
            CHECK_PTR_EQ(tp_pool_of(p), NULL);
        }
    }
    tp_pool_destroy(pool);
}

static void test_registry_foreign(void)
{
    int on_stack = 0;
    void *small = malloc(24);
    void *big = malloc(64 * MiB); /* glibc (or the sanitizer) mmaps this */
    const void *foreign[] = {&on_stack, small, big, (char *)big + 32 * MiB, &a_global,
                             (const void *)(uintptr_t)&test_registry_foreign, NULL};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        CHECK_EQ(tpi_registry_get((uintptr_t)foreign[i]), TPI_REG_NONE);
        CHECK_PTR_EQ(tp_pool_of(foreign[i]), NULL);
        CHECK_EQ(tp_usable_size(foreign[i]), 0);
    }
    free(small);
    free(big);
}

/* Slices: runs are found first-fit with resident (dirty) runs preferred. */
static void test_slices(void)
{
    tp_pool *pool = tp_pool_default();
    tpi_chunk *c = tpi_chunk_create(pool);
    if (!CHECK(c != NULL)) return;
    CHECK_EQ((uintptr_t)c & TPI_CHUNK_MASK, 0);
    CHECK_EQ(c->magic, TPI_CHUNK_MAGIC);
    CHECK_PTR_EQ(c->pool, pool);
    CHECK_EQ(tpi_registry_get((uintptr_t)c + TPI_CHUNK_SIZE / 2), TPI_REG_SLAB);
    CHECK(tpi_chunk_is_empty(c));
    CHECK_EQ(tpi_chunk_find_run(c, 1), 1); /* slice 0 is the header's */
    CHECK_EQ(tpi_chunk_find_run(c, 63), 1);
    CHECK_EQ(tpi_chunk_find_run(c, 64), -1);
    for (unsigned i = 0; i < TPI_SLICES_PER_CHUNK; i++) CHECK_PTR_EQ(c->slice_map[i], &tpi_page_empty);

    tpi_page *a = tpi_chunk_take_run(c, 1, 1);
    tpi_page *b = tpi_chunk_take_run(c, 2, 3);
    tpi_page *d = tpi_chunk_take_run(c, 5, 1);
    CHECK(!tpi_chunk_is_empty(c));
    CHECK_PTR_EQ(b, &c->pages[2]);
    CHECK_EQ(b->slice_index, 2);
    CHECK_EQ(b->slice_count, 3);
    CHECK_PTR_EQ(b->chunk, c);
    CHECK_PTR_EQ(tpi_page_start(b), (char *)c + 2 * TPI_SLICE_SIZE);
    for (unsigned i = 2; i < 5; i++) CHECK_PTR_EQ(c->slice_map[i], b);
    CHECK_PTR_EQ(tpi_page_of((char *)c + 4 * TPI_SLICE_SIZE + 100), b);
    CHECK_EQ(tpi_chunk_find_run(c, 1), 6);
    CHECK_EQ(tpi_chunk_find_run(c, 58), 6);
    CHECK_EQ(tpi_chunk_find_run(c, 59), -1);

    /* a returned run is dirty: preferred to the clean slices before it */
    memset(tpi_page_start(d), 0xab, TPI_SLICE_SIZE);
    tpi_chunk_return_run(c, a, 1);
    CHECK_EQ(a->slice_count, 0);
    CHECK_PTR_EQ(c->slice_map[1], &tpi_page_empty);
    CHECK_EQ(tpi_chunk_purge(c, 1, 0), TPI_SLICE_SIZE); /* slice 1 is clean again */
    tpi_chunk_return_run(c, d, 1);
    CHECK_EQ(tpi_chunk_find_run(c, 1), 5);
    CHECK_EQ(tpi_chunk_find_run(c, 2), 5);
    CHECK_EQ(tpi_chunk_find_run(c, 4), 5);

    /* purge: every dirty free run, in as many pieces as it takes */
    tpi_chunk_return_run(c, b, 1);
    tpi_page *e = tpi_chunk_take_run(c, 3, 1); /* splits the dirty run 2..5 */
    CHECK_EQ(tpi_chunk_purge(c, 1, 0), 3 * TPI_SLICE_SIZE);
    CHECK_EQ(tpi_chunk_purge(c, 1, 0), 0);
    const unsigned char *slice5 = (const unsigned char *)c + 5 * TPI_SLICE_SIZE;
    size_t nonzero = 0;
    for (size_t i = 0; i < TPI_SLICE_SIZE; i++) nonzero += slice5[i] != 0;
    /* purged memory reads as zero, unless MADV_FREE let the kernel keep it */
    if (!tp_option_get("purge_madv_free")) CHECK_EQ(nonzero, 0);
    tpi_chunk_return_run(c, e, 1);
    CHECK(tpi_chunk_is_empty(c));

    /* a purge is seen once: the slices taken again forget it (regret counts
     * a purge once, pool.c) */
    CHECK(tpi_chunk_run_purged_since(c, 2, 2, 1));
    tpi_page *f = tpi_chunk_take_run(c, 2, 2);
    CHECK(!tpi_chunk_run_purged_since(c, 2, 2, 0));
    tpi_chunk_return_run(c, f, 1);

    /* the largest page, at the end of the chunk */
    tpi_page *big = tpi_chunk_take_run(c, 32, 32);
    CHECK_EQ(big->slice_count, 32);
    CHECK_PTR_EQ(c->slice_map[63], big);
    CHECK_EQ(tpi_chunk_find_run(c, 32), -1);
    CHECK_EQ(tpi_chunk_find_run(c, 31), 1);
    tpi_chunk_return_run(c, big, 1);
    CHECK(tpi_chunk_is_empty(c));

    uintptr_t base = (uintptr_t)c;
    tpi_chunk_destroy(c);
    CHECK_EQ(tpi_registry_get(base), TPI_REG_NONE);
    CHECK_EQ(tpi_registry_get(base + TPI_CHUNK_SIZE - 1), TPI_REG_NONE);
}

/* `test_chunk madv_free` (ctest test_chunk_madv_free) runs where the
 * environment turns PURGE_MADV_FREE on: it must be on, or that run tests
 * the default again. */
int main(int argc, char **argv)
{
    if (argc > 1 && CHECK(strcmp(argv[1], "madv_free") == 0)) CHECK_EQ(tp_option_get("purge_madv_free"), 1);
    test_registry_ours();
    test_registry_foreign();
    test_slices();
    return test_report();
}
