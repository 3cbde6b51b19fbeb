/* SPDX-License-Identifier: MIT */
/*
 * tcache.c: thread caches, one per (thread, pool).
 *
 * A tcache owns slab pages. Per size class it keeps a queue of pages that
 * have (or may have) free blocks, whose head is the "current" page malloc
 * pops from, and a queue of full pages. The small classes' current pages are
 * also reachable through direct[], indexed by (size + 15) / 16, so the malloc
 * fast path is one TLS load and two dependent loads before the pop.
 *
 * Refill comes in batches, never block by block: when the current page runs
 * dry, the slow path takes the page's local frees, the whole remote list (one
 * atomic exchange) or a fresh batch carved from the page; failing that, the
 * next page of the queue, a page abandoned by an exited thread, or a new page
 * from the pool (one lock per page of blocks).
 *
 * Flush: a page whose blocks all come back is handed to the pool, unless it
 * is the class's current page of a single slice (pinned: see below) or the
 * class may keep more empty pages; how many adapts per class to the workload
 * (adapt.c). A thread thus caches at most 1 + CACHE_KEEP_MAX empty pages per class, and fewer
 * when idle.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define TPI_EMPTY_DIRECT [0 ... TPI_SMALL_SLOTS - 1] = &tpi_page_empty
#define TPI_EMPTY_CURRENT [0 ... TPI_CLASS_COUNT - 1] = &tpi_page_empty
tpi_tcache tpi_tcache_empty = {.direct = {TPI_EMPTY_DIRECT}, .current = {TPI_EMPTY_CURRENT}};

/* ---- current pages ------------------------------------------------------------ */

/* A current page of one slice stays even when empty: cheap to hold, and it
 * saves a pool round trip to a program cycling around one block. Rather than
 * have each such free reach tpi_tcache_page_empty to learn that (a call per
 * malloc+free pair: 3.7 -> 3.0 ns measured), the page is pinned: its `used`
 * runs one high while it is current, so the free fast path never sees 0. */
static void tpi_page_pin(tpi_page *page)
{
    if (page == &tpi_page_empty || page->slice_count != 1 || page->pinned) return;
    page->pinned = 1;
    page->used++;
}

static void tpi_page_unpin(tpi_page *page)
{
    if (!page->pinned) return;
    page->pinned = 0;
    page->used--;
}

/* The old current page is not left empty by the unpin: it is replaced when
 * it has no free block (blocks are out), or when it is being retired. */
static void tpi_tcache_set_current(tpi_tcache *tc, unsigned cls, tpi_page *page)
{
    tpi_page_check(page);
    tpi_page_unpin(tc->current[cls]);
    tpi_page_pin(page);
    tc->current[cls] = page;
    uint32_t size = tpi_classes[cls].block_size;
    /* Secure mode, exact statistics and Memcheck keep direct[] empty: every
     * malloc takes the slow path; so does every malloc from a checked page
     * (its in-use bits). */
    if (size > TPI_SMALL_MAX || tpi_slow_only) return;
    tpi_page *direct = page->checked ? &tpi_page_empty : page;
    unsigned first = cls == 0 ? 0 : tpi_classes[cls - 1].block_size / 16 + 1;
    for (unsigned slot = first; slot <= size / 16; slot++) tc->direct[slot] = direct;
}

void tpi_tcache_init(tpi_tcache *tc, tp_pool *pool, uintptr_t thread_id)
{
    memset(tc, 0, sizeof *tc);
    for (unsigned i = 0; i < TPI_SMALL_SLOTS; i++) tc->direct[i] = &tpi_page_empty;
    for (unsigned i = 0; i < TPI_CLASS_COUNT; i++) tc->current[i] = &tpi_page_empty;
    for (unsigned i = 0; i < TPI_CLASS_COUNT; i++) tpi_adapt_init(&tc->adapt[i]);
    tc->ticks = 1;
    tc->pool = pool;
    tc->thread_id = thread_id;
    tc->owner_word = thread_id | (TPI_OPTION(check) || tpi_slow_only ? TPI_PAGE_CHECKED : 0);
}

/* A page kept empty (retained) that is in use again stops counting as kept.
 * Only the current page can be taken while flagged: the fast path pops from
 * it without looking, so the flag is cleared when a slow path notices. */
