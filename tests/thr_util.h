/* SPDX-License-Identifier: MIT */
/*
 * thr_util.h: shared helpers of the multi-threaded tests (test_threads.c,
 * test_thread_churn.c, test_fork.c, test_steady_state.c).
 *
 * Self-contained on purpose (no dependency on tests/test.h): a failure
 * counter that any thread may bump, subtests counted as passed when they add
 * no failure, a per-thread random generator, a size mix over all three tiers,
 * a byte pattern to catch blocks that are handed out twice or overwritten,
 * resident memory from /proc/self/statm and a single-producer ring.
 *
 * Every binary ends by printing `name: N passed, M failed` (N, M count
 * subtests) and exits nonzero if any check failed or no subtest ran.
 */
#ifndef THR_UTIL_H
#define THR_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tierpool.h"

/* Work is divided by THR_SCALE in sanitizer builds (2 cores, keep every test
 * well under 30 s). */
#if defined(TP_SANITIZE_THREAD)
#define THR_SCALE 8
#define THR_TSAN 1
#elif defined(TP_SANITIZE_ADDRESS)
#define THR_SCALE 2
#define THR_TSAN 0
#else
#define THR_SCALE 1
#define THR_TSAN 0
#endif

/* Resident-memory bounds hold in plain builds only: the sanitizers' own
 * memory (ASan's quarantine of libc's malloc, shadow of thread stacks and
 * thread state) grows with the threads made, so there it is printed only. */
#if defined(TP_SANITIZE_THREAD) || defined(TP_SANITIZE_ADDRESS)
#define THR_RSS_CHECKED 0
#else
#define THR_RSS_CHECKED 1
#endif

#define THR_UNUSED __attribute__((unused))
#define THR_MIB ((size_t)1 << 20)

/* ---- checks and the summary line ---------------------------------------------- */

static atomic_long thr_failures;
static THR_UNUSED int thr_subtests_passed, thr_subtests_failed;

static THR_UNUSED bool thr_check(bool ok, const char *what, const char *file, int line)
{
    if (ok) return true;
    if (atomic_fetch_add(&thr_failures, 1) < 30) fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
    return false;
}
/* Usable from any thread; evaluates to the condition. */
#define CHECK(cond) thr_check((cond) ? true : false, #cond, __FILE__, __LINE__)

static THR_UNUSED double thr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The one subtest named on the command line (none = all): thr_args(). */
static const char *thr_only;

static THR_UNUSED void thr_args(int argc, char **argv)
{
    thr_only = argc > 1 ? argv[1] : NULL;
}

/* Runs one subtest; it passes when it adds no failure. */
static THR_UNUSED void thr_run(const char *name, void (*fn)(void))
{
    if (thr_only && strcmp(name, thr_only) != 0) return;
    long before = atomic_load(&thr_failures);
    double t0 = thr_now();
    fn();
    bool ok = atomic_load(&thr_failures) == before;
    printf("  %-28s %s  %.2f s\n", name, ok ? "ok  " : "FAIL", thr_now() - t0);
    fflush(stdout);
    if (ok) thr_subtests_passed++; else thr_subtests_failed++;
}

static THR_UNUSED int thr_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, thr_subtests_passed, thr_subtests_failed);
    if (thr_subtests_passed + thr_subtests_failed == 0) printf("no subtest named %s\n", thr_only ? thr_only : "");
    fflush(stdout);
    return thr_subtests_failed || thr_subtests_passed == 0 || atomic_load(&thr_failures) ? 1 : 0;
}

/* ---- threads -------------------------------------------------------------------- */

static THR_UNUSED void thr_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int rc = pthread_create(t, NULL, fn, arg);
    if (rc != 0) {
        fprintf(stderr, "pthread_create: %s\n", strerror(rc));
        exit(2);
    }
}

static THR_UNUSED void thr_join(pthread_t t)
{
    int rc = pthread_join(t, NULL);
    if (rc != 0) {
        fprintf(stderr, "pthread_join: %s\n", strerror(rc));
        exit(2);
    }
}

