/* SPDX-License-Identifier: MIT */
/*
 * pool.c: pools. A pool owns chunks (carved into pages for the tcaches of
 * every thread that uses it), huge blocks, and the pages of exited threads.
 * Its lock guards only slow paths: taking and returning runs of slices,
 * huge blocks, abandoned pages, tcache metadata.
 *
 * Pool structures are never unmapped, only reused: a thread still holding a
 * tcache of a destroyed pool reads `gen` from the structure and sees that the
 * tcache is stale. Destroyed structures are reused oldest first, and only
 * once TPI_POOL_QUARANTINE others wait, so that a handle used after
 * tp_pool_destroy keeps finding its dead pool (tp_pool_destroy aborts,
 * allocation is refused) through a few more tp_pool_create calls.
 * Lock order: tpi_pools_lock, then a pool's lock.
 */
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

static pthread_mutex_t tpi_pools_lock = PTHREAD_MUTEX_INITIALIZER;
static tp_pool *tpi_pools_all = &tpi_pool_default_instance; /* every pool struct ever made */
#define TPI_POOL_QUARANTINE 4 /* destroyed structs that wait before one is reused */
static tp_pool *tpi_pools_free;                            /* destroyed, for reuse, oldest first */
static tp_pool **tpi_pools_free_end = &tpi_pools_free;
static unsigned tpi_pools_free_count;
static uint32_t tpi_pools_next_id = 1;

tp_pool tpi_pool_default_instance = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
#if defined(PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP)
    .runs.lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
#else
    .runs.lock = PTHREAD_MUTEX_INITIALIZER,
#endif
    .id = 0,
    .name = "default",
    .live = true,
};

/* The run heap's lock is held for a few hundred cycles at a time by every
 * thread of the pool: it spins a while before it sleeps (glibc's adaptive
 * mutex), where a plain one would put a waiter to sleep at once. */
static void tpi_run_heap_lock_init(pthread_mutex_t *lock)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#if defined(PTHREAD_MUTEX_ADAPTIVE_NP)
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(lock, &attr);
    pthread_mutexattr_destroy(&attr);
}

/* ---- memory accounting ------------------------------------------------------ */

static bool tpi_pool_over_limit(const tp_pool *pool, size_t bytes)
{
    return pool->memory_limit && (pool->mapped + bytes > pool->memory_limit || pool->mapped + bytes < bytes);
}

/* Pool lock held. Unmaps the address space the pool holds without use:
 * cached huge mappings, and chunks with no page in use (once abandoned
 * pages' remote frees are collected). Returns the bytes unmapped. */
size_t tpi_pool_reclaim(tp_pool *pool)
{
    size_t released = tpi_huge_cache_purge(pool, 0, 0);
    tpi_pool_collect_abandoned(pool);
    /* The caller's cached runs may be all that keeps a run chunk. */
    tpi_tcache *tc = tpi_thread_tcache_peek(pool);
    if (tc) tpi_run_cache_flush(tc);
    released += tpi_run_heap_release_empty(pool);
    return released + tpi_pool_release_empty_chunks(pool);
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

void tpi_pool_unlink_chunk(tp_pool *pool, tpi_chunk *c)
{
    if (c->prev) c->prev->next = c->next; else pool->chunks = c->next;
    if (c->next) c->next->prev = c->prev;
    pool->mapped -= TPI_CHUNK_SIZE;
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
    atomic_store_explicit(&page->owner, tc->owner_word, memory_order_release);
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

/* ---- tcache metadata ------------------------------------------------------------------
 * Thread caches live outside every pool's chunks, so that none keeps a chunk
 * (of either kind) mapped, nor counts against a pool's memory limit: they
 * are carved from mappings of their own, recycled by their pool while it
 * lives, and by any pool once it is reset or destroyed. */

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
static void tpi_tcache_retire_list(tpi_tcache *first, size_t link_offset)
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
static void tpi_pool_fold_counters(tp_pool *pool, const tpi_tcache *tc)
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

/* ---- create, destroy, reset, trim --------------------------------------------------- */

static void tpi_pool_set_name(tp_pool *pool, const char *name)
{
    memset(pool->name, 0, sizeof pool->name);
    if (name) memcpy(pool->name, name, tpi_utf8_prefix(name, sizeof pool->name - 1)); /* whole characters */
}

tp_pool *tp_pool_create(const char *name, const tp_pool_config *config)
{
    tpi_process_ensure_init(); /* the options the pool starts from */
    pthread_mutex_lock(&tpi_pools_lock);
    tp_pool *pool = tpi_pools_free_count > TPI_POOL_QUARANTINE ? tpi_pools_free : NULL;
    if (pool) {
        tpi_pools_free = pool->next_free;
        tpi_pools_free_count--;
    } else {
        pool = tpi_os_map_aligned((sizeof(tp_pool) + TPI_OS_PAGE - 1) & ~(size_t)(TPI_OS_PAGE - 1), TPI_OS_PAGE, 0);
        if (!pool) {
            pthread_mutex_unlock(&tpi_pools_lock);
            errno = ENOMEM;
            return NULL;
        }
        pthread_mutex_init(&pool->lock, NULL);
        tpi_run_heap_lock_init(&pool->runs.lock);
        pool->id = tpi_pools_next_id++;
        pool->next = tpi_pools_all;
        tpi_pools_all = pool;
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
    pthread_mutex_unlock(&tpi_pools_lock);
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
    pthread_mutex_lock(&tpi_pools_lock);
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
    pthread_mutex_unlock(&tpi_pools_lock);
}

void tp_pool_reset(tp_pool *pool)
{
    if (!pool || pool == &tpi_pool_default_instance) return;
    pthread_mutex_lock(&tpi_pools_lock);
    if (!pool->live) tpi_fatal_pool("tp_pool_reset of a destroyed pool", pool);
    pthread_mutex_lock(&pool->lock);
    tpi_pool_clear(pool, true);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(&tpi_pools_lock);
}

size_t tp_pool_trim(tp_pool *pool)
{
    tpi_process_ensure_init();
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
    pthread_mutex_lock(&pool->runs.lock);
    out->run_chunks = pool->runs.mapped_chunks;
    out->run_bytes = pool->runs.used_bytes;
    pthread_mutex_unlock(&pool->runs.lock);
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

/* ---- fork ------------------------------------------------------------------------------ */

/* Taken in a fixed order before fork and released after it in both
 * processes, so the child never inherits a lock held by a vanished thread. */
void tpi_pools_lock_all(void)
{
    pthread_mutex_lock(&tpi_pools_lock);
    for (tp_pool *p = tpi_pools_all; p; p = p->next) {
        pthread_mutex_lock(&p->lock);
        pthread_mutex_lock(&p->runs.lock);
    }
    pthread_mutex_lock(&tpi_meta_lock);
}

void tpi_pools_after_fork_child(void)
{
    for (tp_pool *p = tpi_pools_all; p; p = p->next) tpi_run_heap_after_fork(&p->runs);
}

void tpi_pools_unlock_all(void)
{
    pthread_mutex_unlock(&tpi_meta_lock);
    for (tp_pool *p = tpi_pools_all; p; p = p->next) {
        pthread_mutex_unlock(&p->runs.lock);
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

pthread_mutex_t *tpi_pools_mutex(void)
{
    return &tpi_pools_lock;
}
