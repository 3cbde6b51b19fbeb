/* SPDX-License-Identifier: MIT */
/*
 * alloc.c: the public allocation API and its fast paths.
 *
 * The fast paths themselves are inline in alloc.h, which the malloc
 * override shares, with what each instruction is for: malloc about fifteen
 * instructions (one TLS load, the size check, the page, the pop, used++,
 * one counter add), free about fifteen (the registry byte, the page, the
 * owner compare, the double-free compare, the push, --used). No atomics on
 * either. tp_pool_malloc on an explicit pool adds five: the thread's last
 * pool and its generation compared (thread.c, tpi_thread_last).
 */
#include "alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- malloc ---------------------------------------------------------------------- */

/* The default pool's first use on this thread: the process is set up, then
 * the thread. NULL (errno ENOMEM) if it cannot be. */
static tpi_tcache *tpi_thread_start(void)
{
    tpi_process_ensure_init();
    tpi_tcache *tc = tpi_thread_init_default();
    if (!tc) errno = ENOMEM;
    return tc;
}

/* The fast path's one way out: a thread's first call (the empty tcache, the
 * only one without a pool: one compare with no address to form) sets it up
 * here, above the thread cache, which serves the rest. */
tpi_noinline void *tpi_malloc_slow(size_t size, tpi_tcache *tc)
{
    if (tpi_unlikely(tc->pool == NULL) && (tc = tpi_thread_start()) == NULL) return NULL;
    return tpi_tcache_malloc_slow(size, tc);
}

void *tp_malloc(size_t size)
{
    return tpi_malloc_fast(tpi_tls_default, size, tpi_malloc_slow);
}

/* The thread's tcache of pool by the table, created at its first use; the
 * empty tcache if an explicit pool's cannot be had. */
static tpi_tcache *tpi_pool_tcache_lookup(tp_pool *pool)
{
    if (!pool || pool == &tpi_pool_default_instance) return tpi_tls_default;
    tpi_tcache *tc = tpi_thread_tcache_peek(pool);
    if (!tc) {
        tpi_process_ensure_init(); /* this thread's first use of the pool may be the process's first call */
        tc = tpi_thread_tcache(pool);
    }
    return tc ? tc : &tpi_tcache_empty;
}

static tpi_tcache *tpi_pool_tcache(tp_pool *pool)
{
    if (!pool) return tpi_tls_default; /* first: the callers for the default pool pass a constant NULL */
    if (tpi_thread_last_is(pool)) return tpi_tls_last.tcache;
    return tpi_pool_tcache_lookup(pool);
}

/* After tpi_pool_tcache gave the empty tcache: the default pool's first use
 * on this thread sets it up; an explicit pool's failure stays a failure,
 * with the errno tpi_thread_tcache set (ENOMEM, or EINVAL for a destroyed
 * pool). */
static tpi_tcache *tpi_pool_tcache_or_init(tp_pool *pool)
{
    if (pool && pool != &tpi_pool_default_instance) return NULL;
    return tpi_thread_start();
}

/* ---- when an allocation fails (oom.c) ------------------------------------------------ */

typedef struct tpi_request {
    tp_pool *pool;
    size_t size, alignment;
    void *ptr; /* realloc's block */
} tpi_request;

/* An allocation from the pool once more, without the fast path (that just
 * failed) and without recovery. */
static void *tpi_again_malloc(void *arg)
{
    tpi_request *r = arg;
    tpi_tcache *tc = tpi_pool_tcache(r->pool);
    if (tc == &tpi_tcache_empty && r->pool && r->pool != &tpi_pool_default_instance) return NULL;
    return tpi_tcache_malloc_slow(r->size, tc);
}

/* The malloc slow path failed (tpi_tcache_failed, registered below). */
static tpi_cold void *tpi_malloc_failed(size_t size, tpi_tcache *tc)
{
    tpi_request r = {tc->pool, size, 0, NULL};
    return tpi_oom_recover(tc->pool, size, tpi_again_malloc, &r);
}

/* At load, before main: the thread caches' slow path learns where a failure
 * goes. (An allocation failing before it, in the loader, fails at once.) */
__attribute__((constructor)) static void tpi_alloc_register(void)
{
    tpi_tcache_set_failure_hook(tpi_malloc_failed);
    tpi_profile_init();
    /* Where tierpool's frames end in a stack that a sample records. */
    tpi_sample_note_code((const void *)tp_malloc);
    tpi_sample_note_code((const void *)tp_pool_malloc);
    tpi_sample_note_code((const void *)tp_pool_realloc);
    tpi_sample_note_code((const void *)tp_pool_aligned_alloc);
    tpi_sample_note_code((const void *)tp_pool_calloc);
    tpi_sample_note_code((const void *)tpi_malloc_slow);
    tpi_sample_note_code((const void *)tpi_tcache_malloc_slow);
}

