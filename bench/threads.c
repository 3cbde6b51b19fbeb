/*
 * threads.c: multi-threaded workloads, one allocator per process.
 *
 *   threads ALLOC WORKLOAD THREADS [SCALE]
 *
 * ALLOC is "tp" (tierpool's API) or "sys" (malloc/free: glibc, or a peer
 * preloaded with LD_PRELOAD by the runner). WORKLOAD is one of
 *   own       each thread allocates and frees its own blocks (16 B .. 1 KiB)
 *   larson    threads work on stripes of a shared slot array that rotate every
 *             round, so most frees hit blocks another thread allocated
 *   prodcons  pairs of threads: one allocates, passes blocks through a ring,
 *             the other frees them
 * Prints "WORKLOAD THREADS ALLOC SECONDS MOPS" on one line.
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

/* ---- own: private alloc/free in batches ---------------------------------------- */

#define OWN_BATCH 128

static void *own_thread(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 7919 + 1;
    void *blocks[OWN_BATCH];
    for (long r = 0; r < scale; r++) {
        for (int i = 0; i < OWN_BATCH; i++) {
            blocks[i] = bench_alloc(random_size(&seed));
            *(volatile char *)blocks[i] = 1;
        }
        for (int i = 0; i < OWN_BATCH; i++) bench_free(blocks[i]);
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
            if (slots[k]) bench_free(slots[k]);
            slots[k] = bench_alloc(random_size(&seed));
            *(volatile char *)slots[k] = 1;
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
        void *p = bench_alloc(random_size(&seed));
        *(volatile char *)p = 1;
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
        bench_free(r->slot[t % RING]);
        atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s tp|sys own|larson|prodcons THREADS [SCALE]\n", argv[0]);
        return 2;
    }
    use_tp = strcmp(argv[1], "tp") == 0;
    const char *workload = argv[2];
    thread_count = atoi(argv[3]);
    scale = argc > 4 ? atol(argv[4]) : 20000;
    if (thread_count < 1 || thread_count > 256) return 2;
    pthread_t *threads = calloc((size_t)thread_count, sizeof *threads);
    double ops = 0, start = bench_now();
    if (strcmp(workload, "own") == 0) {
        for (long i = 0; i < thread_count; i++) pthread_create(&threads[i], NULL, own_thread, (void *)(uintptr_t)i);
        for (int i = 0; i < thread_count; i++) pthread_join(threads[i], NULL);
        ops = (double)thread_count * (double)scale * OWN_BATCH;
    } else if (strcmp(workload, "larson") == 0) {
        larson_slots = calloc((size_t)thread_count * LARSON_STRIPE, sizeof(void *));
        pthread_barrier_init(&larson_barrier, NULL, (unsigned)thread_count);
        for (long i = 0; i < thread_count; i++) pthread_create(&threads[i], NULL, larson_thread, (void *)(uintptr_t)i);
        for (int i = 0; i < thread_count; i++) pthread_join(threads[i], NULL);
        for (long i = 0; i < (long)thread_count * LARSON_STRIPE; i++) bench_free(larson_slots[i]);
        ops = (double)thread_count * (double)(scale / 16) * 4 * LARSON_STRIPE;
    } else if (strcmp(workload, "prodcons") == 0) {
        int pairs = thread_count / 2 ? thread_count / 2 : 1;
        rings = calloc((size_t)pairs, sizeof *rings);
        for (long i = 0; i < pairs; i++) {
            pthread_create(&threads[2 * i], NULL, producer_thread, (void *)(uintptr_t)i);
            pthread_create(&threads[2 * i + 1], NULL, consumer_thread, (void *)(uintptr_t)i);
        }
        for (int i = 0; i < 2 * pairs; i++) pthread_join(threads[i], NULL);
        ops = (double)pairs * (double)scale * OWN_BATCH;
    } else {
        fprintf(stderr, "unknown workload %s\n", workload);
        return 2;
    }
    double seconds = bench_now() - start;
    printf("%s %d %s %.4f %.2f\n", workload, thread_count, argv[1], seconds, ops / seconds / 1e6);
    return 0;
}
