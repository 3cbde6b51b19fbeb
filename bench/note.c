/* SPDX-License-Identifier: MIT */
/*
 * note.c: the design note's own workload: a server's connections take and
 * return buffers of mixed sizes (docs/benchmarks.md, "The note's workload").
 *
 *   note MODE PHASE [THREADS [STEPS]]      (defaults 2 threads, 200000 steps)
 *
 * Each thread is a connection with 256 buffer slots. A step frees a random
 * slot's buffer and takes a new one whose size is uniform within one band:
 * 70% 64 B .. 4 KiB (headers, small messages), 27% 4 .. 64 KiB (bodies), 3%
 * 64 KiB .. 1 MiB (uploads). Sizes and slots are drawn before the clock
 * starts, the same for every contender; the slots are filled before it too.
 *
 * MODE, the contender:
 *   sys         malloc/free (glibc, or a peer or libtierpool-malloc through
 *               LD_PRELOAD, set by the runner)
 *   bufferpool  the note's old BufferPool: 64 KiB buffers kept in a list
 *               with a list of free indices under one mutex, shared by the
 *               connections; larger requests go to malloc
 *   tp          tierpool's tp_malloc/tp_free
 *   pool        one explicit tierpool pool shared by the connections
 *               (tp_pool_malloc/tp_free)
 * PHASE:
 *   cost   buffers untouched. Prints "cost MODE ns N loop_ns L": N is the
 *          nanoseconds per take+return, the same loop with no allocator at
 *          all (run first, in the same process) subtracted; L is that loop's.
 *   waste  every requested byte written. Prints "waste MODE mib W rss_mib R
 *          start_mib S requested_mib Q": W = R - S - Q, the peak resident
 *          memory (R) less the resident memory before the first buffer (S:
 *          the program and its libraries) less the peak of the requested
 *          bytes of live buffers (Q).
 * Then "check steps N bytes B" (equal for every contender: the runner
 * compares it), after checking the first and last byte of every buffer it
 * frees in the waste phase ("check ... bad X" counts damaged ones).
 */
#define _GNU_SOURCE
#include <tierpool.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_util.h"

#define SLOTS 256
#define BUFFER_SIZE (64u << 10) /* the BufferPool's one size */

enum mode { MODE_NONE, MODE_SYS, MODE_BUFFERPOOL, MODE_TP, MODE_POOL };

/* ---- the note's old BufferPool ------------------------------------------------ */

typedef struct buffer_pool {
    pthread_mutex_t lock;
    void **buffers;    /* every buffer made */
    uint32_t *free_ix; /* indices of the free ones */
    size_t count, nfree, cap;
} buffer_pool;

