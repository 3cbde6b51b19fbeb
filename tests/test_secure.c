/* SPDX-License-Identifier: MIT */
/*
 * test_secure.c: the secure mode (TIERPOOL_SECURE=1, set by the ctest).
 *
 * Death cases run in a forked child and check how it died: SIGABRT with the
 * one-line message naming what was found, the pointer and the pool, or
 * SIGSEGV for a guard page. The other cases check what secure mode does to
 * memory that a correct program sees: usable sizes, fill, order, links.
 */
#include "tierpool.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(TP_SANITIZE_ADDRESS)
#include <sanitizer/asan_interface.h>
#endif

#define CHUNK (4 * MiB)
#define SLICE (64 * KiB)

static void *volatile sink; /* keeps the compiler from reasoning about frees */

/* DEATH(name, signal, message) { body }: body runs in a child, which must
 * die of `signal` having printed `message` (NULL: anything). */
#define DEATH(name, signal, message)                                                  \
    static void crash_##name(void *arg);                                              \
    static void test_##name(void) { CHECK(util_died_of(#name, crash_##name, signal, message)); } \
    static void crash_##name(void *arg __attribute__((unused)))

/* ---- detections -------------------------------------------------------------------- */

DEATH(double_free_small, SIGABRT, "tierpool: fatal: double free")
{
    sink = tp_malloc(40);
    tp_free(sink);
    tp_free(sink);
}

DEATH(double_free_names_pool, SIGABRT, "pool \"sessions\")")
{
    tp_pool *pool = tp_pool_create("sessions", NULL);
    sink = tp_pool_malloc(pool, 200);
    tp_free(sink);
    tp_free(sink);
}

/* The page emptied and went back to the pool: no block is there at all. */
DEATH(double_free_large, SIGABRT, "tierpool: fatal: double free")
{
    sink = tp_malloc(300 * KiB);
    tp_free(sink);
    tp_free(sink);
}

/* The mapping was released (or cached): the pointer is no longer ours. */
DEATH(double_free_huge, SIGABRT, "freed twice")
{
    /* A second block keeps the first one's mapping from being reused. */
    void *keep = tp_malloc(3 * MiB);
    sink = tp_malloc(3 * MiB);
    tp_free(sink);
    tp_free(sink);
    tp_free(keep);
}

static void *free_in_thread(void *p)
{
    tp_free(p);
    return NULL;
}

DEATH(double_free_remote, SIGABRT, "tierpool: fatal: double free")
{
    void *p = tp_malloc(64);
    pthread_t t;
    pthread_create(&t, NULL, free_in_thread, p);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, free_in_thread, p);
    pthread_join(t, NULL);
}

DEATH(free_foreign, SIGABRT, "does not own (foreign")
{
    sink = malloc(32);
    tp_free(sink);
}

DEATH(free_interior, SIGABRT, "inside a block")
{
    char *p = tp_malloc(64);
    sink = p + 16;
    tp_free(sink);
}

DEATH(free_never_allocated, SIGABRT, "double free (the block is not in use)")
{
    /* One of the first blocks of a fresh pool's page, other than the only
     * one handed out: carved (the first carve is 64 blocks at least), on the
     * free list, never handed out. */
    char *p = tp_pool_malloc(tp_pool_create("fresh", NULL), 64);
    size_t step = tp_usable_size(p) + 8;
    char *page = (char *)((uintptr_t)p & ~(uintptr_t)(SLICE - 1));
    sink = page == p ? page + step : page;
    tp_free(sink);
}

/* Under ASan, which sees canaries and freed blocks poisoned (src/track.h),
 * the bad write itself is reported, before tierpool's check could be. */
#if defined(TP_SANITIZE_ADDRESS)
#define OR_ASAN(message) "AddressSanitizer: use-after-poison"
#else
#define OR_ASAN(message) message
#endif
/* And a fault on a guard page is ASan's SEGV report, which aborts, or
 * TSan's, which exits with its error status (signal 0 below). */
#if defined(TP_SANITIZE_ADDRESS)
#define GUARD_SIGNAL SIGABRT
#define GUARD_MESSAGE "AddressSanitizer: SEGV"
#elif defined(TP_SANITIZE_THREAD)
#define GUARD_SIGNAL 0
#define GUARD_MESSAGE "ThreadSanitizer: SEGV"
#else
#define GUARD_SIGNAL SIGSEGV
#define GUARD_MESSAGE NULL
#endif