static void tpi_tcache_unretain(tpi_tcache *tc, tpi_page *page)
{
    if (!page->retained) return;
    page->retained = 0;
    tc->adapt[page->class_index].retained--;
}

/* ---- frees that miss the fast path ----------------------------------------------- */

static void tpi_tcache_unfull(tpi_tcache *tc, tpi_page *page)
{
    atomic_store_explicit(&page->owner, tpi_page_owner_word(page, tc->owner_word), memory_order_relaxed);
    tpi_page_clear_notify(page);
    tpi_queue_remove(&tc->full[page->class_index], page);
    tpi_queue_push_back(&tc->avail[page->class_index], page);
    page->queue = TPI_QUEUE_AVAIL;
    if (tc->current[page->class_index] == &tpi_page_empty)
        tpi_tcache_set_current(tc, page->class_index, page);
}

void tpi_tcache_retire(tpi_tcache *tc, tpi_page *page)
{
    unsigned cls = page->class_index;
    tpi_queue_remove(page->queue == TPI_QUEUE_FULL ? &tc->full[cls] : &tc->avail[cls], page);
    tpi_tcache_unretain(tc, page);
    if (tc->current[cls] == page)
        tpi_tcache_set_current(tc, cls, tc->avail[cls].first ? tc->avail[cls].first : &tpi_page_empty);
    tpi_adapt_on_release(&tc->adapt[cls], tc->ticks++);
    tc->counters[cls].flushes++;
    tpi_assert(tpi_page_used(page) == 0 && !page->pinned);
    tpi_pool_page_release(tc->pool, page);
}

/* The page's last block came back (used == 0) on its owner's thread. */
void tpi_tcache_page_empty(tpi_page *page)
{
    tpi_tcache *tc = atomic_load_explicit(&page->tcache, memory_order_relaxed);
    unsigned cls = page->class_index;
    if (page->retained) return;
    /* Current pages of one slice never get here (pinned); others stay only
     * when the class has shown that it thrashes. */
    if (tpi_adapt_may_keep(&tc->adapt[cls])) {
        page->retained = 1;
        tpi_queue_remove(&tc->avail[cls], page);
        tpi_queue_push_back(&tc->avail[cls], page);
        return;
    }
    tpi_tcache_retire(tc, page);
}

/* Shrinks every class that stopped growing (every class, when forced),
 * giving its surplus empty pages back to the pool. */
static void tpi_tcache_decay(tpi_tcache *tc, bool force)
{
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        unsigned excess = tpi_adapt_decay(&tc->adapt[cls], tc->ticks, force);
        tpi_page *page = tc->avail[cls].last;
        while (excess && page) {
            tpi_page *prev = page->prev;
            if (page->retained && tpi_page_used(page) > 0) {
                tpi_tcache_unretain(tc, page);
                excess--;
            } else if (page->retained && page != tc->current[cls]) {
                tpi_tcache_retire(tc, page);
                excess--;
            }
            page = prev;
        }
    }
}

/* A free by the owner that the fast path did not take: the page is full (or
 * checked, or the block comes from the delayed list). */
void tpi_tcache_free_local_slow(tpi_page *page, tpi_block *block)
{
    tpi_tcache *tc = atomic_load_explicit(&page->tcache, memory_order_relaxed);
    if (block == page->local_free || tpi_page_used(page) == 0)
        tpi_fatal("double free (more frees than blocks handed out)", block);
    tpi_block_link(block, page->local_free);
    page->local_free = block;
    page->used--;
    if (page->queue == TPI_QUEUE_FULL) tpi_tcache_unfull(tc, page);
    if (page->used == 0) tpi_tcache_page_empty(page);
}

/* Blocks that other threads freed into pages we had parked as full. */
static void tpi_tcache_drain_delayed(tpi_tcache *tc)
{
    uintptr_t head = atomic_exchange_explicit(&tc->delayed_free, 0, memory_order_acquire);
    tpi_block *b = (tpi_block *)head;
    while (b) {
        tpi_page *page = tpi_page_of(b);
        /* Freed again right after (the notification was spent): it went on
         * the page's remote list, where the free path could not see it. */
        if ((atomic_load_explicit(&page->thread_free, memory_order_relaxed) & ~TPI_NOTIFY) == (uintptr_t)b)
            tpi_fatal("double free (the block was just freed)", b);
        tpi_block *next = tpi_block_next_delayed(b);
        uintptr_t owner = atomic_load_explicit(&page->owner, memory_order_relaxed);
        if ((owner & ~TPI_PAGE_FLAGS) == tc->thread_id && tpi_thread_id() == tc->thread_id)
            tpi_tcache_free_local_slow(page, b);
        else
            tpi_page_free_remote(page, b);
        b = next;
    }
}

