/* SPDX-License-Identifier: MIT */
/*
 * fuzz_api.c: a libFuzzer harness that runs its input as a program of calls
 * to every public function of tierpool.h, checked against a shadow model.
 *
 * The input is a sequence of operations: an opcode byte, then the bytes of
 * its arguments (zero once the input runs out). The model holds SLOTS live
 * blocks, each with its pool, requested and usable size, alignment and an
 * id; a block holds util_pattern(id, offset) at util_marks' offsets
 * (tests/util.h), written when it is allocated. Checked on every operation
 * that touches a block: the pattern is intact at free and realloc (and over
 * the part a realloc keeps), usable size covers the request and does not
 * change, alignment holds, tp_pool_of gives the block's pool (from its first
 * and last byte and from inside it), calloc memory is zero, blocks never
 * overlap, a pool with a memory limit never holds more requested bytes than
 * the limit, only such a pool fails an ordinary request (NULL and ENOMEM),
 * absurd sizes give ENOMEM and bad alignments EINVAL. Resetting or
 * destroying a pool drops its blocks from the model; trimming a pool,
 * resetting or destroying the default pool (ignored) and reading statistics
 * leave every block intact.
 *
 * Threads: a worker thread, started once and kept, frees blocks handed to
 * it (remote frees, queued: the main thread goes on meanwhile, and waits
 * for the queue to drain before a pool is reset or destroyed and at the end
 * of an input) and runs allocations and reallocs on request (the main
 * thread waits for those). An operation also runs a short-lived thread that
 * frees one block, allocates a few and exits, leaving its pages abandoned.
 *
 * Three explicit pools (pools[1..3], the third with a memory limit) live
 * across inputs; an input that destroys one creates it again with a name
 * and limit from the input, and the end of the input puts back the
 * standard ones. Model state starts empty for each input, so an input
 * always runs the same operations on the same blocks.
 *
 * Any mismatch prints the operation number and what differed, then aborts.
 * FUZZ_TRACE=1 in the environment prints each operation as it runs.
 */
#include "tierpool.h"
#include "../util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 64              /* live blocks at most */
#define POOLS 4               /* 0: the default pool; 1..3: explicit, 3 limited */
#define LIMITED 3
#define LIVE_MAX (32 * MiB)   /* requested bytes live at most, past which sizes shrink */
#define THREADS_MAX 4         /* short-lived threads per input */
#define QUEUE 16              /* jobs waiting for the worker */

/* ---- input ------------------------------------------------------------------------ */

typedef struct input {
    const uint8_t *data;
    size_t size, pos;
} input;

/* The next `bytes` bytes, big-endian; zero past the end. */
static uint64_t take(input *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) v = v << 8 | (in->pos < in->size ? in->data[in->pos++] : 0u);
    return v;
}
#define u8(in) ((unsigned)take(in, 1))
#define u16(in) ((unsigned)take(in, 2))
#define u32(in) ((size_t)take(in, 4))

/* ---- the model ---------------------------------------------------------------------- */

typedef struct block {
    uint8_t *p;    /* NULL: the slot is empty */
    size_t size;   /* requested */
    size_t usable; /* tp_usable_size at allocation */
    size_t align;  /* asked for, 16 at least */
    uint64_t id;   /* the pattern it holds */
    int pool;      /* index into pools[]; 0 = the default pool */
} block;

static block slots[SLOTS];
static tp_pool *pools[POOLS];
static size_t limits[POOLS];
static bool recreated[POOLS]; /* destroyed and created again by this input */
static uint64_t next_id, op_index;
static size_t live_bytes;
static int threads_started;
static bool trace, options_changed;

static const char *const pool_names[POOLS] = {"default", "fuzz-a", "fuzz-b", "fuzz-limited"};
static const size_t pool_limits[POOLS] = {0, 0, 0, 8 * MiB};

#define BLOCK_FMT "block id %" PRIu64 " %p size %zu usable %zu align %zu pool %d"
#define BLOCK_ARGS(b) (b)->id, (void *)(b)->p, (b)->size, (b)->usable, (b)->align, (b)->pool

static _Noreturn __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_api: op %" PRIu64 ": ", __atomic_load_n(&op_index, __ATOMIC_RELAXED));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
#define REQUIRE(cond, ...)             \
    do {                               \
        if (!(cond)) fail(__VA_ARGS__); \
    } while (0)

static tp_pool *pool_ptr(int k)
{
    return k == 0 ? tp_pool_default() : pools[k];
}

/* The pool argument for pool k: the default pool is also NULL. */
static tp_pool *pool_arg(int k, unsigned sel)
{
    return k == 0 && (sel & 1) ? NULL : pool_ptr(k);
}

static int pick_pool(input *in)
{
    return (int)(u8(in) % POOLS);
}

