/* SPDX-License-Identifier: MIT */
/*
 * exact.c: exact statistics (TIERPOOL_STATS_EXACT=1): the requested bytes of
 * live blocks and the peak of live bytes, per class, per pool and for the
 * process.
 *
 * Neither can be had from counts: a free does not know what its block was
 * asked for, and a peak needs every change seen in order. So this mode makes
 * every malloc and free take a slow path (tpi_slow_only, as secure mode and
 * Memcheck do), each slab block keeps its requested size in a word right
 * after its usable bytes (tpi_block_extra), huge blocks keep it in their
 * header, and each call adds to atomic counters: the class's, the pool's and
 * the process's, each with its peak. Live bytes are counted as statistics
 * count them: a slab block's class size, a huge block's usable size.
 *
 * Without it, requested bytes are estimated (stats.c) and the peak is the
 * highest live bytes that a statistics read has seen: a lower bound.
 */
#include "internal.h"


#include "tierpool.h"

bool tpi_stats_exact;

static tpi_exact tpi_exact_process;
static tpi_live_peaks tpi_seen_process;

void tpi_exact_init(void)
{
    tpi_stats_exact = TPI_OPTION(stats_exact) != 0;
}

static void tpi_raise(_Atomic uint64_t *peak, uint64_t value)
{
    uint64_t old = atomic_load_explicit(peak, memory_order_relaxed);
    while (value > old &&
           !atomic_compare_exchange_weak_explicit(peak, &old, value, memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* Deltas are added as unsigned: a negative one wraps back, as it should. */
static void tpi_exact_add_live(tpi_exact_bytes *e, int64_t bytes)
{
    uint64_t live = atomic_fetch_add_explicit(&e->live_usable, (uint64_t)bytes, memory_order_relaxed) + (uint64_t)bytes;
    if (bytes > 0) tpi_raise(&e->peak_usable, live);
}

/* Five atomic adds a call, each on a line other threads rarely write. The
 * requested bytes are kept per class of a pool only: totals add them up when
 * read. Peaks need their own live counter at every level. */
static void tpi_exact_add(tp_pool *pool, unsigned index, int64_t bytes, int64_t requested)
{
    atomic_fetch_add_explicit(&pool->exact.classes[index].live_requested, (uint64_t)requested, memory_order_relaxed);
    if (!bytes) return;
    tpi_exact_add_live(&pool->exact.classes[index], bytes);
    tpi_exact_add_live(&pool->exact.total, bytes);
    tpi_exact_add_live(&tpi_exact_process.classes[index], bytes);
    tpi_exact_add_live(&tpi_exact_process.total, bytes);
}

/* The word after the usable bytes (before secure mode's canary). */
static uint64_t *tpi_requested_slot(const tpi_page *page, void *block)
{
    return (uint64_t *)((char *)block + page->block_size - tpi_block_extra());
}

void tpi_exact_on_slab_malloc(tp_pool *pool, tpi_page *page, void *block, size_t size)
{
    tpi_track_hidden_store(tpi_requested_slot(page, block), size);
    tpi_exact_add(pool, page->class_index, page->block_size, (int64_t)size);
}

void tpi_exact_on_slab_free(tp_pool *pool, tpi_page *page, void *block)
{
    int64_t requested = (int64_t)tpi_track_hidden_load(tpi_requested_slot(page, block));
    tpi_exact_add(pool, page->class_index, -(int64_t)page->block_size, -requested);
}

void tpi_exact_on_slab_resize(tp_pool *pool, tpi_page *page, void *block, size_t size)
{
    uint64_t *slot = tpi_requested_slot(page, block);
    int64_t before = (int64_t)tpi_track_hidden_load(slot);
    tpi_track_hidden_store(slot, size);
    tpi_exact_add(pool, page->class_index, 0, (int64_t)size - before);
}

void tpi_exact_on_run(tp_pool *pool, unsigned cls, int64_t usable, int64_t requested)
{
    tpi_exact_add(pool, cls, usable, requested);
}

void tpi_exact_on_huge(tp_pool *pool, int64_t usable, int64_t requested)
{
    tpi_exact_add(pool, TPI_EXACT_HUGE, usable, requested);
}

void tpi_exact_pool_clear(tp_pool *pool)
{
    for (unsigned i = 0; i <= TPI_CLASS_COUNT; i++) {
        tpi_exact_bytes *e = &pool->exact.classes[i];
        int64_t bytes = (int64_t)atomic_exchange_explicit(&e->live_usable, 0, memory_order_relaxed);
        atomic_store_explicit(&e->live_requested, 0, memory_order_relaxed);
        tpi_exact_add_live(&pool->exact.total, -bytes);
        tpi_exact_add_live(&tpi_exact_process.classes[i], -bytes);
        tpi_exact_add_live(&tpi_exact_process.total, -bytes);
    }
}

uint64_t tpi_exact_requested(const tp_pool *pool, unsigned cls)
{
    return atomic_load_explicit(&pool->exact.classes[cls].live_requested, memory_order_relaxed);
}

static uint64_t tpi_peak(_Atomic uint64_t *peak, uint64_t seen)
{
    tpi_raise(peak, seen);
    return atomic_load_explicit(peak, memory_order_relaxed);
}

void tpi_exact_fill_peaks(tp_pool *pool, tp_stats *out)
{
    /* Exact: the counters' peaks (raising them to what is read changes
     * nothing). Otherwise the reads' own: raised to what this one sees. */
    _Atomic uint64_t *total, *classes[TPI_CLASS_COUNT];
    if (tpi_stats_exact) {
        tpi_exact *e = pool ? &pool->exact : &tpi_exact_process;
        total = &e->total.peak_usable;
        for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) classes[cls] = &e->classes[cls].peak_usable;
        out->stats_exact = 1;
    } else {
        tpi_live_peaks *seen = pool ? &pool->seen : &tpi_seen_process;
        total = &seen->total;
        for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) classes[cls] = &seen->classes[cls];
    }
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++)
        out->classes[cls].peak_live_bytes = tpi_peak(classes[cls], out->classes[cls].live_bytes);
    out->peak_live_bytes = tpi_peak(total, out->live_bytes);
}