/* Once per purge delay: the OS pages of this cache's pages that hold only
 * blocks free since the last look (every free block when `all`) give their
 * memory back (page.c). */
static void tpi_tcache_purge_free_blocks(tpi_tcache *tc, bool all)
{
    size_t purged = 0;
    for (unsigned cls = 0; cls < TPI_SLAB_CLASSES; cls++)
        for (tpi_page *page = tc->avail[cls].first; page; page = page->next)
            purged += tpi_page_purge_free(page, all);
    if (!purged) return;
    pthread_mutex_lock(&tc->pool->lock);
    tpi_pool_count_purge(tc->pool, purged);
    pthread_mutex_unlock(&tc->pool->lock);
}

/* ---- malloc slow path --------------------------------------------------------------- */

/* Makes `page` (on the avail queue) usable: local frees, remote frees, then a
 * fresh carve, each one batch. False if it has no free block at all. */
static bool tpi_page_refill(tpi_tcache *tc, tpi_page *page)
{
    if (page->free) return true;
    tpi_class_counters *c = &tc->counters[page->class_index];
    c->remote_frees += tpi_page_collect(page);
    if (!page->free && !tpi_page_extend(page)) return false;
    c->refills++;
    return true;
}

static tpi_page *tpi_tcache_find_page(tpi_tcache *tc, unsigned cls)
{
    if (atomic_load_explicit(&tc->delayed_free, memory_order_relaxed)) tpi_tcache_drain_delayed(tc);
    tpi_page *page = tc->avail[cls].first;
    while (page) {
        tpi_page *next = page->next;
        if (tpi_page_refill(tc, page)) {
            tpi_tcache_unretain(tc, page);
            if (page != tc->avail[cls].first) {
                tpi_queue_remove(&tc->avail[cls], page);
                tpi_queue_push_front(&tc->avail[cls], page);
            }
            tpi_tcache_set_current(tc, cls, page);
            return page;
        }
        /* Park it as full; if a remote free slipped in, use that instead. */
        if (!tpi_page_mark_full(page)) continue;
        tpi_tcache_unretain(tc, page);
        tpi_queue_remove(&tc->avail[cls], page);
        tpi_tcache_park_full(tc, page);
        page = next;
    }
    size_t page_bytes = (size_t)tpi_classes[cls].slices << TPI_SLICE_SHIFT;
    unsigned cap = page_bytes < TPI_ADAPT_KEEP_BYTES ? (unsigned)(TPI_ADAPT_KEEP_BYTES / page_bytes) : 1u;
    tpi_adapt_on_acquire(&tc->adapt[cls], tc->ticks++, cap);
    if (tc->ticks % TPI_ADAPT_DECAY_EVERY == 0) tpi_tcache_decay(tc, false);
    page = tpi_pool_page_acquire(tc->pool, tc, cls);
    if (!page) {
        tpi_tcache_set_current(tc, cls, &tpi_page_empty);
        return NULL;
    }
    tc->counters[cls].refills++;
    tpi_queue_push_front(&tc->avail[cls], page);
    page->queue = TPI_QUEUE_AVAIL;
    tpi_tcache_set_current(tc, cls, page);
    return page;
}

/* ---- heap profile samples (internal.h, "heap profile samples") ---------------------- */

/* Blocks on the page's free list: counted from the page's figures when no
 * other list holds free blocks (the usual case after a refill), else walked. */
static uint32_t tpi_free_count(const tpi_page *page)
{
    if (!page->local_free && !page->purged) return page->carved - tpi_page_used(page);
    uint32_t n = 0;
    for (const tpi_block *b = page->free; b; b = tpi_block_next(page, b)) n++;
    return n;
}