static void *tpi_again_huge_zero(void *arg)
{
    tpi_request *r = arg;
    return tpi_huge_malloc(r->pool, r->size, 0, true);
}

static void *tpi_again_aligned(void *arg);

static void *tpi_again_huge_realloc(void *arg)
{
    tpi_request *r = arg;
    return tpi_huge_realloc(r->ptr, r->size);
}

/* The slow path of tp_pool_malloc on the thread's last pool: the arguments
 * as tp_pool_malloc got them, so that the fast path's jump here moves no
 * register (with tpi_malloc_slow's order it moved one on every call), and
 * the tcache taken from the thread again. An explicit pool's tcache is set
 * up already: no first-use test. */
tpi_noinline void *tpi_pool_malloc_slow(tp_pool *pool, size_t size)
{
    (void)pool;
    return tpi_tcache_malloc_slow(size, tpi_tls_last.tcache);
}

/* tp_pool_malloc of a pool other than the thread's last one: the default
 * pool, another explicit pool, or one reset since. */
static tpi_noinline void *tpi_pool_malloc_other(tp_pool *pool, size_t size)
{
    tpi_tcache *tc = tpi_pool_tcache_lookup(pool);
    if (tpi_unlikely(tc == &tpi_tcache_empty) && pool && pool != &tpi_pool_default_instance)
        return NULL; /* errno from tpi_thread_tcache */
    return tpi_malloc_fast(tc, size, tpi_malloc_slow);
}

/* The thread's last pool (a program's one explicit pool, or the one it is
 * working in) costs five instructions more than tp_malloc: compare the
 * pool, load and compare its generation; the tcache is then one TLS load,
 * as tp_malloc's is. A program alternating between pools pays a call and
 * the table's lookup (tpi_thread_tcache_peek) at each change. */
void *tp_pool_malloc(tp_pool *pool, size_t size)
{
    if (tpi_thread_last_is(pool)) {
        void *b = tpi_malloc_pop(tpi_tls_last.tcache, size);
        if (tpi_likely(b != NULL)) return b;
        return tpi_pool_malloc_slow(pool, size);
    }
    return tpi_pool_malloc_other(pool, size);
}

void *tp_pool_calloc(tp_pool *pool, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (total > TPI_LARGE_MAX) {
        /* A fresh mapping reads as zero; a cached one is cleared there. */
        tpi_tcache *tc = tpi_pool_tcache(pool);
        if (tc == &tpi_tcache_empty) tc = tpi_pool_tcache_or_init(pool);
        if (!tc) return NULL;
        void *p = tpi_huge_malloc(tc->pool, total, 0, true);
        if (tpi_unlikely(!p)) {
            tpi_request r = {tc->pool, total, 0, NULL};
            p = tpi_oom_recover(tc->pool, total, tpi_again_huge_zero, &r);
        }
        if (tpi_unlikely(TPI_OPTION(profile))) tpi_tcache_sample_large(tc, p, total);
        return p;
    }
    void *p = tp_pool_malloc(pool, total);
    if (p) memset(p, 0, total);
    return p;
}

void *tp_calloc(size_t count, size_t size)
{
    return tp_pool_calloc(NULL, count, size);
}

