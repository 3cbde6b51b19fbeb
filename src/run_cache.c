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
 * Longer runs (64 KiB .. 1 MiB): a freed one of the length the thread last
 * asked for stays in the cache (`last_long`), for a request of its length
 * or up to an eighth shorter; any other request gives it back under the
 * lock that takes the new run, and so does a free that brings the next one.
 * So a thread that frees and takes back a long run of one length (a buffer
 * reused per request) touches no lock, and one whose lengths vary keeps
 * nothing (a run of a length it no longer asks for would only wait there,
 * resident, while another thread could use it). Once per purge delay it
 * goes back if still there.
 *
 * Memory bound: TPI_RUN_CACHE_BYTES (256 KiB) per thread cache plus the one
 * long run, the waste a run cache may add; docs/design.md weighs it against
 * the heap's lock.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Runs a cache gives the heap in one batch at most. */
#define TPI_RUN_SHED_MAX 32u

static inline void tpi_run_cache_push(tpi_tcache *tc, void *p, unsigned pages);

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

/* A cached run of `pages` pages, cut from a longer one if need be, or NULL. */
static inline void *tpi_run_cache_pop(tpi_tcache *tc, unsigned pages)
{
    tpi_run_cache *cache = &tc->runs;
    /* Its own length, else the shortest longer one. */
    uint64_t fit = cache->lengths & (~(uint64_t)0 << pages);
    if (fit == 0) return NULL;
    unsigned len = (unsigned)__builtin_ctzll(fit);
    void *p = tpi_run_cache_take(cache, len);
    if (len > pages) tpi_run_cache_push(tc, tpi_run_split(p, pages), len - pages);
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

/* Takes out of the cache, for the caller to give to the heap, runs until it
 * holds at most `keep` bytes: the shortest first, up to TPI_RUN_SHED_MAX. */
static unsigned tpi_run_cache_shed(tpi_tcache *tc, size_t keep, void **runs)
{
    return tpi_run_cache_take_out(tc, keep, 0, runs);
}

/* Sends runs to the heap (tpi_run_cache_take_out), one lock per batch. */
static tpi_noinline void tpi_run_cache_spill(tpi_tcache *tc, size_t keep, unsigned only)
{
    void *batch[TPI_RUN_SHED_MAX];
    unsigned count = tpi_run_cache_take_out(tc, keep, only, batch);
    if (count) tpi_run_heap_free_batch(tc->pool, batch, count);
}

/* Keeps the held run p of `pages` pages (up to TPI_RUN_CACHE_REFILL),
 * giving older runs back to the heap to make room. */
static inline void tpi_run_cache_push(tpi_tcache *tc, void *p, unsigned pages)
{
    tpi_run_cache *cache = &tc->runs;
    size_t bytes = (size_t)pages * TPI_OS_PAGE;
    if (cache->bins[pages].count == TPI_RUN_CACHE_DEPTH) tpi_run_cache_spill(tc, 0, pages);
    /* Down to three quarters of the budget, so that the next frees fit. */
    size_t keep = TPI_RUN_CACHE_BYTES * 3 / 4 - bytes;
    while (cache->bytes + bytes > TPI_RUN_CACHE_BYTES) tpi_run_cache_spill(tc, keep, 0);
    tpi_run_cache_put(cache, p, pages);
}

/* The cached long run, if it serves `pages`: its length or up to an eighth
 * longer (the rest stays inside the block, usable). */
static void *tpi_run_cache_take_long(tpi_run_cache *cache, unsigned pages)
{
    cache->asked_long = pages;
    void *p = cache->last_long;
    if (!p) return NULL;
    unsigned have = tpi_run_tag(p)->pages;
    if (have < pages || have - pages > pages / 8) return NULL;
    cache->last_long = NULL;
    atomic_store_explicit(&tpi_run_tag(p)->state, TPI_RUN_USED, memory_order_relaxed);
    return p;
}

/* Keeps a freed long run of the length last asked for; returns what goes
 * to the heap: the run it replaces, or p itself, or NULL. */
static void *tpi_run_cache_keep_long(tpi_run_cache *cache, void *p)
{
    if (tpi_run_tag(p)->pages != cache->asked_long) return p;
    void *old = cache->last_long;
    atomic_store_explicit(&tpi_run_tag(p)->state, TPI_RUN_CACHED, memory_order_relaxed);
    cache->last_long = p;
    return old;
}

/* The cached long run back to the heap. */
static void tpi_run_cache_drop_long(tpi_tcache *tc)
{
    void *p = tc->runs.last_long;
    if (!p) return;
    tc->runs.last_long = NULL;
    tpi_run_heap_free_batch(tc->pool, &p, 1);
}

void tpi_run_cache_decay(tpi_tcache *tc)
{
    tpi_run_cache *cache = &tc->runs;
    tpi_run_cache_drop_long(tc);
    size_t keep = cache->bytes - cache->low_bytes;
    while (cache->bytes > keep) tpi_run_cache_spill(tc, keep, 0);
    cache->low_bytes = cache->bytes;
}

void tpi_run_cache_flush(tpi_tcache *tc)
{
    tpi_run_cache_drop_long(tc);
    while (tc->runs.bytes) tpi_run_cache_spill(tc, 0, 0);
}

/* ---- a thread's large blocks ------------------------------------------------------- */

void *tpi_run_malloc(tpi_tcache *tc, size_t size, size_t alignment)
{
    size_t need = size + (tpi_secure ? TPI_CANARY_SIZE : 0);
    unsigned pages = need ? (unsigned)((need + TPI_OS_PAGE - 1) >> 12) : 1u; /* aligned_alloc(a, 0) */
    /* Secure mode's canary can push a request of 8 KiB or less here. */
    unsigned cls = tpi_class_of(size > TPI_SLAB_MAX ? size : TPI_SLAB_MAX + 1);
    tp_pool *pool = tc->pool;
    bool cached = alignment <= TPI_OS_PAGE && pages <= TPI_RUN_CACHE_PAGES;
    bool is_long = alignment <= TPI_OS_PAGE && !cached;
    void *p = cached ? tpi_run_cache_pop(tc, pages) : is_long ? tpi_run_cache_take_long(&tc->runs, pages) : NULL;
    if (!p) {
        /* A miss of a cached length takes more, for the next requests, and
         * under the same lock gives back what the rest would push out of the
         * cache (runs too short for this request, mostly); a miss of a long
         * one gives back the long run that did not serve it. */
        void *give[TPI_RUN_SHED_MAX];
        unsigned count = 0;
        if (cached) {
            size_t rest = (size_t)(TPI_RUN_CACHE_REFILL - pages) * TPI_OS_PAGE;
            count = tpi_run_cache_shed(tc, TPI_RUN_CACHE_BYTES > rest ? TPI_RUN_CACHE_BYTES - rest : 0, give);
        } else if (is_long && tc->runs.last_long) {
            give[count++] = tc->runs.last_long;
            tc->runs.last_long = NULL;
        }
        p = tpi_run_heap_take(pool, pages, alignment > TPI_OS_PAGE ? (unsigned)(alignment >> 12) : 1u,
                              cached ? TPI_RUN_CACHE_REFILL : pages, give, count);
        if (!p) {
            errno = ENOMEM;
            return NULL;
        }
        unsigned got = tpi_run_tag(p)->pages;
        if (got > pages) tpi_run_cache_push(tc, tpi_run_split(p, pages), got - pages);
    }
    tpi_run *r = tpi_run_tag(p);
    r->class_index = (uint8_t)cls;
    size_t usable = tpi_run_usable(r);
    tpi_class_counters *k = &tc->counters[cls];
    k->allocs++;
    k->requested += size;
    k->run_bytes += usable;
    if (tpi_stats_exact) {
        r->requested = size;
        tpi_exact_on_run(pool, cls, (int64_t)usable, (int64_t)size);
    }
    if (tpi_secure) tpi_secure_run_on_malloc(p, usable);
    tpi_track_malloc(pool, p, size, usable, false);
    return p;
}

void tpi_run_free(tpi_tcache *tc, void *p)
{
    tpi_run *r = tpi_run_of(p);
    if (!r) tpi_run_bad_free(p);
    tp_pool *pool = tpi_run_pool(p);
    unsigned cls = r->class_index, pages = r->pages;
    size_t usable = tpi_run_usable(r);
    if (tpi_stats_exact) tpi_exact_on_run(pool, cls, -(int64_t)usable, -(int64_t)r->requested);
    if (tpi_secure) tpi_secure_run_on_free(p, usable);
    tpi_track_free(pool, p, usable);
    if (tc) {
        tc->counters[cls].run_frees++;
        tc->counters[cls].run_bytes -= usable;
        if (pages <= TPI_RUN_CACHE_PAGES) {
            tpi_run_cache_push(tc, p, pages);
            return;
        }
        p = tpi_run_cache_keep_long(&tc->runs, p);
        if (!p) return;
    }
    tpi_run_heap_free(p, tc != NULL);
}

bool tpi_run_resize(tpi_tcache *tc, void *p, size_t size)
{
    tpi_run *r = tpi_run_tag(p);
    tp_pool *pool = tpi_run_pool(p);
    size_t need = size + (tpi_secure ? TPI_CANARY_SIZE : 0);
    unsigned pages = r->pages, want = (unsigned)((need + TPI_OS_PAGE - 1) >> 12);
    if (want == 0) want = 1;
    if (tpi_secure) tpi_secure_run_on_free(p, tpi_run_usable(r)); /* checked before it moves */
    if (!tpi_run_heap_resize(p, want, tc != NULL)) return false;
    if (tpi_secure) tpi_secure_run_on_malloc(p, tpi_run_usable(r));
    /* The statistics follow the block's usable bytes; its class stays. */
    int64_t delta = ((int64_t)want - (int64_t)pages) * TPI_OS_PAGE;
    if (tc) tc->counters[r->class_index].run_bytes += (uint64_t)delta;
    if (tpi_stats_exact) {
        tpi_exact_on_run(pool, r->class_index, delta, (int64_t)size - (int64_t)r->requested);
        r->requested = size;
    }
    return true;
}
