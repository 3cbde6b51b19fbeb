/* SPDX-License-Identifier: MIT */
/*
 * test_page.c: slab pages (src/page.c) driven by hand on a private chunk:
 * lazy carving, the free / local_free / thread_free lists and the `used`
 * count, the full-page notification, block_start for interior pointers, and
 * which free blocks tpi_page_purge_free gives back at each look.
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

static size_t list_length(const tpi_block *b)
{
    size_t n = 0;
    for (; b; b = (const tpi_block *)tpi_block_link_word(b)) n++; /* as the allocator reads links */
    return n;
}

static tpi_block *pop(tpi_page *page)
{
    tpi_block *b = page->free;
    if (b) {
        page->free = tpi_block_next(page, b);
        page->used++;
    }
    return b;
}

/* The owner's free, as tp_free's fast path does it. */
static void free_local(tpi_page *page, tpi_block *b)
{
    tpi_block_link(b, page->local_free);
    page->local_free = b;
    page->used--;
}

static tpi_page *make_page(tpi_chunk *c, unsigned first, unsigned cls)
{
    tpi_page *page = tpi_chunk_take_run(c, first, tpi_classes[cls].slices);
    tpi_page_init(page, cls);
    return page;
}

/* Carving is lazy and exact: every class's page ends up with `capacity`
 * distinct, aligned blocks inside the page, and nothing more. */
static void test_carve_every_class(tpi_chunk *c)
{
    for (unsigned cls = 0; cls < TPI_SLAB_CLASSES; cls++) {
        tpi_page *page = make_page(c, 1, cls);
        const tpi_class_info *info = &tpi_classes[cls];
        CHECK_EQ(page->capacity, info->blocks);
        CHECK_EQ(page->block_size, info->block_size);
        CHECK_EQ(page->carved, 0);
        CHECK_PTR_EQ(page->free, NULL);
        CHECK(tpi_page_extend(page));
        CHECK_GE(page->carved, 1);
        if (cls == 0) CHECK_LT(page->carved, page->capacity); /* not all at once */
        size_t extends = 1;
        while (tpi_page_extend(page)) extends++;
        CHECK_EQ(page->carved, page->capacity);
        CHECK(!tpi_page_extend(page));
        CHECK_EQ(list_length(page->free), page->capacity);
        /* in address order within each carve; all inside the page */
        char *end = tpi_page_start(page) + ((size_t)page->slice_count << TPI_SLICE_SHIFT);
        size_t bad = 0;
        for (tpi_block *b = page->free; b; b = tpi_block_next(page, b)) {
            size_t off = (size_t)((char *)b - tpi_page_start(page));
            bad += (char *)b < tpi_page_start(page) || (char *)b + page->block_size > end || off % page->block_size;
        }
        CHECK_EQ(bad, 0);
        CHECK_EQ(page->used, 0);
        tpi_chunk_return_run(c, page, 1);
        (void)extends;
    }
}

static void test_lists(tpi_chunk *c)
{
    tpi_page *page = make_page(c, 1, 3); /* 64-byte blocks */
    tpi_page_extend(page);
    uint32_t carved = page->carved;
    tpi_block *blocks[8];
    for (int i = 0; i < 8; i++) blocks[i] = pop(page);
    CHECK_EQ(page->used, 8);
    CHECK_EQ(list_length(page->free), carved - 8);

    /* local frees: collect moves them to `free`; used already counted them */
    free_local(page, blocks[0]);
    free_local(page, blocks[1]);
    CHECK_EQ(page->used, 6);
    CHECK_EQ(tpi_page_collect(page), 0);
    CHECK_PTR_EQ(page->local_free, NULL);
    CHECK_EQ(list_length(page->free), carved - 6);

    /* the same with an empty free list (no walk needed) */
    while (page->free) pop(page);
    free_local(page, blocks[2]);
    tpi_page_collect(page);
    CHECK_PTR_EQ(page->free, blocks[2]);
    CHECK_PTR_EQ(pop(page), blocks[2]);

    /* remote frees: collect returns how many and lowers used */
    uint32_t used = page->used;
    tpi_page_free_remote(page, blocks[3]);
    tpi_page_free_remote(page, blocks[4]);
    tpi_page_free_remote(page, blocks[5]);
    CHECK_EQ(page->used, used); /* counted on thread_free until collected */
    CHECK_EQ(tpi_page_collect(page), 3);
    CHECK_EQ(page->used, used - 3);
    CHECK_EQ(atomic_load(&page->thread_free), 0);
    CHECK_EQ(list_length(page->free), 3);
    CHECK_EQ(tpi_page_collect(page), 0);
    tpi_chunk_return_run(c, page, 1);
}

