/* SPDX-License-Identifier: MIT */
/*
 * test_death.c: calls that must abort the process with a message containing
 * "tierpool: fatal": freeing (or reallocating) a pointer tierpool does not
 * own, or one that points inside a block; destroying or resetting a pool
 * already destroyed; double frees (docs/security.md: what each mode
 * catches). Each crashing call runs in a forked child; the parent checks
 * that the child died of SIGABRT and reads the message from the child's
 * stderr; a child that hangs is killed by an alarm, which fails the case.
 */
#include "tierpool.h"
#include "test.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>

static int a_global;

/* DEATH(name) { body }: test_name runs body in a child and expects it to
 * abort with tierpool's message. */
#define DEATH(name) DEATH_SAYING(name, "tierpool: fatal")
/* The same, the message containing `message`. */
#define DEATH_SAYING(name, message)                              \
    static void crash_##name(void *arg);                         \
    static void test_##name(void) { CHECK(util_died_of(#name, crash_##name, SIGABRT, message)); } \
    static void crash_##name(void *arg __attribute__((unused)))

static void *volatile sink; /* keeps the compiler from reasoning about frees */

DEATH(free_stack)
{
    int local = 0;
    sink = &local;
    tp_free(sink);
}

DEATH(free_global)
{
    sink = &a_global;
    tp_free(sink);
}

DEATH(free_glibc_small)
{
    sink = malloc(32);
    tp_free(sink);
}

DEATH(free_glibc_mmapped)
{
    sink = malloc(64 * MiB);
    tp_free(sink);
}

DEATH(free_sized_glibc)
{
    sink = malloc(100);
    tp_free_sized(sink, 100);
}

DEATH(free_bulk_foreign)
{
    void *ptrs[3] = {tp_malloc(10), malloc(10), tp_malloc(10)};
    tp_free_bulk(ptrs, 3);
}

DEATH(realloc_foreign)
{
    sink = malloc(32);
    sink = tp_realloc(sink, 64);
}

/* Interior and uncarved pointers freed by the block's owning thread: the
 * free fast path does not check that a pointer starts a block; with the
 * CHECK option (TIERPOOL_CHECK=1, set by these cases' ctests) every free
 * takes the validating path. Run by name only. */
DEATH(free_interior_small)
{
    char *p = tp_malloc(64);
    sink = p + 16;
    tp_free(sink);
}

DEATH(free_interior_large)
{
    char *p = tp_malloc(100 * KiB);
    sink = p + 4096;
    tp_free(sink);
}

/* Interior pointers freed by another thread: the remote path. */
static void *free_in_thread(void *p)
{
    tp_free(p);
    return NULL;
}

DEATH(free_interior_small_remote)
{
    char *p = tp_malloc(64);
    pthread_t t;
    pthread_create(&t, NULL, free_in_thread, p + 16);
    pthread_join(t, NULL);
}

DEATH(free_interior_huge_first_chunk)
{
    char *p = tp_malloc(8 * MiB);
    sink = p + 64;
    tp_free(sink);
}

DEATH(free_interior_huge_later_chunk)
{
    char *p = tp_malloc(8 * MiB);
    sink = p + 5 * MiB;
    tp_free(sink);
}

/* A pointer into a chunk of ours that is no block: the chunk header. */
DEATH(free_chunk_header)
{
    char *p = tp_malloc(64);
    sink = (void *)(((uintptr_t)p & ~(uintptr_t)(4 * MiB - 1)) + 256);
    tp_free(sink);
}

/* Past the blocks carved so far in a page (carving is lazy). */
DEATH(free_uncarved)
{
    char *p = tp_pool_malloc(tp_pool_create("uncarved", NULL), 16);
    sink = p + 32 * KiB;
    tp_free(sink);
}

/* A pool destroyed twice: the second call aborts naming the pool (it
 * corrupted the list of destroyed pools, so that the next two
 * tp_pool_create returned the same pool). */
DEATH_SAYING(pool_destroy_twice, "tierpool: fatal: tp_pool_destroy of a pool already destroyed (pool 0x")
{
    tp_pool *pool = tp_pool_create("sessions", NULL);
    sink = tp_pool_malloc(pool, 100);
    tp_pool_destroy(pool);
    tp_pool_destroy(pool);
}

/* Still its own name after a few pools were created and destroyed in
 * between (destroyed pool structs are reused late and oldest first). */
DEATH_SAYING(pool_destroy_twice_names_pool, "\"sessions\")\n")
{
    tp_pool *pool = tp_pool_create("sessions", NULL);
    tp_pool_destroy(pool);
    for (int i = 0; i < 4; i++) tp_pool_destroy(tp_pool_create("other", NULL));
    tp_pool_destroy(pool);
}

DEATH_SAYING(pool_reset_destroyed, "tierpool: fatal: tp_pool_reset of a destroyed pool (pool 0x")
{
    tp_pool *pool = tp_pool_create("requests", NULL);
    tp_pool_destroy(pool);
    tp_pool_reset(pool);
}

/* ---- double frees ------------------------------------------------------------
 * In every mode: the block freed last on its page, freed again at once by the
 * owning thread or by another one; a page's list of freed blocks that loops
 * (a block freed twice from another thread, with a free between) aborts
 * when the owner collects it, rather than hanging (it looped for ever). With
 * TIERPOOL_CHECK=1 (the by-name cases, their ctests set it) every double
 * free of a block not handed out again aborts. */

