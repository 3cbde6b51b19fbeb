/* SPDX-License-Identifier: MIT */
/*
 * page.c: slab pages: lazy carving, the three free lists, remote frees.
 *
 * Everything here but tpi_page_free_remote runs on the page's owning thread
 * (or under the pool lock for a page nobody owns).
 */
#include "internal.h"

/* Carve one OS page of fresh blocks at a time (or one block, if larger),
 * and at least TPI_CARVE_CYCLE blocks of up to TPI_CARVE_SMALL_MAX bytes: a
 * page is touched, and made resident, only about as fast as it is used (a
 * program that uses a few blocks of many classes holds an OS page of each,
 * not four). A thread that reuses a few blocks cycles through all the blocks
 * carved so far between two slow paths; on such a hot page (a class its
 * thread cycles tightly, which tcache.c tells) the slow path carves more, up
 * to TPI_CARVE_CYCLE_BYTES, before it recycles the freed
 * ones (tpi_page_lengthen_cycle): a malloc+free pair of 64 B pays one slow
 * path per 256 pairs, as it would with 16 KiB carved at once. Larger blocks
 * take a slow path anyway. */
#define TPI_CARVE_CYCLE 32u
#define TPI_CARVE_SMALL_MAX 512u
#define TPI_CARVE_CYCLE_BYTES (16u * 1024u)
_Static_assert(TPI_OS_PAGE / 8 <= TPI_SECURE_CARVE_MAX && TPI_CARVE_CYCLE <= TPI_SECURE_CARVE_MAX,
               "secure mode shuffles a carve in an array of TPI_SECURE_CARVE_MAX");

void tpi_page_init(tpi_page *page, unsigned class_index)
{
    const tpi_class_info *info = &tpi_classes[class_index];
    page->free = NULL;
    page->used = 0;
    page->capacity = info->blocks;
    page->local_free = NULL;
    atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
    page->block_size = info->block_size;
    page->block_magic = UINT64_MAX / info->block_size + 1;
    page->carved = 0;
    page->class_index = (uint8_t)class_index;
    page->queue = TPI_QUEUE_NONE;
    page->retained = 0;
    page->pinned = 0;
    page->purged = 0;
    page->checked = tpi_secure || TPI_OPTION(check);
    atomic_store_explicit(&page->sampled, 0, memory_order_relaxed);
    page->next = page->prev = NULL;
}

static bool tpi_page_unpurge(tpi_page *page);

bool tpi_page_lengthen_cycle(tpi_page *page)
{
    return (size_t)page->carved * page->block_size < TPI_CARVE_CYCLE_BYTES && tpi_page_extend(page);
}

bool tpi_page_extend(tpi_page *page)
{
    if (tpi_page_unpurge(page)) return true; /* blocks carved before, purged since */
    uint32_t left = page->capacity - page->carved;
    if (left == 0) return false;
    uint32_t count = TPI_OS_PAGE / page->block_size;
    if (page->block_size <= TPI_CARVE_SMALL_MAX && count < TPI_CARVE_CYCLE) count = TPI_CARVE_CYCLE;
    if (count == 0) count = 1;
    if (count > left) count = left;
    char *first = tpi_page_start(page) + (size_t)page->carved * page->block_size;
    page->carved += count;
    if (tpi_secure) {
        tpi_secure_carve(page, first, count);
        return true;
    }
    /* Fresh blocks are not addressable (track.h): open the batch for the
     * links, then close it again. */
    size_t bytes = (size_t)count * page->block_size;
    tpi_track_undefined(first, bytes);
    char *p = first;
    for (uint32_t i = 1; i < count; i++, p += page->block_size)
        ((tpi_block *)p)->next = (tpi_block *)(p + page->block_size);
    ((tpi_block *)p)->next = page->free;
    tpi_track_noaccess(first, bytes);
    page->free = (tpi_block *)first;
    tpi_page_check(page);
    return true;
}

static void tpi_list_prepend(tpi_block **list, tpi_block *head, tpi_block *tail)
{
    tpi_block_link(tail, *list);
    *list = head;
}

/* The next block of a list of the page, the `n`th so far: a list longer than
 * the page's capacity loops back on itself, which only a double free makes,
 * so no walk of a list goes on for ever. */
static tpi_block *tpi_list_next(const tpi_page *page, const tpi_block *b, uint32_t n)
{
    if (tpi_unlikely(n > page->capacity)) tpi_fatal("double free (a free list of the page loops)", b);
    return tpi_block_next(page, b);
}

