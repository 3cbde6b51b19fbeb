/* SPDX-License-Identifier: MIT */
/*
 * pool.c: the pool object: create, reset, destroy, trim. A pool owns chunks
 * (carved into pages for the tcaches of every thread that uses it: the page
 * source, page_source.c), runs, huge blocks, and the pages of exited
 * threads. Its lock guards only slow paths. Under a memory limit it gives
 * back what it keeps without use (tpi_pool_reclaim_unused, which the page
 * source calls through pool_base.c, since it reaches the thread caches).
 *
 * Pool structures are never unmapped, only reused: a thread still holding a
 * tcache of a destroyed pool reads `gen` from the structure and sees that the
 * tcache is stale. Destroyed structures are reused oldest first, and only
 * once TPI_POOL_QUARANTINE others wait, so that a handle used after
 * tp_pool_destroy keeps finding its dead pool (tp_pool_destroy aborts,
 * allocation is refused) through a few more tp_pool_create calls.
 * Lock order: tpi_pools_lock, then a pool's lock (pool_base.c).
 */
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define TPI_POOL_QUARANTINE 4 /* destroyed structs that wait before one is reused */
static tp_pool *tpi_pools_free;                            /* destroyed, for reuse, oldest first */
static tp_pool **tpi_pools_free_end = &tpi_pools_free;
static unsigned tpi_pools_free_count;

/* Pool lock held. Unmaps the address space the pool holds without use:
 * cached huge mappings, and chunks with no page in use (once abandoned
 * pages' remote frees are collected). Returns the bytes unmapped. */
size_t tpi_pool_reclaim_unused(tp_pool *pool)
{
    size_t released = tpi_huge_cache_purge(pool, 0, 0);
    tpi_pool_collect_abandoned(pool);
    /* The caller's cached runs may be all that keeps a run chunk. */
    tpi_tcache *tc = tpi_thread_tcache_peek(pool);
    if (tc) tpi_run_cache_flush(tc);
    released += tpi_run_heap_release_empty(pool);
    return released + tpi_pool_release_empty_chunks(pool);
}

/* ---- create, destroy, reset, trim --------------------------------------------------- */

static void tpi_pool_set_name(tp_pool *pool, const char *name)
{
    memset(pool->name, 0, sizeof pool->name);
    if (name) memcpy(pool->name, name, tpi_utf8_prefix(name, sizeof pool->name - 1)); /* whole characters */
}

tp_pool *tp_pool_create(const char *name, const tp_pool_config *config)
{
    tpi_services_init(); /* the options the pool starts from */
    pthread_mutex_lock(tpi_pools_mutex());
    tp_pool *pool = tpi_pools_free_count > TPI_POOL_QUARANTINE ? tpi_pools_free : NULL;
    if (pool) {
        tpi_pools_free = pool->next_free;
        tpi_pools_free_count--;
    } else {
        pool = tpi_os_map_aligned((sizeof(tp_pool) + TPI_OS_PAGE - 1) & ~(size_t)(TPI_OS_PAGE - 1), TPI_OS_PAGE, 0);
        if (!pool) {
            pthread_mutex_unlock(tpi_pools_mutex());
            errno = ENOMEM;
            return NULL;
        }
        pthread_mutex_init(&pool->lock, NULL);
        atomic_init(&pool->runs.lock.word, 0);
        tpi_pools_add(pool);
    }
    /* A reused struct may be read meanwhile by a statistics reader holding
     * an old pointer to it (the monitor thread): write under its lock. */
    pthread_mutex_lock(&pool->lock);
    tpi_pool_set_name(pool, name);
    pool->memory_limit = config ? config->memory_limit : 0;
    pool->oom_handler = config ? config->oom_handler : NULL;
    pool->oom_arg = config ? config->oom_arg : NULL;
    pool->mapped = 0;
    pool->chunks = NULL;
    pool->huge = NULL;
    pool->huge_cache = NULL;
    pool->huge_cache_bytes = 0;
    pool->purged_bytes = 0;
    pool->purges = 0;
    tpi_decay_init(&pool->decay);
    tpi_run_heap_init(&pool->runs);
    memset(pool->abandoned, 0, sizeof pool->abandoned);
    pool->free_tcaches = NULL;
    pool->live_tcaches = NULL;
    memset(pool->retired, 0, sizeof pool->retired);
    pool->huge_allocs = 0;
    pool->page_bytes = 0;
    pool->huge_live_bytes = 0;
    pool->peak_page_bytes = 0;
    memset(&pool->exact, 0, sizeof pool->exact);
    memset(&pool->seen, 0, sizeof pool->seen);
    pool->live = true;
    pool->next_free = NULL;
    tpi_track_pool_create(pool);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(tpi_pools_mutex());
    return pool;
}

