/* SPDX-License-Identifier: MIT */
/*
 * test_limit_abandoned.c: a pool with a memory limit whose blocks have all
 * been freed can fill its limit again, even when the threads that made them
 * have exited.
 *
 * A thread fills most of a limited pool with small blocks and exits, its
 * pages abandoned to the pool; the main thread frees every block (remote
 * frees into the abandoned pages). Then a new thread allocates blocks of a
 * larger class up to the limit: the pool holds no live block, so it must get
 * close to the limit (LIMIT_FILL of it). A pool that keeps the abandoned,
 * empty pages' slices (collected only by tp_pool_trim) fails early with
 * ENOMEM. Both fills must end in ENOMEM with the pool's mapped bytes within
 * the limit.
 *
 *   after_exit         as above
 *   after_exit_trim    the same with tp_pool_trim() before refilling: the
 *                      documented way to hand memory back, which must work
 */
#include "test.h"

#define LIMIT (16 * THR_MIB)
#define SMALL 64
#define LARGE (128 * 1024)
#define LIMIT_FILL 0.75 /* share of the limit the second fill must reach */

static tp_pool *pool;
static void **blocks;
static size_t nblocks;

/* The pool has just refused a block: with ENOMEM, and within its limit. */
static void check_full(void)
{
    CHECK(errno == ENOMEM);
    tp_stats st;
    CHECK(tp_stats_get(pool, &st) == 0 && st.mapped_bytes <= LIMIT);
}

/* Fills the pool with SMALL blocks until ENOMEM; leaves them in `blocks`.
 * The limit counts the pool's metadata too: LIMIT / SMALL blocks cannot fit. */
static void *fill_small(void *arg)
{
    (void)arg;
    size_t cap = LIMIT / SMALL;
    blocks = calloc(cap, sizeof *blocks);
    if (!CHECK(blocks != NULL)) return NULL;
    for (nblocks = 0; nblocks < cap; nblocks++) {
        blocks[nblocks] = tp_pool_malloc(pool, SMALL);
        if (!blocks[nblocks]) break;
        memset(blocks[nblocks], 0x5a, SMALL);
    }
    if (CHECK(nblocks < cap)) check_full();
    return NULL;
}

/* Allocates LARGE blocks until ENOMEM; returns the bytes it got. */
static void *fill_large(void *arg)
{
    size_t *got = arg;
    void **big = calloc(LIMIT / LARGE + 1, sizeof *big);
    if (!CHECK(big != NULL)) return NULL;
    size_t n = 0;
    while (n < LIMIT / LARGE + 1 && (big[n] = tp_pool_malloc(pool, LARGE)) != NULL) n++;
    *got = n * LARGE;
    if (CHECK(*got < LIMIT)) check_full();
    for (size_t i = 0; i < n; i++) tp_free(big[i]);
    free(big);
    return NULL;
}

static void run(bool trim)
{
    tp_pool_config cfg = {.memory_limit = LIMIT};
    pool = tp_pool_create("limited", &cfg);
    if (!CHECK(pool != NULL)) return;
    pthread_t t;
    thr_start(&t, fill_small, NULL);
    thr_join(t);
    CHECK(nblocks * SMALL > LIMIT / 2); /* the first fill used the pool */
    for (size_t i = 0; i < nblocks; i++) tp_free(blocks[i]);
    free(blocks);
    if (trim) tp_pool_trim(pool);
    size_t got = 0;
    thr_start(&t, fill_large, &got);
    thr_join(t);
    printf("    small fill %.1f MiB, then large fill %.1f MiB of a %zu MiB limit%s\n",
           (double)(nblocks * SMALL) / THR_MIB, (double)got / THR_MIB, LIMIT / THR_MIB, trim ? " (trimmed)" : "");
    CHECK(got >= (size_t)(LIMIT * LIMIT_FILL));
    tp_pool_destroy(pool);
}

static void test_after_exit(void)
{
    run(false);
}

static void test_after_exit_trim(void)
{
    run(true);
}

int main(int argc, char **argv)
{
    thr_args(argc, argv);
    thr_run("after_exit_trim", test_after_exit_trim);
    thr_run("after_exit", test_after_exit);
    return thr_summary("test_limit_abandoned");
}
