/* SPDX-License-Identifier: MIT */
/*
 * test_stats_exact.c: exact statistics (TIERPOOL_STATS_EXACT=1, set by
 * ctest): requested bytes of live blocks and peak live bytes, per class, per
 * pool and for the process, compared exactly against a known workload of
 * mixed sizes in all three tiers, several threads with cross-thread frees,
 * realloc in place, and a pool reset.
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

#include <pthread.h>

#define THREADS 6
#define PER_THREAD 1500

/* Above TPI_SLAB_MAX a block is a run of whole OS pages, which keeps its
 * requested size in its tag, not in the block. */
static bool is_run(size_t size)
{
    return size + tpi_block_extra() > TPI_SLAB_MAX;
}

static size_t block_of(size_t size)
{
    if (is_run(size)) return (size + TPI_OS_PAGE - 1) / TPI_OS_PAGE * TPI_OS_PAGE;
    return tpi_classes[tpi_class_of(size + tpi_block_extra())].block_size;
}

static unsigned class_index_of(size_t size)
{
    if (is_run(size)) return tpi_class_of(size > TPI_SLAB_MAX ? size : TPI_SLAB_MAX + 1);
    return tpi_class_of(size + tpi_block_extra());
}

/* Sizes in the small and large tiers, never the same twice in a row. */
static size_t size_at(unsigned i)
{
    static const size_t sizes[] = {1, 7, 16, 17, 100, 500, 1000, 1025, 3000, 4097, 20000, 100000, 700000};
    return sizes[i % (sizeof sizes / sizeof sizes[0])];
}

static void test_mode_is_on(void)
{
    CHECK_EQ(tp_option_get("stats_exact"), 1);
    tp_stats s;
    CHECK_EQ(tp_stats_get(NULL, &s), 0);
    CHECK_EQ(s.stats_exact, 1);
    /* The requested size lives past the usable bytes: usable excludes it. */
    void *p = tp_malloc(24);
    CHECK_EQ(tp_usable_size(p), block_of(24) - tpi_block_extra());
    memset(p, 0xab, tp_usable_size(p));
    tp_free(p);
}

static void test_one_pool(void)
{
    tp_pool *pool = tp_pool_create("exact-one", NULL);
    enum { N = 500 };
    void *p[N];
    uint64_t requested = 0, bytes = 0, class_requested[TPI_CLASS_COUNT] = {0};
    for (unsigned i = 0; i < N; i++) {
        size_t size = size_at(i);
        p[i] = tp_pool_malloc(pool, size);
        CHECK(p[i] != NULL);
        /* Every usable byte written: the requested size must survive. */
        memset(p[i], (int)i, tp_usable_size(p[i]));
        requested += size;
        bytes += block_of(size);
        class_requested[class_index_of(size)] += size;
    }
    void *huge = tp_pool_malloc(pool, 3 * MiB + 5);
    tpi_huge *h = tpi_huge_of(huge);
    CHECK(h != NULL);
    tp_stats s;
    CHECK_EQ(tp_stats_get(pool, &s), 0);
    CHECK_EQ(s.stats_exact, 1);
    CHECK_EQ(s.live_requested_bytes, requested + 3 * MiB + 5);
    CHECK_EQ(s.live_bytes, bytes + h->size);
    CHECK_EQ(s.internal_waste_bytes, bytes + h->size - (requested + 3 * MiB + 5));
    CHECK_EQ(s.peak_live_bytes, bytes + h->size);
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        CHECK_EQ(s.classes[cls].live_requested_bytes, class_requested[cls]);
        CHECK_EQ(s.classes[cls].peak_live_bytes, s.classes[cls].live_bytes);
    }
    uint64_t peak = s.peak_live_bytes;

    /* Free every other block: live falls, the peak stays. */
    for (unsigned i = 0; i < N; i += 2) {
        size_t size = size_at(i);
        requested -= size;
        bytes -= block_of(size);
        tp_free(p[i]);
        p[i] = NULL;
    }
    CHECK_EQ(tp_stats_get(pool, &s), 0);
    CHECK_EQ(s.live_requested_bytes, requested + 3 * MiB + 5);
    CHECK_EQ(s.live_bytes, bytes + h->size);
    CHECK_EQ(s.peak_live_bytes, peak);

    /* realloc in place changes the requested bytes only; a huge realloc
     * (mremap, no copy) both. */
    void *q = tp_pool_realloc(pool, p[1], 5); /* 7 -> 5, same block */
    CHECK(q == p[1]);
    requested -= 2;
    huge = tp_pool_realloc(pool, huge, 9 * MiB);
    h = tpi_huge_of(huge);
    CHECK_EQ(tp_stats_get(pool, &s), 0);
    CHECK_EQ(s.live_requested_bytes, requested + 9 * MiB);
    CHECK_EQ(s.live_bytes, bytes + h->size);
    CHECK_EQ(s.peak_live_bytes, peak > s.live_bytes ? peak : s.live_bytes);
    tp_free(huge);

    /* A reset drops every block: nothing live, the peak remembered. */
    CHECK_EQ(tp_stats_get(pool, &s), 0);
    peak = s.peak_live_bytes;
    tp_pool_reset(pool);
    CHECK_EQ(tp_stats_get(pool, &s), 0);
    CHECK_EQ(s.live_requested_bytes, 0);
    CHECK_EQ(s.peak_live_bytes, peak);
    tp_pool_destroy(pool);
}