/* The last block of a non-empty list of the page; its length in *count. */
static tpi_block *tpi_list_tail(const tpi_page *page, tpi_block *head, uint32_t *count)
{
    uint32_t n = 1;
    tpi_block *tail = head;
    for (tpi_block *next; (next = tpi_list_next(page, tail, n)) != NULL; n++) tail = next;
    *count = n;
    return tail;
}

void tpi_page_take_local(tpi_page *page)
{
    if (page->free == NULL) {
        page->free = page->local_free; /* the usual case: no walk */
    } else {
        uint32_t n;
        tpi_list_prepend(&page->free, page->local_free, tpi_list_tail(page, page->local_free, &n));
    }
    page->local_free = NULL;
}

uint32_t tpi_page_collect(tpi_page *page)
{
    if (page->local_free) tpi_page_take_local(page);
    /* One exchange takes the whole remote list (and drops TPI_NOTIFY). */
    uintptr_t head = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
    if (head == 0) return 0;
    head = atomic_exchange_explicit(&page->thread_free, 0, memory_order_acquire);
    tpi_block *list = (tpi_block *)(head & ~TPI_NOTIFY);
    if (!list) return 0;
    uint32_t n;
    tpi_block *tail = tpi_list_tail(page, list, &n);
    /* Each block of the list was in use, and is counted in `used`. */
    if (n > tpi_page_used(page)) tpi_fatal("double free (more frees than blocks handed out)", list);
    tpi_list_prepend(&page->free, list, tail);
    page->used -= n;
    tpi_page_check(page);
    return n;
}

/* The blocks on the remote list, counted where they are: a statistics read
 * of an abandoned page (pool lock held, so no one takes the list; a free
 * pushing meanwhile is counted or not). */
uint32_t tpi_page_remote_count(const tpi_page *page)
{
    uintptr_t head = atomic_load_explicit(&page->thread_free, memory_order_acquire);
    tpi_block *list = (tpi_block *)(head & ~TPI_NOTIFY);
    if (!list) return 0;
    uint32_t n;
    tpi_list_tail(page, list, &n);
    return n;
}

void tpi_page_free_remote(tpi_page *page, tpi_block *block)
{
    uintptr_t old = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
    for (;;) {
        if (old & TPI_NOTIFY) {
            /* The owner parked this page as full: claim the notification and
             * hand the block to the owner's delayed list, which it drains on
             * its next slow path, finding the page usable again. */
            if (!atomic_compare_exchange_weak_explicit(&page->thread_free, &old, old & ~TPI_NOTIFY,
                                                       memory_order_acq_rel, memory_order_relaxed))
                continue;
            tpi_tcache *tc = atomic_load_explicit(&page->tcache, memory_order_acquire);
            if (tc) {
                uintptr_t top = atomic_load_explicit(&tc->delayed_free, memory_order_relaxed);
                do {
                    if (top == (uintptr_t)block) tpi_fatal("double free (the block was just freed)", block);
                    tpi_block_link(block, (tpi_block *)top);
                } while (!atomic_compare_exchange_weak_explicit(&tc->delayed_free, &top, (uintptr_t)block,
                                                                memory_order_release, memory_order_relaxed));
                return;
            }
            old &= ~TPI_NOTIFY; /* abandoned meanwhile: the plain push below */
        }
        if (old == (uintptr_t)block) tpi_fatal("double free (the block was just freed)", block);
        tpi_block_link(block, (tpi_block *)old);
        if (atomic_compare_exchange_weak_explicit(&page->thread_free, &old, (uintptr_t)block,
                                                  memory_order_release, memory_order_relaxed))
            return;
    }
}

