/* SPDX-License-Identifier: MIT */
/*
 * test_api.c: the public allocation calls (src/alloc.c) of the default pool
 * and their error cases: every errno the header promises, aligned
 * allocation at every power of two, realloc across the tiers, huge realloc
 * without copying, usable sizes, tp_pool_of; the CHECK option switched on
 * and off while blocks are out. Pools are in test_pool.c.
 *
 * Links the shared library: only what its version script exports is used.
 */
#include "tierpool.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Sizes at and around every tier and class boundary. */
static const size_t edge_sizes[] = {
    0,        1,        15,       16,       17,       100,       1023,          1024,      1025,
    4095,     4096,     4097,     8192,     8193,     65535,     65536,         65537,     262145,
    1 * MiB - 1, 1 * MiB, 1 * MiB + 1, 4 * MiB - 64, 4 * MiB - 63, 4 * MiB, 9 * MiB + 5,
};
#define EDGE_COUNT (sizeof edge_sizes / sizeof edge_sizes[0])

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A block of `size` from a call that is expected to fail with `err`. */
#define CHECK_FAILS(call, err)                   \
    do {                                         \
        errno = 0;                               \
        void *p_ = (call);                       \
        CHECK_PTR_EQ(p_, NULL);                  \
        if (p_) tp_free(p_);                     \
        if (!CHECK_EQ(errno, err)) fprintf(stderr, "    call: %s\n", #call); \
    } while (0)

static void test_malloc_sizes(void)
{
    for (size_t i = 0; i < EDGE_COUNT; i++) {
        size_t size = edge_sizes[i];
        unsigned char *p = tp_malloc(size);
        if (!CHECK(p != NULL)) continue;
        CHECK_EQ((uintptr_t)p % 16, 0);
        size_t usable = tp_usable_size(p);
        CHECK_GE(usable, size);
        CHECK_GE(usable, 1);
        /* the whole usable size is ours to write */
        p[0] = 1;
        p[usable - 1] = 2;
        util_mark(p, size, i);
        CHECK_PTR_EQ(tp_pool_of(p), tp_pool_default());
        CHECK_PTR_EQ(tp_pool_of(p + usable - 1), tp_pool_default());
        tp_free(p);
    }
    /* every small size, and the usable size is stable while the block lives */
    for (size_t size = 1; size <= 8192; size++) {
        void *p = tp_malloc(size);
        size_t u = tp_usable_size(p);
        int ok = p && u >= size && u == tp_usable_size(p) && (uintptr_t)p % 16 == 0;
        tp_free(p);
        if (!CHECK(ok)) break;
    }
}

static void test_malloc_zero_unique(void)
{
    enum { N = 1000 };
    static void *ptrs[N];
    for (int i = 0; i < N; i++) ptrs[i] = tp_malloc(0);
    int dups = 0, nulls = 0;
    for (int i = 0; i < N; i++) {
        nulls += ptrs[i] == NULL;
        for (int j = 0; j < i; j++) dups += ptrs[i] == ptrs[j];
    }
    CHECK_EQ(nulls, 0);
    CHECK_EQ(dups, 0);
    for (int i = 0; i < N; i++) tp_free(ptrs[i]);
}

static void test_null_and_free(void)
{
    tp_free(NULL);
    tp_free_sized(NULL, 0);
    tp_free_sized(NULL, 100);
    tp_free_bulk(NULL, 0);
    CHECK_EQ(tp_usable_size(NULL), 0);
    CHECK_PTR_EQ(tp_pool_of(NULL), NULL);
    /* tp_free_sized with the requested and with the usable size frees: a
     * pool of these blocks alone has none left live */
    tp_pool *pool = tp_pool_create("free_sized", NULL);
    for (size_t i = 0; i < EDGE_COUNT; i++) {
        void *p = tp_pool_malloc(pool, edge_sizes[i]);
        void *q = tp_pool_malloc(pool, edge_sizes[i]);
        CHECK(p && q);
        tp_free_sized(p, edge_sizes[i]);
        tp_free_sized(q, tp_usable_size(q));
    }
    tp_stats st;
    CHECK_EQ(tp_stats_get(pool, &st), 0);
    CHECK_EQ(st.allocs, 2 * EDGE_COUNT);
    CHECK_EQ(st.live_blocks, 0);
    CHECK_EQ(st.huge_blocks, 0);
    tp_pool_destroy(pool);
}

static void test_errno(void)
{
    void *p;
    /* calloc: the product overflows */
    CHECK_FAILS(tp_calloc(SIZE_MAX, 2), ENOMEM);
    CHECK_FAILS(tp_calloc(2, SIZE_MAX), ENOMEM);
    CHECK_FAILS(tp_calloc(SIZE_MAX / 2 + 1, 2), ENOMEM);
    CHECK_FAILS(tp_calloc((size_t)1 << 32, (size_t)1 << 32), ENOMEM);
    /* ... or is merely too large */
    CHECK_FAILS(tp_calloc(SIZE_MAX / 2, 2), ENOMEM);
    CHECK_FAILS(tp_calloc(1, SIZE_MAX), ENOMEM);
    /* malloc near SIZE_MAX */
    const size_t huge_sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX - 8 * MiB, SIZE_MAX / 2,
                                 (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 62, (size_t)1 << 48};
    for (size_t i = 0; i < sizeof huge_sizes / sizeof huge_sizes[0]; i++) {
        size_t s = huge_sizes[i];
        CHECK_FAILS(tp_malloc(s), ENOMEM);
        CHECK_FAILS(tp_aligned_alloc(16, s), ENOMEM);
        CHECK_FAILS(tp_aligned_alloc(64, s), ENOMEM);
        CHECK_FAILS(tp_aligned_alloc(64 * KiB, s), ENOMEM);
        CHECK_FAILS(tp_aligned_alloc(8 * MiB, s), ENOMEM);
        CHECK_FAILS(tp_realloc(NULL, s), ENOMEM);
    }
    /* realloc fails and leaves the block as it was, in every tier */
    for (size_t i = 0; i < EDGE_COUNT; i++) {
        size_t n = edge_sizes[i];
        p = tp_malloc(n);
        util_mark(p, n, i);
        CHECK_FAILS(tp_realloc(p, SIZE_MAX), ENOMEM);
        CHECK_FAILS(tp_realloc(p, (size_t)PTRDIFF_MAX), ENOMEM);
        CHECK_FAILS(tp_realloc(p, (size_t)1 << 50), ENOMEM);
        CHECK_EQ(util_verify(p, n, SIZE_MAX, i), UTIL_OK);
        CHECK_GE(tp_usable_size(p), n);
        tp_free(p);
    }
    /* alignments that are not powers of two */
    const size_t bad_align[] = {0, 3, 5, 6, 12, 24, 48, 100, 1000, 4097, 65537, (1u << 20) + 16, SIZE_MAX,
                                SIZE_MAX - 1, ((size_t)1 << 63) + 1};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        CHECK_FAILS(tp_aligned_alloc(bad_align[i], 16), EINVAL);
        CHECK_FAILS(tp_aligned_alloc(bad_align[i], 0), EINVAL);
        CHECK_FAILS(tp_aligned_alloc(bad_align[i], SIZE_MAX), EINVAL);
        CHECK_FAILS(tp_pool_aligned_alloc(NULL, bad_align[i], 100), EINVAL);
    }
    /* a power of two too large to map */
    CHECK_FAILS(tp_aligned_alloc((size_t)1 << 63, 16), ENOMEM);
    CHECK_FAILS(tp_aligned_alloc((size_t)1 << 62, 16), ENOMEM);
    CHECK_FAILS(tp_aligned_alloc((size_t)1 << 47, 1), ENOMEM);
    /* the allocator still works */
    p = tp_malloc(100);
    CHECK(p != NULL);
    tp_free(p);
}

