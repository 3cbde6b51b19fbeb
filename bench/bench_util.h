/*
 * bench_util.h: the clock, the resident-memory reading and the random
 * numbers the benchmark programs share.
 */
#ifndef TP_BENCH_UTIL_H
#define TP_BENCH_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Seconds of a monotonic clock. */
static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Resident bytes from /proc/self/statm, read without allocating. */
static inline size_t bench_rss(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strchr(buf, ' ');
    return p ? (size_t)strtoull(p + 1, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
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
