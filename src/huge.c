/* SPDX-License-Identifier: MIT */
/*
 * huge.c: blocks above 1 MiB, each in a mapping of its own.
 *
 * The mapping starts on a chunk boundary with a header (tpi_huge); the block
 * follows at `offset` (64 bytes, or the alignment asked for, at most one
 * chunk). So the header is at ((p - 1) & ~chunk mask) and the registry marks
 * the chunk holding p as TPI_REG_HUGE. Mappings are whole chunks of address
 * space (only touched OS pages become resident), so no one else's mapping
 * can share a chunk with them. realloc moves pages with mremap, never copies.
 *
 * In secure mode an OS page before the block and the mapping's last OS page
 * are guards (PROT_NONE), the block moving to offset 8 KiB.
 *
 * Freed mappings of ordinary alignment go to a small per-pool cache (at most
 * HUGE_CACHE bytes) until a purge pass finds them older than the purge
 * delay. A request takes the smallest cached mapping that holds it; the
 * resident pages past what it needs go back at once when they are many
 * (so a cached 16 MiB block serves a 2 MiB one without faults, and without
 * keeping 14 MiB resident).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define TPI_HUGE_OFFSET 64u
#define TPI_HUGE_GUARDED_OFFSET (2u * TPI_OS_PAGE) /* header page, guard page */
_Static_assert(sizeof(tpi_huge) <= TPI_HUGE_OFFSET, "the huge header overlaps its block");

static size_t tpi_round_chunk(size_t n)
{
    return (n + TPI_CHUNK_MASK) & ~(size_t)TPI_CHUNK_MASK;
}

/* Bytes of guard after the block: one OS page in secure mode. */
static size_t tpi_huge_guard(void)
{
    return tpi_secure ? TPI_OS_PAGE : 0;
}

/* The block's offset from the header for ordinary alignments. */
static size_t tpi_huge_offset(void)
{
    return tpi_secure ? TPI_HUGE_GUARDED_OFFSET : TPI_HUGE_OFFSET;
}

static bool tpi_huge_protect_tail(tpi_huge *h)
{
    return !tpi_secure || tpi_os_protect((char *)h + h->map_size - TPI_OS_PAGE, TPI_OS_PAGE);
}

/* Puts the guards around a new mapping's block; false if the kernel refuses. */
static bool tpi_huge_protect(tpi_huge *h)
{
    if (!tpi_secure) return true;
    return tpi_os_protect(tpi_huge_block(h) - TPI_OS_PAGE, TPI_OS_PAGE) && tpi_huge_protect_tail(h);
}

static void tpi_huge_register(tpi_huge *h)
{
    uintptr_t base = (uintptr_t)h, block = (uintptr_t)tpi_huge_block(h);
    uintptr_t block_chunk = block & ~(uintptr_t)TPI_CHUNK_MASK;
    if (block_chunk > base) tpi_registry_set(base, block_chunk - base, TPI_REG_HUGE_REST, TPI_REG_HUGE_REST);
    tpi_registry_set(block_chunk, base + h->map_size - block_chunk, TPI_REG_HUGE, TPI_REG_HUGE_REST);
}

static void tpi_huge_unregister(tpi_huge *h)
{
    tpi_registry_set((uintptr_t)h, h->map_size, TPI_REG_NONE, TPI_REG_NONE);
}

/* Pool lock held for these three: the live list and its byte count. */
static void tpi_huge_link(tp_pool *pool, tpi_huge *h)
{
    tpi_huge_link_to(&pool->huge, h);
    pool->huge_live_bytes += h->map_size;
    tpi_pool_note_peak(pool);
}

static void tpi_huge_unlink(tp_pool *pool, tpi_huge *h)
{
    tpi_huge_unlink_from(&pool->huge, h);
    pool->huge_live_bytes -= h->map_size;
}

static void tpi_huge_account(tp_pool *pool, tpi_huge *h)
{
    tpi_huge_link(pool, h);
    pool->huge_allocs++;
}

/* ---- memory committed (limit.c) --------------------------------------------------
 * A huge block counts the OS pages from its header through the bytes asked
 * for (the most asked for while it lived, and lives again from the cache),
 * not its whole mapping of 4 MiB units: only what a request covers is ever
 * touched, unless a program writes past it into the usable rest. */

/* OS pages a request of `size` bytes at `offset` covers from the header on. */
static size_t tpi_huge_pages_for(size_t offset, size_t size)
{
    return (offset + size + TPI_OS_PAGE - 1) / TPI_OS_PAGE;
}

