/* SPDX-License-Identifier: MIT */
/*
 * run.c: the large tier's page source: run chunks, the pool's run heap, and
 * the purge of free runs (internal.h, "runs", has the picture).
 *
 * A run chunk's tags describe its pages. Invariant: a run's first and last
 * tags carry its length and state (the last one with `tail` set when the
 * run has more than one page); every other tag is zero. So a pointer starts
 * a run handed out exactly when its page's tag is a USED or CACHED head,
 * and merging clears the two tags where runs meet.
 *
 * Locking: the heap lock guards the bins, the chunk list and every free
 * run's tags; a used run's tags belong to its holder. No system call runs
 * under the heap lock: a chunk is mapped before it is linked and unmapped
 * after it is unlinked, and a purge pass takes due runs out of the bins,
 * purges them unlocked, and puts them back (tpi_run_heap_purge). Lock order:
 * the pool lock, then the heap lock.
 *
 * Cost: a run handed out by the heap is one lock, a bitmap scan of at most
 * 16 words for the best fit, and a few tag writes; a free is one lock and
 * two tag reads to merge. Thread caches (run_cache.c) spare most of them.
 */
#include "internal.h"

#include <sched.h>
#include <string.h>

/* ---- tags ------------------------------------------------------------------------ */

#define TPI_RUN_HEADER_BYTES ((size_t)TPI_RUN_HEADER_PAGES * TPI_OS_PAGE)

static inline unsigned tpi_run_index(const tpi_run_chunk *c, const tpi_run *r)
{
    return (unsigned)(r - c->runs);
}

static inline char *tpi_run_addr(tpi_run_chunk *c, unsigned index)
{
    return (char *)c + ((size_t)index << 12);
}

static inline uint8_t tpi_run_state(const tpi_run *r)
{
    return atomic_load_explicit(&r->state, memory_order_relaxed);
}

static void tpi_run_clear_tag(tpi_run *r)
{
    r->pages = 0;
    atomic_store_explicit(&r->state, TPI_RUN_NONE, memory_order_relaxed);
    r->tail = 0;
}

/* Writes the boundary tags of the run [first, first + pages). */
static tpi_run *tpi_run_mark(tpi_run_chunk *c, unsigned first, unsigned pages, uint8_t state)
{
    tpi_run *head = &c->runs[first];
    head->pages = pages;
    head->tail = 0;
    atomic_store_explicit(&head->state, state, memory_order_relaxed);
    if (pages > 1) {
        tpi_run *last = &c->runs[first + pages - 1];
        last->pages = pages;
        last->tail = 1;
        atomic_store_explicit(&last->state, state, memory_order_relaxed);
    }
    return head;
}

tpi_run *tpi_run_of(const void *p)
{
    tpi_run_chunk *c = tpi_run_chunk_of(p);
    uintptr_t offset = (uintptr_t)p - (uintptr_t)c;
    if (c->magic != TPI_RUN_MAGIC || (offset & (TPI_OS_PAGE - 1)) != 0) return NULL;
    tpi_run *r = &c->runs[offset >> 12];
    /* A cached run is free: freeing it again is a double free. */
    if (tpi_run_state(r) != TPI_RUN_USED || r->tail) return NULL;
    return r;
}

/* ---- dirty pages ----------------------------------------------------------------- */

/* Bits set in x. Not __builtin_popcountll: without -mpopcnt (not in the
 * x86-64 baseline) that is a call into libgcc, 2% of the note's workload. */
static inline unsigned tpi_popcount64(uint64_t x)
{
    x -= (x >> 1) & 0x5555555555555555ULL;
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (unsigned)((x * 0x0101010101010101ULL) >> 56);
}

/* The dirty bits of [first, end) lie in words first >> 6 .. (end - 1) >> 6:
 * the range's part of the two at the ends, all bits of those between.
 * Whole words keep a scan of a chunk-long run at 16 loads. */
typedef struct tpi_dirty_span {
    unsigned head, tail;          /* the first and last word */
    uint64_t head_mask, tail_mask; /* the range's bits in them (both in one word: head_mask) */
    unsigned head_bits, tail_bits; /* how many */
} tpi_dirty_span;

static inline tpi_dirty_span tpi_dirty_span_of(unsigned first, unsigned pages)
{
    unsigned end = first + pages;
    tpi_dirty_span s = {first >> 6, (end - 1) >> 6, ~(uint64_t)0 << (first & 63),
                        ~(uint64_t)0 >> (63 - ((end - 1) & 63)), 64 - (first & 63), ((end - 1) & 63) + 1};
    if (s.head == s.tail) {
        s.head_mask &= s.tail_mask;
        s.head_bits = pages;
    }
    return s;
}

/* Bits set in `bits`, a word's part `mask` of a range (n bits) or less. A
 * run's pages are mostly all dirty or all clean: a word of none costs a
 * compare, a word of all of its part no popcount. */
static inline unsigned tpi_dirty_word_count(uint64_t bits, uint64_t mask, unsigned n)
{
    return bits == 0 ? 0 : bits == mask ? n : tpi_popcount64(bits);
}

/* Dirty pages in [first, first + pages). */
static unsigned tpi_run_count_dirty(const tpi_run_chunk *c, unsigned first, unsigned pages)
{
    tpi_dirty_span s = tpi_dirty_span_of(first, pages);
    unsigned count = tpi_dirty_word_count(c->dirty[s.head] & s.head_mask, s.head_mask, s.head_bits);
    if (s.head == s.tail) return count;
    for (unsigned w = s.head + 1; w < s.tail; w++) count += tpi_dirty_word_count(c->dirty[w], ~(uint64_t)0, 64);
    return count + tpi_dirty_word_count(c->dirty[s.tail] & s.tail_mask, s.tail_mask, s.tail_bits);
}