/* tp_aligned_alloc(align, size) is an aligned, writable block of at least
 * max(size, 1) usable bytes that tp_free takes back. */
static void check_aligned(size_t align, size_t size)
{
    unsigned char *p = tp_aligned_alloc(align, size);
    if (!CHECK(p != NULL)) {
        fprintf(stderr, "    aligned_alloc(%zu, %zu) failed\n", align, size);
        return;
    }
    size_t usable = tp_usable_size(p);
    if (!CHECK_EQ((uintptr_t)p % align, 0) || !CHECK_GE(usable, (size ? size : 1))) {
        /* not a block we may touch, nor free (tp_free would abort) */
        fprintf(stderr, "    aligned_alloc(%zu, %zu) = %p, usable %zu\n", align, size, (void *)p, usable);
        return;
    }
    CHECK_EQ((uintptr_t)p % 16, 0);
    p[0] = 0x11;
    p[usable - 1] = 0x22;
    CHECK_PTR_EQ(tp_pool_of(p), tp_pool_default());
    CHECK_PTR_EQ(tp_pool_of(p + usable - 1), tp_pool_default());
    /* realloc within the usable size keeps the block */
    if (size > 1 && size - 1 >= usable / 2) {
        unsigned char *q = tp_realloc(p, size - 1);
        CHECK_PTR_EQ(q, p);
        p = q;
    }
    tp_free(p);
}

