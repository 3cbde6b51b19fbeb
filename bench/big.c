/* SPDX-License-Identifier: MIT */
/*
 * big.c: large and huge blocks, and realloc growth.
 *
 *   big blocks MIN_KIB MAX_KIB ROUNDS [LIVE]
 *   big realloc MAX_MIB [REPEATS]
 *
 * blocks   LIVE slots (default 8); ROUNDS times, the block in a random slot
 *          is checked and freed and replaced by a new one of MIN_KIB ..
 *          MAX_KIB (about log-uniform), written in one byte of every 4 KiB
 *          page: an allocator that gave the memory back pays the page
 *          faults again.
 * realloc  a vector that starts at 16 B and doubles with realloc until it
 *          holds MAX_MIB, filling the new half after every realloc
 *          (memset), REPEATS times (default 1); after every realloc the
 *          first and last byte of each earlier half are checked. Huge
 *          blocks can move without copying (mremap) or grow in place.
 *
 * Prints "check ..." with the bytes handled and the bad blocks found (the
 * same for every allocator unless one is wrong).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define PAGE 4096

static unsigned char mark(uint64_t seq, size_t offset)
{
    return (unsigned char)(seq * 13 + offset / PAGE);
}

static void *checked_malloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "big: malloc(%zu) failed\n", size);
        exit(1);
    }
    return p;
}

typedef struct slot {
    unsigned char *p;
    size_t size;
    uint64_t seq;
} slot;

static int blocks(size_t min, size_t max, long rounds, unsigned live)
{
    slot *slots = calloc(live, sizeof *slots);
    if (!slots) return 1;
    uint64_t seed = 0x2545f4914f6cdd1dULL;
    long bad = 0;
    uint64_t bytes = 0;
    for (long r = 0; r < rounds + (long)live; r++) {
        slot *s = &slots[r < (long)live ? (unsigned long)r : bench_rand(&seed) % live];
        if (s->p) {
            for (size_t i = 0; i < s->size; i += PAGE) bad += s->p[i] != mark(s->seq, i);
            bad += s->p[s->size - 1] != mark(s->seq, s->size - 1);
            free(s->p);
        }
        s->size = bench_log_size(&seed, min, max);
        s->seq = (uint64_t)r;
        s->p = checked_malloc(s->size);
        for (size_t i = 0; i < s->size; i += PAGE) s->p[i] = mark(s->seq, i);
        s->p[s->size - 1] = mark(s->seq, s->size - 1);
        bytes += s->size;
    }
    for (unsigned i = 0; i < live; i++) free(slots[i].p);
    free(slots);
    printf("check blocks %ld bytes %llu bad %ld\n", rounds + (long)live, (unsigned long long)bytes, bad);
    return 0;
}

static int grow(size_t max, int repeats)
{
    long bad = 0, reallocs = 0;
    for (int rep = 0; rep < repeats; rep++) {
        size_t cap = 16;
        unsigned char *v = checked_malloc(cap);
        memset(v, (unsigned char)rep, cap);
        unsigned half = 0; /* the halves filled so far: [16 << (k-1), 16 << k) is half k */
        while (cap < max) {
            unsigned char *n = realloc(v, 2 * cap);
            if (!n) {
                fprintf(stderr, "big: realloc(%zu) failed\n", 2 * cap);
                exit(1);
            }
            v = n;
            reallocs++;
            for (unsigned k = 0; k <= half; k++) {
                size_t lo = k ? (size_t)16 << (k - 1) : 0, hi = (size_t)16 << k;
                bad += v[lo] != (unsigned char)(k + rep) || v[hi - 1] != (unsigned char)(k + rep);
            }
            memset(v + cap, (unsigned char)(++half + rep), cap);
            cap *= 2;
        }
        free(v);
    }
    printf("check reallocs %ld bytes %zu bad %ld\n", reallocs, max, bad);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "blocks")) {
        size_t min = (size_t)atol(argv[2]) << 10, max = (size_t)atol(argv[3]) << 10;
        long rounds = atol(argv[4]);
        unsigned live = argc > 5 ? (unsigned)atoi(argv[5]) : 8;
        if (min >= PAGE && max > min && rounds > 0 && live > 0) return blocks(min, max, rounds, live);
    } else if (argc >= 3 && !strcmp(argv[1], "realloc")) {
        size_t max = (size_t)atol(argv[2]) << 20;
        int repeats = argc > 3 ? atoi(argv[3]) : 1;
        if (max > 16 && repeats > 0) return grow(max, repeats);
    }
    fprintf(stderr, "usage: %s blocks MIN_KIB MAX_KIB ROUNDS [LIVE]\n"
                    "       %s realloc MAX_MIB [REPEATS]\n", argv[0], argv[0]);
    return 2;
}
