/* SPDX-License-Identifier: MIT */
/*
 * purge_cycle.c: the cost of giving memory back too eagerly.
 *
 *   purge_cycle [ROUNDS] [PAUSE_MS]
 *
 * Each round allocates 64 blocks of 1 MiB, fills them, frees them, then
 * pauses PAUSE_MS (a request burst, then quiet). An allocator that purges
 * freed memory during the pause pays the first touch again in the next burst
 * (about 12 us per 4 KiB page on a VM); one that never purges keeps 64 MiB.
 * Prints "seconds S rss_after_pause BYTES" (RSS at the end of the last pause).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    int pause_ms = argc > 2 ? atoi(argv[2]) : 200;
    void *blocks[64];
    double busy = 0;
    size_t rss = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = bench_now();
        for (int i = 0; i < 64; i++) {
            blocks[i] = malloc(1 << 20);
            memset(blocks[i], r + i, 1 << 20);
        }
        for (int i = 0; i < 64; i++) free(blocks[i]);
        busy += bench_now() - t0;
        /* The pause, with a trickle of small requests (slow paths happen). */
        double end = bench_now() + pause_ms / 1000.0;
        while (bench_now() < end) {
            for (int k = 0; k < 100; k++) {
                void *volatile p = malloc(64 + (size_t)k);
                free(p);
            }
            usleep(1000);
        }
        rss = util_rss();
    }
    printf("seconds %.4f rss_after_pause %zu\n", busy, rss);
    return 0;
}