/* Every power of two from 1 to 64 MiB, at several sizes. */
static void test_aligned(void)
{
    for (size_t align = 1; align <= 64 * MiB; align *= 2) {
        const size_t sizes[] = {0, 1, 16, align / 2 + 1, align, align + 1, 3 * align / 2, 100 * KiB};
        /* size 0 at 4 MiB and above once gave a block past its mapping */
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) check_aligned(align, sizes[i]);
    }
}

/* realloc from tier to tier and back, contents preserved each time. */
static void test_realloc_tiers(void)
{
    const size_t steps[] = {10,      100,        3000,       5000,   70 * KiB,    1 * MiB,    1 * MiB + 1,
                            5 * MiB, 20 * MiB,   3 * MiB,    900 * KiB, 2000,     17,         64 * MiB + 3,
                            1,       1 * MiB + 1, 1 * MiB,   4 * MiB, 4 * MiB + 1, 16,         0};
    size_t size = 0;
    unsigned char *p = NULL;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t n = steps[i];
        if (p) util_mark(p, size, i);
        unsigned char *q = tp_realloc(p, n);
        if (n == 0) {
            CHECK_PTR_EQ(q, NULL);
            break;
        }
        if (!CHECK(q != NULL)) break;
        size_t keep = size < n ? size : n;
        if (!CHECK_EQ(util_verify(q, size, keep, i), UTIL_OK))
            fprintf(stderr, "    realloc %zu -> %zu lost the contents\n", size, n);
        CHECK_GE(tp_usable_size(q), n);
        CHECK_EQ((uintptr_t)q % 16, 0);
        q[n - 1] = 0x77; /* the new end is writable */
        p = q;
        size = n;
    }
}

static void test_realloc_null_and_zero(void)
{
    /* realloc(NULL, n) is malloc */
    void *p = tp_realloc(NULL, 40);
    CHECK(p != NULL);
    CHECK_GE(tp_usable_size(p), 40);
    /* realloc(p, 0) frees p and returns NULL, in every tier */
    CHECK_PTR_EQ(tp_realloc(p, 0), NULL);
    for (size_t i = 0; i < EDGE_COUNT; i++) {
        p = tp_malloc(edge_sizes[i]);
        CHECK_PTR_EQ(tp_realloc(p, 0), NULL);
        if (edge_sizes[i] > 1 * MiB) CHECK_PTR_EQ(tp_pool_of(p), NULL); /* unmapped */
    }
    /* shrinking a little keeps the block; a lot moves it */
    p = tp_malloc(1000);
    CHECK_PTR_EQ(tp_realloc(p, 990), p);
    util_mark(p, 100, 9);
    void *q = tp_realloc(p, 100);
    CHECK(q != NULL);
    CHECK_EQ(util_verify(q, 100, SIZE_MAX, 9), UTIL_OK);
    CHECK_LT(tp_usable_size(q), 1000);
    tp_free(q);
}

static void test_calloc(void)
{
    for (size_t i = 0; i < EDGE_COUNT; i++) {
        size_t size = edge_sizes[i];
        /* dirty a block of the size first, so calloc must really zero */
        unsigned char *d = tp_malloc(size);
        util_mark(d, tp_usable_size(d), i);
        tp_free(d);
        unsigned char *p = tp_calloc(1, size);
        if (!CHECK(p != NULL)) continue;
        if (!CHECK_EQ(util_zero(p, size), UTIL_OK)) fprintf(stderr, "    calloc(1, %zu) not zeroed\n", size);
        tp_free(p);
    }
    unsigned char *p = tp_calloc(1000, 24);
    CHECK(p != NULL);
    CHECK_GE(tp_usable_size(p), 24000);
    tp_free(p);
    p = tp_calloc(0, 10);
    CHECK(p != NULL);
    tp_free(p);
}

/* realloc of a huge block moves its pages (mremap) and never copies: a
 * 64 MiB block with two pages touched grows to 1 GiB in a moment, its
 * contents intact, and resident memory does not grow by the block's size. */