void *tp_pool_aligned_alloc(tp_pool *pool, size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (alignment <= 16) return tp_pool_malloc(pool, size);
    if (size > TPI_MAX_REQUEST || alignment > TPI_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    tpi_request r = {pool, size, alignment, NULL};
    void *p = tpi_again_aligned(&r);
    if (tpi_unlikely(!p)) p = tpi_oom_recover(pool, size, tpi_again_aligned, &r);
    return p;
}

/* tp_pool_aligned_alloc's allocation, alignment above 16 and checked. */
static void *tpi_again_aligned(void *arg)
{
    tpi_request *req = arg;
    tp_pool *pool = req->pool;
    size_t size = req->size, alignment = req->alignment;
    tpi_tcache *tc = tpi_pool_tcache(pool);
    if (tc == &tpi_tcache_empty) tc = tpi_pool_tcache_or_init(pool);
    if (!tc) return NULL;
    size_t need = size + tpi_block_extra();
    if (need < alignment) need = alignment;
    if (alignment <= TPI_SLAB_ALIGN_MAX && need <= TPI_SLAB_MAX) {
        /* Pages start on 64 KiB boundaries, so a class whose size is a
         * multiple of the alignment yields aligned blocks; there is a
         * power-of-two class at every doubling, 8 KiB the last. */
        unsigned cls = tpi_class_of(need);
        while (tpi_classes[cls].block_size % alignment) cls++;
        return tpi_tcache_malloc_class(tc, cls, size);
    }
    void *p = alignment <= TPI_SLAB_ALIGN_MAX && need <= TPI_LARGE_MAX ? tpi_run_malloc(tc, size, alignment)
                                                                      : tpi_huge_malloc(tc->pool, size, alignment, false);
    if (tpi_unlikely(TPI_OPTION(profile))) tpi_tcache_sample_large(tc, p, size);
    return p;
}

void *tp_aligned_alloc(size_t alignment, size_t size)
{
    return tp_pool_aligned_alloc(NULL, alignment, size);
}

size_t tp_pool_malloc_bulk(tp_pool *pool, size_t size, size_t count, void **out)
{
    if (!out && count) {
        errno = EINVAL;
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        out[i] = tp_pool_malloc(pool, size);
        if (!out[i]) {
            int err = errno; /* ENOMEM, or EINVAL for a destroyed pool */
            tp_free_bulk(out, i);
            for (size_t j = 0; j < i; j++) out[j] = NULL;
            errno = err;
            return 0;
        }
    }
    return count;
}

/* ---- free ---------------------------------------------------------------------------- */

/* A free of block p of a page that holds samples (TPI_PAGE_SAMPLED, or
 * page->sampled when it has no owner): p's sample goes, if it has one; the
 * owner clears the flag once the page has none. */
static tpi_noinline void tpi_free_sampled(tpi_page *page, void *p, bool local, uintptr_t owner)
{
    if (tpi_sample_remove(p)) atomic_fetch_sub_explicit(&page->sampled, 1, memory_order_relaxed);
    if (local && (owner & TPI_PAGE_SAMPLED) && atomic_load_explicit(&page->sampled, memory_order_relaxed) == 0)
        atomic_store_explicit(&page->owner, owner & ~TPI_PAGE_SAMPLED, memory_order_relaxed);
}

/* The malloc override's say on pointers that are not ours (tpi_set_foreign_free). */
static bool (*tpi_foreign_free)(void *p);

void tpi_set_foreign_free(bool (*fn)(void *p))
{
    __atomic_store_n(&tpi_foreign_free, fn, __ATOMIC_RELEASE);
}

void tpi_free_generic(void *p)
{
    uintptr_t a = (uintptr_t)p;
    switch (tpi_registry_get(a)) {
    case TPI_REG_SLAB: {
        tpi_page *page = tpi_page_of(p);
        if (page->slice_count == 0)
            tpi_fatal("double free or invalid free (no block is allocated there)", p);
        uintptr_t owner = atomic_load_explicit(&page->owner, memory_order_relaxed);
        bool local = owner != 0 && (owner & ~TPI_PAGE_FLAGS) == tpi_thread_id();
        /* Only the owner may read `carved` (it carves); others check against
         * the capacity, which is fixed while the page lives. */
        if (tpi_page_block_start(page, p, local ? page->carved : page->capacity) != p)
            tpi_fatal("free of a pointer inside a block", p);
        if (tpi_stats_exact) tpi_exact_on_slab_free(page->chunk->pool, page, p); /* before the fill */
        if (page->checked) tpi_in_use_on_free(page, p); /* CHECK, SECURE: every double free aborts */
        if ((owner & TPI_PAGE_SAMPLED) || atomic_load_explicit(&page->sampled, memory_order_relaxed))
            tpi_free_sampled(page, p, local, owner);
        tpi_track_free(page->chunk->pool, p, page->block_size);
        if (local)
            tpi_tcache_free_local_slow(page, p);
        else
            tpi_page_free_remote(page, p);
        return;
    }
    case TPI_REG_RUN:
        if (atomic_load_explicit(&tpi_sample_large_live, memory_order_relaxed)) tpi_sample_remove(p);
        tpi_run_free(tpi_thread_live_tcache(tpi_run_pool(p)), p);
        return;
    case TPI_REG_HUGE:
        if (atomic_load_explicit(&tpi_sample_large_live, memory_order_relaxed)) tpi_sample_remove(p);
        tpi_huge_free(p);
        return;
    default:
        if (p == NULL) return;
        bool (*foreign)(void *) = __atomic_load_n(&tpi_foreign_free, __ATOMIC_ACQUIRE);
        if (foreign && foreign(p)) return;
        tpi_fatal("free of a pointer tierpool does not own (foreign, or a huge block freed twice)", p);
    }
}

void tp_free(void *p)
{
    tpi_free_fast(p, tpi_free_generic);
}

void tp_free_sized(void *p, size_t size)
{
    (void)size; /* the owner comes from the pointer; the size adds nothing */
    tp_free(p);
}

void tp_free_bulk(void **ptrs, size_t count)
{
    for (size_t i = 0; i < count; i++) tp_free(ptrs[i]);
}

/* ---- queries and realloc ---------------------------------------------------------------- */

/* A block's usable bytes (0 if p is none). */
static size_t tpi_usable(const void *p)
{
    switch (tpi_registry_get((uintptr_t)p)) {
    case TPI_REG_SLAB: {
        tpi_page *page = tpi_page_of(p);
        if (page->slice_count == 0) return 0;
        return page->block_size - tpi_block_extra();
    }
    case TPI_REG_RUN: {
        const tpi_run *r = tpi_run_of(p);
        return r ? tpi_run_usable(r) : 0;
    }
    case TPI_REG_HUGE: {
        tpi_huge *h = tpi_huge_of(p);
        return h ? h->size : 0;
    }
    default:
        return 0;
    }
}

size_t tp_usable_size(const void *p)
{
    size_t usable = tpi_usable(p);
    /* Under a checker a block is open for the size asked for; the program
     * that asks for the usable size may use it all (track.h). */
    if (tpi_track_active && usable) {
        size_t have = tpi_track_size_of(p, usable);
        void *block = (void *)(uintptr_t)p;
        if (have < usable) tpi_track_resize(tp_pool_of(p), block, block, have, usable, usable, usable);
    }
    return usable;
}

tp_pool *tp_pool_of(const void *p)
{
    return tpi_registry_pool(p);
}

void *tp_pool_realloc(tp_pool *pool, void *p, size_t size)
{
    if (!p) return tp_pool_malloc(pool, size);
    if (size == 0) {
        tp_free(p);
        return NULL;
    }
    size_t usable = tpi_usable(p);
    if (usable == 0) tpi_fatal("realloc of a pointer tierpool does not own", p);
    if (tpi_registry_get((uintptr_t)p) == TPI_REG_HUGE && size > TPI_LARGE_MAX) {
        void *q = tpi_huge_realloc(p, size);
        if (tpi_unlikely(!q)) {
            tpi_request r = {tp_pool_of(p), size, 0, p};
            q = tpi_oom_recover(r.pool, size, tpi_again_huge_realloc, &r);
        }
        if (q && atomic_load_explicit(&tpi_sample_large_live, memory_order_relaxed)) tpi_sample_move(p, q, size);
        return q;
    }
    /* The bytes the program may touch: all usable ones, but under a checker
     * those asked for (or granted by tp_usable_size). */
    size_t have = tpi_track_size_of(p, usable);
    /* Keep a slab block while the new size fits and wastes less than half;
     * a run while the size needs as many OS pages. */
    if (tpi_registry_get((uintptr_t)p) == TPI_REG_RUN) {
        /* A run shrinks in place to the pages the size needs while it
         * keeps half of them, and grows into a free run that follows it. */
        if ((size <= usable ? size >= usable / 2 : size <= TPI_LARGE_MAX) &&
            tpi_run_resize(tpi_thread_live_tcache(tpi_run_pool(p)), p, size)) {
            size_t now_usable = tpi_usable(p);
            /* Pages taken from the free run after it were closed to checkers,
             * pages given back are closed again. */
            if (now_usable > usable) tpi_track_undefined((char *)p + usable, now_usable - usable);
            if (now_usable < usable) tpi_track_noaccess((char *)p + now_usable, usable - now_usable);
            if (tpi_track_active) tpi_track_resize(tp_pool_of(p), p, p, have, usable, size, now_usable);
            if (atomic_load_explicit(&tpi_sample_large_live, memory_order_relaxed)) tpi_sample_move(p, p, size);
            return p;
        }
    } else if (size <= usable && size >= usable / 2) {
        if (tpi_track_active) tpi_track_resize(tp_pool_of(p), p, p, have, usable, size, usable);
        if (tpi_stats_exact) tpi_exact_on_slab_resize(tp_pool_of(p), tpi_page_of(p), p, size);
        /* A slab block, or a huge one kept for a size it still fits. */
        bool slab = tpi_registry_get((uintptr_t)p) == TPI_REG_SLAB;
        if (slab ? atomic_load_explicit(&tpi_page_of(p)->sampled, memory_order_relaxed) != 0
                 : atomic_load_explicit(&tpi_sample_large_live, memory_order_relaxed) != 0)
            tpi_sample_move(p, p, size);
        return p;
    }
    void *q = tp_pool_malloc(pool, size);
    if (!q) return NULL;
    memcpy(q, p, size < have ? size : have);
    tp_free(p);
    return q;
}

void *tp_realloc(void *p, size_t size)
{
    return tp_pool_realloc(p ? tp_pool_of(p) : NULL, p, size);
}
