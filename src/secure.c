/* SPDX-License-Identifier: MIT */
/*
 * secure.c: the secure mode (TIERPOOL_SECURE=1, or a TP_SECURE=ON build).
 *
 * It trades speed for catching heap bugs and hardening against their abuse.
 * Every malloc and free of a secure process takes a slow path (tcache.c
 * leaves direct[] empty and owner words carry TPI_PAGE_CHECKED), where:
 *  - free-list links are stored XORed with a per-process secret and their own
 *    address, and checked to name a block of their page when read back
 *    (internal.h: tpi_block_link/tpi_block_next), so an overwritten link
 *    aborts instead of handing out an arbitrary address;
 *  - a bit per 16 bytes of each chunk (in its header) marks the blocks in
 *    use: a double free, or a free of a block never handed out, aborts (the
 *    CHECK option keeps these bits too, without the rest of this list);
 *  - the last 8 bytes of every slab block hold a canary (a second secret ^
 *    address: not the links' key, so a free block's encoded NULL link, which
 *    is that key, gives no canary away), checked on free, so a write past
 *    the usable size aborts;
 *  - freed blocks are filled with TPI_FREE_FILL, so stale data does not leak
 *    and a use after free reads an obvious pattern;
 *  - fresh blocks are carved in random order, so neighbours are unpredictable;
 *  - guard pages (PROT_NONE) end each chunk header and each chunk (chunk.c)
 *    and sit before and after each huge block (huge.c).
 * docs/security.md lists what each catches and what it costs.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#if !defined(TPI_SECURE_BUILD)
bool tpi_secure;
#endif
uintptr_t tpi_secret;
static uint64_t tpi_canary_secret;

static _Atomic uint64_t tpi_random_state;

/* splitmix64: a well-mixed 64-bit value from a counter. */
static uint64_t tpi_mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Runs once, from process initialisation, before any page exists. */
void tpi_secure_init(void)
{
#if !defined(TPI_SECURE_BUILD)
    tpi_secure = TPI_OPTION(secure) != 0;
#endif
    if (!tpi_secure) return;
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        /* No entropy yet (early boot): the clock and the stack address. */
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        seed = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 32) ^ (uint64_t)(uintptr_t)&seed;
    }
    atomic_store_explicit(&tpi_random_state, seed, memory_order_relaxed);
    /* Never zero, so that an encoded NULL link is not zero either. */
    tpi_secret = (uintptr_t)(tpi_secure_random() | 1);
    tpi_canary_secret = tpi_secure_random();
}

uint64_t tpi_secure_random(void)
{
    return tpi_mix(atomic_fetch_add_explicit(&tpi_random_state, 0x9e3779b97f4a7c15ULL, memory_order_relaxed));
}

_Noreturn void tpi_secure_bad_link(const void *where)
{
    tpi_fatal("free list corrupted (a freed block was written to, or a neighbour overflowed)", where);
}

/* ---- the in-use bitmap ---------------------------------------------------------- */

static _Atomic uint64_t *tpi_in_use_word(const void *p, uint64_t *bit)
{
    tpi_chunk *chunk = tpi_chunk_of(p);
    size_t index = ((uintptr_t)p & TPI_CHUNK_MASK) >> 4;
    *bit = (uint64_t)1 << (index & 63);
    return &chunk->in_use[index >> 6];
}

static uint64_t tpi_canary_of(const void *p)
{
    return tpi_canary_secret ^ (uint64_t)(uintptr_t)p;
}

static uint64_t *tpi_canary_slot(const tpi_page *page, void *p)
{
    return (uint64_t *)((char *)p + page->block_size - TPI_CANARY_SIZE);
}

/* With the CHECK option alone a bit may be set already: a page made while
 * CHECK was on can be owned by a thread cache made while it was off, whose
 * frees take the fast path and leave the bit set. Only secure mode, where
 * every free clears it, knows that this is a block handed out twice. */
void tpi_in_use_on_malloc(tpi_page *page, void *p)
{
    uint64_t bit;
    _Atomic uint64_t *word = tpi_in_use_word(p, &bit);
    bool was_set = atomic_fetch_or_explicit(word, bit, memory_order_relaxed) & bit;
    if (!tpi_secure) return;
    if (was_set) tpi_fatal("free list corrupted (a block in use was handed out again)", p);
    tpi_track_hidden_store(tpi_canary_slot(page, p), tpi_canary_of(p));
}

void tpi_in_use_on_free(tpi_page *page, void *p)
{
    uint64_t bit;
    _Atomic uint64_t *word = tpi_in_use_word(p, &bit);
    if (!(atomic_fetch_and_explicit(word, ~bit, memory_order_relaxed) & bit))
        tpi_fatal("double free (the block is not in use)", p);
    if (!tpi_secure) return;
    if (tpi_track_hidden_load(tpi_canary_slot(page, p)) != tpi_canary_of(p))
        tpi_fatal("heap overflow (the canary after the block was overwritten)", p);
    tpi_track_undefined(p, page->block_size); /* the fill; alloc.c's tpi_track_free closes it */
    memset((char *)p + sizeof(tpi_block), TPI_FREE_FILL, page->block_size - sizeof(tpi_block));
}

void tpi_secure_run_on_malloc(void *p, size_t usable)
{
    tpi_track_hidden_store((uint64_t *)((char *)p + usable), tpi_canary_of(p));
}

void tpi_secure_run_on_free(void *p, size_t usable)
{
    if (tpi_track_hidden_load((uint64_t *)((char *)p + usable)) != tpi_canary_of(p))
        tpi_fatal("heap overflow (the canary after the block was overwritten)", p);
}

/* A page's slices go back to the chunk: blocks a pool reset dropped while in
 * use must not read as in use when the slices hold another page. */
void tpi_in_use_forget_page(const tpi_page *page)
{
    size_t first = ((size_t)page->slice_index << TPI_SLICE_SHIFT) >> 4 >> 6;
    size_t words = ((size_t)page->slice_count << TPI_SLICE_SHIFT) >> 4 >> 6;
    memset((void *)&page->chunk->in_use[first], 0, words * sizeof(uint64_t));
}

/* ---- carving ----------------------------------------------------------------------- */

/* Links `count` fresh blocks from `first` onto page->free in a random order
 * (Fisher-Yates over their indices). Owner only. */
void tpi_secure_carve(tpi_page *page, char *first, uint32_t count)
{
    uint16_t order[TPI_SECURE_CARVE_MAX];
    for (uint32_t i = 0; i < count; i++) order[i] = (uint16_t)i;
    for (uint32_t i = count - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(tpi_secure_random() % (i + 1));
        uint16_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    tpi_block *head = page->free;
    for (uint32_t i = 0; i < count; i++) {
        tpi_block *b = (tpi_block *)(first + (size_t)order[i] * page->block_size);
        tpi_block_link(b, head);
        head = b;
    }
    page->free = head;
}