/* Mostly small, then large, a few huge (to 4 MiB), and the tier edges;
 * sizes shrink below 4 KiB while LIVE_MAX bytes are live. Big blocks cost
 * page faults (the pattern touches every 32 KiB), so they are the rarer. */
static size_t pick_size(input *in)
{
    static const size_t edges[] = {0,     1,         16,      17,     128,         129,     1024,   1025,
                                   4095,  4096,      4097,    65536,  65537,       MiB - 1, MiB,    MiB + 1,
                                   2 * MiB, 4 * MiB - 4096};
    size_t size;
    switch (u8(in) % 16) {
    case 0:
    case 1: size = u8(in) % 16; break;
    case 2:
    case 3:
    case 4:
    case 5:
    case 6: size = u8(in) + 1u; break;
    case 7:
    case 8:
    case 9: size = u16(in) % (4 * KiB) + 1; break;
    case 10: size = edges[u8(in) % (sizeof edges / sizeof edges[0])]; break;
    case 11:
    case 12: size = u16(in) + 4 * KiB; break;
    case 13:
    case 14: size = u32(in) % MiB + 1; break;
    default: size = MiB + 1 + u32(in) % (3 * MiB); break;
    }
    return live_bytes + size > LIVE_MAX ? size % (4 * KiB) : size;
}

/* Every check of a live block: contents, usable size, owner. */
static void check_block(const block *b, const char *what)
{
    size_t bad = util_verify(b->p, b->size, SIZE_MAX, b->id);
    REQUIRE(bad == UTIL_OK, "%s: contents changed at offset %zu of " BLOCK_FMT, what, bad, BLOCK_ARGS(b));
    size_t usable = tp_usable_size(b->p);
    REQUIRE(usable == b->usable, "%s: usable size now %zu, " BLOCK_FMT, what, usable, BLOCK_ARGS(b));
    tp_pool *owner = tp_pool_of(b->p), *last = b->size > 1 ? tp_pool_of(b->p + b->size - 1) : owner;
    REQUIRE(owner == pool_ptr(b->pool) && last == owner, "%s: tp_pool_of gives %p (last byte %p), not %p, " BLOCK_FMT,
            what, (void *)owner, (void *)last, (void *)pool_ptr(b->pool), BLOCK_ARGS(b));
}

static void check_all(const char *what)
{
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p) check_block(&slots[i], what);
}

static void drop(block *b)
{
    live_bytes -= b->size;
    b->p = NULL;
}

/* Frees the block in slot b, if any, after checking it. */
static block *release(block *b)
{
    if (b->p) {
        check_block(b, "free");
        tp_free(b->p);
        drop(b);
    }
    return b;
}

static block *slot_at(unsigned i)
{
    return &slots[i % SLOTS];
}

/* A slot for a new block: emptied first. */
static block *take_slot(input *in)
{
    return release(slot_at(u8(in)));
}

/* Takes a new block p of pool k into the empty slot b, after the checks a
 * new block must pass; then writes its pattern. */
static void adopt(block *b, void *p, size_t size, size_t align, int k, bool zeroed, const char *what)
{
    uintptr_t a = (uintptr_t)p;
    block n = {p, size, tp_usable_size(p), align < 16 ? 16 : align, next_id++, k};
    REQUIRE(n.usable >= (size ? size : 1), "%s: usable size below the request, " BLOCK_FMT, what, BLOCK_ARGS(&n));
    REQUIRE(a % n.align == 0, "%s: misaligned, " BLOCK_FMT, what, BLOCK_ARGS(&n));
    REQUIRE(tp_pool_of(p) == pool_ptr(k), "%s: tp_pool_of gives %p, " BLOCK_FMT, what, (void *)tp_pool_of(p),
            BLOCK_ARGS(&n));
    if (zeroed) {
        size_t bad = util_zero(p, size);
        REQUIRE(bad == UTIL_OK, "%s: byte %zu not zero, " BLOCK_FMT, what, bad, BLOCK_ARGS(&n));
    }
    size_t in_pool = size;
    for (int i = 0; i < SLOTS; i++) {
        const block *o = &slots[i];
        if (!o->p || o == b) continue;
        REQUIRE(a + n.usable <= (uintptr_t)o->p || (uintptr_t)o->p + o->usable <= a,
                "%s: new " BLOCK_FMT " overlaps " BLOCK_FMT, what, BLOCK_ARGS(&n), BLOCK_ARGS(o));
        if (o->pool == k) in_pool += o->size;
    }
    REQUIRE(!limits[k] || in_pool <= limits[k], "%s: pool %d holds %zu requested bytes, past its limit %zu", what, k,
            in_pool, limits[k]);
    *b = n;
    live_bytes += size;
    util_mark(p, size, n.id);
}

/* The result of an ordinary request: a new block, or NULL with ENOMEM from
 * a pool with a memory limit (errno as the call left it). */