/* The page's free list, which the fast path pops from next, is counted as
 * allocated. If the interval ends inside it, the list is cut before the
 * block it ends in: the rest waits on local_free, and the class is armed,
 * so the fast path runs dry at the sampled allocation and its slow path
 * (tpi_tcache_sample_pop) takes the sample. The walk to the cut is paid
 * once per sample. */
static void tpi_tcache_sample_batch(tpi_tcache *tc, tpi_page *page, unsigned cls, uint64_t mean)
{
    tpi_sampler *s = &tc->sampler;
    if (!page->free) return;
    if (s->left <= 0) s->left = tpi_sample_interval(s, mean);
    uint64_t bs = page->block_size, n = tpi_free_count(page);
    if ((uint64_t)s->left > n * bs) {
        s->left -= (int64_t)(n * bs);
        return;
    }
    /* The interval ends in block k + 1 of the list: k go to the fast path. */
    uint64_t k = ((uint64_t)s->left + bs - 1) / bs - 1;
    tpi_block *rest = page->free;
    if (k == 0) {
        page->free = NULL;
    } else {
        tpi_block *last = page->free;
        for (uint64_t i = 1; i < k; i++) last = tpi_block_next(page, last);
        rest = tpi_block_next(page, last);
        tpi_block_link(last, NULL);
    }
    tpi_block *tail = rest;
    for (tpi_block *next; (next = tpi_block_next(page, tail)) != NULL;) tail = next;
    tpi_block_link(tail, page->local_free);
    page->local_free = rest;
    s->armed |= (uint64_t)1 << cls;
    s->left = tpi_sample_interval(s, mean);
}

/* After a slow-path pop of block p (`size` bytes asked for) with PROFILE
 * on. `batch`: the pop refills the fast path's list (the malloc slow path),
 * not an aligned allocation out of it. */
static tpi_noinline void tpi_tcache_sample_pop(tpi_tcache *tc, tpi_page *page, unsigned cls, size_t size, void *p,
                                              bool batch)
{
    uint64_t mean = (uint64_t)TPI_OPTION(profile_sample);
    if (!mean) return;
    tpi_sampler *s = &tc->sampler;
    /* Classes the fast path serves are counted a batch at a time; the rest
     * take a slow path for every block, and are counted one by one. */
    bool direct = batch && page->block_size <= TPI_SMALL_MAX && !tpi_slow_only && !page->checked;
    bool sample;
    if (direct && (s->armed >> cls & 1)) {
        s->armed &= ~((uint64_t)1 << cls);
        sample = true;
    } else {
        sample = tpi_sample_charge(s, mean, page->block_size);
    }
    /* The page is marked before the block is handed out: its free, on any
     * thread, misses the fast path and drops the sample. */
    if (sample && tpi_sample_add(tc->pool, p, size, page->block_size, false)) {
        atomic_fetch_add_explicit(&page->sampled, 1, memory_order_relaxed);
        uintptr_t owner = atomic_load_explicit(&page->owner, memory_order_relaxed);
        if (!(owner & TPI_PAGE_SAMPLED))
            atomic_store_explicit(&page->owner, owner | TPI_PAGE_SAMPLED, memory_order_relaxed);
    }
    if (direct) tpi_tcache_sample_batch(tc, page, cls, mean);
}

void tpi_tcache_sample_large(tpi_tcache *tc, void *p, size_t size)
{
    uint64_t mean = (uint64_t)TPI_OPTION(profile_sample);
    if (p && mean && tpi_sample_charge(&tc->sampler, mean, size)) tpi_sample_add(tc->pool, p, size, size, true);
}

/* ---- malloc slow path, continued ------------------------------------------------------ */

/* Classes whose free blocks have their insides purged (page.c). */
#define TPI_PURGE_CLASS_MIN tpi_class_of(TPI_PURGE_BLOCK_MIN)
#define TPI_CYCLE_HOT_CALLS 2u

/* Whether a class whose current page ran out of free blocks, with frees of
 * its own to recycle, cycles tightly: its last recycle was among the last
 * TPI_CYCLE_HOT_CALLS slow paths (a loop of malloc+free of one size: the
 * last one). Only then does a longer cycle pay; a class a program uses among
 * others keeps what it carved (the note's workload carved 16 KiB in each of
 * 30 classes per thread; eight sizes malloc'ed and freed in turn recycle
 * each class 4 .. 15 slow paths apart). */
