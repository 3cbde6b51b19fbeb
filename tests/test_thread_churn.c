/* SPDX-License-Identifier: MIT */
/*
 * test_thread_churn.c: many short-lived threads.
 *
 * CHURN_THREADS threads (10,000 in release builds), CHURN_BATCH at a time.
 * Each allocates CHURN_BLOCKS blocks (default pool, or a shared explicit pool
 * for one thread in four; a huge block now and then), frees a quarter itself,
 * frees half of what the thread of the same slot in the previous batch left
 * behind, and exits leaving half of its blocks. The main thread frees the
 * other half of each batch's leftovers while the next batch runs. So blocks
 * die in their own thread, in a later thread and in the main thread, mostly
 * in pages whose owner has exited.
 *
 * Nothing may leak: resident memory, sampled every CHURN_SAMPLE batches,
 * stays within CHURN_RSS_BOUND (16 MiB) of the sample taken after the warm-up
 * batches, and again after everything is freed (measured: about +10 MiB,
 * flat from 2,000 threads to 40,000; thread stacks glibc caches are part of
 * it). Checked in plain builds only (see THR_RSS_CHECKED).
 */
#include "test.h"

#define CHURN_THREADS (10000 / THR_SCALE)
#define CHURN_BATCH 8
#define CHURN_BLOCKS 48
#define CHURN_WARMUP_BATCHES 40
#define CHURN_SAMPLE 25
#define CHURN_RSS_BOUND (16 * THR_MIB)

typedef struct churn_slot {
    pthread_t t;
    unsigned index;              /* thread number */
    thr_block left[CHURN_BLOCKS / 2]; /* what the thread leaves behind */
} churn_slot;

/* [batch parity][slot]: the running batch and the previous one. */
static churn_slot slots[2][CHURN_BATCH];
static tp_pool *shared_pool;

static void *churn_thread(void *argp)
{
    churn_slot *s = argp;
    thr_rng r = thr_rng_make(s->index + 1);
    tp_pool *pool = s->index % 4 == 0 ? shared_pool : NULL;
    unsigned huge = s->index % 64 == 0 ? 1000 / CHURN_BLOCKS : 0; /* ~one huge block */
    thr_block mine[CHURN_BLOCKS];
    for (int i = 0; i < CHURN_BLOCKS; i++)
        thr_block_alloc(&mine[i], pool, thr_size_mix(&r, 64 * 1024, huge), ((uint64_t)s->index << 20) | (unsigned)i);
    /* The previous batch's thread of this slot left blocks: free half. */
    churn_slot *prev = &slots[(s->index / CHURN_BATCH + 1) % 2][s->index % CHURN_BATCH];
    if (s->index >= CHURN_BATCH)
        for (int i = 0; i < CHURN_BLOCKS / 2; i += 2) thr_block_free(&prev->left[i]);
    for (int i = 0; i < CHURN_BLOCKS; i++) {
        if (i % 2 == 0) s->left[i / 2] = mine[i];
        else if (i % 4 == 1) thr_block_free(&mine[i]);
    }
    /* The last quarter is freed in a different order than allocated. */
    for (int i = CHURN_BLOCKS - 1; i >= 0; i--)
        if (i % 4 == 3) thr_block_free(&mine[i]);
    return NULL;
}

/* The main thread's half of a finished batch's leftovers. */
static void free_main_half(churn_slot *batch)
{
    for (int k = 0; k < CHURN_BATCH; k++)
        for (int i = 1; i < CHURN_BLOCKS / 2; i += 2) thr_block_free(&batch[k].left[i]);
}

static void test_churn(void)
{
    shared_pool = tp_pool_create("churn", NULL);
    if (!CHECK(shared_pool != NULL)) return;
    unsigned batches = CHURN_THREADS / CHURN_BATCH;
    size_t base = 0, peak = 0;
    for (unsigned b = 0; b < batches; b++) {
        churn_slot *cur = slots[b % 2], *prev = slots[(b + 1) % 2];
        for (unsigned k = 0; k < CHURN_BATCH; k++) {
            cur[k].index = b * CHURN_BATCH + k;
            thr_start(&cur[k].t, churn_thread, &cur[k]);
        }
        if (b > 0) free_main_half(prev);
        for (unsigned k = 0; k < CHURN_BATCH; k++) thr_join(cur[k].t);
        if (b + 1 == CHURN_WARMUP_BATCHES) base = thr_rss_bytes();
        if (b + 1 > CHURN_WARMUP_BATCHES && (b + 1) % CHURN_SAMPLE == 0) {
            size_t rss = thr_rss_bytes();
            if (rss > peak) peak = rss;
        }
    }
    /* What the last batch left: its threads' half and the main thread's. */
    churn_slot *last = slots[(batches - 1) % 2];
    free_main_half(last);
    for (int k = 0; k < CHURN_BATCH; k++)
        for (int i = 0; i < CHURN_BLOCKS / 2; i += 2) thr_block_free(&last[k].left[i]);
    size_t end = thr_rss_bytes();
    printf("    %u threads: rss after warm-up %.1f MiB, peak after %.1f MiB, at end %.1f MiB (bound +%zu MiB)\n",
           batches * CHURN_BATCH, (double)base / THR_MIB, (double)peak / THR_MIB, (double)end / THR_MIB,
           CHURN_RSS_BOUND / THR_MIB);
    CHECK_RSS(peak, base, CHURN_RSS_BOUND);
    CHECK_RSS(end, base, CHURN_RSS_BOUND);
    tp_pool_destroy(shared_pool);
}

int main(int argc, char **argv)
{
    thr_args(argc, argv);
    thr_run("churn", test_churn);
    return thr_summary("test_thread_churn");
}