static void allocated(block *b, void *p, size_t size, size_t align, int k, bool zeroed, const char *what)
{
    if (p) {
        adopt(b, p, size, align, k, zeroed, what);
        return;
    }
    int err = errno;
    REQUIRE(limits[k] != 0, "%s of %zu (align %zu) in pool %d, which has no limit, failed (errno %d)", what, size,
            align, k, err);
    REQUIRE(err == ENOMEM, "%s of %zu in limited pool %d failed with errno %d, not ENOMEM", what, size, k, err);
}

/* ---- the worker thread and short-lived threads ------------------------------------------ */

enum { JOB_FREE, JOB_MALLOC, JOB_CALLOC, JOB_ALIGNED, JOB_REALLOC };

typedef struct job {
    int kind;
    tp_pool *pool;  /* allocations */
    uint8_t *ptr;   /* FREE, REALLOC: the block */
    size_t size;    /* FREE: the block's size, to check it; others: the request */
    size_t align;   /* ALIGNED */
    uint64_t id;    /* FREE: the block's pattern, checked first */
    unsigned how;   /* FREE: tp_free or tp_free_sized */
    void *result;
    int err;        /* errno after the call */
} job;

static void run_job(job *j)
{
    errno = 0;
    switch (j->kind) {
    case JOB_FREE: {
        size_t bad = util_verify(j->ptr, j->size, SIZE_MAX, j->id);
        REQUIRE(bad == UTIL_OK, "remote free: contents of %p (id %" PRIu64 ", size %zu) changed at offset %zu",
                (void *)j->ptr, j->id, j->size, bad);
        if (j->how & 1)
            tp_free_sized(j->ptr, j->size);
        else
            tp_free(j->ptr);
        break;
    }
    case JOB_MALLOC: j->result = j->pool ? tp_pool_malloc(j->pool, j->size) : tp_malloc(j->size); break;
    case JOB_CALLOC: j->result = tp_pool_calloc(j->pool, 1, j->size); break;
    case JOB_ALIGNED: j->result = tp_pool_aligned_alloc(j->pool, j->align, j->size); break;
    case JOB_REALLOC: j->result = tp_realloc(j->ptr, j->size); break;
    }
    j->err = errno;
}

/* ring[done % QUEUE] is the job the worker runs; only the main thread posts. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t posted_cond, done_cond;
    job ring[QUEUE];
    unsigned posted, done;
    bool started;
} worker = {.lock = PTHREAD_MUTEX_INITIALIZER,
            .posted_cond = PTHREAD_COND_INITIALIZER,
            .done_cond = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&worker.lock);
    for (;;) {
        while (worker.done == worker.posted) pthread_cond_wait(&worker.posted_cond, &worker.lock);
        job *j = &worker.ring[worker.done % QUEUE];
        pthread_mutex_unlock(&worker.lock);
        run_job(j);
        pthread_mutex_lock(&worker.lock);
        worker.done++;
        pthread_cond_broadcast(&worker.done_cond);
    }
    return NULL;
}

/* Queues a job for the worker (waiting while the queue is full); returns
 * its number. */
static unsigned worker_post(const job *j)
{
    pthread_mutex_lock(&worker.lock);
    if (!worker.started) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, worker_main, NULL) == 0, "cannot start the worker thread");
        pthread_detach(t);
        worker.started = true;
    }
    while (worker.posted - worker.done == QUEUE) pthread_cond_wait(&worker.done_cond, &worker.lock);
    unsigned n = worker.posted++;
    worker.ring[n % QUEUE] = *j;
    pthread_cond_signal(&worker.posted_cond);
    pthread_mutex_unlock(&worker.lock);
    return n;
}

/* Waits until the worker has run every job posted. */
static void worker_sync(void)
{
    pthread_mutex_lock(&worker.lock);
    while (worker.done != worker.posted) pthread_cond_wait(&worker.done_cond, &worker.lock);
    pthread_mutex_unlock(&worker.lock);
}

/* Runs a job on the worker and waits for its result. */
static void worker_call(job *j)
{
    unsigned n = worker_post(j);
    worker_sync();
    *j = worker.ring[n % QUEUE]; /* no one posts meanwhile: this thread is the poster */
}

/* A job that hands block b to another thread to free (b leaves the model). */
static job free_job(block *b, unsigned how)
{
    check_block(b, "remote free");
    job j = {.kind = JOB_FREE, .ptr = b->p, .size = b->size, .id = b->id, .how = how};
    drop(b);
    return j;
}

/* An allocation job of the kind sel picks, in pool k (aligned: to 2^shift). */
static job alloc_job(int k, unsigned sel, size_t size, unsigned shift)
{
    static const int kinds[] = {JOB_MALLOC, JOB_CALLOC, JOB_ALIGNED};
    return (job){.kind = kinds[sel % 3], .pool = pool_arg(k, sel >> 2), .size = size, .align = (size_t)1 << (shift % 16)};
}