DEATH(canary_one_byte_over, SIGABRT, OR_ASAN("heap overflow (the canary"))
{
    char *p = tp_malloc(48);
    size_t n = tp_usable_size(p);
    sink = p;
    p[n] = 'x'; /* one byte past what the block may hold */
    tp_free(sink);
}

DEATH(canary_large, SIGABRT, OR_ASAN("heap overflow (the canary"))
{
    char *p = tp_malloc(100 * KiB);
    size_t n = tp_usable_size(p);
    sink = p;
    memset(p, 1, n + 8);
    tp_free(sink);
}

DEATH(use_after_free_link, SIGABRT, OR_ASAN("free list corrupted"))
{
    /* Overwrite a freed block's link word, as a use after free would, then
     * allocate until the allocator follows it. */
    void **p = tp_malloc(32);
    tp_free(p);
    volatile uintptr_t *word = (volatile uintptr_t *)p;
    *word = (uintptr_t)&sink;
    for (int i = 0; i < 100000; i++) sink = tp_malloc(32);
}

DEATH(huge_overflow_guard, GUARD_SIGNAL, GUARD_MESSAGE)
{
    char *p = tp_malloc(2 * MiB);
    size_t n = tp_usable_size(p);
    sink = p;
    memset(p, 1, n); /* all of it is usable */
    ((volatile char *)p)[n + 4095] = 1;
}

DEATH(huge_underflow_guard, GUARD_SIGNAL, GUARD_MESSAGE)
{
    char *p = tp_malloc(2 * MiB);
    sink = p;
    ((volatile char *)p)[-1] = 1;
}

/* Blocks of the 8 KiB class (pages of one slice), allocated until one ends
 * where the chunk's last (guard) slice starts: writing past it faults. */
DEATH(chunk_end_guard, GUARD_SIGNAL, GUARD_MESSAGE)
{
    for (int i = 0; i < 4096; i++) {
        char *p = tp_malloc(8 * KiB - 64);
        if (((uintptr_t)p + 8 * KiB) % CHUNK == CHUNK - SLICE) {
            ((volatile char *)p)[8 * KiB] = 1;
            return;
        }
    }
    fprintf(stderr, "no block next to the guard slice\n");
}

/* A block at the start of slice 1: just before it, the header's guard page. */
DEATH(chunk_header_guard, GUARD_SIGNAL, GUARD_MESSAGE)
{
    for (int i = 0; i < 4096; i++) {
        char *p = tp_malloc(8 * KiB - 64);
        if ((uintptr_t)p % CHUNK == SLICE) {
            ((volatile char *)p)[-1] = 1;
            return;
        }
    }
    fprintf(stderr, "no block at the start of a chunk's first page\n");
}

/* ---- what a correct program sees -------------------------------------------------- */