/* Runs fn((void *)i) on n threads (i = 0 .. n-1) and joins them all. */
static THR_UNUSED void thr_run_threads(unsigned n, void *(*fn)(void *))
{
    pthread_t t[64];
    if (n > 64) exit(2);
    for (unsigned i = 0; i < n; i++) thr_start(&t[i], fn, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < n; i++) thr_join(t[i]);
}

/* A value threads wait on without spinning. */
typedef struct thr_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int value;
} thr_gate;

#define THR_GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

static THR_UNUSED void thr_gate_set(thr_gate *g, int value)
{
    pthread_mutex_lock(&g->lock);
    g->value = value;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Waits until the gate holds at least `value`. */
static THR_UNUSED void thr_gate_wait(thr_gate *g, int value)
{
    pthread_mutex_lock(&g->lock);
    while (g->value < value) pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/* ---- random numbers and sizes ------------------------------------------------------ */

typedef struct thr_rng {
    uint64_t s;
} thr_rng;

static inline thr_rng thr_rng_make(uint64_t seed)
{
    thr_rng r = {seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
    if (r.s == 0) r.s = 1;
    return r;
}

static inline uint64_t thr_rand(thr_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi]. */
static inline size_t thr_range(thr_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(thr_rand(r) % (hi - lo + 1));
}

/* Mostly small (<= 1 KiB, most of those <= 128 B), some large (log-uniform
 * 1 KiB .. large_max), and with huge_per_mille in a thousand a huge block of
 * 1 .. 3 MiB. */
static THR_UNUSED size_t thr_size_mix(thr_rng *r, size_t large_max, unsigned huge_per_mille)
{
    unsigned pick = (unsigned)(thr_rand(r) % 1000);
    if (pick < huge_per_mille) return thr_range(r, THR_MIB + 1, 3 * THR_MIB);
    if (pick < 600) return thr_range(r, 0, 128);
    if (pick < 850) return thr_range(r, 129, 1024);
    size_t lo = 1025, hi = 2048;
    while (hi < large_max && thr_rand(r) % 3 == 0) {
        lo = hi + 1;
        hi *= 2;
    }
    if (hi > large_max) hi = large_max;
    return thr_range(r, lo, hi);
}

/* The usual mix: large up to 1 MiB, two huge blocks in a thousand. */
static inline size_t thr_size_any(thr_rng *r)
{
    return thr_size_mix(r, THR_MIB, 2);
}

/* ---- byte patterns ------------------------------------------------------------------- */

/* Next byte the pattern covers after byte i: every byte of the first 256 and
 * the last 64, one per 16 KiB in between. Cheap even for huge blocks, yet a
 * block handed out twice or overwritten shows. */
static inline size_t thr_pattern_next(size_t i, size_t size)
{
    if (i + 1 < 256 || i + 64 >= size) return i + 1;
    size_t tail = size - 64;
    return i + 16384 < tail ? i + 16384 : tail;
}

/* Writes (or, with check, compares) the pattern derived from `tag`. */
static THR_UNUSED bool thr_pattern(unsigned char *p, size_t size, uint64_t tag, bool check)
{
    uint64_t h = tag * 0x9E3779B97F4A7C15ull;
    unsigned char base = (unsigned char)(h >> 56), step = (unsigned char)((h >> 48) | 1);
    for (size_t i = 0; i < size; i = thr_pattern_next(i, size)) {
        unsigned char want = (unsigned char)(base + step * (unsigned char)(i ^ (i >> 8)));
        if (!check) p[i] = want;
        else if (p[i] != want) return false;
    }
    return true;
}

static inline void thr_fill(void *p, size_t size, uint64_t tag)
{
    if (size) thr_pattern(p, size, tag, false);
}

static inline bool thr_verify(const void *p, size_t size, uint64_t tag)
{
    return size == 0 || thr_pattern((unsigned char *)(uintptr_t)p, size, tag, true);
}

/* A block as the tests track it. */
typedef struct thr_block {
    void *p;
    size_t size;
    uint64_t tag;
    tp_pool *pool; /* the pool it must belong to */
} thr_block;

/* Allocates from `pool` (tp_malloc when NULL), fills the pattern. False (and
 * a failed check) when the allocation fails. */
static THR_UNUSED bool thr_block_alloc(thr_block *b, tp_pool *pool, size_t size, uint64_t tag)
{
    b->p = pool ? tp_pool_malloc(pool, size) : tp_malloc(size);
    b->size = size;
    b->tag = tag;
    b->pool = pool ? pool : tp_pool_default();
    if (!CHECK(b->p != NULL)) return false;
    CHECK(((uintptr_t)b->p & 15) == 0);
    thr_fill(b->p, size, tag);
    return true;
}

/* Checks the pattern, the owner pool and the usable size, then frees. */
static THR_UNUSED void thr_block_free(thr_block *b)
{
    if (!b->p) return;
    CHECK(thr_verify(b->p, b->size, b->tag));
    CHECK(tp_pool_of(b->p) == b->pool);
    CHECK(tp_usable_size(b->p) >= b->size);
    tp_free(b->p);
    b->p = NULL;
}

/* ---- a bag of blocks any thread may put in or take out ------------------------------ */

typedef struct thr_bag {
    pthread_mutex_t lock;
    size_t count, cap;
    thr_block *items;
} thr_bag;

#define THR_BAG_INIT(array) {PTHREAD_MUTEX_INITIALIZER, 0, sizeof(array) / sizeof((array)[0]), (array)}

/* Puts up to n blocks in; returns how many fit (the caller keeps the rest). */
static THR_UNUSED size_t thr_bag_put(thr_bag *bag, const thr_block *b, size_t n)
{
    pthread_mutex_lock(&bag->lock);
    size_t i = 0;
    for (; i < n && bag->count < bag->cap; i++) bag->items[bag->count++] = b[i];
    pthread_mutex_unlock(&bag->lock);
    return i;
}

/* Takes up to n blocks, picked at random while more than `keep` are in. */
static THR_UNUSED size_t thr_bag_take(thr_bag *bag, thr_block *out, size_t n, size_t keep, thr_rng *r)
{
    pthread_mutex_lock(&bag->lock);
    size_t got = 0;
    for (; got < n && bag->count > keep; got++) {
        size_t k = (size_t)(thr_rand(r) % bag->count);
        out[got] = bag->items[k];
        bag->items[k] = bag->items[--bag->count];
    }
    pthread_mutex_unlock(&bag->lock);
    return got;
}

/* Checks and frees what is left, without the lock (no thread uses it). */
static THR_UNUSED void thr_bag_drain(thr_bag *bag)
{
    while (bag->count) thr_block_free(&bag->items[--bag->count]);
}

/* ---- resident memory ----------------------------------------------------------------- */

static THR_UNUSED size_t thr_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long pages = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &pages, &resident);
    fclose(f);
    return n == 2 ? (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Checks that resident memory `rss` stays within `bound` of `base`. */
#define CHECK_RSS(rss, base, bound) \
    thr_check(!THR_RSS_CHECKED || (rss) <= (base) + (bound), #rss " <= " #base " + " #bound, __FILE__, __LINE__)

/* ---- a bounded single-producer single-consumer ring ------------------------------------ */

#define THR_RING_CAP 256

typedef struct thr_ring {
    _Alignas(64) _Atomic size_t head; /* consumer's */
    _Alignas(64) _Atomic size_t tail; /* producer's */
    _Alignas(64) thr_block slots[THR_RING_CAP];
} thr_ring;

static THR_UNUSED bool thr_ring_push(thr_ring *r, const thr_block *b)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&r->head, memory_order_acquire) == THR_RING_CAP) return false;
    r->slots[t % THR_RING_CAP] = *b;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

/* Pushes *pending and empties it when the ring has room. */
static THR_UNUSED bool thr_ring_push_pending(thr_ring *r, thr_block *pending)
{
    if (!thr_ring_push(r, pending)) return false;
    pending->p = NULL;
    return true;
}

static THR_UNUSED bool thr_ring_pop(thr_ring *r, thr_block *b)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&r->tail, memory_order_acquire)) return false;
    *b = r->slots[h % THR_RING_CAP];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return true;
}

#endif /* THR_UTIL_H */
