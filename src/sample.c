/* SPDX-License-Identifier: MIT */
/*
 * sample.c: the samples of heap profiles: their intervals, their stacks and
 * the live set (internal.h, "heap profile samples", says which allocations
 * are samples; tcache.c and alloc.c call in here).
 *
 * The live set is a hash table of records keyed by block address, in 64
 * shards with a lock each, so a free that looks up a run or huge block
 * takes one uncontended lock. Each record points at its stack: stacks are
 * kept once per (pool, return addresses) in a table that only grows, with
 * the allocations counted since start beside each. Records and stacks live
 * in memory mapped for them, never in the heap being profiled.
 *
 * Stacks come from the unwinder (libgcc's _Unwind_Backtrace, or glibc's
 * backtrace, which loads it: tpi_unwind), since distribution binaries
 * seldom keep frame pointers. Its first use allocates (dlopen of
 * libgcc_s, the unwind tables), so each thread
 * records with a guard set: an allocation made while its thread records is
 * never a sample, and no lock of the live set is held while unwinding. The
 * frames of tierpool itself (the object holding this code, or for a static
 * link the range spanned by its entry points) are cut from the top, so a
 * stack starts at the function that called malloc.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <execinfo.h>
#include <link.h>
#include <string.h>
#include <unwind.h>

/* ---- intervals ------------------------------------------------------------------ */

/* ln(x) for x in (0, 1], without libm: x = m * 2^e with m in [1, 2), and
 * ln m = 2 atanh((m - 1) / (m + 1)), whose series converges fast for
 * |z| <= 1/3 (nine terms: an error below 1e-10). */
static double tpi_sample_ln(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & ((1ULL << 52) - 1)) | (1023ULL << 52);
    double m;
    memcpy(&m, &bits, sizeof m);
    double z = (m - 1) / (m + 1), z2 = z * z, term = z, sum = 0;
    for (int k = 1; k <= 17; k += 2) {
        sum += term / k;
        term *= z2;
    }
    return 2 * sum + e * 0.69314718055994530942;
}

