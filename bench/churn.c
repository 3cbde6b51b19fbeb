/* SPDX-License-Identifier: MIT */
/*
 * churn.c: short-lived threads whose blocks outlive them, through
 * malloc/free (run it under LD_PRELOAD of each allocator; tierpool through
 * libtierpool-malloc).
 *
 *   churn [THREADS [BLOCKS [MAX]]]    (defaults 2000 threads, 16 blocks, 512 B)
 *
 * Threads run 8 at a time. Each allocates BLOCKS blocks of 16 .. MAX bytes,
 * writes them, and exits leaving them; the main thread frees them all once
 * every thread is gone. Prints "churn threads N growth_mib G": resident
 * memory after the frees less before the first thread (lower is better: an
 * allocator that keeps each exited thread's memory grows with the threads),
 * then "check blocks N sum S" (equal under every allocator).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define AT_ONCE 8

static int blocks_per_thread;
static size_t max_size;
static unsigned char **blocks;

static void *worker(void *arg)
{
    size_t index = (size_t)(uintptr_t)arg;
    uint64_t rng = 0x9e3779b97f4a7c15ULL ^ (index * 2654435761u + 1);
    for (int i = 0; i < blocks_per_thread; i++) {
        size_t size = 16 + (size_t)(bench_rand(&rng) % (max_size - 16 + 1));
        unsigned char *p = malloc(size);
        if (!p) {
            fprintf(stderr, "churn: malloc(%zu) failed\n", size);
            exit(1);
        }
        memset(p, (int)(size & 0xff), size);
        p[0] = (unsigned char)index;
        blocks[index * (size_t)blocks_per_thread + (size_t)i] = p;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2000;
    blocks_per_thread = argc > 2 ? atoi(argv[2]) : 16;
    max_size = argc > 3 ? (size_t)atol(argv[3]) : 512;
    if (threads < AT_ONCE || blocks_per_thread < 1 || max_size < 16) {
        fprintf(stderr, "usage: %s [THREADS [BLOCKS [MAX]]]\n", argv[0]);
        return 2;
    }
    size_t count = (size_t)threads * (size_t)blocks_per_thread;
    blocks = calloc(count, sizeof *blocks);
    if (!blocks) return 1;
    /* One round first: thread stacks and the allocators' start-up. */
    pthread_t t[AT_ONCE];
    for (int i = 0; i < AT_ONCE; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
    for (int i = 0; i < AT_ONCE; i++) pthread_join(t[i], NULL);
    size_t start = util_rss();
    for (int base = AT_ONCE; base < threads; base += AT_ONCE) {
        int n = threads - base < AT_ONCE ? threads - base : AT_ONCE;
        for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(base + i));
        for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        sum += blocks[i][0];
        free(blocks[i]);
    }
    size_t end = util_rss();
    printf("churn threads %d growth_mib %.2f\n", threads, ((double)end - (double)start) / (1024.0 * 1024.0));
    printf("check blocks %zu sum %llu\n", count, (unsigned long long)sum);
    free(blocks);
    return 0;
}
