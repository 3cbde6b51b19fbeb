/* SPDX-License-Identifier: MIT */
/*
 * kv.c: a key-value store that evicts most of its values, through
 * malloc/free (run it under LD_PRELOAD of each allocator; tierpool through
 * libtierpool-malloc).
 *
 *   kv [VALUES [PAUSE_MS]]          (defaults 300000 values, 1000 ms)
 *
 * Fills VALUES values of 16 .. 4096 bytes (uniform), each written in full;
 * deletes 80% of them at random; then serves light traffic for PAUSE_MS (a
 * get of 64 values and a replace of one, every millisecond), so that an
 * allocator that gives memory back after a delay gets to do it. Prints
 * "kv live_mib L rss_mib R ratio X": the live bytes requested, the resident
 * memory grown since the start, and their ratio (lower is better), then
 * "check values N sum S" (equal under every allocator).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

typedef struct value {
    uint32_t size;
    unsigned char bytes[];
} value;

static value *make(uint64_t *rng)
{
    uint32_t size = 16 + (uint32_t)(bench_rand(rng) % (4096 - 16 + 1));
    value *v = malloc(size);
    if (!v) {
        fprintf(stderr, "kv: malloc(%u) failed\n", size);
        exit(1);
    }
    v->size = size;
    memset(v->bytes, (int)(size & 0xff), size - sizeof *v);
    return v;
}

int main(int argc, char **argv)
{
    size_t count = argc > 1 ? (size_t)atol(argv[1]) : 300000;
    long pause_ms = argc > 2 ? atol(argv[2]) : 1000;
    if (count < 10 || pause_ms < 0) {
        fprintf(stderr, "usage: %s [VALUES [PAUSE_MS]]\n", argv[0]);
        return 2;
    }
    value **table = calloc(count, sizeof *table);
    if (!table) return 1;
    size_t start = util_rss();
    uint64_t rng = 0x2545f4914f6cdd1dULL;
    for (size_t i = 0; i < count; i++) table[i] = make(&rng);
    /* Evict 80%, at random. */
    for (size_t i = 0; i < count; i++) {
        if (bench_rand(&rng) % 5 != 0) {
            free(table[i]);
            table[i] = NULL;
        }
    }
    uint64_t sum = 0;
    for (long ms = 0; ms < pause_ms; ms++) {
        for (int k = 0; k < 64; k++) {
            value *v = table[bench_rand(&rng) % count];
            if (v) sum += v->bytes[v->size / 2 - sizeof *v / 2];
        }
        size_t i = bench_rand(&rng) % count;
        if (table[i]) {
            free(table[i]);
            table[i] = make(&rng);
        }
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    size_t live = 0, values = 0;
    for (size_t i = 0; i < count; i++) {
        if (!table[i]) continue;
        live += table[i]->size;
        values++;
    }
    size_t rss = util_rss();
    size_t grown = rss > start ? rss - start : 0;
    double mib = 1024.0 * 1024.0;
    printf("kv live_mib %.1f rss_mib %.1f ratio %.2f\n", (double)live / mib, (double)grown / mib,
           (double)grown / (double)live);
    printf("check values %zu sum %llu\n", values, (unsigned long long)sum);
    for (size_t i = 0; i < count; i++) free(table[i]);
    free(table);
    return 0;
}