#define DOUBLE_FREE "tierpool: fatal: double free"
#define HANG_LIMIT 20 /* seconds: a hang fails the case (SIGALRM, not SIGABRT) */

static void *free_twice_in_thread(void *p)
{
    tp_free(p);
    tp_free(p);
    return NULL;
}

static void run_in_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_create(&t, NULL, fn, arg);
    pthread_join(t, NULL);
}

DEATH_SAYING(double_free_small, DOUBLE_FREE)
{
    void *keep = tp_malloc(40);
    sink = tp_malloc(40);
    tp_free(sink);
    tp_free(sink);
    tp_free(keep);
}

DEATH_SAYING(double_free_large, DOUBLE_FREE)
{
    void *keep = tp_malloc(20 * KiB);
    sink = tp_malloc(20 * KiB);
    tp_free(sink);
    tp_free(sink);
    tp_free(keep);
}

/* A long run freed with the length last asked for waits in the thread's
 * cache (run_cache.c, last_long): a second free still finds it not in use. */
DEATH_SAYING(double_free_long, DOUBLE_FREE)
{
    sink = tp_malloc(300 * KiB);
    tp_free(sink);
    tp_free(sink);
}

/* The page left with no block in use: pinned or retained, it still holds the
 * freed block at the head of its list. */
DEATH_SAYING(double_free_alone, DOUBLE_FREE)
{
    sink = tp_malloc(3000);
    tp_free(sink);
    tp_free(sink);
}

DEATH_SAYING(double_free_remote, DOUBLE_FREE)
{
    alarm(HANG_LIMIT);
    void *keep = tp_malloc(64);
    run_in_thread(free_twice_in_thread, tp_malloc(64));
    tp_free(keep);
}

/* The same into a page its owner parked as full: the first free goes to the
 * owner's delayed list, the second to the page's remote list (malloc then
 * handed the block out again and again). Found when the owner drains. */
DEATH_SAYING(double_free_remote_full_page, DOUBLE_FREE)
{
    alarm(HANG_LIMIT);
    static void *blocks[5000];
    for (int i = 0; i < 5000; i++) blocks[i] = tp_malloc(48); /* the first pages fill up */
    run_in_thread(free_twice_in_thread, blocks[10]);
    for (int i = 0; i < 100000; i++) sink = tp_malloc(48);
}

static void *free_a_b_a(void *arg)
{
    void **ab = arg;
    tp_free(ab[0]);
    tp_free(ab[1]);
    tp_free(ab[0]);
    return NULL;
}

/* a, b, a from another thread: the page's remote list loops. The owner
 * collects it once its free blocks run out. */
DEATH_SAYING(double_free_remote_loop, DOUBLE_FREE)
{
    alarm(HANG_LIMIT);
    void *ab[2] = {tp_malloc(48), tp_malloc(48)};
    run_in_thread(free_a_b_a, ab);
    for (int i = 0; i < 1000000; i++) sink = tp_malloc(48);
}

/* CHECK mode: a, b, a by the owner, and a block freed by its owner then by
 * another thread (each was undefined without CHECK). */
DEATH_SAYING(double_free_checked, "tierpool: fatal: double free (the block is not in use)")
{
    void *a = tp_malloc(40), *b = tp_malloc(40);
    tp_free(a);
    tp_free(b);
    tp_free(a);
}

DEATH_SAYING(double_free_checked_large, "tierpool: fatal: double free (the block is not in use)")
{
    void *a = tp_malloc(200 * KiB), *b = tp_malloc(200 * KiB), *c = tp_malloc(200 * KiB);
    tp_free(a);
    tp_free(b);
    tp_free(a);
    tp_free(c);
}

DEATH_SAYING(double_free_checked_remote, "tierpool: fatal: double free (the block is not in use)")
{
    alarm(HANG_LIMIT);
    void *ab[2] = {tp_malloc(48), tp_malloc(48)};
    run_in_thread(free_a_b_a, ab);
}

DEATH_SAYING(double_free_checked_owner_then_remote, "tierpool: fatal: double free (the block is not in use)")
{
    void *keep = tp_malloc(500), *p = tp_malloc(500);
    tp_free(p);
    run_in_thread(free_in_thread, p);
    tp_free(keep);
}

TEST_MAIN(
    CASE(free_stack),
    CASE(free_global),
    CASE(free_glibc_small),
    CASE(free_glibc_mmapped),
    CASE(free_sized_glibc),
    CASE(free_bulk_foreign),
    CASE(realloc_foreign),
    BY_NAME(free_interior_small), /* TIERPOOL_CHECK=1 */
    BY_NAME(free_interior_large),
    CASE(free_interior_small_remote),
    CASE(free_interior_huge_first_chunk),
    CASE(free_interior_huge_later_chunk),
    CASE(free_chunk_header),
    BY_NAME(free_uncarved),
    CASE(pool_destroy_twice),
    CASE(pool_destroy_twice_names_pool),
    CASE(pool_reset_destroyed),
    CASE(double_free_small),
    CASE(double_free_large),
    CASE(double_free_long),
    CASE(double_free_alone),
    CASE(double_free_remote),
    CASE(double_free_remote_loop),
    CASE(double_free_remote_full_page),
    BY_NAME(double_free_checked), /* TIERPOOL_CHECK=1 */
    BY_NAME(double_free_checked_large),
    BY_NAME(double_free_checked_remote),
    BY_NAME(double_free_checked_owner_then_remote))
