/* SPDX-License-Identifier: MIT */
/*
 * run_cache.c: a thread cache's freed runs, kept for reuse without the run
 * heap's lock.
 *
 * Per length up to TPI_RUN_CACHE_PAGES pages, a stack of at most
 * TPI_RUN_CACHE_DEPTH runs; all of them together within TPI_RUN_CACHE_BYTES.
 * A free pushes (one store and a tag flip); a malloc of that length pops.
 * A full stack sends its older half to the heap in one batch (one lock),
 * and so does the longest stack while the budget would be passed. Once per
 * purge delay each stack gives back as many runs as it never went below
 * since the last look (its low-water mark): runs the thread did not need, so
 * a cache shrinks to what the program reuses and an idle one empties.
 *
 * Memory bound: TPI_RUN_CACHE_BYTES (256 KiB) per thread cache, the waste a
 * run cache may add; docs/design.md weighs it against the heap's lock.
 */
#include "internal.h"

#include <string.h>

void *tpi_run_cache_pop(tpi_tcache *tc, unsigned pages)
{
    tpi_run_cache *cache = &tc->runs;
    if (cache->bins[pages].count == 0) return NULL;
    unsigned n = --cache->bins[pages].count;
    if (n < cache->bins[pages].low) cache->bins[pages].low = (uint8_t)n;
    cache->bytes -= (size_t)pages * TPI_OS_PAGE;
    void *p = cache->bins[pages].runs[n];
    atomic_store_explicit(&tpi_run_tag(p)->state, TPI_RUN_USED, memory_order_relaxed);
    return p;
}

/* Sends the `count` oldest runs of a length to the heap. */
static void tpi_run_cache_spill(tpi_tcache *tc, unsigned pages, unsigned count)
{
    tpi_run_cache *cache = &tc->runs;
    unsigned have = cache->bins[pages].count;
    if (count > have) count = have;
    if (count == 0) return;
    void **runs = cache->bins[pages].runs;
    tpi_run_heap_free_batch(tc->pool, runs, count);
    memmove(runs, runs + count, (have - count) * sizeof *runs);
    cache->bins[pages].count = (uint8_t)(have - count);
    if (cache->bins[pages].low > have - count) cache->bins[pages].low = (uint8_t)(have - count);
    cache->bytes -= (size_t)count * pages * TPI_OS_PAGE;
}

bool tpi_run_cache_push(tpi_tcache *tc, void *p, unsigned pages)
{
    tpi_run_cache *cache = &tc->runs;
    size_t bytes = (size_t)pages * TPI_OS_PAGE;
    if (cache->bins[pages].count == TPI_RUN_CACHE_DEPTH) tpi_run_cache_spill(tc, pages, TPI_RUN_CACHE_DEPTH / 2);
    for (unsigned longest = TPI_RUN_CACHE_PAGES; cache->bytes + bytes > TPI_RUN_CACHE_BYTES && longest > 0; longest--)
        tpi_run_cache_spill(tc, longest, (cache->bins[longest].count + 1) / 2);
    if (cache->bytes + bytes > TPI_RUN_CACHE_BYTES) return false;
    atomic_store_explicit(&tpi_run_tag(p)->state, TPI_RUN_CACHED, memory_order_relaxed);
    cache->bins[pages].runs[cache->bins[pages].count++] = p;
    cache->bytes += bytes;
    return true;
}

void tpi_run_cache_decay(tpi_tcache *tc)
{
    tpi_run_cache *cache = &tc->runs;
    for (unsigned pages = 1; pages <= TPI_RUN_CACHE_PAGES; pages++) {
        tpi_run_cache_spill(tc, pages, cache->bins[pages].low);
        cache->bins[pages].low = cache->bins[pages].count;
    }
}

void tpi_run_cache_flush(tpi_tcache *tc)
{
    for (unsigned pages = 1; pages <= TPI_RUN_CACHE_PAGES; pages++)
        tpi_run_cache_spill(tc, pages, tc->runs.bins[pages].count);
}
