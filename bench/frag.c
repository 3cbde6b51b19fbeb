/* SPDX-License-Identifier: MIT */
/*
 * frag.c: fragmentation of a long-running server, through malloc/free (run
 * it under LD_PRELOAD of each allocator; tierpool through libtierpool-malloc).
 *
 *   frag [SCALE_MIB [PAUSE_S]]   (defaults 256: the live bytes at the peak;
 *                                2: the seconds of light churn after shedding)
 *
 * Buffers of mixed sizes (70% 16 B..512 B, 25% 512 B..16 KiB, 5% 16 KiB..
 * 256 KiB, log-uniform) with mixed lifetimes (80% short, 20% long) go through
 * four phases, RSS and live bytes measured at the end of each:
 *   grow     churn while the live set grows to SCALE_MIB
 *   shed     90% of the live buffers freed at random (a cache evicting, a
 *            server dropping sessions), then PAUSE_S of light churn at that level
 *            (allocators that return memory on a delay get to do it)
 *   regrow   churn back up to SCALE_MIB
 *   idle     everything freed but 5%, then PAUSE_S of light churn
 * Prints one line per phase: "phase live_bytes rss_bytes ratio", then
 * "peak_rss BYTES" and "waste_final BYTES" (rss minus live at the end of the
 * idle phase) for the runner.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

typedef struct slot {
    void *p;
    size_t size;
    uint64_t expires; /* tick */
} slot;

static slot *slots;
static size_t slot_count, live_bytes, live_count;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t log_uniform(size_t lo, size_t hi)
{
    double u = (double)(next_rand() >> 11) / (double)(1ULL << 53);
    double v = (double)lo * __builtin_exp(u * __builtin_log((double)hi / (double)lo));
    return (size_t)v;
}

static size_t random_size(void)
{
    unsigned r = (unsigned)(next_rand() % 100);
    if (r < 70) return log_uniform(16, 512);
    if (r < 95) return log_uniform(512, 16 * 1024);
    return log_uniform(16 * 1024, 256 * 1024);
}

static uint64_t random_lifetime(void)
{
    return next_rand() % 5 ? 1 + next_rand() % 100 : 1000 + next_rand() % 100000;
}

static void release(slot *s)
{
    live_bytes -= s->size;
    live_count--;
    free(s->p);
    s->p = NULL;
}

static void place(slot *s, uint64_t tick)
{
    s->size = random_size();
    s->p = malloc(s->size);
    memset(s->p, 0x5a, s->size); /* a buffer is filled */
    s->expires = tick + random_lifetime();
    live_bytes += s->size;
    live_count++;
}

/* One tick: every buffer past its lifetime is replaced; then, while the live
 * set is below `target`, new ones are added. */
static uint64_t tick_no;
static void churn(size_t target, size_t steps)
{
    for (size_t k = 0; k < steps; k++) {
        tick_no++;
        size_t i = (size_t)(next_rand() % slot_count);
        for (size_t probe = 0; probe < 64; probe++, i = (i + 1) % slot_count) {
            slot *s = &slots[i];
            if (s->p && s->expires <= tick_no) release(s);
            if (!s->p && live_bytes < target) place(s, tick_no);
        }
    }
}

static void report(const char *phase)
{
    size_t rss = util_rss();
    printf("%-7s live %10zu rss %10zu ratio %.2f\n", phase, live_bytes, rss,
           live_bytes ? (double)rss / (double)live_bytes : 0.0);
}

static void shed(double keep_fraction)
{
    for (size_t i = 0; i < slot_count; i++)
        if (slots[i].p && (double)(next_rand() % 1000) >= keep_fraction * 1000.0) release(&slots[i]);
}

static void light_churn(double seconds)
{
    size_t target = live_bytes;
    double end = bench_now() + seconds;
    while (bench_now() < end) {
        churn(target, 200);
        usleep(2000);
    }
}

int main(int argc, char **argv)
{
    size_t scale = (size_t)(argc > 1 ? atol(argv[1]) : 256) << 20;
    double pause = argc > 2 ? atof(argv[2]) : 2.0;
    slot_count = scale / 1024 + 1024; /* the mean buffer is a few KiB */
    slots = calloc(slot_count, sizeof *slots);
    if (!slots) return 1;
    churn(scale, scale / 256);
    report("grow");
    shed(0.10);
    light_churn(pause);
    report("shed");
    churn(scale, scale / 256);
    report("regrow");
    shed(0.05);
    light_churn(pause);
    report("idle");
    size_t rss = util_rss();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_rss %zu\n", (size_t)ru.ru_maxrss * 1024);
    printf("waste_final %zu\n", rss > live_bytes ? rss - live_bytes : 0);
    for (size_t i = 0; i < slot_count; i++)
        if (slots[i].p) release(&slots[i]);
    free(slots);
    return 0;
}
