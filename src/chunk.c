/* SPDX-License-Identifier: MIT */
/*
 * chunk.c: aligned chunks, their slices and page descriptors, and the chunk
 * registry that tells tierpool's pointers from everyone else's.
 *
 * A chunk is 4 MiB aligned to 4 MiB. Slice 0 holds the header (tpi_chunk);
 * slices 1..63 are handed out as pages of 1..32 slices. Each slice maps to
 * the descriptor of the page that holds it (tpi_page_empty when free), so a
 * pointer finds its page with a mask, a shift and one load.
 *
 * The registry has one byte per 4 MiB of address space (32 MiB of zero-filled
 * .bss on x86-64, touched only where chunks live). Reading it for any address
 * is safe, which makes "is this pointer ours?" one load on every free.
 *
 * Chunk functions other than the registry's run under the owning pool's lock.
 */
#include "internal.h"

/* The sentinel page: no free block, no owner, in no chunk. A free slice maps
 * to it, and so do the current pages of a thread cache with none. */
tpi_page tpi_page_empty;

uint8_t tpi_registry[TPI_REGISTRY_SIZE];

void tpi_registry_set(uintptr_t start, size_t size, uint8_t first, uint8_t rest)
{
    uintptr_t end = start + size;
    uint8_t value = first;
    for (uintptr_t a = start; a < end; a += TPI_CHUNK_SIZE) {
        __atomic_store_n(tpi_registry_byte(a), value, __ATOMIC_RELEASE);
        value = rest;
    }
}

#define TPI_ALL_SLICES (~(uint64_t)1) /* every slice but the header's */
#define TPI_LAST_SLICE ((uint64_t)1 << (TPI_SLICES_PER_CHUNK - 1))

/* The slices a chunk hands out: in secure mode the last one is a guard, so
 * an overflow off the end of one chunk's last page faults before it reaches
 * the next chunk's header. */
static uint64_t tpi_chunk_slices(void)
{
    return tpi_secure ? TPI_ALL_SLICES & ~TPI_LAST_SLICE : TPI_ALL_SLICES;
}

tpi_chunk *tpi_chunk_create(tp_pool *pool)
{
    /* The header slice counts as committed while the chunk lives (limit.c). */
    if (!tpi_limit_commit(TPI_SLICE_SIZE)) return NULL;
    tpi_chunk *chunk = tpi_os_map_aligned(TPI_CHUNK_SIZE, TPI_CHUNK_SIZE, 0);
    if (!chunk) {
        tpi_limit_release(TPI_SLICE_SIZE);
        return NULL;
    }
    if (tpi_secure) {
        /* Guards: the header's last OS page (an underflow of slice 1 faults
         * before it reaches the page descriptors) and the whole last slice. */
        if (!tpi_os_protect((char *)chunk + TPI_SLICE_SIZE - TPI_OS_PAGE, TPI_OS_PAGE) ||
            !tpi_os_protect((char *)chunk + TPI_CHUNK_SIZE - TPI_SLICE_SIZE, TPI_SLICE_SIZE)) {
            tpi_os_unmap(chunk, TPI_CHUNK_SIZE);
            tpi_limit_release(TPI_SLICE_SIZE);
            return NULL;
        }
    }
    chunk->magic = TPI_CHUNK_MAGIC;
    chunk->pool = pool;
    chunk->free_slices = tpi_chunk_slices();
    chunk->dirty_slices = 0;
    for (unsigned i = 0; i < TPI_SLICES_PER_CHUNK; i++) chunk->slice_map[i] = &tpi_page_empty;
    tpi_os_huge_pages(chunk, TPI_CHUNK_SIZE, TPI_OPTION(huge_pages) != 0);
    tpi_registry_set((uintptr_t)chunk, TPI_CHUNK_SIZE, TPI_REG_SLAB, TPI_REG_SLAB);
    return chunk;
}

void tpi_chunk_destroy(tpi_chunk *chunk)
{
    /* The header, the slices in pages and the free ones not yet purged. */
    size_t in_pages = (size_t)__builtin_popcountll(tpi_chunk_slices() & ~chunk->free_slices);
    size_t dirty = (size_t)__builtin_popcountll(chunk->dirty_slices & chunk->free_slices);
    tpi_limit_release(TPI_SLICE_SIZE + ((in_pages + dirty) << TPI_SLICE_SHIFT));
    tpi_registry_set((uintptr_t)chunk, TPI_CHUNK_SIZE, TPI_REG_NONE, TPI_REG_NONE);
    tpi_os_unmap(chunk, TPI_CHUNK_SIZE);
}

bool tpi_chunk_is_empty(const tpi_chunk *chunk)
{
    return chunk->free_slices == tpi_chunk_slices();
}

bool tpi_chunk_is_clean(const tpi_chunk *chunk)
{
    return chunk->dirty_slices == 0;
}

static uint64_t tpi_run_mask(unsigned first, unsigned count)
{
    uint64_t ones = count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1);
    return ones << first;
}

/* First run of `count` free slices, preferring clean (never dirtied, or
 * purged) ones last so that resident memory is reused first. -1 if none. */
int tpi_chunk_find_run(const tpi_chunk *chunk, unsigned count)
{
    int clean_fit = -1;
    for (unsigned i = 1; i + count <= TPI_SLICES_PER_CHUNK; i++) {
        uint64_t run = tpi_run_mask(i, count);
        if ((chunk->free_slices & run) != run) continue;
        if (chunk->dirty_slices & run) return (int)i;
        if (clean_fit < 0) clean_fit = (int)i;
    }
    return clean_fit;
}

