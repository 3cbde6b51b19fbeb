/* SPDX-License-Identifier: MIT */
/*
 * threads.c: a multi-threaded program under LD_PRELOAD=libtierpool-malloc.so.
 *
 * Generations of threads run random malloc/realloc/free over every tier and
 * trade blocks through a shared board, so that blocks are freed by threads
 * other than their allocator's, and after it has exited. Each block carries
 * its size and a pattern derived from it, checked before every realloc and
 * free: a block handed out twice or written by the allocator shows here.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "preload.h"

#define THREADS 4
#define GENERATIONS 3
#define OPS 60000
#define SLOTS 128
#define BOARD 64

static preload_pool_of_fn pool_of;
static _Atomic(unsigned char *) board[BOARD];
static atomic_ulong failures;

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Mostly small, some large, now and then huge (above 1 MiB). */
static size_t random_size(uint64_t *state)
{
    uint64_t r = next_random(state);
    switch (r % 64) {
    case 0:
        return ((size_t)1 << 20) + (r >> 8) % ((size_t)2 << 20);
    case 1: case 2: case 3: case 4:
        return 1024 + (r >> 8) % (256 * 1024);
    default:
        return sizeof(size_t) + (r >> 8) % 1024;
    }
}

static unsigned char fill_byte(size_t size)
{
    return (unsigned char)(size * 13 + 7);
}

/* The size at the start, then the pattern at both ends (the middle of a
 * huge block is left alone to keep the test short). */
static void fill(unsigned char *p, size_t size)
{
    memcpy(p, &size, sizeof size);
    size_t n = size - sizeof size < 64 ? size - sizeof size : 64;
    memset(p + sizeof size, fill_byte(size), n);
    memset(p + size - n, fill_byte(size), n);
}

static int intact(const unsigned char *p)
{
    size_t size;
    memcpy(&size, p, sizeof size);
    size_t n = size - sizeof size < 64 ? size - sizeof size : 64;
    for (size_t i = 0; i < n; i++)
        if (p[sizeof size + i] != fill_byte(size) || p[size - n + i] != fill_byte(size)) return 0;
    return 1;
}

static void fail(void)
{
    atomic_fetch_add(&failures, 1);
}

static unsigned char *new_block(uint64_t *state)
{
    size_t size = random_size(state);
    unsigned char *p = malloc(size);
    if (!p || !pool_of(p) || (uintptr_t)p % 16) {
        fail();
        return NULL;
    }
    fill(p, size);
    return p;
}

static void drop_block(unsigned char *p)
{
    if (p && !intact(p)) fail();
    free(p);
}

static void *worker(void *arg)
{
    uint64_t state = (uint64_t)(uintptr_t)arg;
    unsigned char *slots[SLOTS] = {0};
    for (int op = 0; op < OPS; op++) {
        uint64_t r = next_random(&state);
        unsigned char **slot = &slots[r % SLOTS];
        switch ((r >> 16) % 8) {
        case 0: case 1: case 2:
            drop_block(*slot);
            *slot = new_block(&state);
            break;
        case 3: case 4:
            drop_block(*slot);
            *slot = NULL;
            break;
        case 5: {
            if (!*slot) break;
            if (!intact(*slot)) fail();
            size_t size = random_size(&state);
            unsigned char *q = realloc(*slot, size);
            if (!q || !pool_of(q)) {
                fail();
                break;
            }
            fill(q, size);
            *slot = q;
            break;
        }
        default:
            /* Trade with whichever thread left a block on the board. */
            *slot = atomic_exchange(&board[(r >> 32) % BOARD], *slot);
            if (*slot && !intact(*slot)) fail();
            break;
        }
    }
    for (int i = 0; i < SLOTS; i++) drop_block(slots[i]);
    return NULL;
}

int main(void)
{
    pool_of = preload_pool_of();
    if (!CHECK(pool_of != NULL)) return test_report();
    for (int gen = 0; gen < GENERATIONS; gen++) {
        pthread_t threads[THREADS];
        for (int i = 0; i < THREADS; i++)
            CHECK_EQ(pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(gen * THREADS + i + 1)), 0);
        for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    }
    /* What the last generation left on the board belongs to exited threads. */
    for (int i = 0; i < BOARD; i++) drop_block(atomic_exchange(&board[i], NULL));
    CHECK_EQ(atomic_load(&failures), 0);
    return test_report();
}
