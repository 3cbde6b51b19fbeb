/* SPDX-License-Identifier: MIT */
/*
 * test_steady_state.c: memory stays flat when one thread allocates what
 * another frees.
 *
 * Each round, a producer thread allocates ROUND_BLOCKS blocks (small and
 * large up to 32 KiB) and sends them through a ring to a consumer thread,
 * which checks each one and keeps the last WINDOW_BLOCKS it received alive
 * (so pages are freed in a different order than they were filled) before
 * freeing the oldest. Every free is a remote free into the producer's pages.
 * After each round all threads stop at a barrier and the main thread samples
 * resident memory: from round WARMUP_ROUNDS on it must stay within
 * RSS_BOUND (16 MiB) of the sample taken after round WARMUP_ROUNDS.
 *
 *   default_pool    producer -> consumer, default pool
 *   explicit_pool   the same from an explicit pool
 *   both_ways       two threads, each the producer of the other
 */
#include "test.h"

#define ROUNDS (120 / THR_SCALE)
#define ROUND_BLOCKS 4000
#define WINDOW_BLOCKS 1024
#define WARMUP_ROUNDS 5
#define RSS_BOUND (16 * THR_MIB)

typedef struct ss_thread {
    pthread_t t;
    unsigned id;
    tp_pool *pool;   /* where produced blocks come from */
    thr_ring *out;   /* NULL: produces nothing */
    thr_ring *in;    /* NULL: consumes nothing */
    thr_block window[WINDOW_BLOCKS];
} ss_thread;

static pthread_barrier_t round_barrier;

/* Waits at the end of a round: once for the sample, once to go on. */
static void ss_round_end(void)
{
    pthread_barrier_wait(&round_barrier);
    pthread_barrier_wait(&round_barrier);
}

static void *ss_main(void *argp)
{
    ss_thread *s = argp;
    thr_rng r = thr_rng_make(s->id + 11);
    uint64_t seq = (uint64_t)(s->id + 1) << 40;
    size_t kept = 0; /* blocks received so far; window[kept % WINDOW] is the oldest */
    for (int round = 0; round < ROUNDS; round++) {
        int sent = s->out ? 0 : ROUND_BLOCKS, got = s->in ? 0 : ROUND_BLOCKS;
        thr_block pending = {0};
        while (sent < ROUND_BLOCKS || got < ROUND_BLOCKS) {
            bool progress = false;
            if (sent < ROUND_BLOCKS) {
                if (!pending.p && !thr_block_alloc(&pending, s->pool, thr_size_mix(&r, 32 * 1024, 0), ++seq)) exit(1);
                if (thr_ring_push_pending(s->out, &pending)) {
                    sent++;
                    progress = true;
                }
            }
            thr_block b;
            while (got < ROUND_BLOCKS && thr_ring_pop(s->in, &b)) {
                thr_block *slot = &s->window[kept++ % WINDOW_BLOCKS];
                thr_block_free(slot); /* the oldest (no-op until the window is full) */
                CHECK(thr_verify(b.p, b.size, b.tag));
                *slot = b;
                got++;
                progress = true;
            }
            if (!progress) sched_yield();
        }
        ss_round_end();
    }
    for (int i = 0; i < WINDOW_BLOCKS; i++) thr_block_free(&s->window[i]);
    return NULL;
}

/* Runs `n` threads (set up by the caller) for ROUNDS rounds, sampling RSS. */
static void ss_run(ss_thread *threads, unsigned n, const char *what)
{
    pthread_barrier_init(&round_barrier, NULL, n + 1);
    for (unsigned i = 0; i < n; i++) thr_start(&threads[i].t, ss_main, &threads[i]);
    size_t base = 0, peak = 0, last = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(&round_barrier);
        size_t rss = thr_rss_bytes();
        if (round + 1 == WARMUP_ROUNDS) base = rss;
        if (round + 1 >= WARMUP_ROUNDS && rss > peak) peak = rss;
        last = rss;
        pthread_barrier_wait(&round_barrier);
    }
    for (unsigned i = 0; i < n; i++) thr_join(threads[i].t);
    pthread_barrier_destroy(&round_barrier);
    printf("    %s: %d rounds of %d blocks: rss after round %d %.1f MiB, peak %.1f MiB, last %.1f MiB "
           "(bound +%zu MiB)\n",
           what, ROUNDS, ROUND_BLOCKS, WARMUP_ROUNDS, (double)base / THR_MIB, (double)peak / THR_MIB,
           (double)last / THR_MIB, RSS_BOUND / THR_MIB);
    CHECK_RSS(peak, base, RSS_BOUND);
    CHECK_RSS(last, base, RSS_BOUND);
}

static thr_ring rings[2];
static ss_thread threads[2];

static void one_way(tp_pool *pool, const char *what)
{
    memset(rings, 0, sizeof rings);
    memset(threads, 0, sizeof threads);
    threads[0] = (ss_thread){.id = 0, .pool = pool, .out = &rings[0]};
    threads[1] = (ss_thread){.id = 1, .pool = pool, .in = &rings[0]};
    ss_run(threads, 2, what);
}

static void test_default_pool(void)
{
    one_way(NULL, "default pool");
}

static void test_explicit_pool(void)
{
    tp_pool *pool = tp_pool_create("steady", NULL);
    if (!CHECK(pool != NULL)) return;
    one_way(pool, "explicit pool");
    tp_pool_destroy(pool);
}

static void test_both_ways(void)
{
    memset(rings, 0, sizeof rings);
    memset(threads, 0, sizeof threads);
    threads[0] = (ss_thread){.id = 0, .out = &rings[0], .in = &rings[1]};
    threads[1] = (ss_thread){.id = 1, .out = &rings[1], .in = &rings[0]};
    ss_run(threads, 2, "both ways");
}

int main(int argc, char **argv)
{
    thr_args(argc, argv);
    thr_run("default_pool", test_default_pool);
    thr_run("explicit_pool", test_explicit_pool);
    thr_run("both_ways", test_both_ways);
    return thr_summary("test_steady_state");
}
