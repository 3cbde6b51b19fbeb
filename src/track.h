/* SPDX-License-Identifier: MIT */
/*
 * track.h: what memory checkers are told about tierpool's blocks: Valgrind's
 * Memcheck (client requests; TP_VALGRIND builds, active only when the process
 * runs under Memcheck) and AddressSanitizer (poisoning; -fsanitize=address
 * builds of tierpool). Everything here compiles to nothing otherwise.
 *
 * The contract, for both tools:
 *   - a block in use is addressable for the bytes asked for, [p, p + size);
 *     its tail up to the block's end is not (so an overflow past the request
 *     is reported) until the program calls tp_usable_size, whose answer
 *     (the usable size, as always) makes the whole block its to use;
 *   - a free block, and pool memory never handed out, is not addressable;
 *   - the allocator's own accesses to a free block's link word (the first
 *     word: internal.h tpi_block_link / tpi_block_next, page.c's carving,
 *     secure.c's canary and fill) open the word for that access and close it
 *     again, so neither tool reports tierpool itself. With ASan the link
 *     word is poisoned too (not left open), so that the commonest use after
 *     free, a write to a freed structure's first field, is caught.
 *
 * Valgrind: blocks are described with the mempool requests rather than
 * MALLOCLIKE/FREELIKE. Each pool (the default one included) is a Memcheck
 * mempool anchored at its tp_pool; tp_pool_destroy destroys it and
 * tp_pool_reset destroys and creates it again, so blocks dropped by a destroy
 * or reset are not reported as leaks, while blocks of a pool never freed nor
 * destroyed are. Under Memcheck every malloc and free takes the slow paths
 * (tpi_slow_only, as in secure mode), where the requests are: the fast paths
 * carry no request and no test for Valgrind.
 *
 * ASan: the fast paths carry the hooks too (tpi_asan_*, tpi_link_load /
 * tpi_link_store: nothing at all in a build without ASan), since an ASan
 * build runs them.
 */
#ifndef TPI_TRACK_H
#define TPI_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define TPI_TRACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TPI_TRACK_ASAN 1
#endif
#endif

#if defined(TPI_TRACK_ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if defined(TPI_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

struct tp_pool;

/* Valgrind: true when the process runs under Memcheck (decided once, at
 * process start, by tpi_track_init). */
#if defined(TPI_VALGRIND)
extern bool tpi_track_valgrind;
#else
#define tpi_track_valgrind false
#endif
/* True when some checker watches the blocks: for work done only to tell it. */
#if defined(TPI_TRACK_ASAN)
#define tpi_track_active true
#else
#define tpi_track_active tpi_track_valgrind
#endif

/* At start (services.c), after tpi_secure_init: detects Memcheck. */
void tpi_track_init(void);
/* A pool is created; destroyed or reset (its blocks dropped at once). */
void tpi_track_pool_create(struct tp_pool *pool);
void tpi_track_pool_clear(struct tp_pool *pool, bool reset);
#if defined(TPI_VALGRIND)
size_t tpi_track_valgrind_size_of(const void *p, size_t usable);
#endif

/* The bytes of the block at p (of `usable` bytes) its user may access: the
 * size asked for under a tool, `usable` otherwise. */
static inline size_t tpi_track_size_of(const void *p, size_t usable)
{
#if defined(TPI_TRACK_ASAN)
    const char *poisoned = __asan_region_is_poisoned((void *)(uintptr_t)p, usable);
    if (poisoned) return (size_t)(poisoned - (const char *)p);
#elif defined(TPI_VALGRIND)
    if (tpi_track_valgrind) return tpi_track_valgrind_size_of(p, usable);
#endif
    (void)p;
    return usable;
}

/* A word read where a block's bytes may lie (tp_pool_of guessing at a huge
 * block's header): no report from a checker, and the value counts as defined. */
uint64_t tpi_track_peek(const void *p);

/* ---- address ranges ------------------------------------------------------------ */

/* The states a range can be put in: not addressable (free or never handed
 * out); addressable with contents undefined (about to be written by the
 * allocator); addressable and defined (the allocator reads what it wrote). */
enum { TPI_TRACK_NOACCESS, TPI_TRACK_UNDEFINED, TPI_TRACK_DEFINED };

static inline void tpi_track_range(const void *p, size_t n, int state)
{
#if defined(TPI_VALGRIND)
    if (tpi_track_valgrind) {
        if (state == TPI_TRACK_NOACCESS)
            VALGRIND_MAKE_MEM_NOACCESS(p, n);
        else if (state == TPI_TRACK_UNDEFINED)
            VALGRIND_MAKE_MEM_UNDEFINED(p, n);
        else
            VALGRIND_MAKE_MEM_DEFINED(p, n);
    }
#endif
#if defined(TPI_TRACK_ASAN)
    if (state == TPI_TRACK_NOACCESS)
        ASAN_POISON_MEMORY_REGION(p, n);
    else
        ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
    (void)p, (void)n, (void)state;
}
#define tpi_track_noaccess(p, n) tpi_track_range((p), (n), TPI_TRACK_NOACCESS)
#define tpi_track_undefined(p, n) tpi_track_range((p), (n), TPI_TRACK_UNDEFINED)
#define tpi_track_defined(p, n) tpi_track_range((p), (n), TPI_TRACK_DEFINED)

/* A word past a block's usable bytes that only the allocator uses (secure
 * mode's canary, exact statistics' requested size): closed to checkers but
 * for these accesses. */
static inline void tpi_track_hidden_store(uint64_t *w, uint64_t v)
{
    tpi_track_undefined(w, sizeof *w);
    *w = v;
    tpi_track_noaccess(w, sizeof *w);
}

