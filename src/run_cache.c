/* SPDX-License-Identifier: MIT */
/*
 * run_cache.c: a thread cache's free runs, kept for reuse without the run
 * heap's lock.
 *
 * Per length up to TPI_RUN_CACHE_REFILL pages, a stack of at most
 * TPI_RUN_CACHE_DEPTH runs; all of them together within TPI_RUN_CACHE_BYTES.
 * A free of a run of up to TPI_RUN_CACHE_PAGES pushes (one store and a tag
 * flip). A malloc pops a run of its length, or cuts the shortest longer one
 * and keeps the rest. A miss takes from the heap the best fit cut to up to
 * TPI_RUN_CACHE_REFILL pages and keeps the rest; under the same lock it gives
 * back the runs that rest would push out of the cache. So a thread whose
 * requests vary in length, whose frees seldom match its next request, still
 * finds most of them here (the note's workload: 27% of requests are
 * 4 .. 64 KiB, uniform; an exact-length cache served a third of them, this
 * one four in five).
 *
 * Giving back: a cache that would pass its budget sends the runs of the
 * shortest lengths, oldest first, to the heap until it is down to three
 * quarters of the budget, in one batch under one lock; the long runs stay,
 * since they serve every request, and the short rests of cuts go first.
 * Once per purge delay the cache gives back as many bytes as it never went
 * below since the last look (its low-water mark): memory the thread did not
 * need, so an idle cache empties.
 *
 * Memory bound: TPI_RUN_CACHE_BYTES (256 KiB) per thread cache, the waste a
 * run cache may add; docs/design.md weighs it against the heap's lock.
 */
#include "internal.h"

#include <string.h>

static void *tpi_run_cache_take(tpi_run_cache *cache, unsigned pages)
{
    unsigned n = --cache->bins[pages].count;
    if (n == 0) cache->lengths &= ~((uint64_t)1 << pages);
    cache->bytes -= (size_t)pages * TPI_OS_PAGE;
    if (cache->bytes < cache->low_bytes) cache->low_bytes = cache->bytes;
    return cache->bins[pages].runs[n];
}

static void tpi_run_cache_put(tpi_run_cache *cache, void *p, unsigned pages)
{
    atomic_store_explicit(&tpi_run_tag(p)->state, TPI_RUN_CACHED, memory_order_relaxed);
    cache->bins[pages].runs[cache->bins[pages].count++] = p;
    cache->lengths |= (uint64_t)1 << pages;
    cache->bytes += (size_t)pages * TPI_OS_PAGE;
}

void *tpi_run_cache_pop(tpi_tcache *tc, unsigned pages)
{
    tpi_run_cache *cache = &tc->runs;
    /* Its own length, or one that leaves a rest worth keeping. */
    uint64_t fit = cache->lengths & (~(uint64_t)0 << pages);
    if (fit == 0) return NULL;
    unsigned len = (unsigned)__builtin_ctzll(fit);
    void *p = tpi_run_cache_take(cache, len);
    if (len > pages) {
        unsigned rest = len - pages;
        void *q = tpi_run_split(p, pages);
        /* A full stack for the rest is rare: the heap takes it then. */
        if (cache->bins[rest].count < TPI_RUN_CACHE_DEPTH)
            tpi_run_cache_put(cache, q, rest);
        else
            tpi_run_heap_free_batch(tc->pool, &q, 1);
    }
    atomic_store_explicit(&tpi_run_tag(p)->state, TPI_RUN_USED, memory_order_relaxed);
    return p;
}

/* Takes out runs for the heap, shortest lengths first and the oldest of
 * each, until the cache holds at most `keep` bytes (or `only` nonzero: the
 * older half of that length's stack); up to TPI_RUN_SHED_MAX of them. */
static unsigned tpi_run_cache_take_out(tpi_tcache *tc, size_t keep, unsigned only, void **batch)
{
    tpi_run_cache *cache = &tc->runs;
    unsigned count = 0;
    for (unsigned pages = only ? only : 1; pages <= TPI_RUN_CACHE_REFILL; pages++) {
        unsigned have = cache->bins[pages].count, give = 0;
        if (only) {
            give = have / 2;
        } else {
            while (give < have && cache->bytes > keep) {
                cache->bytes -= (size_t)pages * TPI_OS_PAGE;
                give++;
            }
        }
        if (give > TPI_RUN_SHED_MAX - count) give = TPI_RUN_SHED_MAX - count;
        if (only) cache->bytes -= (size_t)give * pages * TPI_OS_PAGE;
        void **runs = cache->bins[pages].runs;
        memcpy(batch + count, runs, give * sizeof *runs);
        memmove(runs, runs + give, (have - give) * sizeof *runs);
        cache->bins[pages].count = (uint8_t)(have - give);
        if (have == give) cache->lengths &= ~((uint64_t)1 << pages);
        count += give;
        if (only || count == TPI_RUN_SHED_MAX || cache->bytes <= keep) break;
    }
    if (cache->bytes < cache->low_bytes) cache->low_bytes = cache->bytes;
    return count;
}

unsigned tpi_run_cache_shed(tpi_tcache *tc, size_t keep, void **runs)
{
    return tpi_run_cache_take_out(tc, keep, 0, runs);
}

/* Sends runs to the heap (tpi_run_cache_take_out), one lock per batch. */
static void tpi_run_cache_spill(tpi_tcache *tc, size_t keep, unsigned only)
{
    void *batch[TPI_RUN_SHED_MAX];
    unsigned count = tpi_run_cache_take_out(tc, keep, only, batch);
    if (count) tpi_run_heap_free_batch(tc->pool, batch, count);
}

bool tpi_run_cache_push(tpi_tcache *tc, void *p, unsigned pages)
{
    tpi_run_cache *cache = &tc->runs;
    size_t bytes = (size_t)pages * TPI_OS_PAGE;
    if (bytes > TPI_RUN_CACHE_BYTES) return false;
    if (cache->bins[pages].count == TPI_RUN_CACHE_DEPTH) tpi_run_cache_spill(tc, 0, pages);
    /* Down to three quarters of the budget, so that the next frees fit. */
    size_t keep = TPI_RUN_CACHE_BYTES * 3 / 4 > bytes ? TPI_RUN_CACHE_BYTES * 3 / 4 - bytes : 0;
    while (cache->bytes + bytes > TPI_RUN_CACHE_BYTES) tpi_run_cache_spill(tc, keep, 0);
    tpi_run_cache_put(cache, p, pages);
    return true;
}

void tpi_run_cache_decay(tpi_tcache *tc)
{
    tpi_run_cache *cache = &tc->runs;
    size_t keep = cache->bytes - cache->low_bytes;
    while (cache->bytes > keep) tpi_run_cache_spill(tc, keep, 0);
    cache->low_bytes = cache->bytes;
}

void tpi_run_cache_flush(tpi_tcache *tc)
{
    while (tc->runs.bytes) tpi_run_cache_spill(tc, 0, 0);
}