static buffer_pool old_pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A buffer of at least `size` bytes; *ix is its index, or UINT32_MAX when
 * it came from malloc (above the pool's one size). */
static void *bp_take(size_t size, uint32_t *ix)
{
    if (size > BUFFER_SIZE) {
        *ix = UINT32_MAX;
        return malloc(size);
    }
    buffer_pool *bp = &old_pool;
    pthread_mutex_lock(&bp->lock);
    if (bp->nfree) {
        *ix = bp->free_ix[--bp->nfree];
    } else {
        if (bp->count == bp->cap) {
            size_t cap = bp->cap ? bp->cap * 2 : 256;
            void **b = realloc(bp->buffers, cap * sizeof *b);
            uint32_t *f = realloc(bp->free_ix, cap * sizeof *f);
            if (!b || !f) abort();
            bp->buffers = b;
            bp->free_ix = f;
            bp->cap = cap;
        }
        bp->buffers[bp->count] = malloc(BUFFER_SIZE);
        if (!bp->buffers[bp->count]) abort();
        *ix = (uint32_t)bp->count++;
    }
    void *p = bp->buffers[*ix];
    pthread_mutex_unlock(&bp->lock);
    return p;
}

static void bp_return(void *p, uint32_t ix)
{
    if (ix == UINT32_MAX) {
        free(p);
        return;
    }
    pthread_mutex_lock(&old_pool.lock);
    old_pool.free_ix[old_pool.nfree++] = ix;
    pthread_mutex_unlock(&old_pool.lock);
}

/* ---- the connections -------------------------------------------------------------- */

typedef struct slot {
    char *p;
    uint32_t size;
    uint32_t ix; /* BufferPool index */
} slot;

typedef struct connection {
    pthread_t thread;
    uint32_t *sizes; /* per step, and SLOTS more for the first fill */
    uint8_t *slots;  /* per step */
    slot slot[SLOTS];
    double seconds;
    uint64_t bytes, bad;
} connection;

static int thread_count;
static long steps;
static int touch;
static tp_pool *shared_pool;
static pthread_barrier_t start_line;
static _Atomic uint64_t live_requested, peak_requested;
static char dummy_buffer[64];

static size_t note_size(uint64_t *rng)
{
    uint64_t band = bench_rand(rng) % 100, r = bench_rand(rng);
    if (band < 70) return 64 + r % (4096 - 64 + 1);
    if (band < 97) return 4096 + r % (65536 - 4096 + 1);
    return 65536 + r % (1048576 - 65536 + 1);
}

static void note_live(int64_t delta)
{
    uint64_t now = atomic_fetch_add_explicit(&live_requested, (uint64_t)delta, memory_order_relaxed) + (uint64_t)delta;
    uint64_t peak = atomic_load_explicit(&peak_requested, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&peak_requested, &peak, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* Inlined with a constant mode, so each contender's loop has no dispatch. */
static inline __attribute__((always_inline)) void take(enum mode mode, connection *c, slot *s, uint32_t size)
{
    switch (mode) {
    case MODE_NONE: s->p = dummy_buffer; break;
    case MODE_SYS: s->p = malloc(size); break;
    case MODE_BUFFERPOOL: s->p = bp_take(size, &s->ix); break;
    case MODE_TP: s->p = tp_malloc(size); break;
    case MODE_POOL: s->p = tp_pool_malloc(shared_pool, size); break;
    }
    if (!s->p) {
        fprintf(stderr, "note: allocation of %u bytes failed\n", size);
        exit(1);
    }
    s->size = size;
    c->bytes += size;
    if (touch) {
        memset(s->p, (int)(size & 0xff), size);
        note_live((int64_t)size);
    }
}

static inline __attribute__((always_inline)) void give_back(enum mode mode, connection *c, slot *s)
{
    if (touch) {
        unsigned char want = (unsigned char)(s->size & 0xff);
        unsigned char *p = (unsigned char *)s->p;
        c->bad += p[0] != want || p[s->size - 1] != want;
        note_live(-(int64_t)s->size);
    }
    switch (mode) {
    case MODE_NONE: break;
    case MODE_SYS: free(s->p); break;
    case MODE_BUFFERPOOL: bp_return(s->p, s->ix); break;
    case MODE_TP:
    case MODE_POOL: tp_free(s->p); break;
    }
    s->p = NULL;
}

static inline __attribute__((always_inline)) void run(enum mode mode, connection *c)
{
    for (unsigned i = 0; i < SLOTS; i++) take(mode, c, &c->slot[i], c->sizes[steps + i]);
    pthread_barrier_wait(&start_line);
    double t0 = bench_now();
    for (long i = 0; i < steps; i++) {
        slot *s = &c->slot[c->slots[i]];
        give_back(mode, c, s);
        take(mode, c, s, c->sizes[i]);
    }
    c->seconds = bench_now() - t0;
    for (unsigned i = 0; i < SLOTS; i++) give_back(mode, c, &c->slot[i]);
}

static enum mode current_mode;

static void *connection_main(void *arg)
{
    connection *c = arg;
    switch (current_mode) {
    case MODE_NONE: run(MODE_NONE, c); break;
    case MODE_SYS: run(MODE_SYS, c); break;
    case MODE_BUFFERPOOL: run(MODE_BUFFERPOOL, c); break;
    case MODE_TP: run(MODE_TP, c); break;
    case MODE_POOL: run(MODE_POOL, c); break;
    }
    return NULL;
}

/* Runs every connection through the loop of `mode`; the mean seconds a
 * connection spent in its timed steps. */
static double run_all(connection *conns, enum mode mode)
{
    current_mode = mode;
    pthread_barrier_init(&start_line, NULL, (unsigned)thread_count);
    for (int i = 0; i < thread_count; i++) conns[i].bytes = 0;
    for (int i = 0; i < thread_count; i++) pthread_create(&conns[i].thread, NULL, connection_main, &conns[i]);
    double sum = 0;
    for (int i = 0; i < thread_count; i++) {
        pthread_join(conns[i].thread, NULL);
        sum += conns[i].seconds;
    }
    pthread_barrier_destroy(&start_line);
    return sum / thread_count;
}

int main(int argc, char **argv)
{
    static const char *const modes[] = {"none", "sys", "bufferpool", "tp", "pool"};
    if (argc < 3) {
        fprintf(stderr, "usage: %s sys|bufferpool|tp|pool cost|waste [THREADS [STEPS]]\n", argv[0]);
        return 2;
    }
    enum mode mode = MODE_NONE;
    for (unsigned i = 1; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(argv[1], modes[i]) == 0) mode = (enum mode)i;
    touch = strcmp(argv[2], "waste") == 0;
    thread_count = argc > 3 ? atoi(argv[3]) : 2;
    steps = argc > 4 ? atol(argv[4]) : 200000;
    if (mode == MODE_NONE || (!touch && strcmp(argv[2], "cost") != 0) || thread_count < 1 || thread_count > 64 ||
        steps < 1) {
        fprintf(stderr, "note: bad arguments\n");
        return 2;
    }
    connection *conns = calloc((size_t)thread_count, sizeof *conns);
    if (!conns) return 1;
    for (int t = 0; t < thread_count; t++) {
        connection *c = &conns[t];
        uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);
        c->sizes = malloc(((size_t)steps + SLOTS) * sizeof *c->sizes);
        c->slots = malloc((size_t)steps);
        if (!c->sizes || !c->slots) return 1;
        for (long i = 0; i < steps + SLOTS; i++) c->sizes[i] = (uint32_t)note_size(&rng);
        for (long i = 0; i < steps; i++) c->slots[i] = (uint8_t)bench_rand(&rng);
    }
    if (mode == MODE_POOL) {
        shared_pool = tp_pool_create("note", NULL);
        if (!shared_pool) return 1;
    }
    size_t start_rss = util_rss();
    uint64_t bytes = 0, bad = 0;
    if (touch) {
        run_all(conns, mode);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double mib = 1024.0 * 1024.0, rss = (double)ru.ru_maxrss * 1024.0;
        double requested = (double)atomic_load(&peak_requested);
        printf("waste %s mib %.2f rss_mib %.2f start_mib %.2f requested_mib %.2f\n", argv[1],
               (rss - (double)start_rss - requested) / mib, rss / mib, (double)start_rss / mib, requested / mib);
    } else {
        double loop = run_all(conns, MODE_NONE);
        double seconds = run_all(conns, mode);
        printf("cost %s ns %.1f loop_ns %.1f\n", argv[1], (seconds - loop) * 1e9 / (double)steps,
               loop * 1e9 / (double)steps);
    }
    for (int t = 0; t < thread_count; t++) {
        bytes += conns[t].bytes;
        bad += conns[t].bad;
    }
    printf("check steps %ld bytes %llu bad %llu\n", steps * thread_count, (unsigned long long)bytes,
           (unsigned long long)bad);
    if (shared_pool) tp_pool_destroy(shared_pool);
    return 0;
}