/* A full page: mark_full sets TPI_NOTIFY only when no remote free is
 * pending; the first remote free then goes to the owner's delayed list. */
static void test_notify(tpi_chunk *c)
{
    static tpi_tcache tc; /* only delayed_free is used */
    tpi_page *page = make_page(c, 1, 7);
    tpi_page_extend(page);
    tpi_block *a = pop(page), *b = pop(page), *d = pop(page);
    atomic_store(&page->tcache, &tc);

    CHECK(tpi_page_mark_full(page));
    CHECK_EQ(atomic_load(&page->thread_free), TPI_NOTIFY);
    tpi_page_free_remote(page, a); /* claims the notification */
    CHECK_EQ(atomic_load(&page->thread_free), 0);
    CHECK_EQ(atomic_load(&tc.delayed_free), (uintptr_t)a);
    CHECK_EQ(tpi_block_link_word(a), 0);
    tpi_page_free_remote(page, b); /* later ones: the page's own list */
    CHECK_EQ(atomic_load(&page->thread_free), (uintptr_t)b);
    CHECK(!tpi_page_mark_full(page)); /* a remote free is pending */

    /* clear_notify keeps the list */
    CHECK_EQ(tpi_page_collect(page), 1);
    CHECK(tpi_page_mark_full(page));
    tpi_page_clear_notify(page);
    CHECK_EQ(atomic_load(&page->thread_free), 0);
    tpi_page_clear_notify(page); /* no-op without the bit */
    CHECK_EQ(atomic_load(&page->thread_free), 0);

    /* abandoned meanwhile (no tcache): a plain push that drops the bit */
    CHECK(tpi_page_mark_full(page));
    atomic_store(&page->tcache, NULL);
    tpi_page_free_remote(page, d);
    CHECK_EQ(atomic_load(&page->thread_free), (uintptr_t)d);
    CHECK_EQ(tpi_page_collect(page), 1);
    tpi_chunk_return_run(c, page, 1);
}

static void test_block_start(tpi_chunk *c)
{
    tpi_page *page = make_page(c, 1, 8); /* 160-byte blocks */
    tpi_page_extend(page);
    uint32_t carved = page->carved;
    char *s = tpi_page_start(page);
    CHECK_PTR_EQ(tpi_page_block_start(page, s, page->carved), s);
    CHECK_PTR_EQ(tpi_page_block_start(page, s + 1, page->carved), s);
    CHECK_PTR_EQ(tpi_page_block_start(page, s + 159, page->carved), s);
    CHECK_PTR_EQ(tpi_page_block_start(page, s + 160, page->carved), s + 160);
    CHECK_PTR_EQ(tpi_page_block_start(page, s + 160 * 7 + 80, page->carved), s + 160 * 7);
    CHECK_PTR_EQ(tpi_page_block_start(page, s + (size_t)160 * (carved - 1), page->carved), s + (size_t)160 * (carved - 1));
    /* past the carved blocks: not a block */
    CHECK_PTR_EQ(tpi_page_block_start(page, s + (size_t)160 * carved, page->carved), NULL);
    tpi_chunk_return_run(c, page, 1);

    page = make_page(c, 1, TPI_SLAB_CLASSES - 1); /* 8 KiB blocks, the largest slab class */
    while (tpi_page_extend(page)) {
    }
    s = tpi_page_start(page);
    CHECK_PTR_EQ(tpi_page_block_start(page, s + 8192 + 7000, page->carved), s + 8192);
    CHECK_PTR_EQ(tpi_page_block_start(page, s + 8192 * 5 + 8191, page->carved), s + 8192 * 5);
    tpi_chunk_return_run(c, page, 1);
}

/* An OS page of the page reads as zero once purged; one kept, as written. */
static bool os_page_purged(const tpi_page *page, unsigned j)
{
    return ((const unsigned char *)tpi_page_start(page))[(size_t)j * TPI_OS_PAGE + TPI_OS_PAGE - 1] == 0;
}

/* malloc's take of a block (the whole block handed out, open to checkers),
 * filled. */
static tpi_block *take(tpi_page *page, tpi_block **list)
{
    tpi_block *b = *list;
    *list = tpi_block_next(page, b);
    page->used++;
    tpi_track_undefined(b, page->block_size);
    tpi_block_unmark(b, page->block_size);
    memset(b, 0x5a, page->block_size);
    return b;
}

/* Each look purges the OS pages whose every block was free at the previous
 * look: not those with a block freed since or in use, whatever the order of
 * the lists; their blocks leave the lists, and come back, OS page by OS
 * page, before fresh ones are carved. */
