/* SPDX-License-Identifier: MIT */
/*
 * purge.c: giving memory back to the OS, on a delay that adapts.
 *
 * Free slices of a pool's chunks stay resident ("dirty") until they have been
 * free for the pool's purge delay; then a pass purges them (MADV_DONTNEED)
 * and unmaps chunks left empty and clean. Cached huge mappings age the same
 * way. Passes run from slow paths (a page taken from or given to the pool, a
 * huge free, thread exit), from the optional background thread, and in full
 * from tp_pool_trim. The delay and its adaptation are decay.c's.
 */
#include "internal.h"


/* Pool lock held. Purges what has been free for the delay (everything when
 * forced), unmaps empty clean chunks; returns the bytes given back. */
size_t tpi_pool_purge(tp_pool *pool, uint64_t now, bool force)
{
    if (!force && !tpi_decay_due(&pool->decay, now)) return 0;
    /* next_pass is read without the lock by tpi_purge_maybe_unlocked. */
    __atomic_store_n(&pool->decay.pressure_gen, atomic_load_explicit(&tpi_pressure_gen, memory_order_relaxed),
                     __ATOMIC_RELAXED);
    uint32_t now32 = (uint32_t)now;
    /* The delay in force: memory pressure shortens it (limit.c). */
    uint32_t delay = tpi_decay_delay(&pool->decay);
    uint32_t min_age = force ? 0 : delay;
    size_t released = tpi_huge_cache_purge(pool, now, min_age);
    size_t purged = 0;
    tpi_chunk *c = pool->chunks;
    while (c) {
        tpi_chunk *next = c->next;
        purged += tpi_chunk_purge(c, now32, min_age);
        /* An empty chunk stays mapped (it costs no resident memory) for 8
         * delays after its slices were purged, so that taking them back soon
         * still counts as regret; then, or on a forced pass, it is unmapped. */
        if (tpi_chunk_is_empty(c) && tpi_chunk_is_clean(c) &&
            (force || tpi_chunk_purged_before(c, now32 - 8 * delay))) {
            tpi_pool_unlink_chunk(pool, c);
            tpi_chunk_destroy(c);
        }
        c = next;
    }
    tpi_pool_count_purge(pool, purged);
    tpi_decay_on_pass(&pool->decay, now32);
    atomic_fetch_add_explicit(&pool->purge_epoch, 1, memory_order_relaxed);
    uint64_t step = delay / 4;
    __atomic_store_n(&pool->decay.next_pass, now + (step > 10 ? step : 10), __ATOMIC_RELAXED);
    return released + purged;
}

/* Pool lock held. Unmaps cached mappings at least `min_age` ms old. */
size_t tpi_huge_cache_purge(tp_pool *pool, uint64_t now, uint32_t min_age)
{
    size_t released = 0;
    tpi_huge *h = pool->huge_cache;
    while (h) {
        tpi_huge *next = h->next;
        if (now - h->freed_ms >= min_age || now < h->freed_ms) {
            tpi_huge_unlink_from(&pool->huge_cache, h);
            pool->huge_cache_bytes -= h->map_size;
            pool->mapped -= h->map_size;
            released += h->map_size;
            tpi_limit_release((size_t)h->committed_pages * TPI_OS_PAGE); /* huge.c counted these */
            tpi_os_unmap(h, h->map_size);
        }
        h = next;
    }
    return released;
}

/* Pool lock held. Unmaps every chunk with no page in use, dirty or not
 * (when the memory limit needs the room). Returns the bytes unmapped. */
size_t tpi_pool_release_empty_chunks(tp_pool *pool)
{
    size_t released = 0;
    tpi_chunk *c = pool->chunks;
    while (c) {
        tpi_chunk *next = c->next;
        if (tpi_chunk_is_empty(c)) {
            tpi_pool_unlink_chunk(pool, c);
            tpi_chunk_destroy(c);
            released += TPI_CHUNK_SIZE;
        }
        c = next;
    }
    return released;
}

/* A pass if one is due; cheap to call from slow paths (pool lock held). */
void tpi_purge_maybe(tp_pool *pool)
{
    uint64_t now = tpi_clock();
    if (tpi_decay_due(&pool->decay, now)) tpi_pool_purge(pool, now, false);
}

/* The same from a slow path that holds no lock: the lock is taken only when
 * a pass is due. */
void tpi_purge_maybe_unlocked(tp_pool *pool)
{
    uint64_t now = tpi_clock();
    tpi_run_heap_purge(pool, now, false);
    if (!tpi_decay_due(&pool->decay, now)) return;
    /* As often as passes come (every quarter delay, 10 ms at least). */
    tpi_limit_refresh(false);
    pthread_mutex_lock(&pool->lock);
    tpi_pool_purge(pool, now, false);
    pthread_mutex_unlock(&pool->lock);
}

/* ---- the background thread -------------------------------------------------------------- */

static _Atomic int tpi_background_started;

static void tpi_background_visit(tp_pool *pool, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool->lock);
    tpi_purge_maybe(pool);
    pthread_mutex_unlock(&pool->lock);
    tpi_run_heap_purge(pool, tpi_clock(), false);
}

static void *tpi_background_main(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t ms = (uint64_t)TPI_OPTION(purge_delay_ms) / 4;
        if (ms < 10) ms = 10;
        if (ms > 1000) ms = 1000;
        /* Woken early by a PSI trigger when the kernel reports stalls. */
        tpi_limit_wait(ms);
        tpi_limit_refresh(false);
        tpi_pools_each(tpi_background_visit, NULL);
    }
    return NULL;
}

/* Starts the thread once, lazily, from a slow path that holds no lock. */
void tpi_background_ensure(void)
{
    if (!TPI_OPTION(background_purge)) return;
    if (atomic_load_explicit(&tpi_background_started, memory_order_relaxed)) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&tpi_background_started, &expected, 1)) return;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, tpi_background_main, NULL) != 0)
        atomic_store(&tpi_background_started, 0);
    pthread_attr_destroy(&attr);
}

/* The child of a fork has no background thread: start one again lazily. */
void tpi_background_after_fork(void)
{
    atomic_store(&tpi_background_started, 0);
    tpi_limit_after_fork();
}