/* Threads allocate from a shared pool (sizes up to 4097 B: the first ten),
 * then each frees half of its neighbour's blocks (cross-thread frees). */
static size_t thread_size(unsigned i)
{
    return size_at(i % 10);
}

static tp_pool *shared;
static void *blocks[THREADS][PER_THREAD];
static pthread_barrier_t barrier;

static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    for (unsigned i = 0; i < PER_THREAD; i++) blocks[t][i] = tp_pool_malloc(shared, thread_size(i + (unsigned)t));
    pthread_barrier_wait(&barrier);
    long other = (t + 1) % THREADS;
    for (unsigned i = 0; i < PER_THREAD / 2; i++) tp_free(blocks[other][i]);
    return NULL;
}

static void test_threads(void)
{
    shared = tp_pool_create("exact-threads", NULL);
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_t threads[THREADS];
    for (long t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&barrier);

    uint64_t requested = 0, bytes = 0, peak = 0;
    for (long t = 0; t < THREADS; t++)
        for (unsigned i = 0; i < PER_THREAD; i++) {
            size_t size = thread_size(i + (unsigned)t);
            peak += block_of(size); /* every block was live before the barrier */
            if (i < PER_THREAD / 2) continue;
            requested += size;
            bytes += block_of(size);
        }
    tp_stats s;
    CHECK_EQ(tp_stats_get(shared, &s), 0);
    CHECK_EQ(s.live_requested_bytes, requested);
    CHECK_EQ(s.live_bytes, bytes);
    CHECK_EQ(s.peak_live_bytes, peak);

    /* The process figures are the pools' together (the default pool holds
     * nothing live here). */
    tp_stats process;
    CHECK_EQ(tp_stats_get(NULL, &process), 0);
    CHECK_EQ(process.live_requested_bytes, requested);
    CHECK_GE(process.peak_live_bytes, peak);

    for (long t = 0; t < THREADS; t++)
        for (unsigned i = PER_THREAD / 2; i < PER_THREAD; i++) tp_free(blocks[t][i]);
    CHECK_EQ(tp_stats_get(shared, &s), 0);
    CHECK_EQ(s.live_requested_bytes, 0);
    CHECK_EQ(s.peak_live_bytes, peak);
    tp_pool_destroy(shared);
}

/* `test_stats_exact first_alloc`: the process's first call into tierpool
 * is this malloc, which sets the mode up; the block must still hold the
 * bytes asked for, the requested size kept past them. */
static void test_first_alloc(void)
{
    unsigned char *p = tp_malloc(64);
    if (!CHECK(p != NULL)) return;
    CHECK_GE(tp_usable_size(p), 64);
    memset(p, 0x5a, 64);
    tp_stats s;
    CHECK_EQ(tp_stats_get(NULL, &s), 0);
    CHECK_EQ(s.live_requested_bytes, 64);
    tp_free(p);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "first_alloc") == 0) {
        test_first_alloc();
        return test_report();
    }
    test_mode_is_on();
    test_one_pool();
    test_threads();
    return test_report();
}