bool tpi_page_mark_full(tpi_page *page)
{
    uintptr_t expected = 0;
    return atomic_compare_exchange_strong_explicit(&page->thread_free, &expected, TPI_NOTIFY,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

void tpi_page_clear_notify(tpi_page *page)
{
    uintptr_t old = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
    while ((old & TPI_NOTIFY) &&
           !atomic_compare_exchange_weak_explicit(&page->thread_free, &old, old & ~TPI_NOTIFY,
                                                  memory_order_acq_rel, memory_order_relaxed)) {
    }
}

void *tpi_page_block_start(const tpi_page *page, const void *p, uint32_t limit)
{
    size_t offset = (size_t)((const char *)p - tpi_page_start(page));
    uint32_t index = tpi_page_block_index(page, offset);
    if (index >= limit) return NULL;
    return tpi_page_start(page) + (size_t)index * page->block_size;
}

/* ---- purging free OS pages -------------------------------------------------------
 * An OS page of a slab page all of whose blocks are free (and have been
 * since the last look) goes back to the OS, whatever the class: its blocks
 * leave the free lists, and the page's `purged` mask records it. When the
 * page runs out of free blocks, tpi_page_extend puts the blocks of one
 * purged OS page back before it carves fresh ones (the OS page is faulted in
 * again as their links are written). So a page that a program has thinned
 * out at random keeps resident only the OS pages that still hold a block.
 *
 * Ages: a look marks each free block in its second word (tpi_block_age_word);
 * a block that shows the mark at the next look has been free since, as long
 * as malloc clears it (tpi_block_unmark, classes of TPI_PURGE_BLOCK_MIN and
 * up). Smaller blocks are handed out by the fast path, which leaves the mark:
 * such a block taken and freed between two looks without its second word
 * written reads as old, and may be purged a look early (it is free either
 * way). Marks are keyed by the block's address, so that what a program left
 * in the word is not taken for one. */
enum { TPI_AGE_SEEN = 1 };
#define TPI_AGE_KEY ((uintptr_t)0x9e3779b97f4a7c15ULL)
#define TPI_PAGE_OS_PAGES (TPI_SLICE_SIZE / TPI_OS_PAGE) /* 16: bits of page->purged */
#define TPI_PAGE_MAX_BLOCKS (TPI_SLICE_SIZE / 16)        /* 4096 */
_Static_assert(TPI_PAGE_OS_PAGES <= 16 && TPI_SLAB_MAX <= TPI_SLICE_SIZE,
               "a slab page is one slice, its OS pages the bits of page->purged");

static uintptr_t tpi_age_mark(const tpi_block *b, uintptr_t state)
{
    return (uintptr_t)b ^ TPI_AGE_KEY ^ state;
}

tpi_cold void tpi_block_unmark_tracked(void *p, size_t size)
{
    uintptr_t *w = tpi_block_age_word(p);
    tpi_track_defined(w, sizeof *w);
    *w = 0;
    size_t open = size <= sizeof(uintptr_t) ? 0 : size - sizeof(uintptr_t);
    if (open > sizeof *w) open = sizeof *w;
    if (open) tpi_track_undefined(w, open);
    if (open < sizeof *w) tpi_track_noaccess((char *)w + open, sizeof *w - open);
}

/* The OS pages block i overlaps, as a mask of page->purged's bits. */
static uint32_t tpi_block_os_pages(const tpi_page *page, uint32_t i)
{
    size_t from = (size_t)i * page->block_size, to = from + page->block_size - 1;
    unsigned a = (unsigned)(from / TPI_OS_PAGE), b = (unsigned)(to / TPI_OS_PAGE);
    return (uint32_t)(((1u << (b - a + 1)) - 1) << a);
}

/* Marks in `aged` the blocks of a list whose mark says they were free at the
 * last look; marks all as seen now. */
static void tpi_list_scan(const tpi_page *page, tpi_block *b, uint64_t *aged, bool all)
{
    char *start = tpi_page_start(page);
    for (uint32_t n = 1; b; b = tpi_list_next(page, b, n++)) {
        uint32_t i = tpi_page_block_index(page, (size_t)((char *)b - start));
        uintptr_t *w = tpi_block_age_word(b);
        tpi_track_defined(w, sizeof *w);
        if (all || *w == tpi_age_mark(b, TPI_AGE_SEEN)) aged[i >> 6] |= (uint64_t)1 << (i & 63);
        *w = tpi_age_mark(b, TPI_AGE_SEEN);
        tpi_track_noaccess(w, sizeof *w);
    }
}

/* Drops from a list the blocks that overlap an OS page of `mask`. */
static void tpi_list_drop(tpi_page *page, tpi_block **list, uint32_t mask)
{
    char *start = tpi_page_start(page);
    tpi_block *kept = NULL, *tail = NULL;
    uint32_t n = 1;
    for (tpi_block *b = *list, *next; b; b = next) {
        next = tpi_list_next(page, b, n++);
        uint32_t i = tpi_page_block_index(page, (size_t)((char *)b - start));
        if (tpi_block_os_pages(page, i) & mask) continue;
        if (tail) tpi_block_link(tail, b); else kept = b;
        tail = b;
    }
    if (tail) tpi_block_link(tail, NULL);
    *list = kept;
}

size_t tpi_page_purge_free(tpi_page *page, bool every)
{
    uint64_t aged[TPI_PAGE_MAX_BLOCKS / 64] = {0};
    tpi_list_scan(page, page->free, aged, every);
    tpi_list_scan(page, page->local_free, aged, every);
    /* An OS page goes if every carved block on it is free and aged; blocks
     * past `carved` were never touched. */
    uint32_t mask = 0;
    uint32_t os_pages = (uint32_t)(((size_t)page->carved * page->block_size + TPI_OS_PAGE - 1) / TPI_OS_PAGE);
    for (uint32_t j = 0; j < os_pages; j++) {
        if ((uint32_t)page->purged >> j & 1) continue;
        uint32_t first = (uint32_t)((size_t)j * TPI_OS_PAGE / page->block_size);
        uint32_t last = (uint32_t)(((size_t)(j + 1) * TPI_OS_PAGE - 1) / page->block_size);
        if (last >= page->carved) last = page->carved - 1;
        bool all = true;
        for (uint32_t i = first; i <= last && all; i++) all = aged[i >> 6] >> (i & 63) & 1;
        if (all) mask |= 1u << j;
    }
    if (!mask) return 0;
    tpi_list_drop(page, &page->free, mask);
    tpi_list_drop(page, &page->local_free, mask);
    size_t bytes = 0;
    for (uint32_t m = mask; m;) {
        unsigned j = (unsigned)__builtin_ctz(m), n = 0;
        while (j + n < TPI_PAGE_OS_PAGES && (m >> (j + n) & 1)) n++;
        tpi_os_purge(tpi_page_start(page) + (size_t)j * TPI_OS_PAGE, (size_t)n * TPI_OS_PAGE);
        bytes += (size_t)n * TPI_OS_PAGE;
        m &= ~(((1u << n) - 1) << j);
    }
    page->purged |= (uint16_t)mask;
    return bytes;
}

/* Puts back on the free list the blocks of the lowest purged OS pages that
 * overlap no other purged one, page by page until a block is back (a block
 * over two purged OS pages needs both); false if none is purged. */
static bool tpi_page_unpurge(tpi_page *page)
{
    uint32_t linked = 0;
    char *start = tpi_page_start(page);
    while (page->purged && linked == 0) {
        unsigned j = (unsigned)__builtin_ctz(page->purged);
        page->purged &= (uint16_t)~(1u << j);
        uint32_t first = (uint32_t)((size_t)j * TPI_OS_PAGE / page->block_size);
        uint32_t last = (uint32_t)(((size_t)(j + 1) * TPI_OS_PAGE - 1) / page->block_size);
        if (last >= page->carved) last = page->carved - 1;
        for (uint32_t i = last + 1; i-- > first;) {
            if (tpi_block_os_pages(page, i) & page->purged) continue; /* waits for its other page */
            tpi_block *b = (tpi_block *)(start + (size_t)i * page->block_size);
            tpi_track_undefined(b, 2 * sizeof(uintptr_t));
            *tpi_block_age_word(b) = 0;
            tpi_block_link(b, page->free);
            page->free = b;
            tpi_track_noaccess(b, 2 * sizeof(uintptr_t));
            linked++;
        }
    }
    return linked != 0;
}

#if defined(TPI_DEBUG)
/* The blocks of a list of the page, each checked to be a carved block of
 * it on no purged OS page. */
static uint32_t tpi_page_check_list(const tpi_page *page, const tpi_block *b)
{
    uint32_t n = 0;
    while (b) {
        size_t offset = (size_t)((const char *)b - tpi_page_start(page));
        tpi_assert(offset < (size_t)page->carved * page->block_size && tpi_page_at_block(page, offset));
        tpi_assert(!page->purged || !(tpi_block_os_pages(page, tpi_page_block_index(page, offset)) & page->purged));
        b = tpi_list_next(page, b, ++n);
    }
    return n;
}

void tpi_page_check(const tpi_page *page)
{
    if (page == &tpi_page_empty) return;
    tpi_assert(page->slice_count > 0 && page->carved <= page->capacity && page->used >= page->pinned);
    tpi_assert(page->capacity == tpi_classes[page->class_index].blocks);
    uint32_t listed = tpi_page_check_list(page, page->free) + tpi_page_check_list(page, page->local_free);
    /* Blocks of purged OS pages are on no list and not in use. */
    uint32_t purged = 0;
    if (page->purged)
        for (uint32_t i = 0; i < page->carved; i++) purged += (tpi_block_os_pages(page, i) & page->purged) != 0;
    tpi_assert(listed + tpi_page_used(page) + purged == page->carved);
}
#endif
