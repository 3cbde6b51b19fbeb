/* SPDX-License-Identifier: MIT */
/*
 * threads.c: multi-threaded workloads, one allocator per process.
 *
 *   threads ALLOC WORKLOAD THREADS [SCALE]
 *
 * ALLOC is "tp" (tierpool's API) or "sys" (malloc/free: glibc, or a peer
 * preloaded with LD_PRELOAD by the runner). WORKLOAD is one of
 *   own       each thread allocates and frees its own blocks (16 B .. 1 KiB),
 *             128 at a time
 *   lifo, fifo, random
 *             each thread allocates 1000 blocks (16 B .. 1 KiB), then frees
 *             them last-first, first-first or in a fixed random order
 *   larson    threads work on stripes of a shared slot array that rotate every
 *             round, so most frees hit blocks another thread allocated
 *   prodcons  pairs of threads: one allocates, passes blocks through a ring,
 *             the other frees them
 *   xbatch    every thread allocates batches of 256 blocks and hands each
 *             whole batch to the next thread, which frees it (and frees the
 *             batches handed to it): all frees are remote, in bursts
 * SCALE sets the work: SCALE x 128 blocks per thread (larson: SCALE / 16
 * rounds of 4096 replacements).
 *
 * Every block carries its size in its first two bytes and a tag in its last
 * byte, checked before it is freed: a block handed out twice, or written by
 * the allocator while in use, is counted as bad.
 * Prints "WORKLOAD THREADS ALLOC SECONDS MOPS" on one line, then
 * "check blocks N bad B" (the same for every allocator unless one is wrong).
 */
#define _GNU_SOURCE
#include <tierpool.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

static int use_tp;

static void *bench_alloc(size_t n)
{
    return use_tp ? tp_malloc(n) : malloc(n);
}