static void test_huge_realloc_no_copy(void)
{
    size_t old_size = 64 * MiB, new_size = 1 * GiB;
    unsigned char *p = tp_malloc(old_size);
    if (!CHECK(p != NULL)) return;
    util_mark(p, 4096, 1);
    util_mark(p + old_size - 4096, 4096, 2);
    size_t rss0 = util_rss();
    double t0 = now();
    unsigned char *q = tp_realloc(p, new_size);
    double t = now() - t0;
    size_t rss1 = util_rss();
    if (!CHECK(q != NULL)) {
        tp_free(p);
        return;
    }
    printf("huge realloc 64 MiB -> 1 GiB: %.3f ms, rss %+ld KiB\n", t * 1e3, ((long)rss1 - (long)rss0) / 1024);
    CHECK_EQ(util_verify(q, 4096, SIZE_MAX, 1), UTIL_OK);
    CHECK_EQ(util_verify(q + old_size - 4096, 4096, SIZE_MAX, 2), UTIL_OK);
    /* A copy would have touched 64 MiB. (The time is printed, not checked:
     * a sanitizer's shadow work and a busy machine make it vary tenfold.) */
    CHECK_LT(rss1, rss0 + 4 * MiB);
    CHECK_GE(tp_usable_size(q), new_size);
    CHECK_EQ(q[old_size], 0); /* the new part is fresh memory */
    q[new_size - 1] = 3;
    CHECK_PTR_EQ(tp_pool_of(q + new_size - 1), tp_pool_default());
    /* and back down: the first 64 MiB stay */
    unsigned char *r = tp_realloc(q, old_size);
    CHECK(r != NULL);
    CHECK_EQ(util_verify(r + old_size - 4096, 4096, SIZE_MAX, 2), UTIL_OK);
    CHECK_GE(tp_usable_size(r), old_size);
    CHECK_LT(tp_usable_size(r), old_size + 4 * MiB);
    tp_free(r);
}

/* ---- CHECK switched at run time ---------------------------------------------
 * Pages set up while CHECK is on keep in-use bits, whoever owns them later;
 * blocks handed out and freed across the switches, by the owner and by
 * another thread, must raise no false double free. */

#define TOGGLE_BLOCKS 3000
static void *toggle_blocks[TOGGLE_BLOCKS];

static void toggle_alloc(size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        toggle_blocks[i] = tp_malloc(16 + (i * 37) % 3000);
        CHECK(toggle_blocks[i] != NULL);
    }
}

/* Frees every `step`th block from `from` on (and allocates in between, so
 * that freed blocks are handed out again). */
static void *toggle_free(void *arg)
{
    size_t from = ((size_t *)arg)[0], step = ((size_t *)arg)[1];
    for (size_t i = from; i < TOGGLE_BLOCKS; i += step) {
        tp_free(toggle_blocks[i]);
        toggle_blocks[i] = NULL;
        tp_free(tp_malloc(48));
    }
    return NULL;
}

static void toggle_free_in_thread(size_t from, size_t step)
{
    size_t arg[2] = {from, step};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, toggle_free, arg), 0);
    pthread_join(t, NULL);
}

static void test_check_toggled(void)
{
    long long was = tp_option_get("CHECK");
    toggle_alloc(0, TOGGLE_BLOCKS / 3);
    CHECK_EQ(tp_option_set("CHECK", "1"), 0);
    toggle_alloc(TOGGLE_BLOCKS / 3, 2 * TOGGLE_BLOCKS / 3);
    toggle_free_in_thread(0, 4);     /* checked thread, unchecked and checked pages */
    size_t own[2] = {1, 4};
    toggle_free(own);                /* unchecked owner */
    CHECK_EQ(tp_option_set("CHECK", "0"), 0);
    toggle_alloc(2 * TOGGLE_BLOCKS / 3, TOGGLE_BLOCKS);
    toggle_free_in_thread(2, 4);
    CHECK_EQ(tp_option_set("CHECK", "1"), 0);
    size_t rest[2] = {0, 1};        /* all that is left */
    toggle_free(rest);
    CHECK_EQ(tp_option_set("CHECK", was ? "1" : "0"), 0);
}

TEST_MAIN(
    CASE(malloc_sizes),
    CASE(malloc_zero_unique),
    CASE(null_and_free),
    CASE(errno),
    CASE(aligned),
    CASE(realloc_tiers),
    CASE(realloc_null_and_zero),
    CASE(calloc),
    CASE(huge_realloc_no_copy),
    CASE(check_toggled))