/* Counts the pages a request of `size` bytes covers beyond those counted;
 * false (errno ENOMEM) if the limit refuses them. */
static bool tpi_huge_commit(tpi_huge *h, size_t size)
{
    size_t pages = tpi_huge_pages_for(h->offset, size);
    if (pages <= h->committed_pages) return true;
    if (!tpi_limit_commit((pages - h->committed_pages) * TPI_OS_PAGE)) return false;
    h->committed_pages = pages;
    return true;
}

/* A cached mapping taken for a smaller request: the OS pages the old block
 * covered past the new one go back now, or they would stay resident and
 * unused for as long as the block lives. Within an eighth of the need, or
 * 64 KiB, they stay: a madvise and the faults after it cost more. */
static void tpi_huge_trim_tail(tpi_huge *h, size_t size)
{
    size_t need = tpi_huge_pages_for(h->offset, size), have = h->committed_pages;
    if (have <= need + need / 8 || have - need < 16) return;
    tpi_os_purge((char *)h + need * TPI_OS_PAGE, (have - need) * TPI_OS_PAGE);
    tpi_limit_release((have - need) * TPI_OS_PAGE);
    h->committed_pages = need;
}

/* The mapping goes: its pages stop counting. */
static void tpi_huge_uncommit(tpi_huge *h)
{
    tpi_limit_release((size_t)h->committed_pages * TPI_OS_PAGE);
    h->committed_pages = 0;
}

/* Pool lock held. The smallest cached mapping of at least `map_size`: a
 * longer one serves as well, its address space costing nothing and its
 * resident tail going back (tpi_huge_trim_tail). */
static tpi_huge *tpi_huge_cache_take(tp_pool *pool, size_t map_size)
{
    tpi_huge *best = NULL;
    for (tpi_huge *h = pool->huge_cache; h; h = h->next)
        if (h->map_size >= map_size && (!best || h->map_size < best->map_size)) best = h;
    if (best) {
        tpi_huge_unlink_from(&pool->huge_cache, best);
        pool->huge_cache_bytes -= best->map_size;
    }
    return best;
}

/* A block's usable and requested sizes, from nothing (a new block) or from
 * its old ones (realloc in place); exact statistics count the change. */
static void tpi_huge_set_sizes(tpi_huge *h, size_t old_usable, size_t usable, size_t requested)
{
    if (tpi_stats_exact)
        tpi_exact_on_huge(h->pool, (int64_t)usable - (int64_t)old_usable, (int64_t)requested - (int64_t)h->requested);
    h->size = usable;
    h->requested = requested;
}

