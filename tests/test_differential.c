/* SPDX-License-Identifier: MIT */
/*
 * test_differential.c: seeded random operations checked against a model.
 *
 * The model is a table of live blocks: pointer, requested and usable size,
 * alignment, pool, and an id from which the block's contents derive. Every
 * operation (malloc, calloc, aligned_alloc, realloc, free, usable_size, in
 * the default pool and in explicit pools, over all three tiers) is checked
 * against it: contents survive until free and across realloc, usable size
 * covers the request, calloc memory is zero, blocks stay in their pool, and
 * live blocks never overlap. One pool has a memory limit: its mapped bytes
 * never pass it, and it may fail with ENOMEM only when the request could
 * not fit under it (a failed realloc must leave the block intact). Now and
 * then a pool is reset or destroyed, and its blocks leave the model.
 *
 * Usage: test_differential [SEED [OPS | -N]]: default seed 1 and 1,000,000
 * operations (fewer under the sanitizers), -N for that count divided by N.
 * A failure prints the seed and the operation.
 */
#include "tierpool.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define SLOTS 4096
#define POOLS 5 /* 0: the default pool; 1..3: plain; 4: limited */
#define LIMITED 4
#define LIMIT (24 * MiB)
/* The pool maps whole 4 MiB chunks (README): a request needs at most a new
 * chunk, or for a huge block its size and alignment rounded up to chunks. */
#define CHUNK (4 * MiB)

typedef struct block {
    unsigned char *p; /* NULL: slot empty */
    size_t size;      /* requested */
    size_t usable;    /* tp_usable_size when allocated */
    size_t align;     /* asked for, or 16 */
    uint64_t id;      /* contents are util_pattern(id, offset) */
    int pool;
} block;

static block slots[SLOTS];
static tp_pool *pools[POOLS];
static uint64_t seed, rng, next_id = 1, op_index;
static unsigned long stats[8];
enum { ST_ALLOC, ST_FREE, ST_REALLOC, ST_ENOMEM, ST_RESET, ST_DESTROY, ST_CHECKS };

static tp_pool *pool_ptr(int k)
{
    return k == 0 ? tp_pool_default() : pools[k];
}

static uint64_t rnd(uint64_t n)
{
    return util_rand(&rng) % n;
}

/* Mostly small, some large (log-uniform to 1 MiB), a few huge to 8 MiB. */
static size_t random_size(void)
{
    uint64_t r = rnd(1000);
    if (r < 5) return 0;
    if (r < 600) return 1 + rnd(128);
    if (r < 900) return 1 + rnd(1024);
    if (r < 998) {
        unsigned shift = 10 + (unsigned)rnd(11); /* 1 KiB .. 1 MiB */
        size_t s = ((size_t)1 << shift) + rnd((size_t)1 << shift);
        return s > 1 * MiB ? 1 * MiB : s;
    }
    return 1 * MiB + 1 + rnd(7 * MiB);
}

static void fail_context(const char *what, const block *b)
{
    fprintf(stderr, "    seed %" PRIu64 " op %" PRIu64 ": %s: block id %" PRIu64 " %p size %zu usable %zu align %zu pool %d\n",
            seed, op_index, what, b->id, (void *)b->p, b->size, b->usable, b->align, b->pool);
}

/* Checks a live block against the model; returns false on a mismatch. */
static int check_block(const block *b)
{
    stats[ST_CHECKS]++;
    int ok = CHECK_EQ(util_verify(b->p, b->size, SIZE_MAX, b->id), UTIL_OK) &&
             CHECK_EQ(tp_usable_size(b->p), b->usable) && CHECK_PTR_EQ(tp_pool_of(b->p), pool_ptr(b->pool));
    if (!ok) fail_context("check", b);
    return ok;
}

static size_t limited_mapped(void)
{
    tp_stats st;
    return tp_stats_get(pools[LIMITED], &st) == 0 ? st.mapped_bytes : SIZE_MAX;
}

/* After an operation on the limited pool: it holds its limit and, if the
 * operation failed, the request (size, alignment) could not fit under it. */
