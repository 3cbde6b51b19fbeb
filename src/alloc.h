/* SPDX-License-Identifier: MIT */
/*
 * alloc.h: the fast paths of the API (alloc.c), inline, each with its slow
 * path as a parameter. tp_malloc, tp_pool_malloc and tp_free are built from
 * them with the engine's slow paths; the malloc override's malloc and free
 * (override/malloc.c) with its own, which decide passthrough before handing
 * on to the engine's. A preloaded malloc is then the same instructions as
 * tp_malloc, not a call to it: no test of a word, no jump through the PLT.
 * The slow path, a constant at every use, becomes a direct tail call.
 */
#ifndef TPI_ALLOC_H
#define TPI_ALLOC_H

#include "internal.h"

#define tpi_always_inline inline __attribute__((always_inline))

/* Whether tpi_tls_last.tcache is this thread's live tcache of pool (the
 * pool it used last, not reset or destroyed since): a NULL pool fails the
 * first compare, never reads its generation. Relaxed: a generation equal to
 * the one this thread saw when it took the tcache brings nothing new to
 * acquire (a reset meanwhile would break tp_pool_reset's contract), and the
 * lookup after a miss acquires; so the load folds into the compare. */
static tpi_always_inline bool tpi_thread_last_is(const tp_pool *pool)
{
    return tpi_likely(tpi_tls_last.pool == pool) &&
           tpi_likely(atomic_load_explicit(&pool->gen, memory_order_relaxed) == tpi_tls_last.gen);
}

/* malloc fast path (<= 4 KiB), about fifteen instructions: the tcache
 * given (one TLS load in the caller), one load from direct[(size+15)/16]
 * (the page), pop page->free, used++, one counter add in the tcache
 * (statistics). NULL, for the caller's slow path, covers an empty page, a
 * thread not initialised yet (its tcache's pages are all the empty page)
 * and sizes above 4 KiB: the caller's test of the result folds into the
 * one branch here. */
static tpi_always_inline void *tpi_malloc_pop(tpi_tcache *tc, size_t size)
{
    size_t slot = (size + 15) >> 4;
    if (tpi_likely(size <= TPI_SMALL_MAX)) {
        tpi_page *page = tc->direct[slot];
        tpi_block *b = page->free;
        if (tpi_likely(b != NULL)) {
            /* Statistics: one add to this thread's own counter. */
            tc->slot_allocs[slot]++;
            page->free = tpi_link_load(b);
            page->used++;
            tpi_asan_malloc(b, size, page->block_size);
            return b;
        }
    }
    return NULL;
}

/* The pop, else `slow`. The slow path takes (size, tc) in that order: size
 * stays in the first argument register, the tail call needs no move. */
static tpi_always_inline void *tpi_malloc_fast(tpi_tcache *tc, size_t size,
                                               void *(*slow)(size_t size, tpi_tcache *tc))
{
    void *b = tpi_malloc_pop(tc, size);
    if (tpi_likely(b != NULL)) return b;
    return slow(size, tc);
}

/* free fast path, about fifteen: one registry load (is it a slab block of
 * ours? NULL and foreign pointers fail here), mask+shift+load to the page,
 * compare its owner word with the caller's id (a full or foreign page fails
 * here), compare with page->local_free (the block freed last there, freed
 * again: a double free), push on page->local_free, --used. No atomics.
 * --used reaching 0 (the page is empty) leaves the fast path, but never on
 * a class's current page of one slice, which is pinned (tcache.c): a
 * program cycling around one block would otherwise pay a call per free.
 * Every other case goes to `slow`. */
static tpi_always_inline void tpi_free_fast(void *p, void (*slow)(void *p))
{
    if (tpi_likely(tpi_registry_fast((uintptr_t)p) == TPI_REG_SLAB)) {
        tpi_page *page = tpi_page_of(p);
        if (tpi_likely(atomic_load_explicit(&page->owner, memory_order_relaxed) == tpi_thread_id())) {
            tpi_block *b = p;
            tpi_asan_free(b, page->block_size);
            /* glibc's "fasttop" check, two instructions: the block freed
             * last on this page, freed again (docs/security.md). */
            if (tpi_unlikely(b == page->local_free)) tpi_fatal("double free (the block was just freed)", p);
            tpi_link_store(b, page->local_free);
            page->local_free = b;
            if (tpi_likely(--page->used != 0)) return;
            tpi_tcache_page_empty(page);
            return;
        }
    }
    slow(p);
}

#endif /* TPI_ALLOC_H */