int64_t tpi_sample_interval(tpi_sampler *s, uint64_t mean)
{
    if (s->rng == 0) s->rng = ((uintptr_t)s * 0x9e3779b97f4a7c15ULL) ^ (tpi_os_clock_ms() << 20) ^ 1;
    /* xorshift64*: plenty for choosing which allocations to sample */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    uint64_t r = s->rng * 0x2545f4914f6cdd1dULL;
    double u = (double)((r >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double bytes = -tpi_sample_ln(u) * (double)mean;
    if (bytes < 1) return 1;
    if (bytes > 9e18) return INT64_MAX;
    return (int64_t)bytes;
}

/* The chance that an allocation of `charged` bytes is a sample. */
static double tpi_sample_chance(size_t charged, uint64_t mean)
{
    double x = (double)charged / (double)mean;
    if (x > 40) return 1;
    /* 1 - exp(-x), from the series for small x (exp(-x) loses digits there) */
    double term = x, sum = 0;
    if (x < 0.5) {
        for (int k = 1; k <= 12; k++) {
            sum += term;
            term *= -x / (k + 1);
        }
        return sum;
    }
    /* exp(-x) = 2^(-x / ln 2): the integer part by the exponent, the rest by series */
    double y = x / 0.69314718055994530942;
    int n = (int)y;
    double f = (y - n) * 0.69314718055994530942, e = 1;
    term = 1;
    for (int k = 1; k <= 16; k++) {
        term *= -f / k;
        e += term;
    }
    uint64_t bits = (uint64_t)(1023 - n) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return 1 - e * scale;
}

/* ---- memory for records and stacks ------------------------------------------------ */

#define TPI_SAMPLE_ARENA (256u * 1024u)

static tpi_lock tpi_sample_arena_lock = TPI_LOCK_INIT;
static char *tpi_sample_arena_next, *tpi_sample_arena_end;

/* `size` bytes (a multiple of 16) of zeroed memory that is never given back;
 * NULL if none can be mapped. */
static void *tpi_sample_carve(size_t size)
{
    tpi_lock_take(&tpi_sample_arena_lock);
    if ((size_t)(tpi_sample_arena_end - tpi_sample_arena_next) < size) {
        char *m = tpi_os_map_aligned(TPI_SAMPLE_ARENA, TPI_OS_PAGE, 0);
        if (!m) {
            tpi_lock_give(&tpi_sample_arena_lock);
            return NULL;
        }
        tpi_sample_arena_next = m;
        tpi_sample_arena_end = m + TPI_SAMPLE_ARENA;
    }
    void *p = tpi_sample_arena_next;
    tpi_sample_arena_next += size;
    tpi_lock_give(&tpi_sample_arena_lock);
    return p;
}

/* ---- stacks ------------------------------------------------------------------------- */

#define TPI_STACK_BUCKETS 4096u

typedef struct tpi_sample_stack {
    struct tpi_sample_stack *next;      /* in its bucket */
    struct tpi_sample_stack *_Atomic all; /* the list of every stack, newest first */
    uint64_t hash;
    tp_pool *pool;
    unsigned depth;
    /* allocated since the mark, in 1/1024 objects and bytes (scaled) */
    _Atomic uint64_t alloc_objects_k, alloc_bytes, mark_objects_k, mark_bytes;
    double live_objects, live_bytes;    /* the writer's sums (tpi_sample_each) */
    uintptr_t frames[];
} tpi_sample_stack;

static tpi_lock tpi_stack_lock = TPI_LOCK_INIT;
static tpi_sample_stack *tpi_stack_buckets[TPI_STACK_BUCKETS];
static tpi_sample_stack *_Atomic tpi_stack_all;

static uint64_t tpi_stack_hash(tp_pool *pool, const uintptr_t *frames, unsigned depth)
{
    uint64_t h = (uintptr_t)pool * 0x9e3779b97f4a7c15ULL;
    for (unsigned i = 0; i < depth; i++) h = (h ^ frames[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

/* The stack's entry, made if new; NULL if no memory. */
static tpi_sample_stack *tpi_stack_get(tp_pool *pool, const uintptr_t *frames, unsigned depth)
{
    uint64_t h = tpi_stack_hash(pool, frames, depth);
    tpi_sample_stack **bucket = &tpi_stack_buckets[h % TPI_STACK_BUCKETS];
    tpi_lock_take(&tpi_stack_lock);
    for (tpi_sample_stack *st = *bucket; st; st = st->next)
        if (st->hash == h && st->pool == pool && st->depth == depth &&
            memcmp(st->frames, frames, depth * sizeof *frames) == 0) {
            tpi_lock_give(&tpi_stack_lock);
            return st;
        }
    size_t size = (sizeof(tpi_sample_stack) + depth * sizeof *frames + 15) & ~(size_t)15;
    tpi_sample_stack *st = tpi_sample_carve(size);
    if (st) {
        st->hash = h;
        st->pool = pool;
        st->depth = depth;
        memcpy(st->frames, frames, depth * sizeof *frames);
        st->next = *bucket;
        *bucket = st;
        atomic_store_explicit(&st->all, atomic_load_explicit(&tpi_stack_all, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&tpi_stack_all, st, memory_order_release);
    }
    tpi_lock_give(&tpi_stack_lock);
    return st;
}

/* ---- the live set --------------------------------------------------------------------- */

#define TPI_SAMPLE_SHARDS 64u
#define TPI_SAMPLE_BUCKETS 256u /* per shard */

typedef struct tpi_sample {
    struct tpi_sample *next;   /* in its bucket, or on the free list */
    uintptr_t addr;
    tpi_sample_stack *stack;
    size_t size;               /* bytes asked for */
    double weight;             /* 1 / the chance it had of being a sample */
    bool large;                /* a run or a huge block */
} tpi_sample;

static struct tpi_sample_shard {
    tpi_lock lock;
    tpi_sample *buckets[TPI_SAMPLE_BUCKETS];
} tpi_sample_shards[TPI_SAMPLE_SHARDS];

static tpi_sample *tpi_sample_free_list; /* under tpi_sample_arena_lock */
_Atomic size_t tpi_sample_large_live;
static pthread_mutex_t tpi_sample_writer = PTHREAD_MUTEX_INITIALIZER;

static inline size_t tpi_sample_slot(uintptr_t addr)
{
    uint64_t h = (uint64_t)(addr >> 4) * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 50); /* 14 bits: shard and bucket */
}

static inline struct tpi_sample_shard *tpi_sample_shard_of(size_t slot)
{
    return &tpi_sample_shards[slot / TPI_SAMPLE_BUCKETS];
}

static tpi_sample *tpi_sample_new(void)
{
    tpi_lock_take(&tpi_sample_arena_lock);
    tpi_sample *r = tpi_sample_free_list;
    if (r) tpi_sample_free_list = r->next;
    tpi_lock_give(&tpi_sample_arena_lock);
    return r ? r : tpi_sample_carve(sizeof(tpi_sample));
}

/* Puts a filled record into the live set. */
static void tpi_sample_insert(tpi_sample *r)
{
    if (r->large) atomic_fetch_add_explicit(&tpi_sample_large_live, 1, memory_order_relaxed);
    size_t slot = tpi_sample_slot(r->addr);
    struct tpi_sample_shard *shard = tpi_sample_shard_of(slot);
    tpi_lock_take(&shard->lock);
    r->next = shard->buckets[slot % TPI_SAMPLE_BUCKETS];
    shard->buckets[slot % TPI_SAMPLE_BUCKETS] = r;
    tpi_lock_give(&shard->lock);
}

static void tpi_sample_release(tpi_sample *r)
{
    tpi_lock_take(&tpi_sample_arena_lock);
    r->next = tpi_sample_free_list;
    tpi_sample_free_list = r;
    tpi_lock_give(&tpi_sample_arena_lock);
}

/* ---- stacks of the caller ------------------------------------------------------------ */

/* tierpool's own code: frames in it are cut from the top of a stack. */
static uintptr_t tpi_self_lo, tpi_self_hi;
/* Whether the program itself holds tierpool (a static link): the range
 * then holds some of the program's code as well. */
static bool tpi_self_in_program;
/* Linked into the program itself: the lowest entry point the API noted. */
static _Atomic uintptr_t tpi_self_static_lo = UINTPTR_MAX;

void tpi_sample_note_code(const void *fn)
{
    uintptr_t a = (uintptr_t)fn, lo = atomic_load_explicit(&tpi_self_static_lo, memory_order_relaxed);
    while (a < lo && !atomic_compare_exchange_weak_explicit(&tpi_self_static_lo, &lo, a, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

/* The executable segments of the object holding this code. */
static int tpi_self_find(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0, here = (uintptr_t)tpi_self_find;
    bool found = false;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (start < lo) lo = start;
        if (start + ph->p_memsz > hi) hi = start + ph->p_memsz;
        found |= here >= start && here < start + ph->p_memsz;
    }
    if (!found) return 0;
    /* The program itself (a static link): its text is the caller's too, so
     * only the span from the lowest entry point on is taken for ours (the
     * archive's members lie together, after the objects that call them). */
    bool program = info->dlpi_name == NULL || info->dlpi_name[0] == '\0';
    uintptr_t static_lo = atomic_load_explicit(&tpi_self_static_lo, memory_order_relaxed);
    tpi_self_lo = program && static_lo != UINTPTR_MAX ? static_lo : lo;
    tpi_self_hi = hi;
    tpi_self_in_program = program;
    return 1;
}

/* Whether the program has a dynamic loader (PT_INTERP): glibc's backtrace
 * loads libgcc_s with dlopen, which a static program cannot do safely. */
static bool tpi_program_dynamic;

static int tpi_program_find(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) tpi_program_dynamic |= info->dlpi_phdr[i].p_type == PT_INTERP;
    return 1; /* the program comes first */
}

static void tpi_self_init(void)
{
    dl_iterate_phdr(tpi_self_find, NULL);
    dl_iterate_phdr(tpi_program_find, NULL);
}

/* The unwinder: libgcc's _Unwind_Backtrace where the process has it (a weak
 * reference, so the libraries need nothing but libc: C++ programs and the
 * sanitizers' runtimes load libgcc_s), else glibc's backtrace, which loads
 * it on first use, in a program with a loader; a static program without
 * libgcc's unwinder linked in records no stacks. */
#pragma weak _Unwind_Backtrace
#pragma weak _Unwind_GetIP

typedef struct tpi_unwinding {
    void **frames;
    unsigned depth, cap;
} tpi_unwinding;

static _Unwind_Reason_Code tpi_unwind_step(struct _Unwind_Context *ctx, void *arg)
{
    tpi_unwinding *u = arg;
    uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
    if (ip == 0 || u->depth == u->cap) return _URC_END_OF_STACK;
    u->frames[u->depth++] = (void *)ip;
    return _URC_NO_REASON;
}

/* Return addresses of the caller's stack, innermost first, into frames[cap]. */
static unsigned tpi_unwind(void **frames, unsigned cap)
{
    if (_Unwind_Backtrace && _Unwind_GetIP) {
        tpi_unwinding u = {frames, 0, cap};
        _Unwind_Backtrace(tpi_unwind_step, &u);
        return u.depth;
    }
    if (!tpi_program_dynamic) return 0;
    int got = backtrace(frames, (int)cap);
    return got > 0 ? (unsigned)got : 0;
}

/* Frames past the first TPI_SAMPLE_FRAMES of the caller's taken from the
 * unwinder: tierpool's own, and what it calls (the unwinder itself, which
 * a program may wrap, or an out-of-memory handler that allocates). */
#define TPI_UNWIND_SLACK 16

/* The first of the caller's frames in frames[0, depth): past tierpool's
 * own. In a shared object every frame of ours near the top is cut, with
 * those above it (a wrapper of the unwinder, say); linked into the program,
 * only the leading ones (a function of the program may lie in the range). */
static unsigned tpi_unwind_start(void *const *frames, unsigned depth)
{
    unsigned start = 0;
    for (unsigned i = 0; i < depth; i++) {
        uintptr_t ip = (uintptr_t)frames[i];
        bool self = ip >= tpi_self_lo && ip < tpi_self_hi;
        if (self && (start == i || (!tpi_self_in_program && i < TPI_UNWIND_SLACK))) start = i + 1;
    }
    return start;
}

static TPI_TLS bool tpi_sample_busy; /* this thread is recording a sample */

/* Samples are recorded from the first constructor on: before it, a static
 * program's C library is still setting up (its allocations at start), and
 * the unwinder aborts there. */
static _Atomic bool tpi_sample_ready;

__attribute__((constructor)) static void tpi_sample_start(void)
{
    atomic_store_explicit(&tpi_sample_ready, true, memory_order_relaxed);
}

/* ---- the calls ------------------------------------------------------------------------- */

bool tpi_sample_add(tp_pool *pool, const void *p, size_t size, size_t charged, bool large)
{
    if (tpi_sample_busy || !atomic_load_explicit(&tpi_sample_ready, memory_order_relaxed)) return false;
    tpi_sample_busy = true;
    static pthread_once_t self_once = PTHREAD_ONCE_INIT;
    pthread_once(&self_once, tpi_self_init);
    void *frames[TPI_SAMPLE_FRAMES + TPI_UNWIND_SLACK];
    unsigned depth = tpi_unwind(frames, sizeof frames / sizeof frames[0]), start = tpi_unwind_start(frames, depth);
    if (depth - start > TPI_SAMPLE_FRAMES) depth = start + TPI_SAMPLE_FRAMES;
    uintptr_t ips[TPI_SAMPLE_FRAMES];
    for (unsigned i = start; i < depth; i++) ips[i - start] = (uintptr_t)frames[i];
    tpi_sample_stack *st = tpi_stack_get(pool, ips, depth - start);
    tpi_sample *r = st ? tpi_sample_new() : NULL;
    if (!r) {
        tpi_sample_busy = false;
        return false;
    }
    uint64_t mean = (uint64_t)TPI_OPTION(profile_sample);
    double weight = mean ? 1 / tpi_sample_chance(charged, mean) : 1;
    r->addr = (uintptr_t)p;
    r->stack = st;
    r->size = size;
    r->weight = weight;
    r->large = large;
    atomic_fetch_add_explicit(&st->alloc_objects_k, (uint64_t)(weight * 1024), memory_order_relaxed);
    atomic_fetch_add_explicit(&st->alloc_bytes, (uint64_t)(weight * (double)size), memory_order_relaxed);
    tpi_sample_insert(r);
    tpi_sample_busy = false;
    return true;
}

/* Takes p's record out of the live set; NULL if it has none. */
static tpi_sample *tpi_sample_take(const void *p)
{
    size_t slot = tpi_sample_slot((uintptr_t)p);
    struct tpi_sample_shard *shard = tpi_sample_shard_of(slot);
    tpi_lock_take(&shard->lock);
    tpi_sample **link = &shard->buckets[slot % TPI_SAMPLE_BUCKETS];
    tpi_sample *r;
    while ((r = *link) != NULL && r->addr != (uintptr_t)p) link = &r->next;
    if (r) *link = r->next;
    tpi_lock_give(&shard->lock);
    if (r && r->large) atomic_fetch_sub_explicit(&tpi_sample_large_live, 1, memory_order_relaxed);
    return r;
}

bool tpi_sample_remove(const void *p)
{
    tpi_sample *r = tpi_sample_take(p);
    if (r) tpi_sample_release(r);
    return r != NULL;
}

void tpi_sample_move(const void *from, const void *to, size_t size)
{
    tpi_sample *r = tpi_sample_take(from);
    if (!r) return;
    r->addr = (uintptr_t)to;
    r->size = size;
    tpi_sample_insert(r);
}

void tpi_sample_forget_pool(tp_pool *pool)
{
    for (size_t s = 0; s < TPI_SAMPLE_SHARDS; s++) {
        struct tpi_sample_shard *shard = &tpi_sample_shards[s];
        tpi_sample *gone = NULL;
        tpi_lock_take(&shard->lock);
        for (size_t b = 0; b < TPI_SAMPLE_BUCKETS; b++) {
            tpi_sample **link = &shard->buckets[b];
            while (*link) {
                tpi_sample *r = *link;
                if (r->stack->pool != pool) {
                    link = &r->next;
                    continue;
                }
                *link = r->next;
                r->next = gone;
                gone = r;
            }
        }
        tpi_lock_give(&shard->lock);
        while (gone) {
            tpi_sample *next = gone->next;
            if (gone->large) atomic_fetch_sub_explicit(&tpi_sample_large_live, 1, memory_order_relaxed);
            tpi_sample_release(gone);
            gone = next;
        }
    }
}

void tpi_sample_each(tp_pool *pool, void (*fn)(void *arg, const tpi_sample_totals *t), void *arg)
{
    pthread_mutex_lock(&tpi_sample_writer);
    tpi_sample_stack *first = atomic_load_explicit(&tpi_stack_all, memory_order_acquire);
    for (tpi_sample_stack *st = first; st; st = atomic_load_explicit(&st->all, memory_order_relaxed))
        st->live_objects = st->live_bytes = 0;
    for (size_t s = 0; s < TPI_SAMPLE_SHARDS; s++) {
        struct tpi_sample_shard *shard = &tpi_sample_shards[s];
        tpi_lock_take(&shard->lock);
        for (size_t b = 0; b < TPI_SAMPLE_BUCKETS; b++)
            for (tpi_sample *r = shard->buckets[b]; r; r = r->next) {
                /* Stacks made after `first` was read are not in the walk below. */
                r->stack->live_objects += r->weight;
                r->stack->live_bytes += r->weight * (double)r->size;
            }
        tpi_lock_give(&shard->lock);
    }
    for (tpi_sample_stack *st = first; st; st = atomic_load_explicit(&st->all, memory_order_relaxed)) {
        if (pool && st->pool != pool) continue;
        uint64_t objects_k = atomic_load_explicit(&st->alloc_objects_k, memory_order_relaxed) -
                             atomic_load_explicit(&st->mark_objects_k, memory_order_relaxed);
        uint64_t bytes = atomic_load_explicit(&st->alloc_bytes, memory_order_relaxed) -
                         atomic_load_explicit(&st->mark_bytes, memory_order_relaxed);
        if (st->live_objects == 0 && objects_k == 0) continue;
        tpi_sample_totals t = {st->frames, st->depth, st->pool, st->live_objects, st->live_bytes,
                               (double)objects_k / 1024, (double)bytes};
        fn(arg, &t);
    }
    pthread_mutex_unlock(&tpi_sample_writer);
}

void tpi_sample_mark(void)
{
    for (tpi_sample_stack *st = atomic_load_explicit(&tpi_stack_all, memory_order_acquire); st;
         st = atomic_load_explicit(&st->all, memory_order_relaxed)) {
        atomic_store_explicit(&st->mark_objects_k, atomic_load_explicit(&st->alloc_objects_k, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&st->mark_bytes, atomic_load_explicit(&st->alloc_bytes, memory_order_relaxed),
                              memory_order_relaxed);
    }
}

/* ---- fork ------------------------------------------------------------------------------- */

/* The writer's lock comes first of all the engine's: a writer holds it while
 * its callback allocates, which may take any lock below. The others are
 * taken last: nothing is locked while one of them is held. */
void tpi_sample_fork_prepare_writer(void)
{
    pthread_mutex_lock(&tpi_sample_writer);
}

void tpi_sample_fork_prepare(void)
{
    tpi_lock_take(&tpi_stack_lock);
    for (size_t s = 0; s < TPI_SAMPLE_SHARDS; s++) tpi_lock_take(&tpi_sample_shards[s].lock);
    tpi_lock_take(&tpi_sample_arena_lock);
}

/* In the parent and in the child, which has one thread: the locks were all
 * taken by the thread that forked, which gives them back. A thread of the
 * parent that was recording a sample is gone from the child; its guard was
 * its own. */
void tpi_sample_fork_done(void)
{
    tpi_lock_give(&tpi_sample_arena_lock);
    for (size_t s = 0; s < TPI_SAMPLE_SHARDS; s++) tpi_lock_give(&tpi_sample_shards[s].lock);
    tpi_lock_give(&tpi_stack_lock);
}

void tpi_sample_fork_done_writer(void)
{
    pthread_mutex_unlock(&tpi_sample_writer);
}
