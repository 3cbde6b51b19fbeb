/* SPDX-License-Identifier: MIT */
/*
 * test_phase_rss.c: resident memory follows live memory through phases:
 * many small blocks, then many large ones, then small again, each phase
 * starting once the previous one's blocks are freed. At each phase's peak
 * the resident set stays within 1.25 x live bytes + 24 MiB (stated bound),
 * because slices freed by one phase are reused by the next (dirty ones
 * first) rather than new memory being touched; after the last phase and a
 * trim, within 16 MiB of where it started.
 */
#include "test.h"
#include "util.h"

#include <tierpool.h>

#define LIVE_TARGET (TEST_SCALE(192) * MiB)

typedef struct phase {
    const char *name;
    size_t min, max;
} phase;

static void **blocks;
static size_t count;

static void run_phase(const phase *ph, uint64_t *seed, size_t rss0)
{
    for (size_t i = 0; i < count; i++) tp_free(blocks[i]);
    free(blocks);
    size_t live = 0, n = 0;
    void **mine = malloc((LIVE_TARGET / ph->min + 1) * sizeof *mine);
    while (live < LIVE_TARGET) {
        size_t size = ph->min + (size_t)(util_rand(seed) % (ph->max - ph->min + 1));
        void *p = tp_malloc(size);
        memset(p, 0x5a, size);
        mine[n++] = p;
        live += size;
    }
    blocks = mine;
    count = n;
    size_t rss = util_rss() - rss0;
    printf("  %-6s live %5zu MiB  resident %5zu MiB\n", ph->name, live / MiB, rss / MiB);
    if (UTIL_RSS_BOUNDS) CHECK_LE(rss, live + live / 4 + 24 * MiB);
}

int main(void)
{
    size_t rss0 = util_rss();
    uint64_t seed = 7;
    const phase phases[] = {
        {"small", 16, 512}, {"large", 64 * KiB, 1 * MiB}, {"small", 32, 2048}, {"medium", 2 * KiB, 32 * KiB},
    };
    for (size_t i = 0; i < sizeof phases / sizeof *phases; i++) run_phase(&phases[i], &seed, rss0);
    for (size_t i = 0; i < count; i++) tp_free(blocks[i]);
    free(blocks);
    tp_pool_trim(NULL);
    size_t rss = util_rss();
    printf("  after trim: resident %zu MiB above the start\n", rss > rss0 ? (rss - rss0) / MiB : 0);
    if (UTIL_RSS_BOUNDS) CHECK_LE(rss, rss0 + 16 * MiB);
    tp_stats st;
    tp_stats_get(tp_pool_default(), &st);
    CHECK_EQ(st.live_blocks, 0);
    CHECK_EQ(st.pages, 0); /* trim gave back even this thread's empty pages */
    return test_report();
}
