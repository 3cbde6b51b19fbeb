/* SPDX-License-Identifier: MIT */
/*
 * track_bugs.c: seeded bugs for the memory checkers (src/track.h). Run by
 * tests/track.cmake under Valgrind's Memcheck (and, in a -fsanitize=address
 * build, alone under ASan), which must name the bug with the user's stack:
 *
 *   track_bugs clean          a realistic mix with no bug: threads, remote
 *                             frees, realloc, huge blocks, pools reset and
 *                             destroyed with blocks in use; no report at all
 *   track_bugs use-after-free a write to a freed tp_malloc block
 *   track_bugs huge-after-free the same with a huge (> 1 MiB) block
 *   track_bugs uninit         a branch on bytes tp_malloc never initialised
 *   track_bugs overflow       a write one byte past the size asked for
 *   track_bugs leak           a tp_malloc block whose pointer is dropped
 *   track_bugs pool-leak      the same in an explicit pool never destroyed
 *
 * Each bug is its own function (seed_*), which the report must name.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierpool.h"

/* Pointers the compiler cannot see through, so a seeded bug is not
 * optimised away or diagnosed at compile time. */
static void *volatile sink;
static void *launder(void *p)
{
    sink = p;
    return sink;
}

__attribute__((noinline)) static void seed_use_after_free(void)
{
    char *p = tp_malloc(40);
    memset(p, 1, 40);
    tp_free(p);
    char *q = launder(p);
    q[8] = 2; /* the bug */
}

__attribute__((noinline)) static void seed_huge_after_free(void)
{
    char *p = tp_malloc(3u << 20);
    memset(p, 1, 4096);
    tp_free(p);
    char *q = launder(p);
    q[100] = 2; /* the bug (the mapping stays cached, so it does not fault) */
}

__attribute__((noinline)) static void seed_uninit(void)
{
    char *p = launder(tp_malloc(64));
    if (p[10] == 42) puts("42"); /* the bug: never written */
    tp_free(p);
}

__attribute__((noinline)) static void seed_overflow(void)
{
    char *p = launder(tp_malloc(40)); /* a 48-byte block */
    memset(p, 1, 40);
    p[40] = 2; /* the bug */
    tp_free(p);
}

__attribute__((noinline)) static void seed_leak(void)
{
    char *p = tp_malloc(100);
    memset(p, 1, 100);
    launder(p);
    sink = NULL; /* the bug: the last pointer is gone */
}

__attribute__((noinline)) static void seed_pool_leak(void)
{
    tp_pool *pool = tp_pool_create("leaky", NULL);
    char *p = tp_pool_malloc(pool, 200);
    memset(p, 1, 200);
    launder(p);
    sink = NULL; /* the bug: nor freed, nor its pool destroyed */
    launder(pool); /* the pool itself stays reachable */
}

/* ---- the clean mix ---------------------------------------------------------------- */

#define SLOTS 64

typedef struct exchange {
    void *blocks[SLOTS]; /* allocated by the main thread, freed by the worker */
    tp_pool *pool;
} exchange;

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static int check_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 1;
    return 0;
}

static void *worker(void *arg)
{
    exchange *x = arg;
    int bad = 0;
    /* Remote frees: blocks of the main thread's pages. */
    for (int i = 0; i < SLOTS; i++) {
        bad += check_bytes(x->blocks[i], 24, (unsigned char)i);
        tp_free(x->blocks[i]);
    }
    /* This thread's own blocks, some left in the pool for reset/destroy. */
    for (int i = 0; i < 200; i++) {
        char *p = tp_pool_malloc(x->pool, 16 + (size_t)rnd(3000));
        p[0] = 1;
        if (i % 3) tp_free(p);
    }
    void *q = tp_calloc(10, 100);
    bad += check_bytes(q, 1000, 0);
    tp_free(q);
    return (void *)(intptr_t)bad;
}

static int clean_mix(void)
{
    int bad = 0;
    tp_pool *pool = tp_pool_create("mix", NULL);
    exchange x = {.pool = pool};
    for (int i = 0; i < SLOTS; i++) {
        x.blocks[i] = tp_malloc(24);
        memset(x.blocks[i], i, 24);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, worker, &x) != 0) return 1;
    /* Meanwhile: many sizes, realloc both ways, aligned, calloc, usable size. */
    void *live[256] = {0};
    for (int i = 0; i < 4000; i++) {
        unsigned k = rnd(256);
        if (live[k]) {
            if (rnd(4) == 0) {
                size_t n = 1 + rnd(5000);
                char *r = tp_realloc(live[k], n);
                r[n - 1] = 3;
                live[k] = r;
            } else {
                tp_free(live[k]);
                live[k] = NULL;
            }
        } else {
            size_t n = rnd(8) == 0 ? 4096 + rnd(200000) : 1 + rnd(512);
            char *p = rnd(5) == 0 ? tp_aligned_alloc(64, n) : tp_malloc(n);
            size_t usable = tp_usable_size(p);
            bad += usable < n;
            memset(p, 7, usable);
            live[k] = p;
        }
    }
    for (int i = 0; i < 256; i++) tp_free(live[i]);
    void *ret;
    pthread_join(t, &ret);
    bad += (int)(intptr_t)ret;

    /* Huge blocks: calloc, realloc in place, by mremap, shrinking, cached. */
    char *h = tp_calloc(1, 2u << 20);
    bad += check_bytes((unsigned char *)h, 4096, 0);
    h[(2u << 20) - 1] = 1;
    h = tp_realloc(h, 9u << 20);
    h[(9u << 20) - 1] = 2;
    bad += h[(2u << 20) - 1] != 1;
    h = tp_realloc(h, 3u << 20);
    h[(3u << 20) - 1] = 3;
    tp_free(h);
    h = tp_malloc(3u << 20); /* from the cache */
    memset(h, 4, 3u << 20);
    char *small = tp_realloc(h, 100); /* huge to small */
    bad += check_bytes((unsigned char *)small, 100, 4);
    tp_free(small);

    /* Pools: blocks left in use are dropped by reset and destroy. */
    for (int i = 0; i < 100; i++) {
        char *p = tp_pool_malloc(pool, 64);
        p[63] = 1;
    }
    launder(tp_pool_malloc(pool, 5u << 20)); /* a huge block, dropped too */
    tp_pool_reset(pool);
    char *after = tp_pool_calloc(pool, 1, 64);
    bad += check_bytes((unsigned char *)after, 64, 0);
    tp_pool_destroy(pool);
    tp_pool *second = tp_pool_create("second", NULL);
    for (int i = 0; i < 50; i++) launder(tp_pool_malloc(second, 1000));
    tp_pool_destroy(second);
    tp_pool_trim(NULL);
    if (bad) fprintf(stderr, "track_bugs: clean mix saw %d bad values\n", bad);
    return bad != 0;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "clean";
    static const struct {
        const char *name;
        void (*fn)(void);
    } seeds[] = {
        {"use-after-free", seed_use_after_free}, {"huge-after-free", seed_huge_after_free},
        {"uninit", seed_uninit},                 {"overflow", seed_overflow},
        {"leak", seed_leak},                     {"pool-leak", seed_pool_leak},
    };
    if (strcmp(what, "clean") == 0) return clean_mix();
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        if (strcmp(what, seeds[i].name) != 0) continue;
        /* Some ordinary use first, so the bug is not the first block. */
        void *warm = tp_malloc(40);
        seeds[i].fn();
        tp_free(warm);
        return 0;
    }
    fprintf(stderr, "track_bugs: unknown case %s\n", what);
    return 2;
}