static inline bool tpi_tcache_cycles_tightly(tpi_tcache *tc, unsigned cls)
{
    bool recent = tc->slow_calls - tc->recycled_at[cls] <= TPI_CYCLE_HOT_CALLS;
    tc->recycled_at[cls] = tc->slow_calls;
    return recent;
}

/* Takes the first free block of a page (which has one) of class cls;
 * in the classes whose free blocks age, clears the block's mark. `batch`
 * as for tpi_tcache_sample_pop. */
static inline void *tpi_tcache_pop(tpi_tcache *tc, tpi_page *page, unsigned cls, size_t size, bool batch)
{
    tpi_block *b = page->free;
    page->free = tpi_block_next(page, b);
    page->used++;
    tc->counters[cls].allocs++;
    tc->counters[cls].requested += size;
    if (page->checked) tpi_in_use_on_malloc(page, b);
    if (tpi_stats_exact) tpi_exact_on_slab_malloc(tc->pool, page, b, size);
    tpi_track_malloc(tc->pool, b, size, page->block_size - tpi_block_extra(), false);
    void *p = cls >= TPI_PURGE_CLASS_MIN ? tpi_block_unmark(b, size) : b;
    if (tpi_unlikely(TPI_OPTION(profile))) tpi_tcache_sample_pop(tc, page, cls, size, p, batch);
    return p;
}

static inline void *tpi_tcache_malloc_from(tpi_tcache *tc, unsigned cls, size_t size, bool batch)
{
    tpi_page *page = tc->current[cls];
    if (!page->free && !(page != &tpi_page_empty && tpi_page_refill(tc, page))) {
        page = tpi_tcache_find_page(tc, cls);
        if (!page) {
            errno = ENOMEM;
            return NULL;
        }
    }
    return tpi_tcache_pop(tc, page, cls, size, batch);
}

void *tpi_tcache_malloc_class(tpi_tcache *tc, unsigned cls, size_t size)
{
    return tpi_tcache_malloc_from(tc, cls, size, false);
}

/* A block of a class whose free blocks are purged, from a current page that
 * has one ready (on `free`, or on `local_free` outside secure mode). The
 * block freed last goes first: the few a steady program cycles through stay
 * resident, and the others stay free until purged. Secure mode keeps the
 * lists' order: a freed block should not come straight back. */
static tpi_noinline void *tpi_tcache_pop_purgeable(tpi_tcache *tc, tpi_page *page, unsigned cls, size_t size)
{
    tpi_block *b = page->local_free;
    if (b && !tpi_secure) {
        page->local_free = tpi_block_next(page, b);
        tpi_block_link(b, page->free);
        page->free = b;
    }
    return tpi_tcache_pop(tc, page, cls, size, true);
}

/* Called on the slow path's full turns (process.c registers the monitor's
 * start, which publishes statistics when the PUBLISH option asks). */
static void (*tpi_tcache_slow_hook)(void);

void tpi_tcache_set_slow_hook(void (*hook)(void))
{
    __atomic_store_n(&tpi_tcache_slow_hook, hook, __ATOMIC_RELAXED);
}

/* Called when the slow path fails (alloc.c registers oom.c's recovery). */
static void *(*tpi_tcache_failure_hook)(size_t size, tpi_tcache *tc);

void tpi_tcache_set_failure_hook(void *(*hook)(size_t size, tpi_tcache *tc))
{
    __atomic_store_n(&tpi_tcache_failure_hook, hook, __ATOMIC_RELAXED);
}

/* An allocation failed (errno set): the API layer's recovery, if it
 * registered one. Out of line, so the slow path's own cost stays. */
static tpi_cold void *tpi_tcache_fail(size_t size, tpi_tcache *tc)
{
    void *(*hook)(size_t, tpi_tcache *) = __atomic_load_n(&tpi_tcache_failure_hook, __ATOMIC_RELAXED);
    return hook ? hook(size, tc) : NULL;
}

static tpi_noinline void *tpi_tcache_malloc_full(size_t size, tpi_tcache *tc, bool quick);

/* A thread's tcache (never the empty one: alloc.c sets the thread up first).
 * The quick cases only, so that they pay for few saved registers; the rest
 * is tpi_tcache_malloc_full. */