static void test_purge_free(tpi_chunk *c)
{
    tpi_page *page = make_page(c, 1, tpi_class_of(1024)); /* 4 blocks an OS page */
    while (tpi_page_extend(page)) {
    }
    enum { N = 64 };
    CHECK_EQ(page->capacity, N);
    tpi_block *b[N];
    for (int i = 0; i < N; i++) take(page, &page->free);
    CHECK_PTR_EQ(page->free, NULL);
    for (int i = 0; i < N; i++) b[i] = (tpi_block *)(tpi_page_start(page) + (size_t)i * 1024); /* by address */
    /* OS page 0 (blocks 0..3) all free; OS page 1 but block 7 */
    for (int i = 0; i < 7; i++) free_local(page, b[i]);
    CHECK_EQ(tpi_page_purge_free(page, false), 0); /* none was free at the last look */
    free_local(page, b[8]); /* OS page 2: one block, young */
    CHECK_EQ(tpi_page_purge_free(page, false), TPI_OS_PAGE); /* OS page 0 only */
    CHECK(os_page_purged(page, 0) && !os_page_purged(page, 1) && !os_page_purged(page, 2));
    CHECK_EQ(page->purged, 1);
    CHECK_EQ(list_length(page->free) + list_length(page->local_free), 4); /* 4, 5, 6, 8 */
    CHECK_EQ(tpi_page_purge_free(page, false), 0); /* nothing new all free */

    /* block 7 freed: OS page 1 goes at the look after next */
    free_local(page, b[7]);
    CHECK_EQ(tpi_page_purge_free(page, false), 0);
    CHECK_EQ(tpi_page_collect(page), 0); /* the lists reordered: ages kept */
    CHECK_EQ(tpi_page_purge_free(page, false), TPI_OS_PAGE);
    CHECK_EQ(page->purged, 3);
    CHECK_EQ(list_length(page->free) + list_length(page->local_free), 1); /* 8 */

    /* blocks in use are never touched */
    CHECK(!os_page_purged(page, 3) && !os_page_purged(page, 15));

    /* the free list runs dry: OS page 0's blocks come back first */
    take(page, &page->free);
    CHECK_PTR_EQ(page->free, NULL);
    CHECK(tpi_page_extend(page));
    CHECK_EQ(page->purged, 2);
    CHECK_EQ(list_length(page->free), 4);
    size_t bad = 0;
    for (tpi_block *x = page->free; x; x = tpi_block_next(page, x))
        bad += (char *)x >= tpi_page_start(page) + TPI_OS_PAGE;
    CHECK_EQ(bad, 0);
    tpi_chunk_return_run(c, page, 1);

    /* 8 KiB blocks: two OS pages each, back together */
    page = make_page(c, 1, tpi_class_of(8192));
    while (tpi_page_extend(page)) {
    }
    while (page->free) take(page, &page->free);
    tpi_block *x = (tpi_block *)(tpi_page_start(page) + 3 * 8192);
    free_local(page, x);
    CHECK_EQ(tpi_page_purge_free(page, false), 0);
    CHECK_EQ(tpi_page_purge_free(page, false), 2 * TPI_OS_PAGE);
    CHECK_EQ(page->purged, 3u << 6);
    CHECK(tpi_page_extend(page));
    CHECK_EQ(page->purged, 0);
    CHECK_PTR_EQ(page->free, x);
    CHECK_EQ(list_length(page->free), 1);
    tpi_chunk_return_run(c, page, 1);
}

#if defined(TPI_DEBUG)
/* TP_DEBUG builds check the page invariants: a page whose counts do not add
 * up aborts the check (in a child, which must die of SIGABRT). */
static void test_invariant_checked(tpi_chunk *c)
{
    tpi_page *page = make_page(c, 1, 3);
    CHECK(tpi_page_extend(page));
    tpi_page_check(page); /* sound: no abort */
    pid_t pid = fork();
    if (pid == 0) {
        page->used++; /* a block counted in use that is on the free list */
        tpi_page_check(page);
        _exit(0);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    tpi_chunk_return_run(c, page, 1);
}
#endif

int main(void)
{
    tpi_chunk *c = tpi_chunk_create(tp_pool_default());
    if (!CHECK(c != NULL)) return test_report();
    test_carve_every_class(c);
    test_lists(c);
    test_notify(c);
    test_block_start(c);
    test_purge_free(c);
#if defined(TPI_DEBUG)
    test_invariant_checked(c);
#endif
    tpi_chunk_destroy(c);
    return test_report();
}
