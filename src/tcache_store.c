/* SPDX-License-Identifier: MIT */
/*
 * tcache_store.c: where thread caches come from and go back to.
 *
 * Thread caches live outside every pool's chunks, so that none keeps a chunk
 * (of either kind) mapped, nor counts against a pool's memory limit: they
 * are carved from mappings of their own, recycled by their pool while it
 * lives, and by any pool once it is reset or destroyed. A thread that exits
 * hands its tcache's counters to the pool, and the tcache to the pool's list
 * of unused ones.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define TPI_META_MAP ((size_t)256 << 10)

static pthread_mutex_t tpi_meta_lock = PTHREAD_MUTEX_INITIALIZER;
static tpi_tcache *tpi_meta_free; /* tcaches of pools reset or destroyed */
static char *tpi_meta_next;       /* carving point in the newest mapping */
static size_t tpi_meta_left;

static tpi_tcache *tpi_tcache_new(void)
{
    size_t size = (sizeof(tpi_tcache) + 63) & ~(size_t)63;
    pthread_mutex_lock(&tpi_meta_lock);
    tpi_tcache *tc = tpi_meta_free;
    if (tc) {
        tpi_meta_free = tc->next_free;
    } else {
        if (tpi_meta_left < size) {
            tpi_meta_next = tpi_os_map_aligned(TPI_META_MAP, TPI_OS_PAGE, 0);
            tpi_meta_left = tpi_meta_next ? TPI_META_MAP : 0;
        }
        if (tpi_meta_left >= size) {
            tc = (tpi_tcache *)tpi_meta_next;
            tpi_meta_next += size;
            tpi_meta_left -= size;
        }
    }
    pthread_mutex_unlock(&tpi_meta_lock);
    return tc;
}

/* Pool lock held: a cleared pool's tcaches (on list `next` links `first`)
 * become anyone's. Threads holding one see the pool's generation change and
 * never touch it again. */
void tpi_tcache_retire_list(tpi_tcache *first, size_t link_offset)
{
    pthread_mutex_lock(&tpi_meta_lock);
    while (first) {
        tpi_tcache *next = *(tpi_tcache **)((char *)first + link_offset);
        first->next_free = tpi_meta_free;
        tpi_meta_free = first;
        first = next;
    }
    pthread_mutex_unlock(&tpi_meta_lock);
}

/* NULL with errno ENOMEM, or EINVAL for a destroyed pool: its struct waits
 * for reuse, and a tcache would map it a chunk that nothing frees. */
tpi_tcache *tpi_pool_tcache_acquire(tp_pool *pool, uintptr_t thread_id)
{
    pthread_mutex_lock(&pool->lock);
    if (!pool->live) {
        pthread_mutex_unlock(&pool->lock);
        errno = EINVAL;
        return NULL;
    }
    tpi_tcache *tc = pool->free_tcaches;
    uintptr_t delayed = 0;
    if (tc) {
        pool->free_tcaches = tc->next_free;
        /* A recycled tcache may still receive a late delayed free: keep it. */
        delayed = atomic_exchange_explicit(&tc->delayed_free, 0, memory_order_acquire);
    }
    pthread_mutex_unlock(&pool->lock);
    if (!tc && (tc = tpi_tcache_new()) == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    tpi_tcache_init(tc, pool, thread_id);
    atomic_store_explicit(&tc->delayed_free, delayed, memory_order_relaxed);
    pthread_mutex_lock(&pool->lock);
    tc->live_prev = NULL;
    tc->live_next = pool->live_tcaches;
    if (pool->live_tcaches) pool->live_tcaches->live_prev = tc;
    pool->live_tcaches = tc;
    pthread_mutex_unlock(&pool->lock);
    return tc;
}

/* Pool lock held: the tcache's counts move to the pool's. */
void tpi_pool_fold_counters(tp_pool *pool, const tpi_tcache *tc)
{
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        tpi_class_counters *r = &pool->retired[cls];
        const tpi_class_counters *c = &tc->counters[cls];
        r->allocs += c->allocs;
        r->requested += c->requested;
        r->refills += c->refills;
        r->flushes += c->flushes;
        r->remote_frees += c->remote_frees;
        r->run_frees += c->run_frees;
        r->run_bytes += c->run_bytes;
    }
    for (unsigned slot = 0; slot < TPI_SMALL_SLOTS; slot++)
        pool->retired[tpi_small_class[slot]].fast_allocs += tc->slot_allocs[slot];
}

void tpi_pool_tcache_release(tp_pool *pool, tpi_tcache *tc)
{
    pthread_mutex_lock(&pool->lock);
    tpi_pool_fold_counters(pool, tc);
    if (tc->live_prev) tc->live_prev->live_next = tc->live_next; else pool->live_tcaches = tc->live_next;
    if (tc->live_next) tc->live_next->live_prev = tc->live_prev;
    tc->next_free = pool->free_tcaches;
    pool->free_tcaches = tc;
    pthread_mutex_unlock(&pool->lock);
}

/* Around fork, after every pool's locks (process.c). */
void tpi_tcache_store_lock(void)
{
    pthread_mutex_lock(&tpi_meta_lock);
}

void tpi_tcache_store_unlock(void)
{
    pthread_mutex_unlock(&tpi_meta_lock);
}
