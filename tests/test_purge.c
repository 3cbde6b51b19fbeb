/* SPDX-License-Identifier: MIT */
/*
 * test_purge.c: giving memory back. The delay policy with a hand-driven
 * clock, purge passes of a pool under a mock clock (no sleeping), trim of a
 * 512 MiB heap and of the free OS pages inside pages in use, and the
 * background thread against the real clock.
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

#include <time.h>

static uint64_t mock_now = 1000000;
static uint64_t mock_clock(void)
{
    return mock_now;
}

static void test_delay_policy(void)
{
    tpi_decay d;
    tpi_decay_init(&d);
    uint32_t base = (uint32_t)tp_option_get("purge_delay");
    uint32_t max = (uint32_t)tp_option_get("purge_delay_max");
    CHECK_EQ(d.delay_ms, base);
    /* 4 MiB of regret per 100 ms of delay doubles it, up to the maximum. */
    uint32_t now = 5000;
    tpi_decay_on_regret(&d, now, TPI_REGRET_BYTES);
    CHECK_EQ(d.delay_ms, 2 * base);
    tpi_decay_on_regret(&d, now + 1, TPI_REGRET_BYTES); /* the same burst: no second doubling */
    CHECK_EQ(d.delay_ms, 2 * base);
    now += 4 * d.delay_ms; /* a new window: 4 MiB is not enough at 200 ms, 8 is */
    tpi_decay_on_regret(&d, now, TPI_REGRET_BYTES);
    CHECK_EQ(d.delay_ms, 2 * base);
    tpi_decay_on_regret(&d, now + 1, TPI_REGRET_BYTES);
    CHECK_EQ(d.delay_ms, 4 * base);
    for (int i = 0; i < 40; i++) {
        now += d.delay_ms;
        tpi_decay_on_regret(&d, now, TPI_REGRET_BYTES * d.delay_ms / 100);
    }
    CHECK_EQ(d.delay_ms, max);
    /* Passes without regret for 4 delays halve it back to the base. */
    tpi_decay_on_pass(&d, now + 4 * max - 1);
    CHECK_EQ(d.delay_ms, max);
    uint32_t t = now + 4 * max;
    tpi_decay_on_pass(&d, t);
    CHECK_EQ(d.delay_ms, max / 2);
    for (int i = 0; i < 20; i++) {
        t += 4 * d.delay_ms;
        tpi_decay_on_pass(&d, t);
    }
    CHECK_EQ(d.delay_ms, base);

    /* Less within a window of 4 delays leaves it alone: a few pages coming
     * back cost less than a longer delay would hold. */
    t += 10 * base;
    for (int i = 0; i < 3; i++) tpi_decay_on_regret(&d, t + (uint32_t)i * base, MiB);
    CHECK_EQ(d.delay_ms, base);
    tpi_decay_on_regret(&d, t + 3 * base, MiB); /* the fourth MiB in the window */
    CHECK_EQ(d.delay_ms, 2 * base);
    t += 3 * base + 2 * base; /* a window later (the delay is 2 * base now) */
    for (int i = 0; i < 8; i++) {
        t += 4 * d.delay_ms; /* 1 MiB per window, forever */
        tpi_decay_on_regret(&d, t, MiB);
        tpi_decay_on_pass(&d, t);
    }
    CHECK_EQ(d.delay_ms, base);
}

/* Allocates `total` bytes in blocks of `size` from the pool, touching each. */
static void **fill(tp_pool *pool, size_t size, size_t total, size_t *count)
{
    size_t n = total / size;
    void **blocks = malloc(n * sizeof *blocks);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = tp_pool_malloc(pool, size);
        memset(blocks[i], 1, size);
    }
    *count = n;
    return blocks;
}

static void drain(void **blocks, size_t n)
{
    for (size_t i = 0; i < n; i++) tp_free(blocks[i]);
    free(blocks);
}

/* A tier's purge machinery: the slab tier's free slices (pool.c, purge.c)
 * or the large tier's free runs (run.c), each with its own delay. */
typedef struct tier {
    const char *name;
    size_t block;
    tpi_decay *(*decay)(tp_pool *pool);
    size_t (*purged)(tp_pool *pool);
    void (*pass)(tp_pool *pool);
} tier;

static tpi_decay *slab_decay(tp_pool *pool)
{
    return &pool->decay;
}

static size_t slab_purged(tp_pool *pool)
{
    return pool->purged_bytes;
}

static void slab_pass(tp_pool *pool)
{
    pool->decay.next_pass = 0;
    pthread_mutex_lock(&pool->lock);
    tpi_pool_purge(pool, tpi_clock(), false);
    pthread_mutex_unlock(&pool->lock);
}

static tpi_decay *run_decay(tp_pool *pool)
{
    return &pool->runs.decay;
}

static size_t run_purged(tp_pool *pool)
{
    return pool->runs.purged_bytes;
}

static void run_pass(tp_pool *pool)
{
    pool->runs.decay.next_pass = 0;
    tpi_run_heap_purge(pool, tpi_clock(), false);
}

static const tier tiers[] = {
    {"slab", 4000, slab_decay, slab_purged, slab_pass},
    {"run", 256 * KiB, run_decay, run_purged, run_pass},
};