void *tpi_huge_malloc(tp_pool *pool, size_t size, size_t alignment, bool zero)
{
    if (size > TPI_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    if (size == 0) size = 1; /* the block must lie inside its mapping */
    if (alignment <= tpi_huge_offset()) {
        size_t map_size = tpi_round_chunk(tpi_huge_offset() + size + tpi_huge_guard());
        pthread_mutex_lock(&pool->lock);
        tpi_huge *h = tpi_huge_cache_take(pool, map_size);
        bool refused = h && !tpi_huge_commit(h, size);
        if (refused) { /* back where it was, for a request that fits */
            tpi_huge_link_to(&pool->huge_cache, h);
            pool->huge_cache_bytes += h->map_size;
            h = NULL;
        }
        if (h) tpi_huge_account(pool, h);
        pthread_mutex_unlock(&pool->lock);
        if (refused) {
            errno = ENOMEM;
            return NULL;
        }
        if (h) {
            tpi_huge_trim_tail(h, size);
            h->magic = TPI_HUGE_MAGIC;
            h->requested = 0;
            tpi_huge_set_sizes(h, 0, h->size, size);
            tpi_huge_register(h);
            tpi_track_malloc(pool, tpi_huge_block(h), size, h->size, false);
            if (zero) memset(tpi_huge_block(h), 0, size);
            return tpi_huge_block(h);
        }
    }
    size_t offset = alignment > tpi_huge_offset() ? alignment : tpi_huge_offset();
    size_t map_align = TPI_CHUNK_SIZE, map_offset = 0;
    if (offset > TPI_CHUNK_SIZE) {
        /* Alignment above a chunk: the header takes the chunk before p. */
        map_align = alignment;
        offset = map_offset = TPI_CHUNK_SIZE;
    }
    size_t map_size = tpi_round_chunk(offset + size + tpi_huge_guard());
    pthread_mutex_lock(&pool->lock);
    bool charged = tpi_pool_charge(pool, map_size);
    pthread_mutex_unlock(&pool->lock);
    size_t committed = tpi_huge_pages_for(offset, size) * TPI_OS_PAGE;
    if (charged && !tpi_limit_commit(committed)) {
        pthread_mutex_lock(&pool->lock);
        pool->mapped -= map_size;
        pthread_mutex_unlock(&pool->lock);
        charged = false;
    }
    if (!charged) {
        errno = ENOMEM;
        return NULL;
    }
    char *base = tpi_pool_map(pool, map_size, map_align, map_offset);
    tpi_huge *h = (tpi_huge *)base;
    if (base) {
        h->offset = offset;
        h->committed_pages = committed / TPI_OS_PAGE;
        h->map_size = map_size;
        if (!tpi_huge_protect(h)) {
            tpi_os_unmap(base, map_size);
            base = NULL;
        }
    }
    if (!base) {
        tpi_limit_release(committed);
        pthread_mutex_lock(&pool->lock);
        pool->mapped -= map_size;
        pthread_mutex_unlock(&pool->lock);
        errno = ENOMEM;
        return NULL;
    }
    h->magic = TPI_HUGE_MAGIC;
    h->pool = pool;
    h->requested = 0;
    tpi_huge_set_sizes(h, 0, map_size - offset - tpi_huge_guard(), size);
    tpi_huge_register(h);
    pthread_mutex_lock(&pool->lock);
    tpi_huge_account(pool, h);
    pthread_mutex_unlock(&pool->lock);
    /* A fresh mapping reads as zero: defined when zero was asked for. */
    tpi_track_malloc_in(pool, tpi_huge_block(h), size, h->size, zero, true);
    return tpi_huge_block(h);
}

tpi_huge *tpi_huge_of(const void *p)
{
    /* The header's chunk is p's, or the one before when p starts a chunk. */
    if (tpi_registry_get((uintptr_t)p - 1) == TPI_REG_NONE) return NULL;
    tpi_huge *h = (tpi_huge *)(((uintptr_t)p - 1) & ~(uintptr_t)TPI_CHUNK_MASK);
    if (h->magic != TPI_HUGE_MAGIC || tpi_huge_block(h) != p) return NULL;
    return h;
}

void tpi_huge_free(void *p)
{
    tpi_huge *h = tpi_huge_of(p);
    if (!h) tpi_fatal("free of a pointer that is not a live huge block (inside one, or freed twice)", p);
    tp_pool *pool = h->pool;
    tpi_huge_unregister(h);
    h->magic = 0;
    if (tpi_stats_exact) tpi_exact_on_huge(pool, -(int64_t)h->size, -(int64_t)h->requested);
    bool cache = (size_t)((char *)p - (char *)h) == tpi_huge_offset();
    pthread_mutex_lock(&pool->lock);
    tpi_huge_unlink(pool, h);
    cache = cache && pool->huge_cache_bytes + h->map_size <= (size_t)TPI_OPTION(huge_cache_bytes);
    /* Before another thread can take it from the cache; poisoned only when
     * it stays mapped. */
    tpi_track_free(pool, p, cache ? h->size : 0);
    if (cache) {
        h->freed_ms = tpi_clock();
        tpi_huge_link_to(&pool->huge_cache, h);
        pool->huge_cache_bytes += h->map_size;
    } else {
        pool->mapped -= h->map_size;
    }
    tpi_purge_maybe(pool);
    pthread_mutex_unlock(&pool->lock);
    if (!cache) {
        tpi_huge_uncommit(h);
        tpi_os_unmap(h, h->map_size);
    }
}

void *tpi_huge_realloc(void *p, size_t size)
{
    tpi_huge *h = tpi_huge_of(p);
    if (!h) tpi_fatal("realloc of a pointer inside a huge block", p);
    if (size > TPI_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    tp_pool *pool = h->pool;
    size_t offset = h->offset;
    size_t old_map = h->map_size, new_map = tpi_round_chunk(offset + size + tpi_huge_guard());
    size_t old_usable = h->size, old_size = tpi_track_size_of(p, old_usable); /* old_usable but under a checker */
    if (new_map == old_map) {
        if (!tpi_huge_commit(h, size)) return NULL; /* errno ENOMEM, p unchanged */
        tpi_track_resize(pool, p, p, old_size, old_usable, size, old_usable);
        tpi_huge_set_sizes(h, old_usable, old_usable, size);
        return p;
    }
    if (new_map < old_map) {
        size_t new_usable = new_map - offset - tpi_huge_guard();
        tpi_track_resize(pool, p, p, old_size, old_usable, size, new_usable);
        h->map_size = new_map;
        if (!tpi_huge_protect_tail(h)) {
            h->map_size = old_map;
            tpi_track_resize(pool, p, p, size, new_usable, old_size, old_usable);
            errno = ENOMEM;
            return NULL;
        }
        tpi_registry_set((uintptr_t)h + new_map, old_map - new_map, TPI_REG_NONE, TPI_REG_NONE);
        tpi_os_unmap((char *)h + new_map, old_map - new_map);
        size_t kept = new_map / TPI_OS_PAGE; /* the pages counted past it are gone */
        if (h->committed_pages > kept) {
            tpi_limit_release((size_t)(h->committed_pages - kept) * TPI_OS_PAGE);
            h->committed_pages = kept;
        }
        pthread_mutex_lock(&pool->lock);
        pool->mapped -= old_map - new_map;
        pool->huge_live_bytes -= old_map - new_map;
        pthread_mutex_unlock(&pool->lock);
        tpi_huge_set_sizes(h, old_usable, new_map - offset - tpi_huge_guard(), size);
        return p;
    }
    if (tpi_secure) {
        /* mremap moves one mapping, and the guards split this one in parts:
         * secure mode grows by copying. */
        void *q = tpi_huge_malloc(pool, size, 0, false);
        if (!q) return NULL;
        memcpy(q, p, old_size);
        tpi_huge_free(p);
        return q;
    }
    size_t counted = h->committed_pages;
    if (!tpi_huge_commit(h, size)) return NULL; /* errno ENOMEM */
    size_t grown = (size_t)(h->committed_pages - counted) * TPI_OS_PAGE;
    pthread_mutex_lock(&pool->lock);
    bool charged = tpi_pool_charge(pool, new_map - old_map);
    if (charged) tpi_huge_unlink(pool, h);
    pthread_mutex_unlock(&pool->lock);
    if (!charged) {
        tpi_limit_release(grown);
        h->committed_pages = counted;
        errno = ENOMEM;
        return NULL;
    }
    tpi_huge *moved = h;
    if (!tpi_os_resize_in_place(h, old_map, new_map)) {
        /* Reserve an aligned destination, then move the pages into it. */
        void *dest = tpi_pool_map(pool, new_map, TPI_CHUNK_SIZE, 0);
        /* The old range stops being ours the moment mremap releases it, and
         * another thread may map it at once: unregister it before. */
        if (dest) {
            tpi_registry_set((uintptr_t)h, old_map, TPI_REG_NONE, TPI_REG_NONE);
            moved = tpi_os_remap(h, old_map, new_map, dest);
        }
        if (!dest || !moved) {
            if (dest) {
                tpi_os_unmap(dest, new_map);
                tpi_huge_register(h);
            }
            tpi_limit_release(grown);
            h->committed_pages = counted;
            pthread_mutex_lock(&pool->lock);
            pool->mapped -= new_map - old_map;
            tpi_huge_link(pool, h);
            pthread_mutex_unlock(&pool->lock);
            errno = ENOMEM;
            return NULL;
        }
    }
    moved->map_size = new_map;
    tpi_huge_set_sizes(moved, old_usable, new_map - offset - tpi_huge_guard(), size);
    tpi_huge_register(moved);
    pthread_mutex_lock(&pool->lock);
    tpi_huge_link(pool, moved);
    pthread_mutex_unlock(&pool->lock);
    tpi_track_resize(pool, p, tpi_huge_block(moved), old_size, old_usable, size, moved->size);
    return tpi_huge_block(moved);
}

/* Pool lock held (destroy and reset). */
void tpi_huge_release_all(tp_pool *pool)
{
    tpi_huge *h = pool->huge;
    while (h) {
        tpi_huge *next = h->next;
        pool->mapped -= h->map_size;
        tpi_huge_uncommit(h);
        tpi_huge_unregister(h);
        h->magic = 0;
        tpi_os_unmap(h, h->map_size);
        h = next;
    }
    pool->huge = NULL;
    pool->huge_live_bytes = 0;
    tpi_huge_cache_purge(pool, 0, 0);
}