static int limit_held(int failed, size_t size, size_t align)
{
    size_t mapped = limited_mapped();
    int ok = CHECK_LE(mapped, LIMIT);
    if (failed) ok &= CHECK_LT(LIMIT, mapped + 2 * CHUNK + size + align);
    if (!ok)
        fprintf(stderr, "    seed %" PRIu64 " op %" PRIu64 ": limited pool maps %zu of %zu; %s %zu (align %zu)\n", seed,
                op_index, mapped, LIMIT, failed ? "failed" : "served", size, align);
    return ok;
}

/* A new block from the model's point of view; p may be NULL on failure. */
static void adopt(block *b, void *p, size_t size, size_t align, int pool, int zeroed)
{
    if (pool == LIMITED) limit_held(!p, size, align);
    if (!p) {
        if (!CHECK(pool == LIMITED) || !CHECK_EQ(errno, ENOMEM))
            fprintf(stderr, "    op %" PRIu64 ": allocation of %zu (align %zu) in pool %d failed\n", op_index, size,
                    align, pool);
        stats[ST_ENOMEM]++;
        b->p = NULL;
        return;
    }
    stats[ST_ALLOC]++;
    b->p = p;
    b->size = size;
    b->align = align;
    b->pool = pool;
    b->id = next_id++;
    b->usable = tp_usable_size(p);
    int ok = CHECK_GE(b->usable, size ? size : 1) && CHECK_EQ((uintptr_t)p % align, 0) &&
             CHECK_PTR_EQ(tp_pool_of(p), pool_ptr(pool));
    if (zeroed) ok &= CHECK_EQ(util_zero(p, size), UTIL_OK);
    if (!ok) fail_context(zeroed ? "new (calloc)" : "new", b);
    util_mark(p, size, b->id);
}

static void op_alloc(block *b)
{
    int pool = (int)rnd(POOLS);
    if (rnd(2)) pool = 0; /* half the blocks in the default pool */
    tp_pool *pp = pool ? pools[pool] : NULL;
    size_t size = random_size();
    uint64_t kind = rnd(100);
    errno = 0;
    if (kind < 60) {
        void *p = pool == 0 && rnd(2) ? tp_malloc(size) : tp_pool_malloc(pp, size);
        adopt(b, p, size, 16, pool, 0);
    } else if (kind < 80) {
        size_t count = 1 + rnd(8), each = size / count;
        void *p = pool == 0 && rnd(2) ? tp_calloc(count, each) : tp_pool_calloc(pp, count, each);
        adopt(b, p, count * each, 16, pool, 1);
    } else {
        size_t align = (size_t)1 << (rnd(50) ? 4 + rnd(9) : 13 + rnd(10)); /* 16 B .. 4 KiB, rarely to 4 MiB */
        if (align > 64 * KiB && size > 64 * KiB) size = 1 + rnd(64 * KiB); /* keep big alignments cheap */
        void *p = pool == 0 && rnd(2) ? tp_aligned_alloc(align, size) : tp_pool_aligned_alloc(pp, align, size);
        adopt(b, p, size, align, pool, 0);
    }
}

static void op_free(block *b)
{
    stats[ST_FREE]++;
    uint64_t how = rnd(10);
    if (how < 6)
        tp_free(b->p);
    else if (how < 8)
        tp_free_sized(b->p, b->size);
    else if (how < 9)
        tp_free_sized(b->p, b->usable);
    else
        tp_free_bulk((void **)&b->p, 1);
    b->p = NULL;
}

static void op_realloc(block *b)
{
    stats[ST_REALLOC]++;
    size_t size = rnd(100) ? random_size() : 0;
    /* the pattern also over the end of what realloc must keep */
    size_t keep = size < b->size ? size : b->size, edge = keep > 64 ? keep - 64 : 0;
    util_mark_range(b->p, edge, keep, b->id, UTIL_WRITE);
    errno = 0;
    unsigned char *q = rnd(2) ? tp_realloc(b->p, size) : tp_pool_realloc(pool_ptr(b->pool), b->p, size);
    if (b->pool == LIMITED && size) limit_held(!q, size, 16);
    if (size == 0) {
        CHECK_PTR_EQ(q, NULL); /* realloc(p, 0) frees */
        b->p = NULL;
        return;
    }
    if (!q) {
        /* only the limited pool may run out; the block must be intact */
        if (!CHECK(b->pool == LIMITED) || !CHECK_EQ(errno, ENOMEM)) fail_context("realloc failed", b);
        stats[ST_ENOMEM]++;
        check_block(b);
        return;
    }
    int ok = CHECK_EQ(util_verify(q, b->size, keep, b->id), UTIL_OK) &&
             CHECK_EQ(util_mark_range(q, edge, keep, b->id, UTIL_VERIFY), UTIL_OK) && CHECK_GE(tp_usable_size(q), size) &&
             CHECK_PTR_EQ(tp_pool_of(q), pool_ptr(b->pool)) && CHECK_EQ((uintptr_t)q % 16, 0);
    if (!ok) fail_context("realloc", b);
    b->p = q;
    b->size = size;
    b->align = 16;
    b->usable = tp_usable_size(q);
    b->id = next_id++;
    util_mark(q, size, b->id);
}

