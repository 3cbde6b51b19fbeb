/* SPDX-License-Identifier: MIT */
/*
 * pool_base.c: what the page source knows of pools: the list of every pool
 * struct (for fork, purge passes and statistics), the default pool's struct,
 * and a pool's mapped bytes against its memory limit.
 *
 * A mapping that would pass the limit, or that the OS refuses, first makes
 * the pool give back what it keeps without use: the pool layer, which alone
 * reaches the thread caches, registers that reclaim at start-up.
 * Lock order: tpi_pools_lock, then a pool's lock.
 */
#include "internal.h"

static pthread_mutex_t tpi_pools_lock = PTHREAD_MUTEX_INITIALIZER;
static tp_pool *tpi_pools_all = &tpi_pool_default_instance; /* every pool struct ever made */
static uint32_t tpi_pools_next_id = 1;

tp_pool tpi_pool_default_instance = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .runs.lock = TPI_LOCK_INIT,
    .id = 0,
    .name = "default",
    .live = true,
};

/* ---- the list of pools ------------------------------------------------------------------ */

/* Taken in a fixed order before fork and released after it in both
 * processes, so the child never inherits a lock held by a vanished thread. */
void tpi_pools_lock_all(void)
{
    pthread_mutex_lock(&tpi_pools_lock);
    for (tp_pool *p = tpi_pools_all; p; p = p->next) {
        pthread_mutex_lock(&p->lock);
        tpi_lock_take(&p->runs.lock);
    }
}

/* Every pool struct, live or not, with the pools lock held by the caller
 * (the child of a fork, every lock still held). */
void tpi_pools_each_held(void (*fn)(tp_pool *pool, void *arg), void *arg)
{
    for (tp_pool *p = tpi_pools_all; p; p = p->next) fn(p, arg);
}

void tpi_pools_unlock_all(void)
{
    for (tp_pool *p = tpi_pools_all; p; p = p->next) {
        tpi_lock_give(&p->runs.lock);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&tpi_pools_lock);
}

/* Runs fn on every live pool while holding the pools lock. */
void tpi_pools_each(void (*fn)(tp_pool *pool, void *arg), void *arg)
{
    pthread_mutex_lock(&tpi_pools_lock);
    for (tp_pool *p = tpi_pools_all; p; p = p->next)
        if (p->live) fn(p, arg);
    pthread_mutex_unlock(&tpi_pools_lock);
}

pthread_mutex_t *tpi_pools_mutex(void)
{
    return &tpi_pools_lock;
}

/* Pools lock held: a new pool struct joins the list, with the next id. */
typedef struct tpi_pool_list {
    tp_pool **pools;
    size_t count, cap;
} tpi_pool_list;

static void tpi_pools_list_one(tp_pool *pool, void *arg)
{
    tpi_pool_list *list = arg;
    if (list->count < list->cap) list->pools[list->count++] = pool;
}

size_t tpi_pools_list(tp_pool **out, size_t cap)
{
    tpi_pool_list list = {out, 0, cap};
    tpi_pools_each(tpi_pools_list_one, &list);
    return list.count;
}

void tpi_pools_add(tp_pool *pool)
{
    pool->id = tpi_pools_next_id++;
    pool->next = tpi_pools_all;
    tpi_pools_all = pool;
}

/* ---- memory accounting ------------------------------------------------------ */

/* What the pool keeps without use, given back (pool.c, registered at
 * start-up): the pool layer's to know, for it reaches the thread caches. */
static size_t (*tpi_pool_reclaim_fn)(tp_pool *pool);

void tpi_pool_set_reclaim(size_t (*fn)(tp_pool *pool))
{
    __atomic_store_n(&tpi_pool_reclaim_fn, fn, __ATOMIC_RELEASE);
}

/* Pool lock held. Unmaps the address space the pool holds without use;
 * returns the bytes unmapped. */
size_t tpi_pool_reclaim(tp_pool *pool)
{
    size_t (*fn)(tp_pool *) = __atomic_load_n(&tpi_pool_reclaim_fn, __ATOMIC_ACQUIRE);
    return fn ? fn(pool) : 0;
}

static bool tpi_pool_over_limit(const tp_pool *pool, size_t bytes)
{
    return pool->memory_limit && (pool->mapped + bytes > pool->memory_limit || pool->mapped + bytes < bytes);
}

/* Pool lock held. Counts `bytes` of new mappings against the limit, first
 * making room if it can. */
bool tpi_pool_charge(tp_pool *pool, size_t bytes)
{
    if (tpi_pool_over_limit(pool, bytes)) tpi_pool_reclaim(pool);
    if (tpi_pool_over_limit(pool, bytes)) return false;
    pool->mapped += bytes;
    return true;
}

/* Pool lock held. Before the pool maps a run chunk, the free slices of its
 * slab chunks, which runs cannot use, go back (run.c, tpi_run_heap_grow). */
size_t tpi_pool_purge_free_slices(tp_pool *pool)
{
    uint32_t now = (uint32_t)tpi_clock();
    size_t purged = 0;
    for (tpi_chunk *c = pool->chunks; c; c = c->next) purged += tpi_chunk_purge(c, now, 0);
    tpi_pool_count_purge(pool, purged);
    return purged;
}

void tpi_pool_count_purge(tp_pool *pool, size_t purged)
{
    if (purged) {
        pool->purged_bytes += purged;
        pool->purges++;
    }
}

/* A mapping for the pool, no lock held. When the OS refuses it (RLIMIT_AS,
 * strict overcommit), what the pool keeps without use goes back and the
 * mapping is tried once more: memory the program freed, still held as
 * empty chunks or cached huge mappings, serves it. */
void *tpi_pool_map(tp_pool *pool, size_t size, size_t alignment, size_t offset)
{
    void *p = tpi_os_map_aligned(size, alignment, offset);
    if (p) return p;
    pthread_mutex_lock(&pool->lock);
    size_t released = tpi_pool_reclaim(pool);
    pthread_mutex_unlock(&pool->lock);
    return released ? tpi_os_map_aligned(size, alignment, offset) : NULL;
}

/* Pool lock held: after memory in use grew. */
void tpi_pool_note_peak(tp_pool *pool)
{
    size_t in_use = pool->page_bytes + pool->huge_live_bytes;
    if (in_use > pool->peak_page_bytes) pool->peak_page_bytes = in_use;
}

void tpi_pool_unlink_chunk(tp_pool *pool, tpi_chunk *c)
{
    if (c->prev) c->prev->next = c->next; else pool->chunks = c->next;
    if (c->next) c->next->prev = c->prev;
    pool->mapped -= TPI_CHUNK_SIZE;
}
