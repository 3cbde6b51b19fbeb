/* SPDX-License-Identifier: MIT */
/*
 * test.h: the test harness. Every check counts as passed or failed; a failed
 * one prints its file:line and, for comparisons, both values. A test's main
 * ends with `return test_report();`, which prints
 *     test_name: N passed, M failed
 * (test_name is the source file's name) and gives the exit status.
 *
 * TEST_SCALE(n): iteration counts shrink under the sanitizer builds.
 *
 * Checks may run on any thread (the counters are atomic). The second half,
 * "threads", holds what the multi-threaded tests share (test_threads.c,
 * test_thread_churn.c, test_fork.c, test_steady_state.c and the races): named
 * subtests, threads and gates, a random generator, a size mix over all three
 * tiers, a byte pattern that shows a block handed out twice or overwritten,
 * resident memory and a single-producer ring. Those binaries end with
 * thr_summary, which prints `name: N passed, M failed` counting subtests.
 */
#ifndef TP_TEST_H
#define TP_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tierpool.h"

/* Atomic adds and loads (__atomic_*, for the C++ tests too). */
static unsigned long test_passed, test_failed;

static __attribute__((unused)) int test_check(int ok, const char *expr, const char *file, int line)
{
    if (ok) {
        __atomic_fetch_add(&test_passed, 1, __ATOMIC_RELAXED);
    } else if (__atomic_fetch_add(&test_failed, 1, __ATOMIC_RELAXED) < 30) {
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, expr);
    }
    return ok;
}

static __attribute__((unused)) int test_check_op(int ok, const char *expr, uintmax_t a, uintmax_t b,
                                                 const char *file, int line)
{
    if (!test_check(ok, expr, file, line))
        fprintf(stderr, "    left:  %" PRIuMAX " (0x%" PRIxMAX ")\n    right: %" PRIuMAX " (0x%" PRIxMAX ")\n",
                a, a, b, b);
    return ok;
}

/* Each returns whether the check held, so a test can stop early. */
#define CHECK(cond) test_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_OP(a, op, b)                                                                   \
    __extension__({                                                                          \
        uintmax_t test_a_ = (uintmax_t)(a), test_b_ = (uintmax_t)(b);                        \
        test_check_op(test_a_ op test_b_, #a " " #op " " #b, test_a_, test_b_, __FILE__, __LINE__); \
    })
#define CHECK_EQ(a, b) CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) CHECK_OP(a, <, b)
#define CHECK_LE(a, b) CHECK_OP(a, <=, b)
#define CHECK_GE(a, b) CHECK_OP(a, >=, b)
#define CHECK_PTR_EQ(a, b) CHECK_EQ((uintptr_t)(const void *)(a), (uintptr_t)(const void *)(b))

#if defined(TP_SANITIZE_THREAD)
#define TEST_SCALE(n) ((n) / 10 ? (n) / 10 : 1)
#elif defined(TP_SANITIZE_ADDRESS)
#define TEST_SCALE(n) ((n) / 5 ? (n) / 5 : 1)
#else
#define TEST_SCALE(n) (n)
#endif

/* Named cases: test_run runs those named on the command line, or with no
 * names every case but the `by_name` ones: cases that expose a known engine
 * bug (registered as their own ctest, disabled until fixed) or that need a
 * special environment (their own ctest sets it). */
typedef struct test_case {
    const char *name;
    void (*fn)(void);
    int by_name;
} test_case;

/* CASE(x) is the case "x" running test_x; BY_NAME(x) the same, run only
 * when named. TEST_MAIN(case, ...) is main running the cases. */
#define CASE(x) {#x, test_##x, 0}
#define BY_NAME(x) {#x, test_##x, 1}
#define TEST_MAIN(...)                                   \
    static const test_case test_cases_[] = {__VA_ARGS__}; \
    int main(int argc, char **argv)                      \
    {                                                    \
        return test_run(argc, argv, test_cases_);        \
    }

#define test_run(argc, argv, cases) \
    test_run_cases(argc, argv, cases, sizeof(cases) / sizeof(cases)[0], __FILE__)
static int test_report_file(const char *file);
static __attribute__((unused)) int test_run_cases(int argc, char **argv, const test_case *cases, size_t n,
                                                  const char *file)
{
    for (size_t i = 0; i < n; i++) {
        int run = argc < 2 && !cases[i].by_name;
        for (int a = 1; a < argc; a++) run |= strcmp(argv[a], cases[i].name) == 0;
        if (run) cases[i].fn();
    }
    return test_report_file(file);
}

#define test_report() test_report_file(__FILE__)
static __attribute__((unused)) int test_report_file(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int len = (int)strcspn(base, ".");
    fflush(stdout);
    unsigned long passed = __atomic_load_n(&test_passed, __ATOMIC_RELAXED);
    unsigned long failed = __atomic_load_n(&test_failed, __ATOMIC_RELAXED);
    printf("%.*s: %lu passed, %lu failed\n", len, base, passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}

/* ---- threads (C only) ----------------------------------------------------------------- */

#ifndef __cplusplus
#include <stdatomic.h>

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

/* ---- threads: subtests and the summary line ------------------------------------ */

static THR_UNUSED int thr_subtests_passed, thr_subtests_failed;

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
    unsigned long before = __atomic_load_n(&test_failed, __ATOMIC_RELAXED);
    double t0 = thr_now();
    fn();
    bool ok = __atomic_load_n(&test_failed, __ATOMIC_RELAXED) == before;
    printf("  %-28s %s  %.2f s\n", name, ok ? "ok  " : "FAIL", thr_now() - t0);
    fflush(stdout);
    if (ok) thr_subtests_passed++; else thr_subtests_failed++;
}

static THR_UNUSED int thr_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, thr_subtests_passed, thr_subtests_failed);
    if (thr_subtests_passed + thr_subtests_failed == 0) printf("no subtest named %s\n", thr_only ? thr_only : "");
    fflush(stdout);
    return thr_subtests_failed || thr_subtests_passed == 0 || __atomic_load_n(&test_failed, __ATOMIC_RELAXED) ? 1 : 0;
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
    test_check(!THR_RSS_CHECKED || (rss) <= (base) + (bound), #rss " <= " #base " + " #bound, __FILE__, __LINE__)

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
#endif /* __cplusplus */

#endif /* TP_TEST_H */
