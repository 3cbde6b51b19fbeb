/*
 * page.c: slab pages: lazy carving, the three free lists, remote frees.
 *
 * Everything here but tpi_page_free_remote runs on the page's owning thread
 * (or under the pool lock for a page nobody owns).
 */
#include "internal.h"

/* Carve 16 KiB of fresh blocks at a time, but at least 64 blocks: a page is
 * touched (and made resident) only as fast as it is used, while a thread that
 * reuses a few blocks cycles through at least 64 of them between two slow
 * paths (the cycle is as long as the blocks carved so far). */
#define TPI_CARVE_BYTES (16u * 1024u)
#define TPI_CARVE_MIN 64u
_Static_assert(TPI_CARVE_BYTES / 16 <= TPI_SECURE_CARVE_MAX && TPI_CARVE_MIN <= TPI_SECURE_CARVE_MAX,
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
    page->checked = tpi_secure || TPI_OPTION(check);
    page->next = page->prev = NULL;
}

bool tpi_page_extend(tpi_page *page)
{
    uint32_t left = page->capacity - page->carved;
    if (left == 0) return false;
    uint32_t count = TPI_CARVE_BYTES / page->block_size;
    if (count < TPI_CARVE_MIN) count = TPI_CARVE_MIN;
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

/* Gives back the inside of a free block: every OS page of it but the one
 * holding its link and its age mark. Returns the bytes purged. */
static size_t tpi_block_purge_inside(const tpi_page *page, const tpi_block *b)
{
    uintptr_t from = ((uintptr_t)b + 2 * sizeof(uintptr_t) + TPI_OS_PAGE - 1) & ~(uintptr_t)(TPI_OS_PAGE - 1);
    uintptr_t to = ((uintptr_t)b + page->block_size) & ~(uintptr_t)(TPI_OS_PAGE - 1);
    if (to <= from) return 0;
    tpi_os_purge((void *)from, to - from);
    return to - from;
}

/* A free block's age mark (tpi_block_age_word): seen free at a look, or
 * purged since; keyed by the block's address, so that what a program left
 * in the word is not taken for a mark. */
enum { TPI_AGE_SEEN = 1, TPI_AGE_PURGED = 2 };
#define TPI_AGE_KEY ((uintptr_t)0x9e3779b97f4a7c15ULL)

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

static size_t tpi_list_purge_aged(const tpi_page *page, tpi_block *b)
{
    size_t bytes = 0;
    for (uint32_t n = 1; b; b = tpi_list_next(page, b, n++)) {
        uintptr_t *w = tpi_block_age_word(b);
        tpi_track_defined(w, sizeof *w);
        if (*w == tpi_age_mark(b, TPI_AGE_SEEN)) {
            bytes += tpi_block_purge_inside(page, b);
            *w = tpi_age_mark(b, TPI_AGE_PURGED);
        } else if (*w != tpi_age_mark(b, TPI_AGE_PURGED)) {
            *w = tpi_age_mark(b, TPI_AGE_SEEN);
        }
        tpi_track_noaccess(w, sizeof *w);
    }
    return bytes;
}

/* Purges the inside of the page's free blocks that were free already at the
 * last look, each once. Owner only. The caller looks once per purge delay,
 * so a block gives its memory back after one to two delays free, however
 * busy the rest of the page is. Returns the bytes purged.
 *
 * A look marks each free block it finds in the block's second word (above);
 * a block that shows the mark at the next look has been free since, because
 * malloc clears it (tpi_block_unmark, for classes of TPI_PURGE_BLOCK_MIN and
 * up: tcache.c). So the lists may change in any order between looks. */
size_t tpi_page_purge_free(tpi_page *page)
{
    return tpi_list_purge_aged(page, page->free) + tpi_list_purge_aged(page, page->local_free);
}