/* Resets or destroys (and recreates) an explicit pool: its blocks are gone. */
static void op_pool_event(void)
{
    int k = 1 + (int)rnd(POOLS - 1);
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i].p && slots[i].pool == k) slots[i].p = NULL;
    if (rnd(2)) {
        stats[ST_RESET]++;
        tp_pool_reset(pools[k]);
    } else {
        stats[ST_DESTROY]++;
        tp_pool_destroy(pools[k]);
        tp_pool_config cfg = {.memory_limit = k == LIMITED ? LIMIT : 0};
        pools[k] = tp_pool_create(k == LIMITED ? "limited" : "plain", &cfg);
        CHECK(pools[k] != NULL);
    }
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(block *const *)a)->p, y = (uintptr_t)(*(block *const *)b)->p;
    return x < y ? -1 : x > y;
}

/* Every live block intact, and no two overlapping. */
static void check_all(void)
{
    static block *live[SLOTS];
    size_t n = 0;
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i].p) {
            check_block(&slots[i]);
            live[n++] = &slots[i];
        }
    qsort(live, n, sizeof live[0], by_address);
    for (size_t i = 1; i < n; i++)
        if (!CHECK_LE((uintptr_t)live[i - 1]->p + live[i - 1]->usable, (uintptr_t)live[i]->p)) {
            fail_context("overlaps the next", live[i - 1]);
            break;
        }
}

int main(int argc, char **argv)
{
    seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
    /* OPS: a count, or -N for the default count divided by N */
    uint64_t ops = TEST_SCALE(1000000);
    if (argc > 2) ops = argv[2][0] == '-' ? ops / strtoull(argv[2] + 1, NULL, 0) : strtoull(argv[2], NULL, 0);
    rng = seed;
    printf("seed %" PRIu64 ", %" PRIu64 " operations\n", seed, ops);
    for (int k = 1; k < POOLS; k++) {
        tp_pool_config cfg = {.memory_limit = k == LIMITED ? LIMIT : 0};
        pools[k] = tp_pool_create(k == LIMITED ? "limited" : "plain", &cfg);
    }
    clock_t start = clock();
    for (op_index = 0; op_index < ops && test_failed < 20; op_index++) {
        block *b = &slots[rnd(SLOTS)];
        uint64_t r = rnd(100);
        if (!b->p)
            op_alloc(b);
        else if (!check_block(b)) /* contents, usable size and pool first */
            b->p = NULL;          /* leave what is broken alone */
        else if (r < 55)
            op_free(b);
        else if (r < 85)
            op_realloc(b);
        if (op_index % 20000 == 19999) op_pool_event();
        if (op_index % 100000 == 99999) check_all();
    }
    if (test_failed >= 20) fprintf(stderr, "too many failures: stopped at op %" PRIu64 "\n", op_index);
    check_all();
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i].p) op_free(&slots[i]);
    for (int k = 1; k < POOLS; k++) tp_pool_destroy(pools[k]);
    printf("%lu allocations, %lu frees, %lu reallocs, %lu ENOMEM (limited pool), %lu resets, %lu destroys, "
           "%lu block checks, %.1f s cpu\n",
           stats[ST_ALLOC], stats[ST_FREE], stats[ST_REALLOC], stats[ST_ENOMEM], stats[ST_RESET], stats[ST_DESTROY],
           stats[ST_CHECKS], (double)(clock() - start) / CLOCKS_PER_SEC);
    if (test_failed) printf("to reproduce: test_differential %" PRIu64 " %" PRIu64 "\n", seed, ops);
    return test_report();
}
