/* SPDX-License-Identifier: MIT */
/*
 * fastpath_count.c: the program that tests/fastpath_count.py runs under
 * callgrind to count the instructions of the malloc/free fast paths.
 *
 * It warms up (thread state, a page of the 64-byte class carved), keeps one
 * 64-byte block alive so the page never empties, then runs N pairs inside
 * run_pairs(), the one function whose instructions the script collects
 * (--toggle-collect=run_pairs). Refills of the free list (each time the
 * blocks carved so far have cycled once) are in the count, amortised, as
 * they are in any program.
 *
 *   fastpath_count [N [alone|pool]]
 *
 * The pair is tp_malloc(64) + tp_free. With "alone" no block is kept: every
 * free empties the page, which must still cost no more than the fast path
 * (the current page is pinned). With "pool" it is tp_pool_malloc(pool, 64) +
 * tp_free on an explicit pool, the block kept being the pool's.
 *
 * Built with -DFASTPATH_MALLOC (fastpath_count_malloc) the pair is
 * malloc(64) + free and the program links nothing of tierpool's: the script
 * runs it with LD_PRELOAD=libtierpool-malloc.so, as a program would be.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierpool.h"

#define PAIRS_DEFAULT 100000L

#if defined(FASTPATH_MALLOC)
#define PAIR_ALLOC(size) malloc(size)
#define PAIR_FREE(p) free(p)
#else
static tp_pool *pair_pool; /* NULL: the default pool, through tp_malloc */
#define PAIR_ALLOC(size) (pair_pool ? tp_pool_malloc(pair_pool, size) : tp_malloc(size))
#define PAIR_FREE(p) tp_free(p)
#endif

/* The same loop twice: the warm-up must stay outside the collected one. The
 * pool test is outside the loop, so that the loop calls one function. */
#define PAIRS_LOOP(n, alloc)                                            \
    for (long i = 0; i < (n); i++) {                                    \
        void *p = alloc;                                                \
        __asm__ volatile("" : : "r"(p) : "memory"); /* keep the pair */ \
        PAIR_FREE(p);                                                   \
    }
#if defined(FASTPATH_MALLOC)
#define PAIRS(n) PAIRS_LOOP(n, malloc(64))
#else
#define PAIRS(n)                                    \
    if (pair_pool) {                                \
        PAIRS_LOOP(n, tp_pool_malloc(pair_pool, 64)) \
    } else {                                        \
        PAIRS_LOOP(n, tp_malloc(64))                \
    }
#endif

__attribute__((noinline)) void warm_pairs(long n);
__attribute__((noinline)) void run_pairs(long n);

__attribute__((noinline)) void warm_pairs(long n)
{
    PAIRS(n)
}

__attribute__((noinline)) void run_pairs(long n)
{
    PAIRS(n)
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : PAIRS_DEFAULT;
    const char *mode = argc > 2 ? argv[2] : "";
    bool alone = strcmp(mode, "alone") == 0;
#if !defined(FASTPATH_MALLOC)
    if (strcmp(mode, "pool") == 0 && (pair_pool = tp_pool_create("fastpath", NULL)) == NULL) return 1;
#else
    if (strcmp(mode, "pool") == 0) return 2;
#endif
    void *keep = alone ? NULL : PAIR_ALLOC(64);
    if (!alone && !keep) return 1;
    warm_pairs(10000);
    run_pairs(n);
    PAIR_FREE(keep);
    printf("pairs: %ld %s\n", n, mode);
    return 0;
}