static inline uint64_t tpi_track_hidden_load(const uint64_t *w)
{
    tpi_track_defined(w, sizeof *w);
    uint64_t v = *w;
    tpi_track_noaccess(w, sizeof *w);
    return v;
}

/* A range about to leave tierpool's hands (unmapped, or moved by mremap):
 * ASan's shadow does not follow the pages, so it is cleared first. */
static inline void tpi_track_forget(const void *p, size_t n)
{
#if defined(TPI_TRACK_ASAN)
    /* Only from the first poisoned byte: clearing the shadow of a whole
     * big mapping would make it resident. */
    char *first = __asan_region_is_poisoned((void *)(uintptr_t)p, n);
    if (first) ASAN_UNPOISON_MEMORY_REGION(first, (size_t)((const char *)p + n - first));
#endif
    (void)p, (void)n;
}

/* ---- blocks (slow paths) -------------------------------------------------------- */

/* A block of `usable` bytes handed out for `size` of them (zeroed if `zero`;
 * `fresh`: a new mapping, which no checker has marked yet). */
static inline void tpi_track_malloc_in(struct tp_pool *pool, void *p, size_t size, size_t usable, bool zero,
                                       bool fresh)
{
#if defined(TPI_VALGRIND)
    if (tpi_track_valgrind) {
        VALGRIND_MAKE_MEM_NOACCESS(p, usable);
        VALGRIND_MEMPOOL_ALLOC(pool, p, size);
        if (zero) VALGRIND_MAKE_MEM_DEFINED(p, size);
    }
#endif
#if defined(TPI_TRACK_ASAN)
    /* A free block is poisoned whole, fresh memory (a new huge mapping) not
     * at all: open the head, close the tail, and touch no more shadow than
     * that for a big fresh block. */
    if (!fresh) ASAN_UNPOISON_MEMORY_REGION(p, size);
    ASAN_POISON_MEMORY_REGION((char *)p + size, usable - size);
#endif
    (void)pool, (void)p, (void)size, (void)usable, (void)zero, (void)fresh;
}

#define tpi_track_malloc(pool, p, size, usable, zero) tpi_track_malloc_in((pool), (p), (size), (usable), (zero), false)

/* A block of `usable` bytes is freed. */
static inline void tpi_track_free(struct tp_pool *pool, void *p, size_t usable)
{
#if defined(TPI_VALGRIND)
    if (tpi_track_valgrind) {
        VALGRIND_MEMPOOL_FREE(pool, p);
        VALGRIND_MAKE_MEM_NOACCESS(p, usable);
    }
#endif
#if defined(TPI_TRACK_ASAN)
    ASAN_POISON_MEMORY_REGION(p, usable);
#endif
    (void)pool, (void)p, (void)usable;
}

/* A block in use at `from`, open for `old_size` of its `old_usable` bytes,
 * is now at `to` (the same, or moved by mremap with its contents, to memory
 * no checker marked) with `size` of its `usable` bytes. */
static inline void tpi_track_resize(struct tp_pool *pool, void *from, void *to, size_t old_size, size_t old_usable,
                                    size_t size, size_t usable)
{
#if defined(TPI_VALGRIND)
    if (tpi_track_valgrind) {
        VALGRIND_MEMPOOL_CHANGE(pool, from, to, size);
        if (size > old_size) VALGRIND_MAKE_MEM_UNDEFINED((char *)to + old_size, size - old_size);
        VALGRIND_MAKE_MEM_NOACCESS((char *)to + size, usable - size);
    }
#endif
#if defined(TPI_TRACK_ASAN)
    /* Only what was poisoned (the old tail) and what must be (the new one):
     * the rest of a big block's shadow stays untouched. */
    size_t open_to = size < old_usable ? size : old_usable;
    if (open_to > old_size) ASAN_UNPOISON_MEMORY_REGION((char *)to + old_size, open_to - old_size);
    ASAN_POISON_MEMORY_REGION((char *)to + size, usable - size);
#endif
    (void)pool, (void)from, (void)to, (void)old_size, (void)old_usable, (void)size, (void)usable;
}

/* Brackets around the allocator's own access to a free block's link word. */
static inline void tpi_track_link_open(const void *b)
{
    tpi_track_defined(b, sizeof(void *));
}
static inline void tpi_track_link_close(const void *b)
{
    tpi_track_noaccess(b, sizeof(void *));
}

/* ---- the fast paths: ASan only --------------------------------------------------
 * Macros, so that a build without ASan compiles exactly the code it had. */

#if defined(TPI_TRACK_ASAN)
/* A block handed out / freed on a fast path (never run under Valgrind). */
#define tpi_asan_malloc(p, size, usable) tpi_track_malloc(NULL, (p), (size), (usable), false)
#define tpi_asan_free(p, usable) tpi_track_free(NULL, (p), (usable))
static inline void *tpi_link_load_asan(void *const *link)
{
    tpi_track_link_open(link);
    void *next = *link;
    tpi_track_link_close(link);
    return next;
}
static inline void tpi_link_store_asan(void **link, void *next)
{
    tpi_track_link_open(link);
    *link = next;
    tpi_track_link_close(link);
}
/* b->next of a free block, read or written with no encoding (fast paths). */
#define tpi_link_load(b) ((__typeof__((b)->next))tpi_link_load_asan((void *const *)&(b)->next))
#define tpi_link_store(b, v) tpi_link_store_asan((void **)&(b)->next, (v))
#else
#define tpi_asan_malloc(p, size, usable) ((void)0)
#define tpi_asan_free(p, usable) ((void)0)
#define tpi_link_load(b) ((b)->next)
#define tpi_link_store(b, v) ((b)->next = (v))
#endif

#endif /* TPI_TRACK_H */