static void adopt_job(block *b, job *j, int k, const char *what)
{
    errno = j->err;
    allocated(b, j->result, j->size, j->kind == JOB_ALIGNED ? j->align : 16, k, j->kind == JOB_CALLOC, what);
}

typedef struct task {
    job jobs[5];
    int count;
} task;

static void *task_main(void *arg)
{
    task *t = arg;
    for (int i = 0; i < t->count; i++) run_job(&t->jobs[i]);
    return NULL;
}

/* ---- operations -------------------------------------------------------------------------- */

static void op_malloc(input *in)
{
    block *b = take_slot(in);
    int k = pick_pool(in);
    unsigned sel = u8(in);
    size_t size = pick_size(in);
    errno = 0;
    void *p = k == 0 && (sel & 2) ? tp_malloc(size) : tp_pool_malloc(pool_arg(k, sel), size);
    allocated(b, p, size, 16, k, false, "malloc");
}

static void op_calloc(input *in)
{
    block *b = take_slot(in);
    int k = pick_pool(in);
    unsigned sel = u8(in);
    size_t count = u8(in) % 9, size = pick_size(in), each = count ? size / count : size;
    errno = 0;
    void *p = k == 0 && (sel & 2) ? tp_calloc(count, each) : tp_pool_calloc(pool_arg(k, sel), count, each);
    allocated(b, p, count * each, 16, k, true, "calloc");
}

static void op_aligned_alloc(input *in)
{
    static const size_t bad_alignments[] = {0, 3, 24, 48, 96, 4097, MiB + 16, SIZE_MAX, SIZE_MAX / 2};
    block *b = take_slot(in);
    int k = pick_pool(in);
    unsigned sel = u8(in), a = u8(in);
    size_t size = pick_size(in);
    size_t align = a >= 240 ? bad_alignments[a % (sizeof bad_alignments / sizeof bad_alignments[0])]
                            : (size_t)1 << (a % 23); /* 1 B .. 4 MiB */
    errno = 0;
    void *p = k == 0 && (sel & 2) ? tp_aligned_alloc(align, size) : tp_pool_aligned_alloc(pool_arg(k, sel), align, size);
    if (a >= 240) {
        int err = errno;
        REQUIRE(!p && err == EINVAL, "aligned_alloc(%zu, %zu): alignment not a power of two gave %p, errno %d", align,
                size, p, err);
        return;
    }
    allocated(b, p, size, align, k, false, "aligned_alloc");
}

/* After a realloc of b to `size` gave q (not NULL): the part kept is intact. */
static void realloc_done(block *b, uint8_t *q, size_t size, size_t keep, size_t edge, const char *what)
{
    size_t bad = util_verify(q, b->size, keep, b->id);
    if (bad == UTIL_OK) bad = util_mark_range(q, edge, keep, b->id, UTIL_VERIFY);
    REQUIRE(bad == UTIL_OK, "%s to %zu: offset %zu not kept (new block %p), " BLOCK_FMT, what, size, bad, (void *)q,
            BLOCK_ARGS(b));
    int k = b->pool;
    drop(b);
    adopt(b, q, size, 16, k, false, what);
}

/* Before a realloc of b to `size`: the whole last 64 bytes of what it must
 * keep get the pattern too (util_marks covers them only at the block's end). */
static size_t realloc_prepare(block *b, size_t size, size_t *edge)
{
    check_block(b, "realloc");
    size_t keep = size < b->size ? size : b->size;
    *edge = keep > 64 ? keep - 64 : 0;
    util_mark_range(b->p, *edge, keep, b->id, UTIL_WRITE);
    return keep;
}

static void op_realloc(input *in)
{
    block *b = slot_at(u8(in));
    int k = pick_pool(in);
    unsigned sel = u8(in);
    size_t size = sel < 16 ? 0 : pick_size(in);
    errno = 0;
    if (!b->p) {
        void *p = k == 0 && (sel & 2) ? tp_realloc(NULL, size) : tp_pool_realloc(pool_arg(k, sel), NULL, size);
        allocated(b, p, size, 16, k, false, "realloc(NULL)");
        return;
    }
    size_t edge, keep = realloc_prepare(b, size, &edge);
    errno = 0;
    uint8_t *q = sel & 2 ? tp_realloc(b->p, size) : tp_pool_realloc(pool_arg(b->pool, sel), b->p, size);
    int err = errno;
    if (size == 0) {
        REQUIRE(q == NULL, "realloc to 0 gave %p, not NULL, " BLOCK_FMT, (void *)q, BLOCK_ARGS(b));
        drop(b);
        return;
    }
    if (!q) {
        errno = err;
        allocated(b, NULL, size, 16, b->pool, false, "realloc");
        check_block(b, "failed realloc");
        return;
    }
    realloc_done(b, q, size, keep, edge, "realloc");
}

