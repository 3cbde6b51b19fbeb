/* SPDX-License-Identifier: MIT */
/*
 * cache.c: false sharing between the blocks of different threads.
 *
 *   cache thrash|scratch THREADS ROUNDS [SIZE] [WRITES]
 *
 * thrash   every thread, ROUNDS times: malloc(SIZE) (default 8 B), write
 *          every byte of the block WRITES times (default 500), check and
 *          free it. An allocator that gives two threads blocks in one cache
 *          line makes their writes fight over the line.
 * scratch  the same, but first the main thread allocates one block per
 *          thread, back to back, and passes each thread its own, which the
 *          thread frees before its rounds. An allocator that hands that
 *          block (a neighbour of the others' blocks) back to the thread's
 *          next malloc makes the threads share cache lines from then on.
 *
 * Prints "check rounds N bad X" (the same for every allocator unless one is
 * wrong).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

static long rounds;
static size_t block_size;
static unsigned writes;
static _Atomic long bad_blocks;

typedef struct worker {
    pthread_t thread;
    unsigned char *passed; /* scratch: the block the main thread passed */
} worker;

static void *worker_thread(void *arg)
{
    worker *w = arg;
    free(w->passed);
    long bad = 0;
    for (long r = 0; r < rounds; r++) {
        volatile unsigned char *b = malloc(block_size);
        if (!b) {
            fprintf(stderr, "cache: malloc(%zu) failed\n", block_size);
            exit(1);
        }
        for (size_t i = 0; i < block_size; i++) b[i] = (unsigned char)r;
        for (unsigned k = 0; k < writes; k++)
            for (size_t i = 0; i < block_size; i++) b[i]++;
        for (size_t i = 0; i < block_size; i++) bad += b[i] != (unsigned char)(r + writes);
        free((void *)b);
    }
    atomic_fetch_add_explicit(&bad_blocks, bad, memory_order_relaxed);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "thrash") && strcmp(argv[1], "scratch"))) {
        fprintf(stderr, "usage: %s thrash|scratch THREADS ROUNDS [SIZE] [WRITES]\n", argv[0]);
        return 2;
    }
    int scratch = !strcmp(argv[1], "scratch");
    int thread_count = atoi(argv[2]);
    rounds = atol(argv[3]);
    block_size = argc > 4 ? (size_t)atol(argv[4]) : 8;
    writes = argc > 5 ? (unsigned)atoi(argv[5]) : 500;
    if (thread_count < 1 || thread_count > 256 || rounds < 1 || block_size < 1) {
        fprintf(stderr, "cache: bad arguments\n");
        return 2;
    }
    worker *workers = calloc((size_t)thread_count, sizeof *workers);
    if (!workers) return 1;
    if (scratch)
        for (int i = 0; i < thread_count; i++) workers[i].passed = malloc(block_size);
    double start = bench_now();
    for (int i = 0; i < thread_count; i++) pthread_create(&workers[i].thread, NULL, worker_thread, &workers[i]);
    for (int i = 0; i < thread_count; i++) pthread_join(workers[i].thread, NULL);
    double seconds = bench_now() - start;
    printf("cache-%s %d threads %.4f s\n", argv[1], thread_count, seconds);
    printf("check rounds %ld bad %ld\n", (long)thread_count * rounds, atomic_load(&bad_blocks));
    free(workers);
    return 0;
}
