/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h: the clock and the random numbers the benchmark programs
 * share; resident memory is the tests' reading (tests/util.h, util_rss).
 */
#ifndef TP_BENCH_UTIL_H
#define TP_BENCH_UTIL_H

#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "../tests/util.h"

/* Seconds of a monotonic clock. */
static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* xorshift64: deterministic random numbers, the same sequence under every
 * allocator for a given seed (*state must not be 0). */
static inline uint64_t bench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* A size in [lo, hi) (0 < lo < hi), about log-uniform: a power of two between
 * lo and hi picked uniformly, then a uniform offset within that doubling. */
static inline size_t bench_log_size(uint64_t *state, size_t lo, size_t hi)
{
    unsigned lo_bits = 63 - (unsigned)__builtin_clzll(lo), hi_bits = 63 - (unsigned)__builtin_clzll(hi - 1);
    unsigned bits = lo_bits + (unsigned)(bench_rand(state) % (hi_bits - lo_bits + 1));
    size_t base = (size_t)1 << bits;
    size_t n = base + (size_t)(bench_rand(state) % base);
    return n < lo ? lo : n >= hi ? hi - 1 : n;
}

#endif /* TP_BENCH_UTIL_H */