/* Freed memory stays resident for the delay, then goes; taken back at once,
 * it doubles the delay. */
static void check_purge_on_delay(const tier *t)
{
    tpi_clock = mock_clock;
    tp_pool *pool = tp_pool_create("purge", NULL);
    uint32_t delay = t->decay(pool)->delay_ms;
    size_t n, rss0 = util_rss();
    void **blocks = fill(pool, t->block, 64 * MiB, &n);
    drain(blocks, n);
    size_t rss_freed = util_rss();
    CHECK_GE(rss_freed, rss0 + 48 * MiB); /* freed but not yet purged */

    mock_now += delay - 1;
    t->pass(pool);
    CHECK_GE(util_rss(), rss0 + 48 * MiB); /* not due yet */
    CHECK_EQ(t->purged(pool), 0);

    mock_now += 2;
    t->pass(pool);
    if (!CHECK_GE(t->purged(pool), 48 * MiB)) fprintf(stderr, "    %s tier\n", t->name);
    if (UTIL_RSS_BOUNDS) CHECK_LE(util_rss(), rss0 + 8 * MiB);

    /* The same memory needed again right away: the delay grows. */
    blocks = fill(pool, t->block, 64 * MiB, &n);
    if (!CHECK_EQ(t->decay(pool)->delay_ms, 2 * delay)) fprintf(stderr, "    %s tier\n", t->name);
    drain(blocks, n);
    tp_pool_destroy(pool);
    tpi_clock = tpi_os_clock_ms;
}

static void test_purge_on_delay(void)
{
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++) check_purge_on_delay(&tiers[i]);
}

static void test_trim_512m(void)
{
    size_t rss0 = util_rss();
    uint64_t seed = 42;
    size_t cap = TEST_SCALE(512 * MiB), total = 0, n = 0;
    void **blocks = malloc((cap / (64 * KiB) + 1) * sizeof *blocks);
    while (total < cap) {
        size_t size = 64 * KiB + (size_t)(util_rand(&seed) % (960 * KiB));
        blocks[n] = tp_malloc(size);
        memset(blocks[n], 7, size);
        n++;
        total += size;
    }
    CHECK_GE(util_rss(), rss0 + cap / 2);
    drain(blocks, n);
    size_t released = tp_pool_trim(NULL);
    CHECK_GE(released, cap / 2);
    if (UTIL_RSS_BOUNDS) CHECK_LE(util_rss(), rss0 + 16 * MiB);
}

/* Blocks in every other OS page of a thread's slab pages freed: the pages
 * stay in use, and a trim gives back the free OS pages at once (no aging). */
static void test_trim_inside_pages(void)
{
    enum { COUNT = 4096, SIZE = 256 };
    void **blocks = malloc(COUNT * sizeof *blocks);
    for (size_t i = 0; i < COUNT; i++) {
        blocks[i] = tp_malloc(SIZE);
        memset(blocks[i], 3, SIZE);
    }
    void *freed = NULL;
    for (size_t i = 0; i < COUNT; i++) {
        if (((uintptr_t)blocks[i] / TPI_OS_PAGE) % 2 == 0) {
            if (!freed && (uintptr_t)blocks[i] % TPI_OS_PAGE == 0) freed = blocks[i];
            tp_free(blocks[i]);
            blocks[i] = NULL;
        }
    }
    if (!CHECK(freed != NULL)) return;
    CHECK_EQ(util_resident(freed, TPI_OS_PAGE), TPI_OS_PAGE);
    tp_pool_trim(NULL);
    CHECK_EQ(util_resident(freed, TPI_OS_PAGE), 0);
    for (size_t i = 0; i < COUNT; i++) tp_free(blocks[i]);
    free(blocks);
}

static void test_background_thread(void)
{
    CHECK_EQ(tp_option_set("background_purge", "1"), 0);
    CHECK_EQ(tp_option_set("purge_delay", "20ms"), 0);
    tp_pool *pool = tp_pool_create("background", NULL);
    size_t n, rss0 = util_rss();
    void **blocks = fill(pool, 512 * KiB, TEST_SCALE(128 * MiB), &n);
    drain(blocks, n);
    void *p = tp_malloc(100); /* a slow path starts the thread */
    tp_free(p);
    /* No fixed sleep: poll until the thread has purged, up to 10 s. */
    int waited = 0;
    while (UTIL_RSS_BOUNDS && util_rss() > rss0 + 16 * MiB && waited < 1000) {
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
        waited++;
    }
    if (UTIL_RSS_BOUNDS) CHECK_LE(util_rss(), rss0 + 16 * MiB);
    /* Whatever the build: the background thread purged the pool. */
    tp_stats s;
    for (int i = 0; i < 500; i++) {
        tp_stats_get(pool, &s);
        if (s.purged_bytes >= n * 512 * KiB / 2) break;
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    CHECK_GE(s.purged_bytes, n * 512 * KiB / 2);
    tp_pool_destroy(pool);
    tp_option_set("background_purge", "0");
    tp_option_set("purge_delay", "1s");
}

int main(void)
{
    tp_free(tp_malloc(1)); /* options and the default pool set up */
    test_delay_policy();
    test_purge_on_delay();
    test_trim_512m();
    test_trim_inside_pages();
    test_background_thread();
    return test_report();
}