void *tpi_tcache_malloc_slow(size_t size, tpi_tcache *tc)
{
    /* Sizes of 4 .. 8 KiB (and every slab size when direct[] stays empty:
     * secure mode, Memcheck), and table sizes whose page has frees to
     * recycle: the class, then a pop. */
    size_t extra = tpi_block_extra();
    /* Every TPI_SLOW_CALLS_PER_CLOCK-th call takes the full path below, which
     * looks at the clock (purge passes, a cache's decay); the others may take
     * a quick one. So the clock is read however a program's calls fall. A
     * huge block, a system call anyway, always takes it: a program making a
     * few of them after freeing much finds that memory purged if due. */
    bool quick = ++tc->slow_calls % TPI_SLOW_CALLS_PER_CLOCK != 0 && size <= TPI_LARGE_MAX - extra;
    if (quick && size <= TPI_SLAB_MAX - extra) {
        unsigned cls = tpi_class_of(size + extra);
        tpi_page *page = tc->current[cls];
        if (cls >= TPI_PURGE_CLASS_MIN) {
            if (page->free || (page->local_free && !tpi_secure)) return tpi_tcache_pop_purgeable(tc, page, cls, size);
        } else if (tpi_likely(page->free != NULL)) {
            return tpi_tcache_pop(tc, page, cls, size, true);
        } else if (page->local_free) {
            /* A program cycling through the blocks it frees: the owner's
             * frees become the free list at once, once the cycle is long
             * enough (fresh blocks lengthen it first: page.c), if the class
             * cycles tightly (tpi_tcache_cycles_tightly). */
            if (!tpi_tcache_cycles_tightly(tc, cls) || !tpi_page_lengthen_cycle(page))
                tpi_page_take_local(page);
            tc->counters[cls].refills++;
            return tpi_tcache_pop(tc, page, cls, size, true);
        }
    } else if (quick) {
        /* A run: from this thread's cache if it has one that serves, else
         * from the heap. */
        void *p = tpi_run_malloc(tc, size, 0);
        if (tpi_unlikely(TPI_OPTION(profile))) tpi_tcache_sample_large(tc, p, size);
        return tpi_likely(p != NULL) ? p : tpi_tcache_fail(size, tc);
    }
    return tpi_tcache_malloc_full(size, tc, quick);
}

/* The slow path's full turn: time-driven work, then any allocation. */
static tpi_noinline void *tpi_tcache_malloc_full(size_t size, tpi_tcache *tc, bool quick)
{
    size_t extra = tpi_block_extra();
    tpi_background_ensure();
    void (*hook)(void) = __atomic_load_n(&tpi_tcache_slow_hook, __ATOMIC_RELAXED);
    if (hook) hook();
    /* Now and then, time-driven work: a purge pass if one is due, and after
     * each pass the empty pages this cache keeps are halved. */
    if (!quick) {
        tpi_tcache_check(tc);
        tpi_purge_maybe_unlocked(tc->pool);
    }
    uint32_t epoch = atomic_load_explicit(&tc->pool->purge_epoch, memory_order_relaxed);
    if (epoch != tc->purge_epoch) {
        /* Passes run every quarter delay; this cache acts once per delay. */
        uint32_t now = (uint32_t)tpi_clock();
        tc->purge_epoch = epoch;
        if (now - tc->last_decay_ms >= tpi_decay_delay(&tc->pool->decay)) {
            tc->last_decay_ms = now;
            tpi_tcache_decay(tc, true);
            tpi_tcache_purge_free_blocks(tc, false);
            tpi_run_cache_decay(tc);
            /* Near a memory limit, cached memory goes back first (limit.c). */
            if (tpi_pressure_percent() >= TPI_PRESSURE_FLUSH) tpi_tcache_trim(tc);
        }
    }
    void *p;
    if (size <= TPI_SLAB_MAX - extra) {
        p = tpi_tcache_malloc_from(tc, tpi_class_of(size + extra), size, true);
    } else {
        p = size > TPI_LARGE_MAX - extra ? tpi_huge_malloc(tc->pool, size, 0, false) : tpi_run_malloc(tc, size, 0);
        if (tpi_unlikely(TPI_OPTION(profile))) tpi_tcache_sample_large(tc, p, size);
    }
    return tpi_likely(p != NULL) ? p : tpi_tcache_fail(size, tc);
}

