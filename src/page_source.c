/* SPDX-License-Identifier: MIT */
/*
 * page_source.c: slab pages for the thread caches. A page is a run of
 * slices taken from one of the pool's chunks (a new chunk when none has the
 * room), or a page an exited thread abandoned, adopted with its blocks.
 * Pages that come back return their slices, which stay resident until a
 * purge pass finds them due (purge.c). All under the pool's lock.
 */
#include "internal.h"

/* ---- slices ----------------------------------------------------------------------- */

static tpi_page *tpi_pool_take_slices(tp_pool *pool, unsigned count)
{
    for (tpi_chunk *c = pool->chunks; c; c = c->next) {
        int first = tpi_chunk_find_run(c, count);
        if (first < 0) continue;
        /* Memory purged lately is needed again: perhaps the delay is too
         * short for this workload (purge.c weighs it). */
        uint32_t now = (uint32_t)tpi_clock();
        bool regret = tpi_chunk_run_purged_since(c, (unsigned)first, count, now - TPI_REGRET_WINDOW * pool->decay.delay_ms);
        tpi_page *page = tpi_chunk_take_run(c, (unsigned)first, count);
        if (!page) return NULL; /* the memory limit (limit.c) */
        if (regret) tpi_decay_on_regret(&pool->decay, now, (size_t)count << TPI_SLICE_SHIFT);
        pool->page_bytes += (size_t)count << TPI_SLICE_SHIFT;
        tpi_pool_note_peak(pool);
        return page;
    }
    /* Before the footprint grows by a chunk, the run heap's dirty free runs,
     * which slab pages cannot use, go back (run.c does the same the other
     * way: tpi_run_heap_grow). */
    tpi_run_heap_purge_dirty(pool);
    if (!tpi_pool_charge(pool, TPI_CHUNK_SIZE)) return NULL;
    tpi_chunk *c = tpi_chunk_create(pool);
    if (!c && tpi_pool_reclaim(pool)) c = tpi_chunk_create(pool); /* as tpi_pool_map */
    if (!c) {
        pool->mapped -= TPI_CHUNK_SIZE;
        return NULL;
    }
    c->prev = NULL;
    c->next = pool->chunks;
    if (pool->chunks) pool->chunks->prev = c;
    pool->chunks = c;
    tpi_page *page = tpi_chunk_take_run(c, 1, count);
    if (!page) return NULL; /* the memory limit: the empty chunk stays for later */
    pool->page_bytes += (size_t)count << TPI_SLICE_SHIFT;
    tpi_pool_note_peak(pool);
    return page;
}

/* The slices stay resident until a purge pass finds them due (purge.c). */
static void tpi_pool_return_slices(tp_pool *pool, tpi_page *page)
{
    pool->page_bytes -= (size_t)page->slice_count << TPI_SLICE_SHIFT;
    tpi_chunk_return_run(page->chunk, page, (uint32_t)tpi_clock());
}

/* ---- pages for tcaches ------------------------------------------------------------- */

static void tpi_page_own(tpi_page *page, tpi_tcache *tc)
{
    atomic_store_explicit(&page->tcache, tc, memory_order_release);
    /* An adopted page may hold blocks its last owner sampled (sample.c). */
    atomic_store_explicit(&page->owner, tpi_page_owner_word(page, tc->owner_word), memory_order_release);
}

tpi_page *tpi_pool_page_acquire(tp_pool *pool, tpi_tcache *tc, unsigned cls)
{
    pthread_mutex_lock(&pool->lock);
    /* Adopt a page an exited thread left behind, if one has a free block. */
    tpi_page *page;
    while ((page = pool->abandoned[cls].first) != NULL) {
        pool->abandoned[cls].first = page->next;
        if (page->next) page->next->prev = NULL; else pool->abandoned[cls].last = NULL;
        page->next = page->prev = NULL;
        tpi_page_own(page, tc);
        tc->counters[cls].remote_frees += tpi_page_collect(page);
        if (page->free || tpi_page_extend(page)) {
            pthread_mutex_unlock(&pool->lock);
            return page;
        }
        if (tpi_page_mark_full(page)) {
            tpi_tcache_park_full(tc, page);
        } else {
            tc->counters[cls].remote_frees += tpi_page_collect(page);
            pthread_mutex_unlock(&pool->lock);
            return page;
        }
    }
    page = tpi_pool_take_slices(pool, tpi_classes[cls].slices);
    pthread_mutex_unlock(&pool->lock);
    if (!page) return NULL;
    /* Memory of a page not yet carved is not addressable (track.h). */
    tpi_track_noaccess(tpi_page_start(page), (size_t)page->slice_count << TPI_SLICE_SHIFT);
    tpi_page_init(page, cls);
    tpi_page_own(page, tc);
    tpi_page_extend(page);
    tpi_page_check(page);
    return page;
}

void tpi_pool_page_release(tp_pool *pool, tpi_page *page)
{
    atomic_store_explicit(&page->owner, 0, memory_order_relaxed);
    atomic_store_explicit(&page->tcache, NULL, memory_order_relaxed);
    tpi_background_ensure(); /* before the lock: starting a thread may allocate */
    pthread_mutex_lock(&pool->lock);
    tpi_pool_return_slices(pool, page);
    tpi_purge_maybe(pool);
    pthread_mutex_unlock(&pool->lock);
}

void tpi_pool_page_abandon(tp_pool *pool, tpi_page *page)
{
    tpi_page_check(page);
    pthread_mutex_lock(&pool->lock);
    tpi_page_queue *q = &pool->abandoned[page->class_index];
    page->queue = TPI_QUEUE_ABANDONED;
    page->next = NULL;
    page->prev = q->last;
    if (q->last) q->last->next = page; else q->first = page;
    q->last = page;
    pthread_mutex_unlock(&pool->lock);
}

/* Pool lock held. Collects the remote frees of abandoned pages (no thread
 * would otherwise) and gives the empty ones back to the free slices. */
void tpi_pool_collect_abandoned(tp_pool *pool)
{
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        tpi_page_queue *q = &pool->abandoned[cls];
        tpi_page *page = q->first;
        while (page) {
            tpi_page *next = page->next;
            pool->retired[cls].remote_frees += tpi_page_collect(page);
            if (tpi_page_used(page) == 0) {
                if (page->prev) page->prev->next = page->next; else q->first = page->next;
                if (page->next) page->next->prev = page->prev; else q->last = page->prev;
                tpi_pool_return_slices(pool, page);
            }
            page = next;
        }
    }
}