static void bench_free(void *p)
{
    if (use_tp) tp_free(p); else free(p);
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t random_size(uint64_t *s)
{
    return 16 + (size_t)(next_rand(s) % 1009);
}

static int thread_count;
static long scale;
static _Atomic long bad_blocks;

/* A block of n bytes (16 <= n < 65536), tagged. */
static void *take(size_t n)
{
    unsigned char *p = bench_alloc(n);
    p[0] = (unsigned char)n;
    p[1] = (unsigned char)(n >> 8);
    p[n - 1] = (unsigned char)(n * 7 + 1);
    return p;
}

/* Checks the tags of a block from take(), then frees it. */
static void drop(void *block)
{
    unsigned char *p = block;
    size_t n = (size_t)p[0] | (size_t)p[1] << 8;
    if (n < 16 || n > 1024 + 16 || p[n - 1] != (unsigned char)(n * 7 + 1))
        atomic_fetch_add_explicit(&bad_blocks, 1, memory_order_relaxed);
    bench_free(p);
}

/* ---- own: private alloc/free in batches ---------------------------------------- */

#define OWN_BATCH 128

static void *own_thread(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 7919 + 1;
    void *blocks[OWN_BATCH];
    for (long r = 0; r < scale; r++) {
        for (int i = 0; i < OWN_BATCH; i++) blocks[i] = take(random_size(&seed));
        for (int i = 0; i < OWN_BATCH; i++) drop(blocks[i]);
    }
    return NULL;
}

/* ---- lifo/fifo/random: batches of 1000 freed in one order -------------------- */

#define ORDER_BATCH 1000
enum free_order { ORDER_LIFO, ORDER_FIFO, ORDER_RANDOM };
static enum free_order free_order;

static long order_rounds(void)
{
    return scale * OWN_BATCH / ORDER_BATCH;
}

static void *order_thread(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 7919 + 1;
    void *blocks[ORDER_BATCH];
    unsigned perm[ORDER_BATCH];
    for (unsigned i = 0; i < ORDER_BATCH; i++) perm[i] = i;
    for (unsigned i = ORDER_BATCH - 1; i > 0; i--) {
        unsigned j = (unsigned)(next_rand(&seed) % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (long r = 0; r < order_rounds(); r++) {
        for (unsigned i = 0; i < ORDER_BATCH; i++) blocks[i] = take(random_size(&seed));
        for (unsigned i = 0; i < ORDER_BATCH; i++) {
            unsigned k = free_order == ORDER_LIFO ? ORDER_BATCH - 1 - i : free_order == ORDER_FIFO ? i : perm[i];
            drop(blocks[k]);
        }
    }
    return NULL;
}

/* ---- larson: rotating stripes of a shared slot array ------------------------------ */

#define LARSON_STRIPE 1024
static void **larson_slots;
static pthread_barrier_t larson_barrier;

static void *larson_thread(void *arg)
{
    long id = (long)(uintptr_t)arg;
    uint64_t seed = (uint64_t)id * 104729 + 7;
    for (long round = 0; round < scale / 16; round++) {
        long stripe = (id + round) % thread_count;
        void **slots = larson_slots + stripe * LARSON_STRIPE;
        for (int i = 0; i < 4 * LARSON_STRIPE; i++) {
            int k = (int)(next_rand(&seed) % LARSON_STRIPE);
            if (slots[k]) drop(slots[k]);
            slots[k] = take(random_size(&seed));
        }
        pthread_barrier_wait(&larson_barrier);
    }
    return NULL;
}

/* ---- prodcons: allocate here, free there ------------------------------------------ */

#define RING 1024
typedef struct {
    _Atomic size_t head, tail;
    void *slot[RING];
} ring_t;
static ring_t *rings;

static void *producer_thread(void *arg)
{
    ring_t *r = &rings[(uintptr_t)arg];
    uint64_t seed = (uintptr_t)arg * 31 + 3;
    long total = scale * OWN_BATCH;
    for (long i = 0; i < total; i++) {
        void *p = take(random_size(&seed));
        size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&r->tail, memory_order_acquire) == RING) sched_yield();
        r->slot[h % RING] = p;
        atomic_store_explicit(&r->head, h + 1, memory_order_release);
    }
    return NULL;
}

static void *consumer_thread(void *arg)
{
    ring_t *r = &rings[(uintptr_t)arg];
    long total = scale * OWN_BATCH;
    for (long i = 0; i < total; i++) {
        size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        while (atomic_load_explicit(&r->head, memory_order_acquire) == t) sched_yield();
        drop(r->slot[t % RING]);
        atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    }
    return NULL;
}

/* ---- xbatch: batches freed by the next thread ------------------------------------ */

#define XBATCH 256
/* mailbox[i]: a batch (XBATCH blocks, in an array from malloc too) waiting
 * for thread i to free it, or NULL. */
static _Atomic(void **) *mailbox;
static _Atomic long batches_freed;

/* Frees the batch in thread id's mailbox, if there is one; 1 if it did. */
static int xbatch_drain(long id)
{
    void **batch = atomic_exchange_explicit(&mailbox[id], NULL, memory_order_acquire);
    if (!batch) return 0;
    for (int i = 0; i < XBATCH; i++) drop(batch[i]);
    bench_free(batch);
    atomic_fetch_add_explicit(&batches_freed, 1, memory_order_relaxed);
    return 1;
}

static long xbatch_rounds(void)
{
    return scale * OWN_BATCH / XBATCH;
}

static void *xbatch_thread(void *arg)
{
    long id = (long)(uintptr_t)arg, next = (id + 1) % thread_count;
    uint64_t seed = (uint64_t)id * 6151 + 5;
    for (long r = 0; r < xbatch_rounds(); r++) {
        void **batch = bench_alloc(XBATCH * sizeof *batch);
        for (int i = 0; i < XBATCH; i++) batch[i] = take(random_size(&seed));
        void **empty = NULL;
        /* Waiting for the next thread's mailbox to empty, this thread
         * empties its own, so the ring of threads cannot deadlock. */
        while (!atomic_compare_exchange_weak_explicit(&mailbox[next], &empty, batch, memory_order_release,
                                                      memory_order_relaxed)) {
            empty = NULL;
            if (!xbatch_drain(id)) sched_yield();
        }
        xbatch_drain(id);
    }
    long total = (long)thread_count * xbatch_rounds();
    while (atomic_load_explicit(&batches_freed, memory_order_relaxed) < total)
        if (!xbatch_drain(id)) sched_yield();
    return NULL;
}

/* Starts thread_count threads running fn and waits for them. */
static void run_threads(pthread_t *threads, void *(*fn)(void *))
{
    for (long i = 0; i < thread_count; i++) pthread_create(&threads[i], NULL, fn, (void *)(uintptr_t)i);
    for (int i = 0; i < thread_count; i++) pthread_join(threads[i], NULL);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s tp|sys own|lifo|fifo|random|larson|prodcons|xbatch THREADS [SCALE]\n",
                argv[0]);
        return 2;
    }
    use_tp = strcmp(argv[1], "tp") == 0;
    const char *workload = argv[2];
    thread_count = atoi(argv[3]);
    scale = argc > 4 ? atol(argv[4]) : 20000;
    if (thread_count < 1 || thread_count > 256) return 2;
    pthread_t *threads = calloc((size_t)thread_count, sizeof *threads);
    double ops = 0, start = bench_now();
    long blocks = 0;
    if (strcmp(workload, "own") == 0) {
        run_threads(threads, own_thread);
        blocks = (long)thread_count * scale * OWN_BATCH;
        ops = (double)blocks;
    } else if (!strcmp(workload, "lifo") || !strcmp(workload, "fifo") || !strcmp(workload, "random")) {
        free_order = workload[0] == 'l' ? ORDER_LIFO : workload[0] == 'f' ? ORDER_FIFO : ORDER_RANDOM;
        run_threads(threads, order_thread);
        blocks = (long)thread_count * order_rounds() * ORDER_BATCH;
        ops = 2.0 * (double)blocks; /* a malloc and a free per block */
    } else if (strcmp(workload, "xbatch") == 0) {
        mailbox = calloc((size_t)thread_count, sizeof *mailbox);
        run_threads(threads, xbatch_thread);
        blocks = (long)thread_count * xbatch_rounds() * XBATCH;
        ops = 2.0 * (double)blocks;
    } else if (strcmp(workload, "larson") == 0) {
        larson_slots = calloc((size_t)thread_count * LARSON_STRIPE, sizeof(void *));
        pthread_barrier_init(&larson_barrier, NULL, (unsigned)thread_count);
        run_threads(threads, larson_thread);
        for (long i = 0; i < (long)thread_count * LARSON_STRIPE; i++)
            if (larson_slots[i]) drop(larson_slots[i]);
        blocks = (long)thread_count * (scale / 16) * 4 * LARSON_STRIPE;
        ops = (double)blocks;
    } else if (strcmp(workload, "prodcons") == 0) {
        int pairs = thread_count / 2 ? thread_count / 2 : 1;
        rings = calloc((size_t)pairs, sizeof *rings);
        for (long i = 0; i < pairs; i++) {
            pthread_create(&threads[2 * i], NULL, producer_thread, (void *)(uintptr_t)i);
            pthread_create(&threads[2 * i + 1], NULL, consumer_thread, (void *)(uintptr_t)i);
        }
        for (int i = 0; i < 2 * pairs; i++) pthread_join(threads[i], NULL);
        blocks = (long)pairs * scale * OWN_BATCH;
        ops = (double)blocks;
    } else {
        fprintf(stderr, "unknown workload %s\n", workload);
        return 2;
    }
    double seconds = bench_now() - start;
    printf("%s %d %s %.4f %.2f\n", workload, thread_count, argv[1], seconds, ops / seconds / 1e6);
    printf("check blocks %ld bad %ld\n", blocks, atomic_load(&bad_blocks));
    return 0;
}