/* Sets the dirty bits of [first, first + pages), pages of a run that was
 * handed out or cached: their bits are all clear (a take clears them), so
 * all `pages` change, and nothing needs counting. */
static void tpi_run_mark_dirty(tpi_run_chunk *c, unsigned first, unsigned pages)
{
    tpi_dirty_span s = tpi_dirty_span_of(first, pages);
    tpi_assert(tpi_run_count_dirty(c, first, pages) == 0);
    c->dirty[s.head] |= s.head_mask;
    if (s.head == s.tail) return;
    for (unsigned w = s.head + 1; w < s.tail; w++) c->dirty[w] = ~(uint64_t)0;
    c->dirty[s.tail] |= s.tail_mask;
}

/* Clears the dirty bits of [first, first + pages) (counted before, if
 * needed: tpi_run_count_dirty). */
static void tpi_run_mark_clean(tpi_run_chunk *c, unsigned first, unsigned pages)
{
    tpi_dirty_span s = tpi_dirty_span_of(first, pages);
    c->dirty[s.head] &= ~s.head_mask;
    if (s.head == s.tail) return;
    for (unsigned w = s.head + 1; w < s.tail; w++) c->dirty[w] = 0;
    c->dirty[s.tail] &= ~s.tail_mask;
}

/* Whether a page of [first, first + pages) is dirty. */
static bool tpi_run_any_dirty(const tpi_run_chunk *c, unsigned first, unsigned pages)
{
    tpi_dirty_span s = tpi_dirty_span_of(first, pages);
    if (c->dirty[s.head] & s.head_mask) return true;
    if (s.head == s.tail) return false;
    for (unsigned w = s.head + 1; w < s.tail; w++)
        if (c->dirty[w]) return true;
    return (c->dirty[s.tail] & s.tail_mask) != 0;
}

/* ---- bins ------------------------------------------------------------------------- */

/* Files a free run in the set its dirty pages say. */
static void tpi_bin_push(tpi_run_heap *h, tpi_run *r, bool dirty)
{
    unsigned n = r->pages, set = 2 * tpi_run_chunk_of(r)->kind + dirty;
    r->dirty = dirty;
    r->prev = NULL;
    r->next = h->bins[set][n];
    if (r->next) r->next->prev = r;
    h->bins[set][n] = r;
    h->nonempty[set][n >> 6] |= (uint64_t)1 << (n & 63);
}