static void op_free(input *in)
{
    block *b = slot_at(u8(in));
    unsigned how = u8(in) % 4;
    if (!b->p) {
        tp_free(NULL);
        tp_free_sized(NULL, how);
        tp_free_bulk(NULL, 0);
        return;
    }
    check_block(b, "free");
    switch (how) {
    case 0: tp_free(b->p); break;
    case 1: tp_free_sized(b->p, b->size); break;
    case 2: tp_free_sized(b->p, b->usable); break;
    default: tp_free_bulk((void **)&b->p, 1); break;
    }
    drop(b);
}

static void op_malloc_bulk(input *in)
{
    unsigned first = u8(in), count = u8(in) % 9;
    int k = pick_pool(in);
    unsigned sel = u8(in);
    size_t size = pick_size(in) % (64 * KiB);
    void *out[8];
    for (unsigned i = 0; i < count; i++) release(slot_at(first + i));
    errno = 0;
    size_t n = tp_pool_malloc_bulk(pool_arg(k, sel), size, count, count || (sel & 2) ? out : NULL);
    if (count == 0) {
        REQUIRE(n == 0, "malloc_bulk of 0 blocks gave %zu", n);
        return;
    }
    if (n == 0) {
        allocated(slot_at(first), NULL, size * count, 16, k, false, "malloc_bulk");
        return;
    }
    REQUIRE(n == count, "malloc_bulk of %u blocks gave %zu", count, n);
    for (unsigned i = 0; i < count; i++) allocated(slot_at(first + i), out[i], size, 16, k, false, "malloc_bulk");
}

static void op_free_bulk(input *in)
{
    unsigned first = u8(in), count = 1 + u8(in) % 8;
    void *ptrs[8];
    for (unsigned i = 0; i < count; i++) {
        block *b = slot_at(first + i);
        ptrs[i] = b->p; /* empty slots give NULL entries, which are skipped */
        if (b->p) {
            check_block(b, "free_bulk");
            drop(b);
        }
    }
    tp_free_bulk(ptrs, count);
}

static void op_remote_free(input *in)
{
    block *b = slot_at(u8(in));
    unsigned how = u8(in);
    if (!b->p) return;
    job j = free_job(b, how);
    worker_post(&j);
}

static void op_remote_alloc(input *in)
{
    block *b = take_slot(in);
    int k = pick_pool(in);
    unsigned sel = u8(in);
    size_t size = pick_size(in);
    job j = alloc_job(k, sel, size, u8(in));
    worker_call(&j);
    adopt_job(b, &j, k, "worker allocation");
}

static void op_remote_realloc(input *in)
{
    block *b = slot_at(u8(in));
    size_t size = pick_size(in) + 1;
    if (!b->p) return;
    size_t edge, keep = realloc_prepare(b, size, &edge);
    job j = {.kind = JOB_REALLOC, .ptr = b->p, .size = size};
    worker_call(&j);
    if (!j.result) {
        errno = j.err;
        allocated(b, NULL, size, 16, b->pool, false, "worker realloc");
        check_block(b, "failed worker realloc");
        return;
    }
    realloc_done(b, j.result, size, keep, edge, "worker realloc");
}

/* A thread that frees one block, allocates 1..4 and exits. */
static void op_thread(input *in)
{
    unsigned victim = u8(in), first = u8(in), count = 1 + u8(in) % 4;
    int k = pick_pool(in);
    unsigned sel = u8(in);
    size_t size = pick_size(in);
    unsigned shift = u8(in);
    if (threads_started >= THREADS_MAX) return;
    threads_started++;
    task t = {.count = 0};
    if (slot_at(victim)->p) t.jobs[t.count++] = free_job(slot_at(victim), sel >> 4);
    int allocs = t.count;
    for (unsigned i = 0; i < count; i++) {
        release(slot_at(first + i));
        t.jobs[t.count++] = alloc_job(k, sel + i, size, shift + i);
    }
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, task_main, &t) == 0, "cannot start a thread");
    pthread_join(th, NULL);
    for (unsigned i = 0; i < count; i++) adopt_job(slot_at(first + i), &t.jobs[allocs + (int)i], k, "thread allocation");
}

static void op_check(input *in)
{
    block *b = slot_at(u8(in));
    size_t off = u32(in);
    if (!b->p) {
        REQUIRE(tp_usable_size(NULL) == 0 && tp_pool_of(NULL) == NULL, "NULL has a usable size or a pool");
        return;
    }
    check_block(b, "check");
    if (b->size) {
        off %= b->size;
        REQUIRE(tp_pool_of(b->p + off) == pool_ptr(b->pool), "tp_pool_of(p + %zu) is not the pool of " BLOCK_FMT, off,
                BLOCK_ARGS(b));
    }
}

/* Drops pool k's blocks from the model, as its reset or destroy frees them. */
static void forget_pool(int k)
{
    worker_sync(); /* no block of the pool may be in use meanwhile */
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p && slots[i].pool == k) drop(&slots[i]);
}