/* Drops every page, tcache and huge block of the pool; keeps `keep_chunks`
 * chunks (purged if `purge`). Caller holds both locks. */
static void tpi_pool_clear(tp_pool *pool, bool keep_chunks)
{
    /* Checkers forget the pool's blocks at once (no leak reports for them). */
    tpi_track_pool_clear(pool, keep_chunks);
    /* The counters only grow: those of the tcaches dropped here stay. */
    for (tpi_tcache *tc = pool->live_tcaches; tc; tc = tc->live_next) tpi_pool_fold_counters(pool, tc);
    atomic_fetch_add_explicit(&pool->gen, 1, memory_order_release);
    tpi_huge_release_all(pool);
    tpi_run_heap_clear(pool, keep_chunks);
    tpi_exact_pool_clear(pool);
    tpi_sample_forget_pool(pool);
    memset(pool->abandoned, 0, sizeof pool->abandoned);
    tpi_tcache_retire_list(pool->free_tcaches, offsetof(tpi_tcache, next_free));
    tpi_tcache_retire_list(pool->live_tcaches, offsetof(tpi_tcache, live_next));
    pool->free_tcaches = NULL;
    pool->live_tcaches = NULL;
    pool->page_bytes = 0;
    tpi_chunk *c = pool->chunks;
    while (c) {
        tpi_chunk *next = c->next;
        if (keep_chunks) {
            for (unsigned i = 1; i < TPI_SLICES_PER_CHUNK; i++) {
                tpi_page *page = &c->pages[i];
                if (page->slice_count) tpi_chunk_return_run(c, page, (uint32_t)tpi_clock());
            }
        } else {
            tpi_pool_unlink_chunk(pool, c);
            tpi_chunk_destroy(c);
        }
        c = next;
    }
}

void tp_pool_destroy(tp_pool *pool)
{
    if (!pool || pool == &tpi_pool_default_instance) return;
    pthread_mutex_lock(tpi_pools_mutex());
    /* Pushed on the free list twice, the struct would be two pools at once. */
    if (!pool->live) tpi_fatal_pool("tp_pool_destroy of a pool already destroyed", pool);
    pthread_mutex_lock(&pool->lock);
    tpi_pool_clear(pool, false);
    pool->live = false;
    pthread_mutex_unlock(&pool->lock);
    pool->next_free = NULL;
    *tpi_pools_free_end = pool;
    tpi_pools_free_end = &pool->next_free;
    tpi_pools_free_count++;
    pthread_mutex_unlock(tpi_pools_mutex());
}

void tp_pool_reset(tp_pool *pool)
{
    if (!pool || pool == &tpi_pool_default_instance) return;
    pthread_mutex_lock(tpi_pools_mutex());
    if (!pool->live) tpi_fatal_pool("tp_pool_reset of a destroyed pool", pool);
    pthread_mutex_lock(&pool->lock);
    tpi_pool_clear(pool, true);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(tpi_pools_mutex());
}

size_t tp_pool_trim(tp_pool *pool)
{
    tpi_services_init();
    if (!pool) pool = &tpi_pool_default_instance;
    /* The caller's own empty pages can go too; other threads' are theirs. */
    tpi_tcache *tc = tpi_thread_tcache_peek(pool);
    if (tc) tpi_tcache_trim(tc);
    pthread_mutex_lock(&pool->lock);
    tpi_pool_collect_abandoned(pool);
    size_t released = tpi_pool_purge(pool, tpi_clock(), true);
    pthread_mutex_unlock(&pool->lock);
    return released + tpi_run_heap_purge(pool, tpi_clock(), true);
}

void tpi_pool_usage(tp_pool *pool, tpi_usage *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&pool->lock);
    out->mapped = pool->mapped;
    for (tpi_chunk *c = pool->chunks; c; c = c->next) {
        out->chunks++;
        size_t free_slices = (size_t)__builtin_popcountll(c->free_slices);
        out->page_bytes += (TPI_SLICES_PER_CHUNK - 1 - free_slices) * TPI_SLICE_SIZE;
        out->free_slice_bytes += free_slices * TPI_SLICE_SIZE;
    }
    for (tpi_huge *h = pool->huge; h; h = h->next) {
        out->huge_blocks++;
        out->huge_bytes += h->map_size;
    }
    tpi_lock_take(&pool->runs.lock);
    out->run_chunks = pool->runs.mapped_chunks;
    out->run_bytes = pool->runs.used_bytes;
    tpi_lock_give(&pool->runs.lock);
    pthread_mutex_unlock(&pool->lock);
}

tp_pool *tp_pool_default(void)
{
    return &tpi_pool_default_instance;
}

const char *tp_pool_name(const tp_pool *pool)
{
    return pool ? pool->name : tpi_pool_default_instance.name;
}