static void test_option_fixed(void)
{
    CHECK_EQ(tp_option_get("SECURE"), 1);
    errno = 0;
    CHECK_EQ(tp_option_set("SECURE", "0"), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(tp_option_get("SECURE"), 1);
}

/* Every usable byte may be written, in every class and tier, without a
 * false alarm; the canary costs 8 bytes of the class. */
static void test_usable_bytes(void)
{
    for (size_t size = 1; size <= 3 * MiB; size = size * 5 / 4 + 1) {
        char *p = tp_malloc(size);
        if (!CHECK(p != NULL)) return;
        size_t n = tp_usable_size(p);
        CHECK_GE(n, size);
        memset(p, 0xab, n);
        char *q = tp_realloc(p, size + 100);
        if (!CHECK(q != NULL)) return;
        CHECK_EQ(q[size - 1], (char)0xab);
        tp_free(q);
    }
    void *a = tp_aligned_alloc(4096, 4096);
    CHECK_EQ((uintptr_t)a % 4096, 0);
    CHECK_GE(tp_usable_size(a), 4096);
    memset(a, 1, tp_usable_size(a));
    tp_free(a);
}

/* Copies freed memory out. ASan poisons freed blocks (src/track.h), and an
 * instrumented read of one is its report: this copy is not instrumented. */
__attribute__((no_sanitize_address, noinline)) static void read_freed(void *to, const void *from, size_t n)
{
    const volatile unsigned char *src = from;
    unsigned char *dst = to;
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

/* A freed block reads as the fill pattern beyond its link word, and the link
 * word is no plain pointer into the page (it is encoded). */
static void test_fill_and_encoded_link(void)
{
    tp_pool *pool = tp_pool_create("fill", NULL);
    unsigned char *a = tp_pool_malloc(pool, 200);
    unsigned char *b = tp_pool_malloc(pool, 200);
    memset(a, 0x11, 200);
    memset(b, 0x22, 200);
    tp_free(a);
    tp_free(b); /* b's link now names a */
#if defined(TP_SANITIZE_ADDRESS)
    CHECK(__asan_region_is_poisoned(b, 200) == b);
#endif
    unsigned char view[200];
    read_freed(view, b, sizeof view);
    size_t filled = 0;
    for (size_t i = sizeof(void *); i < 200; i++) filled += view[i] == 0xdf;
    CHECK_EQ(filled, 200 - sizeof(void *));
    uintptr_t link;
    memcpy(&link, view, sizeof link);
    CHECK(link != (uintptr_t)a);
    CHECK(link != 0);
    CHECK(link - (uintptr_t)b >= SLICE && (uintptr_t)b - link >= SLICE);
    tp_pool_destroy(pool);
}

/* Fresh blocks come in random order: 64 blocks of a fresh pool's page in
 * address order would be a 1 in 64! event. */
static void test_random_order(void)
{
    tp_pool *pool = tp_pool_create("order", NULL);
    uintptr_t prev = 0;
    int ascending = 0, descending = 0;
    for (int i = 0; i < 64; i++) {
        uintptr_t p = (uintptr_t)tp_pool_malloc(pool, 64);
        if (i) {
            ascending += p > prev;
            descending += p < prev;
        }
        prev = p;
    }
    CHECK(ascending > 5 && descending > 5);
    tp_pool_destroy(pool);
}

/* A reset drops blocks still in use: their in-use marks must not make the
 * next blocks at those addresses look allocated. */
static void test_reset_reuse(void)
{
    tp_pool *pool = tp_pool_create("reset", NULL);
    void *blocks[256];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 256; i++) blocks[i] = tp_pool_malloc(pool, 16 + (size_t)i * 24);
        for (int i = 0; i < 256; i += 2) tp_free(blocks[i]);
        tp_pool_reset(pool);
    }
    for (int i = 0; i < 256; i++) blocks[i] = tp_pool_malloc(pool, 16 + (size_t)i * 24);
    for (int i = 0; i < 256; i++) tp_free(blocks[i]);
    tp_pool_destroy(pool);
}

/* Many threads freeing each other's blocks, through the remote and delayed
 * lists, whose links are encoded too. */
#define RING_THREADS 6
#define RING_BLOCKS 2000
static unsigned char *ring[RING_THREADS][RING_BLOCKS];
static pthread_barrier_t ring_barrier;
static atomic_int ring_mismatches;

static void *ring_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < RING_BLOCKS; i++) {
            ring[id][i] = tp_malloc(16 + (size_t)(i % 64) * 16);
            memset(ring[id][i], id, 16);
        }
        pthread_barrier_wait(&ring_barrier);
        int owner = (id + 1) % RING_THREADS;
        for (int i = 0; i < RING_BLOCKS; i++) {
            if (ring[owner][i][0] != owner || ring[owner][i][15] != owner) atomic_fetch_add(&ring_mismatches, 1);
            tp_free(ring[owner][i]);
        }
        pthread_barrier_wait(&ring_barrier);
    }
    return NULL;
}

static void test_cross_thread(void)
{
    pthread_t t[RING_THREADS];
    pthread_barrier_init(&ring_barrier, NULL, RING_THREADS);
    for (int i = 0; i < RING_THREADS; i++) pthread_create(&t[i], NULL, ring_worker, (void *)(intptr_t)i);
    for (int i = 0; i < RING_THREADS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&ring_barrier);
    CHECK_EQ(atomic_load(&ring_mismatches), 0);
}

TEST_MAIN(
    CASE(option_fixed),
    CASE(usable_bytes),
    CASE(fill_and_encoded_link),
    CASE(random_order),
    CASE(reset_reuse),
    CASE(cross_thread),
    CASE(double_free_small),
    CASE(double_free_names_pool),
    CASE(double_free_large),
    CASE(double_free_huge),
    CASE(double_free_remote),
    CASE(free_foreign),
    CASE(free_interior),
    CASE(free_never_allocated),
    CASE(canary_one_byte_over),
    CASE(canary_large),
    CASE(use_after_free_link),
    CASE(huge_overflow_guard),
    CASE(huge_underflow_guard),
    CASE(chunk_end_guard),
    CASE(chunk_header_guard))