/* Creates pool k with the name and limit the input gives. */
static void create_from_input(int k, input *in)
{
    char name[48];
    unsigned len = u8(in) % 40, how = u8(in);
    for (unsigned i = 0; i < len; i++) {
        unsigned c = u8(in);
        name[i] = (char)(c ? c : '_');
    }
    name[len] = 0;
    size_t limit = how % 4 < 2 ? 0 : how % 4 == 2 ? (1 + u8(in) % 16) * MiB : u16(in);
    tp_pool_config config = {.memory_limit = limit};
    bool no_name = len == 0 && (how & 4), no_config = limit == 0 && (how & 8);
    errno = 0;
    tp_pool *p = tp_pool_create(no_name ? NULL : name, no_config ? NULL : &config);
    REQUIRE(p != NULL, "pool_create(limit %zu) failed, errno %d", limit, errno);
    if (len > 31) name[31] = 0;
    REQUIRE(strcmp(tp_pool_name(p), no_name ? "" : name) == 0, "pool named \"%s\" is called \"%s\"", name,
            tp_pool_name(p));
    pools[k] = p;
    limits[k] = limit;
    recreated[k] = true;
}

/* Resets or destroys a pool (an explicit one destroyed is created again
 * from the input); for the default pool, both calls are ignored. Every
 * other block stays intact. */
static void reset_or_destroy(input *in, bool destroy)
{
    int k = pick_pool(in);
    unsigned sel = u8(in);
    void (*call)(tp_pool *) = destroy ? tp_pool_destroy : tp_pool_reset;
    if (k == 0) {
        call(pool_arg(0, sel));
    } else {
        forget_pool(k);
        call(pools[k]);
        if (destroy) create_from_input(k, in);
    }
    check_all(destroy ? "after a destroy" : "after a reset");
}

static void op_reset(input *in)
{
    reset_or_destroy(in, false);
}

static void op_destroy(input *in)
{
    reset_or_destroy(in, true);
}

static void op_trim(input *in)
{
    int k = pick_pool(in);
    unsigned sel = u8(in);
    (void)tp_pool_trim(pool_arg(k, sel));
    check_all("after a trim");
}

/* ---- statistics ---------------------------------------------------------------------------- */

typedef struct sink {
    char text[1 << 20];
    size_t len;
    bool null_text;
} sink;

static void sink_write(void *arg, const char *text)
{
    sink *s = arg;
    if (!text) {
        s->null_text = true;
        return;
    }
    size_t n = strlen(text);
    if (n > sizeof s->text - 1 - s->len) n = sizeof s->text - 1 - s->len;
    memcpy(s->text + s->len, text, n);
    s->len += n;
    s->text[s->len] = 0;
}

/* Whether text is well-formed JSON as far as strings and nesting go. */
static bool json_balanced(const char *t)
{
    char stack[64];
    int depth = 0;
    bool in_string = false;
    for (; *t; t++) {
        unsigned char c = (unsigned char)*t;
        if (in_string) {
            if (c < 0x20) return false;
            if (c == '\\') {
                if (!*++t) return false;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (depth == (int)sizeof stack) return false;
            stack[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[--depth] != (char)c) return false;
        }
    }
    return !in_string && depth == 0;
}

/* Whether every line is a comment or starts with a tierpool_ metric. */
static bool prometheus_lines(const char *t)
{
    for (const char *line = t; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) return false; /* the last line ends too */
        if (*line != '#' && strncmp(line, "tierpool_", 9) != 0) return false;
        line = end + 1;
    }
    return true;
}

static void op_stats(input *in)
{
    static sink out;
    static FILE *devnull;
    int k = pick_pool(in);
    unsigned sel = u8(in), format = u8(in) % 4;
    tp_pool *pool = sel & 2 ? NULL : pool_ptr(k); /* NULL: every pool */
    tp_stats s;
    REQUIRE(tp_stats_get(pool, &s) == 0, "stats_get failed");
    REQUIRE(s.version == TP_STATS_VERSION && s.size == sizeof s, "stats version %u size %u", s.version, s.size);
    REQUIRE(strcmp(s.pool, pool ? tp_pool_name(pool) : "process") == 0, "stats of pool \"%s\"", s.pool);
    REQUIRE(s.fragmentation >= 0 && s.fragmentation <= 1, "fragmentation %f", s.fragmentation);
    uint64_t blocks = 0, bytes = 0;
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p && (!pool || slots[i].pool == k)) {
            blocks++;
            bytes += slots[i].usable;
        }
    REQUIRE(s.live_blocks >= blocks && s.live_bytes >= bytes,
            "stats of %s: %" PRIu64 " live blocks of %" PRIu64 " bytes; the model has %" PRIu64 " of %" PRIu64,
            s.pool, s.live_blocks, s.live_bytes, blocks, bytes);
    errno = 0;
    REQUIRE(tp_stats_get(pool, NULL) == -1 && errno == EINVAL, "stats_get(NULL out) did not fail with EINVAL");

    out.len = 0;
    out.text[0] = 0;
    out.null_text = false;
    int fmt = format == 3 ? (sel & 4 ? -1 : 3 + (int)(sel >> 3)) : (int)format;
    errno = 0;
    int rc = tp_stats_write(pool, fmt, sink_write, &out);
    if (format == 3) {
        REQUIRE(rc == -1 && errno == EINVAL && out.len == 0, "stats_write in unknown format %d: rc %d", fmt, rc);
        return;
    }
    REQUIRE(rc == 0 && out.len > 0 && !out.null_text, "stats_write format %d: rc %d, %zu bytes", fmt, rc, out.len);
    REQUIRE(fmt != TP_STATS_JSON || json_balanced(out.text), "stats_write: JSON not well-formed:\n%s", out.text);
    REQUIRE(fmt != TP_STATS_PROMETHEUS || prometheus_lines(out.text), "stats_write: bad Prometheus text:\n%s",
            out.text);
    if (sel >= 0xf0) {
        if (!devnull) devnull = fopen("/dev/null", "w");
        if (devnull) REQUIRE(tp_stats_print(pool, fmt, devnull) == 0, "stats_print format %d failed", fmt);
    }
}