tpi_page *tpi_chunk_take_run(tpi_chunk *chunk, unsigned first, unsigned count)
{
    uint64_t run = tpi_run_mask(first, count);
    /* Clean slices are taken into use (limit.c); dirty ones are counted. */
    unsigned clean = count - (unsigned)__builtin_popcountll(chunk->dirty_slices & run);
    if (clean && !tpi_limit_commit((size_t)clean << TPI_SLICE_SHIFT)) return NULL;
    chunk->free_slices &= ~run;
    chunk->dirty_slices &= ~run;
    tpi_page *page = &chunk->pages[first];
    page->chunk = chunk;
    page->slice_index = (uint8_t)first;
    page->slice_count = (uint8_t)count;
    /* A purge is regret once at most (pool.c): taken, the slices forget it. */
    for (unsigned i = first; i < first + count; i++) {
        chunk->slice_map[i] = page;
        chunk->purged_at[i] = 0;
    }
    return page;
}

bool tpi_chunk_run_purged_since(const tpi_chunk *chunk, unsigned first, unsigned count, uint32_t since)
{
    for (unsigned i = first; i < first + count; i++)
        if (chunk->purged_at[i] && (int32_t)(chunk->purged_at[i] - since) >= 0) return true;
    return false;
}

/* True if no slice was purged at or after `since` (only for clean chunks). */
bool tpi_chunk_purged_before(const tpi_chunk *chunk, uint32_t since)
{
    return !tpi_chunk_run_purged_since(chunk, 1, TPI_SLICES_PER_CHUNK - 1, since);
}

void tpi_chunk_return_run(tpi_chunk *chunk, tpi_page *page, uint32_t now)
{
    unsigned first = page->slice_index, count = page->slice_count;
    for (unsigned i = first; i < first + count; i++) {
        chunk->slice_map[i] = &tpi_page_empty;
        chunk->dirty_since[i] = now;
    }
    uint64_t run = tpi_run_mask(first, count);
    chunk->free_slices |= run;
    chunk->dirty_slices |= run;
    if (page->checked) tpi_in_use_forget_page(page);
    page->slice_count = 0;
    page->queue = TPI_QUEUE_NONE;
}

/* Purges the free slices dirty for at least `min_age` ms, in runs; returns
 * the bytes purged. */
size_t tpi_chunk_purge(tpi_chunk *chunk, uint32_t now, uint32_t min_age)
{
    size_t purged = 0;
    uint64_t due = 0;
    for (uint64_t dirty = chunk->dirty_slices & chunk->free_slices; dirty; dirty &= dirty - 1) {
        unsigned i = (unsigned)__builtin_ctzll(dirty);
        if (now - chunk->dirty_since[i] >= min_age) due |= (uint64_t)1 << i;
    }
    while (due) {
        unsigned first = (unsigned)__builtin_ctzll(due);
        unsigned count = 0;
        while (first + count < TPI_SLICES_PER_CHUNK && (due >> (first + count) & 1)) {
            chunk->purged_at[first + count] = now ? now : 1;
            count++;
        }
        tpi_os_purge((char *)chunk + ((size_t)first << TPI_SLICE_SHIFT), (size_t)count << TPI_SLICE_SHIFT);
        purged += (size_t)count << TPI_SLICE_SHIFT;
        due &= ~tpi_run_mask(first, count);
        chunk->dirty_slices &= ~tpi_run_mask(first, count);
    }
    tpi_limit_release(purged);
    return purged;
}

tp_pool *tpi_registry_pool(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    switch (tpi_registry_get(a)) {
    case TPI_REG_SLAB: {
        tpi_chunk *c = tpi_chunk_of(p);
        return c->magic == TPI_CHUNK_MAGIC ? c->pool : NULL;
    }
    case TPI_REG_RUN: {
        const tpi_run_chunk *c = (const tpi_run_chunk *)((uintptr_t)p & ~(uintptr_t)TPI_CHUNK_MASK);
        return c->magic == TPI_RUN_MAGIC ? c->pool : NULL;
    }
    case TPI_REG_HUGE:
    case TPI_REG_HUGE_REST: {
        /* Walk back to the chunk holding the block's start; its header is at
         * that chunk's base, or a whole chunk before when the block starts
         * the chunk (alignments of a chunk and more). */
        while (tpi_registry_get(a) == TPI_REG_HUGE_REST) a -= TPI_CHUNK_SIZE;
        if (tpi_registry_get(a) != TPI_REG_HUGE) return NULL;
        uintptr_t base = a & ~(uintptr_t)TPI_CHUNK_MASK;
        const tpi_huge *h = (const tpi_huge *)base;
        /* Either may be a block's bytes rather than a header: peeked. */
        if (tpi_track_peek(&h->magic) == TPI_HUGE_MAGIC && h->offset > 0 && h->offset < TPI_CHUNK_SIZE)
            return h->pool;
        h = (const tpi_huge *)(base - TPI_CHUNK_SIZE);
        if (tpi_registry_get(base - TPI_CHUNK_SIZE) == TPI_REG_HUGE_REST && tpi_track_peek(&h->magic) == TPI_HUGE_MAGIC &&
            h->offset == TPI_CHUNK_SIZE)
            return h->pool;
        return NULL;
    }
    default:
        return NULL;
    }
}