/* Gives every empty page and cached run back to the pool, the current
 * pages included, and purges the free OS pages of the pages kept. */
void tpi_tcache_trim(tpi_tcache *tc)
{
    tpi_run_cache_flush(tc);
    if (atomic_load_explicit(&tc->delayed_free, memory_order_relaxed)) tpi_tcache_drain_delayed(tc);
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        tpi_page *page = tc->avail[cls].first;
        while (page) {
            tpi_page *next = page->next;
            tc->counters[cls].remote_frees += tpi_page_collect(page);
            if (tpi_page_used(page) == 0) tpi_tcache_retire(tc, page);
            page = next;
        }
    }
    /* The pages kept: their OS pages of free blocks, whatever their age. */
    tpi_tcache_purge_free_blocks(tc, true);
}

/* ---- thread exit ------------------------------------------------------------------------- */

static void tpi_tcache_abandon_queue(tpi_tcache *tc, tpi_page_queue *q)
{
    tpi_page *page = q->first;
    while (page) {
        tpi_page *next = page->next;
        page->next = page->prev = NULL;
        tpi_page_unpin(page); /* its next owner pins it afresh */
        tc->counters[page->class_index].remote_frees += tpi_page_collect(page);
        if (page->used == 0) {
            tpi_pool_page_release(tc->pool, page);
        } else {
            atomic_store_explicit(&page->tcache, NULL, memory_order_release);
            atomic_store_explicit(&page->owner, 0, memory_order_release);
            tpi_pool_page_abandon(tc->pool, page);
        }
        page = next;
    }
    q->first = q->last = NULL;
}

/* Hands every page back to the pool: empty ones to its free slices, the rest
 * to its abandoned lists, where the next thread needing that class adopts
 * them. Blocks still out may be freed later by any thread. */
void tpi_tcache_abandon(tpi_tcache *tc)
{
    tpi_run_cache_flush(tc);
    tpi_tcache_drain_delayed(tc);
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        tpi_tcache_abandon_queue(tc, &tc->avail[cls]);
        tpi_tcache_abandon_queue(tc, &tc->full[cls]);
    }
    tpi_tcache_drain_delayed(tc);
}

#if defined(TPI_DEBUG)
/* A queue of the tcache: links both ways, every page of class cls, owned by
 * tc, on this queue, and sound itself. Returns its length. */
static unsigned tpi_tcache_check_queue(const tpi_tcache *tc, const tpi_page_queue *q, unsigned cls, uint8_t queue)
{
    unsigned n = 0;
    const tpi_page *prev = NULL;
    for (const tpi_page *page = q->first; page; prev = page, page = page->next, n++) {
        tpi_assert(page->prev == prev && page->class_index == cls && page->queue == queue);
        tpi_assert(atomic_load_explicit(&page->tcache, memory_order_relaxed) == tc);
        uintptr_t owner = atomic_load_explicit(&page->owner, memory_order_relaxed);
        tpi_assert((owner & ~TPI_PAGE_FLAGS) == tc->thread_id);
        tpi_assert(((owner & TPI_PAGE_FULL) != 0) == (queue == TPI_QUEUE_FULL));
        tpi_page_check(page);
    }
    tpi_assert(q->last == prev);
    return n;
}

void tpi_tcache_check(const tpi_tcache *tc)
{
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        tpi_tcache_check_queue(tc, &tc->avail[cls], cls, TPI_QUEUE_AVAIL);
        tpi_tcache_check_queue(tc, &tc->full[cls], cls, TPI_QUEUE_FULL);
        /* The current page is the class's empty sentinel or one of its avail
         * pages, pinned while it is one slice (tpi_page_pin). */
        const tpi_page *cur = tc->current[cls];
        tpi_assert(cur == &tpi_page_empty || (cur->queue == TPI_QUEUE_AVAIL && cur->class_index == cls));
        tpi_assert(cur == &tpi_page_empty || cur->pinned == (cur->slice_count == 1));
    }
    /* direct[] holds each small slot's class's current page, or the empty
     * one (checked pages, slow-only modes). */
    for (unsigned slot = 0; slot < TPI_SMALL_SLOTS; slot++) {
        const tpi_page *d = tc->direct[slot];
        tpi_assert(d == &tpi_page_empty || d == tc->current[tpi_small_class[slot]]);
    }
}
#endif