/* ---- options, errors, monitoring -------------------------------------------------------------- */

/* Options that are safe to change under a running program, and that steer
 * purging, caches and checking; set back to their defaults for each input. */
static const char *const tuned_options[] = {"PURGE_DELAY", "PURGE_DELAY_MAX", "HUGE_CACHE",      "CACHE_KEEP_MAX",
                                            "CHECK",       "PURGE_MADV_FREE", "PUBLISH_INTERVAL"};
#define TUNED (sizeof tuned_options / sizeof tuned_options[0])
static long long tuned_defaults[TUNED];

static void op_option(input *in)
{
    unsigned which = u8(in) % TUNED, v = u16(in);
    const char *name = tuned_options[which];
    char text[32];
    long long want;
    switch (which) {
    case 0:
    case 1: want = v % 2000; snprintf(text, sizeof text, "%lld%s", want, v & 0x8000 ? "ms" : ""); break;
    case 2: want = (long long)(v % 65) << 20; snprintf(text, sizeof text, "%lldM", want >> 20); break;
    case 3: want = v % 65; snprintf(text, sizeof text, "%lld", want); break;
    case 4:
    case 5: want = v & 1; snprintf(text, sizeof text, "%s", want ? "true" : "off"); break;
    default: want = 10 + v % 990; snprintf(text, sizeof text, "%lldms", want); break;
    }
    REQUIRE(tp_option_set(name, text) == 0, "option_set(%s, %s) failed", name, text);
    REQUIRE(tp_option_get(name) == want, "option %s = %s reads back as %lld", name, text, tp_option_get(name));
    options_changed = true;
    tp_option_desc d;
    size_t at = u8(in) % 32;
    if (tp_option_at(at, &d) == 0)
        REQUIRE(d.name && tp_option_get(d.name) == d.value, "option_at(%zu) gives %s = %lld", at, d.name, d.value);
}

/* Requests that must fail, and queries on pointers that are not blocks. */
static void op_errors(input *in)
{
    static const size_t absurd[] = {SIZE_MAX, SIZE_MAX - 15, PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 47};
    static const size_t overflow[][2] = {{SIZE_MAX, 2}, {2, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32},
                                         {SIZE_MAX / 16 + 1, 16}};
    unsigned what = u8(in) % 8, sel = u8(in);
    int k = pick_pool(in);
    tp_pool *pool = pool_arg(k, sel);
    size_t size = absurd[sel % (sizeof absurd / sizeof absurd[0])];
    void *p = NULL;
    int err = 0;
    errno = 0;
    switch (what) {
    case 0: p = sel & 0x80 ? tp_malloc(size) : tp_pool_malloc(pool, size); break;
    case 1: {
        const size_t *pair = overflow[sel % 4];
        p = sel & 0x80 ? tp_calloc(pair[0], pair[1]) : tp_pool_calloc(pool, pair[0], pair[1]);
        break;
    }
    case 2: {
        block *b = slot_at(sel);
        if (b->p) {
            p = sel & 0x80 ? tp_realloc(b->p, size) : tp_pool_realloc(pool_ptr(b->pool), b->p, size);
            err = errno;
            check_block(b, "failed realloc to an absurd size");
        } else {
            p = tp_realloc(NULL, size);
        }
        break;
    }
    case 3:
        p = sel & 0x80 ? tp_aligned_alloc((size_t)1 << (62 + (sel & 1)), 16) : tp_pool_aligned_alloc(pool, 64, size);
        break;
    case 4: {
        void *out[2];
        REQUIRE(tp_pool_malloc_bulk(pool, 16, 2, NULL) == 0 && errno == EINVAL, "malloc_bulk into NULL");
        errno = 0;
        REQUIRE(tp_pool_malloc_bulk(pool, size, 2, out) == 0, "malloc_bulk of %zu bytes succeeded", size);
        break;
    }
    case 5: {
        static int global;
        int local = 0;
        char *m = malloc(64);
        const void *foreign[] = {&local, &global, m, (void *)(uintptr_t)4096};
        for (int i = 0; i < 4; i++)
            REQUIRE(tp_pool_of(foreign[i]) == NULL && tp_usable_size(foreign[i]) == 0,
                    "pointer %p, not tierpool's, has a pool or a usable size", foreign[i]);
        free(m);
        return;
    }
    case 6:
        REQUIRE(strcmp(tp_pool_name(NULL), "default") == 0 && strcmp(tp_pool_name(tp_pool_default()), "default") == 0,
                "the default pool is called \"%s\"", tp_pool_name(NULL));
        REQUIRE(k == 0 || recreated[k] || strcmp(tp_pool_name(pools[k]), pool_names[k]) == 0,
                "pool %d is called \"%s\"", k, tp_pool_name(pools[k]));
        return;
    default: {
        tp_option_desc d;
        REQUIRE(tp_option_get("NOT_AN_OPTION") == -1 && errno == EINVAL, "option_get of an unknown name");
        REQUIRE(tp_option_at(SIZE_MAX, &d) == -1 && tp_option_at(0, NULL) == -1, "option_at out of range");
        return;
    }
    }
    if (!err) err = errno;
    REQUIRE(p == NULL && err == ENOMEM, "request %u (selector %u, size %zu) gave %p, errno %d, not NULL and ENOMEM",
            what, sel, size, p, err);
}