static void tpi_bin_remove(tpi_run_heap *h, tpi_run *r)
{
    unsigned n = r->pages, d = 2 * tpi_run_chunk_of(r)->kind + r->dirty;
    if (r->prev) {
        r->prev->next = r->next;
    } else {
        h->bins[d][n] = r->next;
        if (!r->next) h->nonempty[d][n >> 6] &= ~((uint64_t)1 << (n & 63));
    }
    if (r->next) r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

/* The shortest length of at least n with a free run in a set, or 0. */
static unsigned tpi_bin_fit(const tpi_run_heap *h, unsigned set, unsigned n)
{
    unsigned word = n >> 6;
    uint64_t bits = h->nonempty[set][word] & (~(uint64_t)0 << (n & 63));
    for (;;) {
        if (bits) return word * 64 + (unsigned)__builtin_ctzll(bits);
        if (++word == TPI_RUN_PAGES / 64) return 0;
        bits = h->nonempty[set][word];
    }
}

/* The free run with dirty pages after r (the first if r is NULL) in the
 * order sets, lengths, lists, or NULL: the walk of a purge pass, which
 * touches only the dirty free runs, never the chunks' tags. */
static tpi_run *tpi_dirty_next(const tpi_run_heap *h, const tpi_run *r)
{
    if (r && r->next) return r->next;
    unsigned set = r ? 2 * tpi_run_chunk_of(r)->kind + 1 : 1, from = r ? r->pages + 1 : 1;
    for (; set < 2 * TPI_RUN_KINDS; set += 2, from = 1) {
        unsigned len = from < TPI_RUN_PAGES ? tpi_bin_fit(h, set, from) : 0;
        if (len) return h->bins[set][len];
    }
    return NULL;
}

/* ---- the heap ------------------------------------------------------------------------ */

void tpi_run_heap_init(tpi_run_heap *heap)
{
    heap->chunks = NULL;
    memset(heap->bins, 0, sizeof heap->bins);
    memset(heap->nonempty, 0, sizeof heap->nonempty);
    heap->used_bytes = heap->dirty_bytes = heap->peak_used_bytes = 0;
    heap->window_peak[0] = heap->window_peak[1] = 0;
    heap->window_start = 0;
    heap->mapped_chunks = heap->purged_bytes = heap->purges = 0;
    memset(heap->frees, 0, sizeof heap->frees);
    memset(heap->freed_bytes, 0, sizeof heap->freed_bytes);
    tpi_decay_init(&heap->decay);
}

/* The later and the earlier of two times of the ms clock (which wraps). */
static uint32_t tpi_later(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0 ? a : b;
}

static uint32_t tpi_earlier(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0 ? b : a;
}

/* What a caller of tpi_heap_insert knows of the new free run's pages. */
enum { TPI_PAGES_CLEAN, TPI_PAGES_MIXED, TPI_PAGES_DIRTY };

/* Heap lock held. Makes [first, first + pages) of c a free run, merged with
 * the free runs on either side, in its bin; `pages_state` says whether its
 * pages are all clean, all dirty, or to be looked at (TPI_PAGES_*). A neighbour's dirty flag (tpi_bin_push) stands for its
 * pages, so a merge never scans the bitmap of a long free run, the cost of
 * a large free beside the rest of a chunk. A merged run's freed_ms is that
 * of its oldest part with dirty pages (`freed_ms` for the new part, if it
 * is dirty), so a purge pass finds old dirty pages that keep gaining free
 * neighbours; purged_ms is the latest purge of any part. */
static void tpi_heap_insert(tpi_run_heap *h, tpi_run_chunk *c, unsigned first, unsigned pages, unsigned pages_state,
                            uint32_t freed_ms, uint32_t purged_ms)
{
    unsigned end = first + pages;
    bool dirty = pages_state == TPI_PAGES_DIRTY || (pages_state == TPI_PAGES_MIXED && tpi_run_any_dirty(c, first, pages));
    tpi_run *left = &c->runs[first - 1]; /* the header's last tag when first is the first run page */
    if (tpi_run_state(left) == TPI_RUN_FREE) {
        unsigned n = left->pages;
        tpi_run *head = &c->runs[first - n];
        tpi_bin_remove(h, head);
        purged_ms = tpi_later(head->purged_ms, purged_ms);
        if (head->dirty) {
            freed_ms = dirty ? tpi_earlier(freed_ms, head->freed_ms) : head->freed_ms;
            dirty = true;
        }
        tpi_run_clear_tag(left);
        tpi_run_clear_tag(head);
        first -= n;
    }
    if (end < TPI_RUN_PAGES) {
        tpi_run *right = &c->runs[end];
        if (tpi_run_state(right) == TPI_RUN_FREE && !right->tail) {
            unsigned n = right->pages;
            tpi_bin_remove(h, right);
            purged_ms = tpi_later(right->purged_ms, purged_ms);
            if (right->dirty) {
                freed_ms = dirty ? tpi_earlier(freed_ms, right->freed_ms) : right->freed_ms;
                dirty = true;
            }
            tpi_run_clear_tag(&c->runs[end + n - 1]);
            tpi_run_clear_tag(right);
            end += n;
        }
    }
    tpi_run *head = tpi_run_mark(c, first, end - first, TPI_RUN_FREE);
    head->freed_ms = freed_ms;
    head->purged_ms = purged_ms;
    tpi_bin_push(h, head, dirty);
}

/* Free pages the heap may keep resident besides those aged for a purge:
 * enough to grow back to the highest use of this window or the last (a
 * window is TPI_REGRET_WINDOW purge delays) without touching new memory,
 * plus a slack of 1/TPI_RUN_SLACK_DIV of the use (TPI_RUN_SLACK_MIN at least). Free memory past that
 * is fragmentation that the requests no longer fit: a purge pass is due at
 * once, and purges the oldest free pages down to half the slack. So the
 * heap's resident memory stays within the recent peak of its use plus the
 * slack, while memory a program frees and takes back costs no page fault. */
static size_t tpi_run_slack(const tpi_run_heap *h)
{
    size_t slack = h->used_bytes / TPI_RUN_SLACK_DIV;
    return slack > TPI_RUN_SLACK_MIN ? slack : TPI_RUN_SLACK_MIN;
}

static size_t tpi_run_dirty_cap(const tpi_run_heap *h)
{
    size_t peak = h->window_peak[0] > h->window_peak[1] ? h->window_peak[0] : h->window_peak[1];
    return (peak > h->used_bytes ? peak - h->used_bytes : 0) + tpi_run_slack(h);
}

/* Heap lock held. Gives the run r (handed out or cached) back. */
static void tpi_heap_put(tpi_run_heap *h, tpi_run *r, uint32_t now)
{
    tpi_run_chunk *c = tpi_run_chunk_of(r);
    unsigned first = tpi_run_index(c, r), pages = r->pages;
    tpi_run_mark_dirty(c, first, pages);
    h->dirty_bytes += (size_t)pages * TPI_OS_PAGE;
    h->used_bytes -= (size_t)pages * TPI_OS_PAGE;
    c->free_pages += pages;
    if (pages > 1) tpi_run_clear_tag(&c->runs[first + pages - 1]);
    tpi_run_clear_tag(r);
    tpi_heap_insert(h, c, first, pages, TPI_PAGES_DIRTY, now, 0);
    if (h->dirty_bytes > tpi_run_dirty_cap(h)) __atomic_store_n(&h->decay.next_pass, 0, __ATOMIC_RELAXED);
}

/* Heap lock held. The best-fitting free run for `pages` pages starting on a
 * multiple of `align_pages` pages, cut to that many pages, or (unaligned) up
 * to `most` if it is longer and the cut leaves a usable rest; NULL if none,
 * or (*refused set) when the memory limit refused its clean pages
 * (limit.c). Taking back memory purged within TPI_REGRET_WINDOW delays
 * counts as regret (purge.c). */
static tpi_run *tpi_heap_take(tpi_run_heap *h, unsigned pages, unsigned align_pages, unsigned most, uint32_t now,
                              bool *refused)
{
    unsigned want = pages + align_pages - 1, kind = TPI_RUN_KIND(want);
    unsigned set = 2 * kind + 1, len = tpi_bin_fit(h, set, want);
    if (!len && (set = 2 * kind, len = tpi_bin_fit(h, set, want)) == 0) return NULL;
    unsigned asked = pages;
    if (align_pages == 1 && len > pages) {
        unsigned cut = len < most ? len : most;
        if (cut >= pages + TPI_RUN_MIN_PAGES) pages = cut;
    }
    tpi_run *free_run = h->bins[set][len];
    tpi_bin_remove(h, free_run);
    tpi_run_chunk *c = tpi_run_chunk_of(free_run);
    unsigned first = tpi_run_index(c, free_run), end = first + len;
    uint32_t freed_ms = free_run->freed_ms, purged_ms = free_run->purged_ms;
    unsigned start = first;
    /* Of a run partly dirty, the dirty end (a split leaves the rest free). */
    if (align_pages == 1 && len > pages && (set & 1) && !(c->dirty[first >> 6] >> (first & 63) & 1) &&
        (c->dirty[(end - 1) >> 6] >> ((end - 1) & 63) & 1))
        start = end - pages;
    if (align_pages > 1) {
        size_t align = (size_t)align_pages * TPI_OS_PAGE;
        uintptr_t a = (uintptr_t)tpi_run_addr(c, first);
        start = first + (unsigned)((((a + align - 1) & ~(uintptr_t)(align - 1)) - a) >> 12);
    }
    unsigned dirty = tpi_run_count_dirty(c, start, pages), clean = pages - dirty;
    if (clean && !tpi_limit_commit((size_t)clean * TPI_OS_PAGE)) {
        tpi_bin_push(h, free_run, set & 1); /* its tags are untouched */
        /* Near the limit a refill takes what was asked, not more. */
        if (pages > asked) return tpi_heap_take(h, asked, 1, asked, now, refused);
        *refused = true;
        return NULL;
    }
    tpi_run_clear_tag(free_run);
    if (len > 1) tpi_run_clear_tag(&c->runs[end - 1]);
    tpi_run_mark_clean(c, start, pages);
    h->dirty_bytes -= (size_t)dirty * TPI_OS_PAGE;
    if (purged_ms && dirty < pages && now - purged_ms < TPI_REGRET_WINDOW * tpi_decay_delay(&h->decay))
        tpi_decay_on_regret(&h->decay, now, (size_t)(pages - dirty) * TPI_OS_PAGE);
    /* The rest stays free: the head before an aligned start, and the tail. */
    unsigned rest = set & 1 ? TPI_PAGES_MIXED : TPI_PAGES_CLEAN;
    if (start > first) tpi_heap_insert(h, c, first, start - first, rest, freed_ms, purged_ms);
    if (start + pages < end) tpi_heap_insert(h, c, start + pages, end - start - pages, rest, freed_ms, purged_ms);
    c->free_pages -= pages;
    h->used_bytes += (size_t)pages * TPI_OS_PAGE;
    if (h->used_bytes > h->peak_used_bytes) h->peak_used_bytes = h->used_bytes;
    if (h->used_bytes > h->window_peak[0]) h->window_peak[0] = h->used_bytes;
    return tpi_run_mark(c, start, pages, TPI_RUN_USED);
}

/* The pages a chunk hands out: all but the header, and in secure mode but
 * a guard page at either end (an overflow off the last run faults before
 * the next chunk's header, an underflow of the first before the tags). */
static unsigned tpi_run_first_page(void)
{
    return TPI_RUN_HEADER_PAGES + (tpi_secure ? 1u : 0u);
}

static unsigned tpi_run_capacity(void)
{
    return TPI_RUN_MAX_PAGES - (tpi_secure ? 2u : 0u);
}

static size_t tpi_run_heap_purge_now(tpi_run_heap *h, unsigned kind);

/* Maps, charges and links a new chunk of a kind, one free run; no lock
 * held. */
static bool tpi_run_heap_grow(tp_pool *pool, unsigned kind)
{
    /* Before the footprint grows by a chunk, the free memory runs of this
     * kind cannot use goes back now rather than after the delay: the slab
     * chunks' free slices and the other kind's dirty free runs. A program
     * that moves from small blocks to large ones, or from large runs to
     * short ones, does not hold both (the slab side does the same when it
     * grows: page_source.c). Growth is rare: once per 4 MiB chunk. */
    pthread_mutex_lock(&pool->lock);
    tpi_pool_purge_free_slices(pool);
    bool charged = tpi_pool_charge(pool, TPI_CHUNK_SIZE);
    pthread_mutex_unlock(&pool->lock);
    if (!charged) return false;
    tpi_run_heap_purge_now(&pool->runs, 1 - kind);
    /* The header counts as committed while the chunk lives (limit.c). */
    bool committed = tpi_limit_commit(TPI_RUN_HEADER_BYTES);
    tpi_run_chunk *c = committed ? tpi_pool_map(pool, TPI_CHUNK_SIZE, TPI_CHUNK_SIZE, 0) : NULL;
    if (c && tpi_secure &&
        (!tpi_os_protect(tpi_run_addr(c, TPI_RUN_HEADER_PAGES), TPI_OS_PAGE) ||
         !tpi_os_protect(tpi_run_addr(c, TPI_RUN_PAGES - 1), TPI_OS_PAGE))) {
        tpi_os_unmap(c, TPI_CHUNK_SIZE);
        c = NULL;
    }
    if (!c) {
        if (committed) tpi_limit_release(TPI_RUN_HEADER_BYTES);
        pthread_mutex_lock(&pool->lock);
        pool->mapped -= TPI_CHUNK_SIZE;
        pthread_mutex_unlock(&pool->lock);
        return false;
    }
    tpi_os_huge_pages(c, TPI_CHUNK_SIZE, TPI_OPTION(huge_pages) != 0);
    c->magic = TPI_RUN_MAGIC;
    c->pool = pool;
    c->kind = kind;
    unsigned first = tpi_run_first_page(), pages = tpi_run_capacity();
    /* Guards read as used, so that nothing merges across them. */
    if (tpi_secure) {
        tpi_run_mark(c, first - 1, 1, TPI_RUN_USED);
        tpi_run_mark(c, TPI_RUN_PAGES - 1, 1, TPI_RUN_USED);
    }
    tpi_track_noaccess(tpi_run_addr(c, first), (size_t)pages * TPI_OS_PAGE);
    tpi_registry_set((uintptr_t)c, TPI_CHUNK_SIZE, TPI_REG_RUN, TPI_REG_RUN);
    tpi_run_heap *h = &pool->runs;
    tpi_lock_take(&h->lock);
    c->prev = NULL;
    c->next = h->chunks;
    if (h->chunks) h->chunks->prev = c;
    h->chunks = c;
    h->mapped_chunks++;
    c->free_pages = pages;
    tpi_heap_insert(h, c, first, pages, TPI_PAGES_CLEAN, (uint32_t)tpi_clock(), 0);
    tpi_lock_give(&h->lock);
    return true;
}

/* Unmaps a chunk whose pages no longer count as committed (purged, or
 * released by the caller); its header stops counting too (limit.c). */
static void tpi_run_chunk_unmap(tpi_run_chunk *c)
{
    tpi_limit_release(TPI_RUN_HEADER_BYTES);
    tpi_registry_set((uintptr_t)c, TPI_CHUNK_SIZE, TPI_REG_NONE, TPI_REG_NONE);
    tpi_os_unmap(c, TPI_CHUNK_SIZE);
}

/* ---- allocation and free ----------------------------------------------------------- */

void *tpi_run_heap_take(tp_pool *pool, unsigned pages, unsigned align_pages, unsigned most, void **give,
                        unsigned count)
{
    tpi_run_heap *h = &pool->runs;
    for (unsigned attempt = 0;; attempt++) {
        uint32_t now = (uint32_t)tpi_clock();
        bool refused = false;
        tpi_lock_take(&h->lock);
        for (unsigned i = 0; i < count; i++) tpi_heap_put(h, tpi_run_tag(give[i]), now);
        count = 0;
        tpi_run *r = tpi_heap_take(h, pages, align_pages, most, now, &refused);
        tpi_lock_give(&h->lock);
        if (r) return tpi_run_addr(tpi_run_chunk_of(r), tpi_run_index(tpi_run_chunk_of(r), r));
        if (refused) return NULL; /* the memory limit (limit.c) */
        if (attempt == 3 || !tpi_run_heap_grow(pool, TPI_RUN_KIND(pages + align_pages - 1))) return NULL;
    }
}

void *tpi_run_split(void *p, unsigned pages)
{
    tpi_run *r = tpi_run_tag(p);
    tpi_run_chunk *c = tpi_run_chunk_of(p);
    unsigned first = tpi_run_index(c, r), len = r->pages;
    uint8_t state = tpi_run_state(r);
    /* No lock: the outer tags keep their held state throughout, and a
     * neighbour merging in the heap reads no more of them. */
    tpi_run_mark(c, first + pages, len - pages, state);
    tpi_run_mark(c, first, pages, state);
    return (char *)p + (size_t)pages * TPI_OS_PAGE;
}

void tpi_run_bad_free(const void *p)
{
    /* A run start still free (in a cache or the heap) was freed before;
     * elsewhere the run may have merged into a longer one. */
    uint8_t state = ((uintptr_t)p & (TPI_OS_PAGE - 1)) ? TPI_RUN_NONE : tpi_run_state(tpi_run_tag(p));
    if (state != TPI_RUN_NONE && state != TPI_RUN_USED && !tpi_run_tag(p)->tail)
        tpi_fatal("double free (the block is not in use)", p);
    tpi_fatal("double free or invalid free (no run starts there)", p);
}

void tpi_run_heap_free(void *p, bool counted)
{
    tpi_run *r = tpi_run_tag(p);
    tp_pool *pool = tpi_run_chunk_of(p)->pool;
    tpi_run_heap *h = &pool->runs;
    uint32_t now = (uint32_t)tpi_clock();
    tpi_lock_take(&h->lock);
    if (!counted) {
        h->frees[r->class_index]++;
        h->freed_bytes[r->class_index] += tpi_run_usable(r);
    }
    tpi_heap_put(h, r, now);
    tpi_lock_give(&h->lock);
    tpi_run_heap_purge(pool, now, false);
}

bool tpi_run_heap_resize(void *p, unsigned want, bool counted)
{
    tpi_run *r = tpi_run_tag(p);
    tpi_run_chunk *c = tpi_run_chunk_of(p);
    tpi_run_heap *h = &c->pool->runs;
    unsigned first = tpi_run_index(c, r), pages = r->pages;
    uint32_t now = (uint32_t)tpi_clock();
    tpi_lock_take(&h->lock);
    if (want < pages) {
        /* The tail goes back to the heap, a run of its own. */
        tpi_run_clear_tag(&c->runs[first + pages - 1]);
        tpi_run_mark(c, first, want, TPI_RUN_USED);
        tpi_run_mark_dirty(c, first + want, pages - want);
        h->dirty_bytes += (size_t)(pages - want) * TPI_OS_PAGE;
        h->used_bytes -= (size_t)(pages - want) * TPI_OS_PAGE;
        c->free_pages += pages - want;
        tpi_heap_insert(h, c, first + want, pages - want, TPI_PAGES_DIRTY, now, 0);
    } else if (want > pages) {
        /* The free run that follows, if long enough, lends the pages. */
        unsigned end = first + pages;
        tpi_run *next = end < TPI_RUN_PAGES ? &c->runs[end] : NULL;
        if (!next || tpi_run_state(next) != TPI_RUN_FREE || next->tail || next->pages < want - pages) {
            tpi_lock_give(&h->lock);
            return false;
        }
        unsigned n = next->pages, grow = want - pages;
        unsigned dirty = tpi_run_count_dirty(c, end, grow), clean = grow - dirty;
        if (clean && !tpi_limit_commit((size_t)clean * TPI_OS_PAGE)) {
            tpi_lock_give(&h->lock);
            return false;
        }
        uint32_t freed_ms = next->freed_ms, purged_ms = next->purged_ms;
        bool next_dirty = next->dirty;
        tpi_bin_remove(h, next);
        tpi_run_clear_tag(next);
        if (n > 1) tpi_run_clear_tag(&c->runs[end + n - 1]);
        if (pages > 1) tpi_run_clear_tag(&c->runs[end - 1]);
        tpi_run_mark_clean(c, end, grow);
        h->dirty_bytes -= (size_t)dirty * TPI_OS_PAGE;
        if (n > grow)
            tpi_heap_insert(h, c, end + grow, n - grow, next_dirty ? TPI_PAGES_MIXED : TPI_PAGES_CLEAN, freed_ms,
                            purged_ms);
        tpi_run_mark(c, first, want, TPI_RUN_USED);
        h->used_bytes += (size_t)grow * TPI_OS_PAGE;
        if (h->used_bytes > h->peak_used_bytes) h->peak_used_bytes = h->used_bytes;
        if (h->used_bytes > h->window_peak[0]) h->window_peak[0] = h->used_bytes;
        c->free_pages -= grow;
    }
    /* The statistics follow the block's usable bytes; its class stays. */
    if (!counted) h->freed_bytes[r->class_index] -= ((uint64_t)want - pages) * TPI_OS_PAGE;
    tpi_lock_give(&h->lock);
    return true;
}

void tpi_run_heap_free_batch(tp_pool *pool, void **runs, unsigned count)
{
    tpi_run_heap *h = &pool->runs;
    uint32_t now = (uint32_t)tpi_clock();
    tpi_lock_take(&h->lock);
    for (unsigned i = 0; i < count; i++) tpi_heap_put(h, tpi_run_tag(runs[i]), now);
    tpi_lock_give(&h->lock);
}

/* ---- purging ------------------------------------------------------------------------- */

#define TPI_PURGE_BATCH 32

typedef struct tpi_purge_item {
    tpi_run_chunk *chunk;
    unsigned first, pages, dirty;
    uint32_t freed_ms;
} tpi_purge_item;

/* Heap lock held. Takes out of the bins up to TPI_PURGE_BATCH free runs with
 * dirty pages, free for min_age ms at least, in chunks of a kind (any when
 * kind is TPI_RUN_KINDS); they read as used meanwhile. A pass costs in
 * proportion to the free runs it may purge (tpi_dirty_next). */
static unsigned tpi_purge_collect(tpi_run_heap *h, uint32_t now, uint32_t min_age, unsigned kind,
                                  tpi_purge_item *items)
{
    unsigned count = 0;
    for (tpi_run *r = tpi_dirty_next(h, NULL), *next; r && count < TPI_PURGE_BATCH; r = next) {
        next = tpi_dirty_next(h, r); /* before r leaves its bin */
        tpi_run_chunk *c = tpi_run_chunk_of(r);
        if (now - r->freed_ms < min_age || (kind < TPI_RUN_KINDS && c->kind != kind)) continue;
        unsigned first = tpi_run_index(c, r), pages = r->pages;
        tpi_bin_remove(h, r);
        items[count++] = (tpi_purge_item){c, first, pages, tpi_run_count_dirty(c, first, pages), r->freed_ms};
        tpi_run_mark(c, first, pages, TPI_RUN_PURGING);
    }
    return count;
}

/* Heap lock held. The youngest age, a power of two ms (or 0), such that
 * purging the dirty runs at least that old leaves at most `target` dirty
 * bytes: one walk of the dirty runs, their dirty bytes summed by the log2
 * of their age. */
static uint32_t tpi_purge_age_for(const tpi_run_heap *h, uint32_t now, size_t target)
{
    size_t by_age[33] = {0}; /* [k]: dirty bytes of runs aged [2^(k-1), 2^k) ms; [0]: age 0 */
    for (const tpi_run *r = tpi_dirty_next(h, NULL); r; r = tpi_dirty_next(h, r)) {
        uint32_t age = now - r->freed_ms;
        tpi_run_chunk *c = tpi_run_chunk_of(r);
        by_age[age ? 32 - __builtin_clz(age) : 0] +=
            (size_t)tpi_run_count_dirty(c, tpi_run_index(c, r), r->pages) * TPI_OS_PAGE;
    }
    /* Keep the youngest buckets while they fit under the target. */
    size_t kept = 0;
    for (unsigned k = 0; k <= 32; k++) {
        if (kept + by_age[k] > target) return k ? (uint32_t)1 << (k - 1) : 0;
        kept += by_age[k];
    }
    return UINT32_MAX;
}

/* Heap lock held. Unlinks the chunks that are wholly free and clean, and
 * have been since 8 delays (at once when forced); returns them in a list. */
static tpi_run_chunk *tpi_purge_idle_chunks(tpi_run_heap *h, uint32_t now, bool force)
{
    tpi_run_chunk *idle = NULL;
    tpi_run_chunk *c = h->chunks;
    while (c) {
        tpi_run_chunk *next = c->next;
        unsigned first = tpi_run_first_page();
        if (c->free_pages == tpi_run_capacity() && !tpi_run_any_dirty(c, first, tpi_run_capacity()) &&
            (force || now - c->purged_ms >= 8 * tpi_decay_delay(&h->decay))) {
            tpi_bin_remove(h, &c->runs[first]);
            if (c->prev) c->prev->next = c->next; else h->chunks = c->next;
            if (c->next) c->next->prev = c->prev;
            h->mapped_chunks--;
            c->next = idle;
            idle = c;
        }
        c = next;
    }
    return idle;
}

/* Heap lock held (dropped meanwhile). Purges one batch of free runs free
 * for min_age ms with dirty pages (of a kind, as tpi_purge_collect), adding
 * the bytes to *purged; returns how many runs it purged. */
static unsigned tpi_purge_round(tpi_run_heap *h, uint32_t now, uint32_t min_age, unsigned kind, size_t *purged)
{
    tpi_purge_item items[TPI_PURGE_BATCH];
    unsigned count = tpi_purge_collect(h, now, min_age, kind, items);
    if (count == 0) return 0;
    tpi_lock_give(&h->lock);
    for (unsigned i = 0; i < count; i++)
        tpi_os_purge(tpi_run_addr(items[i].chunk, items[i].first), (size_t)items[i].pages * TPI_OS_PAGE);
    tpi_lock_take(&h->lock);
    for (unsigned i = 0; i < count; i++) {
        tpi_purge_item *it = &items[i];
        tpi_run_mark_clean(it->chunk, it->first, it->pages);
        h->dirty_bytes -= (size_t)it->dirty * TPI_OS_PAGE;
        *purged += (size_t)it->dirty * TPI_OS_PAGE;
        tpi_limit_release((size_t)it->dirty * TPI_OS_PAGE);
        it->chunk->purged_ms = now;
        tpi_run_clear_tag(&it->chunk->runs[it->first]);
        if (it->pages > 1) tpi_run_clear_tag(&it->chunk->runs[it->first + it->pages - 1]);
        tpi_heap_insert(h, it->chunk, it->first, it->pages, TPI_PAGES_CLEAN, it->freed_ms, now ? now : 1);
    }
    return count;
}

static void tpi_run_heap_count_purge(tpi_run_heap *h, size_t purged)
{
    if (purged) {
        h->purged_bytes += purged;
        h->purges++;
    }
}

/* Purges, now, every dirty free run in chunks of a kind (any: TPI_RUN_KINDS),
 * unless a pass is running; maps and unmaps nothing, so the pool lock may
 * be held. */
static size_t tpi_run_heap_purge_now(tpi_run_heap *h, unsigned kind)
{
    uint32_t now = (uint32_t)tpi_clock();
    size_t purged = 0;
    tpi_lock_take(&h->lock);
    if (!h->purging && h->dirty_bytes) {
        h->purging = true;
        while (tpi_purge_round(h, now, 0, kind, &purged)) {
        }
        tpi_run_heap_count_purge(h, purged);
        h->purging = false;
    }
    tpi_lock_give(&h->lock);
    return purged;
}

size_t tpi_run_heap_purge_dirty(tp_pool *pool)
{
    return tpi_run_heap_purge_now(&pool->runs, TPI_RUN_KINDS);
}

size_t tpi_run_heap_purge(tp_pool *pool, uint64_t now64, bool force)
{
    tpi_run_heap *h = &pool->runs;
    if (!force && !tpi_decay_due(&h->decay, now64)) return 0;
    uint32_t now = (uint32_t)now64;
    tpi_lock_take(&h->lock);
    /* One pass at a time: a forced one waits for another to finish. */
    while (h->purging || (!force && !tpi_decay_due(&h->decay, now64))) {
        tpi_lock_give(&h->lock);
        if (!force) return 0;
        sched_yield();
        tpi_lock_take(&h->lock);
    }
    h->purging = true;
    __atomic_store_n(&h->decay.pressure_gen, atomic_load_explicit(&tpi_pressure_gen, memory_order_relaxed),
                     __ATOMIC_RELAXED);
    /* Passes every quarter delay; one at a time (the next is not due). */
    uint64_t step = tpi_decay_delay(&h->decay) / 4;
    __atomic_store_n(&h->decay.next_pass, now64 + (step > 10 ? step : 10), __ATOMIC_RELAXED);
    size_t purged = 0;
    /* Every run free for the delay (all when forced); then, if the free
     * pages pass the cap, younger ones too, oldest first, down to a slack
     * below it (so that the next pass the cap calls for is a slack away). */
    uint32_t min_age = force ? 0 : tpi_decay_delay(&h->decay);
    if (!force && h->dirty_bytes > tpi_run_dirty_cap(h)) {
        size_t cap = tpi_run_dirty_cap(h), slack = tpi_run_slack(h);
        uint32_t age = tpi_purge_age_for(h, now, cap > slack ? cap - slack : 0);
        if (age < min_age) min_age = age;
    }
    while (tpi_purge_round(h, now, min_age, TPI_RUN_KINDS, &purged)) {
    }
    tpi_run_heap_count_purge(h, purged);
    tpi_decay_on_pass(&h->decay, now);
    if (now - h->window_start >= TPI_REGRET_WINDOW * tpi_decay_delay(&h->decay)) {
        h->window_peak[1] = h->window_peak[0];
        h->window_peak[0] = h->used_bytes;
        h->window_start = now;
    }
    tpi_run_chunk *idle = tpi_purge_idle_chunks(h, now, force);
    h->purging = false;
    tpi_lock_give(&h->lock);
    size_t unmapped = 0;
    while (idle) {
        tpi_run_chunk *next = idle->next;
        tpi_run_chunk_unmap(idle);
        unmapped += TPI_CHUNK_SIZE;
        idle = next;
    }
    if (unmapped) {
        pthread_mutex_lock(&pool->lock);
        pool->mapped -= unmapped;
        pthread_mutex_unlock(&pool->lock);
    }
    return purged + unmapped;
}

size_t tpi_run_heap_release_empty(tp_pool *pool)
{
    tpi_run_heap *h = &pool->runs;
    tpi_lock_take(&h->lock);
    tpi_run_chunk *idle = NULL;
    if (h->purging) { /* a pass has free runs out: not now */
        tpi_lock_give(&h->lock);
        return 0;
    }
    for (tpi_run_chunk *c = h->chunks, *next; c; c = next) {
        next = c->next;
        if (c->free_pages != tpi_run_capacity()) continue;
        size_t dirty = (size_t)tpi_run_count_dirty(c, tpi_run_first_page(), tpi_run_capacity()) * TPI_OS_PAGE;
        h->dirty_bytes -= dirty;
        tpi_limit_release(dirty);
        tpi_bin_remove(h, &c->runs[tpi_run_first_page()]);
        if (c->prev) c->prev->next = c->next; else h->chunks = c->next;
        if (c->next) c->next->prev = c->prev;
        h->mapped_chunks--;
        c->next = idle;
        idle = c;
    }
    tpi_lock_give(&h->lock);
    size_t released = 0;
    for (tpi_run_chunk *next; idle; idle = next) {
        next = idle->next;
        tpi_run_chunk_unmap(idle);
        released += TPI_CHUNK_SIZE;
    }
    pool->mapped -= released;
    return released;
}

/* ---- the pool's lifecycle ------------------------------------------------------------- */

void tpi_run_heap_after_fork(tpi_run_heap *h)
{
    if (!h->purging) return;
    /* The pass's thread is not in the child: its runs go back unpurged. */
    uint32_t now = (uint32_t)tpi_clock();
    for (tpi_run_chunk *c = h->chunks; c; c = c->next) {
        for (unsigned i = tpi_run_first_page(); i < TPI_RUN_PAGES;) {
            tpi_run *r = &c->runs[i];
            unsigned pages = r->pages;
            if (pages == 0) break;
            if (tpi_run_state(r) == TPI_RUN_PURGING) {
                tpi_run_clear_tag(r);
                if (pages > 1) tpi_run_clear_tag(&c->runs[i + pages - 1]);
                tpi_heap_insert(h, c, i, pages, TPI_PAGES_MIXED, now, 0);
            }
            i += pages;
        }
    }
    h->purging = false;
}

void tpi_run_heap_clear(tp_pool *pool, bool keep_chunks)
{
    tpi_run_heap *h = &pool->runs;
    tpi_lock_take(&h->lock);
    while (h->purging) { /* its runs must be back before the tags are rewritten */
        tpi_lock_give(&h->lock);
        sched_yield();
        tpi_lock_take(&h->lock);
    }
    tpi_run_chunk *c = h->chunks;
    memset(h->bins, 0, sizeof h->bins);
    memset(h->nonempty, 0, sizeof h->nonempty);
    /* Kept, what was handed out turns dirty: committed all the same. */
    if (!keep_chunks) tpi_limit_release(h->used_bytes + h->dirty_bytes);
    h->used_bytes = 0;
    if (!keep_chunks) {
        h->chunks = NULL;
        h->dirty_bytes = 0;
        h->mapped_chunks = 0;
    }
    unsigned first = tpi_run_first_page(), pages = tpi_run_capacity();
    uint32_t now = (uint32_t)tpi_clock();
    while (c) {
        tpi_run_chunk *next = c->next;
        if (keep_chunks) {
            /* What was handed out may be resident: dirty, all of it. */
            for (unsigned i = first; i < first + pages;) {
                tpi_run *r = &c->runs[i];
                unsigned n = r->pages;
                if (tpi_run_state(r) != TPI_RUN_FREE) {
                    tpi_run_mark_dirty(c, i, n);
                    h->dirty_bytes += (size_t)n * TPI_OS_PAGE;
                }
                tpi_run_clear_tag(r);
                if (n > 1) tpi_run_clear_tag(&c->runs[i + n - 1]);
                i += n;
            }
            c->free_pages = pages;
            tpi_track_noaccess(tpi_run_addr(c, first), (size_t)pages * TPI_OS_PAGE);
            tpi_heap_insert(h, c, first, pages, TPI_PAGES_MIXED, now, 0);
        } else {
            pool->mapped -= TPI_CHUNK_SIZE;
            tpi_run_chunk_unmap(c);
        }
        c = next;
    }
    tpi_lock_give(&h->lock);
}

size_t tpi_run_heap_resident(tpi_run_heap *heap, size_t (*resident)(const void *addr, size_t size))
{
    size_t bytes = 0;
    for (tpi_run_chunk *c = heap->chunks; c; c = c->next) bytes += resident(c, TPI_CHUNK_SIZE);
    return bytes;
}
