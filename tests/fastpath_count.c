/* SPDX-License-Identifier: MIT */
/*
 * fastpath_count.c: the program that tests/fastpath_count.py runs under
 * callgrind to count the instructions of the malloc/free fast paths.
 *
 * It warms up (thread state, a page of the 64-byte class carved), keeps one
 * 64-byte block alive so the page never empties, then runs N
 * tp_malloc(64) + tp_free pairs inside run_pairs(), the one function whose
 * instructions the script collects (--toggle-collect=run_pairs). Refills of
 * the free list (each time the blocks carved so far have cycled once) are in
 * the count, amortised, as they are in any program.
 *
 *   fastpath_count [N [alone]]
 *
 * With "alone" no block is kept: every free empties the page, which must
 * still cost no more than the fast path (the current page is pinned).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierpool.h"

#define PAIRS_DEFAULT 100000L

/* The same loop twice: the warm-up must stay outside the collected one. */
#define PAIRS_LOOP(n)                                                   \
    for (long i = 0; i < (n); i++) {                                    \
        void *p = tp_malloc(64);                                        \
        __asm__ volatile("" : : "r"(p) : "memory"); /* keep the pair */ \
        tp_free(p);                                                     \
    }

__attribute__((noinline)) void warm_pairs(long n);
__attribute__((noinline)) void run_pairs(long n);

__attribute__((noinline)) void warm_pairs(long n)
{
    PAIRS_LOOP(n)
}

__attribute__((noinline)) void run_pairs(long n)
{
    PAIRS_LOOP(n)
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : PAIRS_DEFAULT;
    bool alone = argc > 2 && strcmp(argv[2], "alone") == 0;
    void *keep = alone ? NULL : tp_malloc(64);
    if (!alone && !keep) return 1;
    warm_pairs(10000);
    run_pairs(n);
    tp_free(keep);
    printf("pairs: %ld%s\n", n, alone ? " (no block kept)" : "");
    return 0;
}