static void op_check_all(input *in)
{
    (void)in;
    check_all("check all");
}

static void op_monitor(input *in)
{
    unsigned sel = u8(in);
    if (sel == 0xa5) REQUIRE(tp_monitor_start() == 0, "monitor_start failed"); /* once started, it stays */
}

/* ---- the program ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*run)(input *);
} ops[] = {
    {"malloc", op_malloc},           {"calloc", op_calloc},         {"aligned_alloc", op_aligned_alloc},
    {"realloc", op_realloc},         {"free", op_free},             {"malloc_bulk", op_malloc_bulk},
    {"free_bulk", op_free_bulk},     {"remote_free", op_remote_free}, {"remote_alloc", op_remote_alloc},
    {"remote_realloc", op_remote_realloc}, {"thread", op_thread},   {"check", op_check},
    {"reset", op_reset},             {"destroy", op_destroy},       {"trim", op_trim},
    {"stats", op_stats},             {"option", op_option},         {"errors", op_errors},
    {"check_all", op_check_all},     {"monitor", op_monitor},
};
#define OPS (sizeof ops / sizeof ops[0])

static void standard_pool(int k)
{
    tp_pool_config config = {.memory_limit = pool_limits[k]};
    pools[k] = tp_pool_create(pool_names[k], &config);
    REQUIRE(pools[k] != NULL, "cannot create pool %s", pool_names[k]);
    limits[k] = pool_limits[k];
    recreated[k] = false;
}

static void setup_once(void)
{
    const char *t = getenv("FUZZ_TRACE");
    trace = t && *t && *t != '0';
    for (int k = 1; k < POOLS; k++) standard_pool(k);
    for (size_t i = 0; i < TUNED; i++) tuned_defaults[i] = tp_option_get(tuned_options[i]);
}

/* Every block checked, the default pool's freed, the explicit pools reset
 * (their blocks with them) or put back as they were. */
static void finish(void)
{
    worker_sync();
    for (int i = 0; i < SLOTS; i++) {
        if (!slots[i].p) continue;
        check_block(&slots[i], "end of input");
        if (slots[i].pool == 0) tp_free(slots[i].p);
        drop(&slots[i]);
    }
    for (int k = 1; k < POOLS; k++) {
        if (recreated[k]) {
            tp_pool_destroy(pools[k]);
            standard_pool(k);
        } else {
            tp_pool_reset(pools[k]);
        }
    }
    if (options_changed) {
        char text[32];
        for (size_t i = 0; i < TUNED; i++) {
            snprintf(text, sizeof text, "%lld", tuned_defaults[i]);
            tp_option_set(tuned_options[i], text);
        }
        options_changed = false;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup_once();
        ready = true;
    }
    input in = {data, size, 0};
    next_id = 1;
    threads_started = 0;
    for (uint64_t i = 0; in.pos < in.size; i++) {
        __atomic_store_n(&op_index, i, __ATOMIC_RELAXED); /* the worker's failures read it */
        unsigned op = u8(&in) % OPS;
        if (trace) fprintf(stderr, "op %" PRIu64 ": %s\n", i, ops[op].name);
        ops[op].run(&in);
    }
    finish();
    return 0;
}
