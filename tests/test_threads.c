/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c: many threads on few cores.
 *
 *   random_ops      16 threads doing random malloc/calloc/aligned/realloc/free
 *                   of all tiers in the default pool and 3 explicit pools;
 *                   what is left at the end is freed by the main thread after
 *                   the threads exit (frees into abandoned pages).
 *   rings           8 threads in a cycle of single-producer rings: each sends
 *                   blocks (4 pools) to the next, which checks and frees them
 *                   (some after a realloc).
 *   shared_bag      8 threads push bursts of blocks on one mutex-protected bag
 *                   and pop random ones, so pages fill up on one thread and
 *                   drain on others (the full-page notification path).
 *   trim_and_stats  rounds of 4 short-lived random_ops threads while another
 *                   thread trims every pool and reads their statistics.
 *   init_race       one such round in the default pool, run first, so that
 *                   the process is set up while another thread trims (for
 *                   ThreadSanitizer builds).
 *   huge_churn      6 threads make, mremap, trade and free huge blocks (some
 *                   aligned up to 8 MiB) of 4 pools.
 *   many_pools      6 threads use 24 pools each (past a thread's inline table
 *                   of caches), trade blocks, exit; the pools are destroyed
 *                   and made again, with blocks still out or not.
 *   pool_cycles     persistent workers share an explicit pool, then the main
 *                   thread destroys it and creates the next (structs are
 *                   reused, oldest first once a few wait): workers must get a
 *                   fresh cache each time; some cycles reset the pool first;
 *                   threads that used a pool exit before it is destroyed, and
 *                   others once its struct is reborn as a later cycle's pool.
 */
#include "test.h"

#define NPOOLS 4 /* pools[0] is the default pool */
static tp_pool *pools[NPOOLS];

static void make_pools(void)
{
    pools[0] = NULL;
    pools[1] = tp_pool_create("thr-a", NULL);
    pools[2] = tp_pool_create("thr-b", NULL);
    tp_pool_config cfg = {.memory_limit = (size_t)1 << 40};
    pools[3] = tp_pool_create("thr-c", &cfg);
    for (int i = 1; i < NPOOLS; i++) CHECK(pools[i] != NULL);
}

/* ---- random_ops ------------------------------------------------------------------ */

#define RO_THREADS 16
#define RO_SLOTS 256
#define RO_OPS (100000 / THR_SCALE)

typedef struct ro_arg {
    unsigned id;
    int ops;
    thr_block left[RO_SLOTS]; /* handed to the main thread at exit */
} ro_arg;

static void ro_alloc(thr_rng *r, thr_block *b, uint64_t tag)
{
    tp_pool *pool = pools[thr_rand(r) % NPOOLS];
    size_t size = thr_size_any(r);
    unsigned how = (unsigned)(thr_rand(r) % 10);
    if (how < 7) {
        thr_block_alloc(b, pool, size, tag);
        return;
    }
    b->size = size;
    b->tag = tag;
    b->pool = pool ? pool : tp_pool_default();
    if (how < 9) {
        b->p = pool ? tp_pool_calloc(pool, 1, size) : tp_calloc(1, size);
        if (!CHECK(b->p != NULL)) return;
        /* zeroed where the pattern goes */
        const unsigned char *c = b->p;
        for (size_t i = 0; i < size; i = thr_pattern_next(i, size))
            if (c[i] != 0) {
                CHECK(!"calloc block not zeroed");
                break;
            }
    } else {
        size_t align = (size_t)32 << (thr_rand(r) % 12); /* 32 B .. 64 KiB */
        b->p = pool ? tp_pool_aligned_alloc(pool, align, size) : tp_aligned_alloc(align, size);
        if (!CHECK(b->p != NULL)) return;
        CHECK(((uintptr_t)b->p & (align - 1)) == 0);
    }
    thr_fill(b->p, size, tag);
}

static void ro_realloc(thr_rng *r, thr_block *b, uint64_t tag)
{
    CHECK(thr_verify(b->p, b->size, b->tag));
    size_t size = thr_size_any(r) + 1;
    size_t keep = size < b->size ? size : b->size;
    void *q = tp_realloc(b->p, size);
    if (!CHECK(q != NULL)) return;
    /* the kept prefix survives: check its head */
    b->p = q;
    CHECK(thr_verify(q, keep < 256 ? keep : 256, b->tag));
    CHECK(tp_pool_of(q) == b->pool);
    b->size = size;
    b->tag = tag;
    thr_fill(q, size, tag);
}

static void *ro_thread(void *argp)
{
    ro_arg *a = argp;
    thr_rng r = thr_rng_make(a->id + 1);
    thr_block slots[RO_SLOTS];
    memset(slots, 0, sizeof slots);
    uint64_t seq = (uint64_t)a->id << 40;
    for (int op = 0; op < a->ops; op++) {
        thr_block *b = &slots[thr_rand(&r) % RO_SLOTS];
        if (!b->p) ro_alloc(&r, b, ++seq);
        else if (thr_rand(&r) % 5 == 0) ro_realloc(&r, b, ++seq);
        else thr_block_free(b);
    }
    /* Free half, leave the rest for the main thread to free after we exit. */
    for (int i = 0; i < RO_SLOTS; i++) {
        if (i % 2) a->left[i] = slots[i];
        else thr_block_free(&slots[i]);
    }
    return NULL;
}

/* n threads of random ops; the main thread frees what they leave. */
static void ro_run(unsigned n, int ops, unsigned first_id)
{
    static ro_arg args[RO_THREADS];
    pthread_t t[RO_THREADS];
    for (unsigned i = 0; i < n; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].id = first_id + i;
        args[i].ops = ops;
        thr_start(&t[i], ro_thread, &args[i]);
    }
    for (unsigned i = 0; i < n; i++) thr_join(t[i]);
    for (unsigned i = 0; i < n; i++)
        for (int j = 0; j < RO_SLOTS; j++) thr_block_free(&args[i].left[j]);
}

static void test_random_ops(void)
{
    ro_run(RO_THREADS, RO_OPS, 0);
}

/* ---- trim_and_stats -------------------------------------------------------------- */

#define TS_ROUNDS (20 / THR_SCALE)

static atomic_bool ts_stop;

static void ts_count(void *arg, const char *text)
{
    *(size_t *)arg += strlen(text);
}

/* Trims every pool and reads statistics while other threads allocate,
 * exit and abandon pages. */
static void *ts_janitor(void *arg)
{
    (void)arg;
    unsigned n = 0;
    while (!atomic_load(&ts_stop)) {
        tp_pool *pool = pools[n++ % NPOOLS];
        tp_pool_trim(pool);
        tp_stats st;
        memset(&st, 0, sizeof st);
        if (CHECK(tp_stats_get(n % 5 == 0 ? NULL : pool, &st) == 0)) {
            CHECK(st.version == TP_STATS_VERSION && st.size == sizeof st);
            CHECK(st.frees <= st.allocs && st.live_blocks <= st.allocs);
        }
        size_t bytes = 0;
        CHECK(tp_stats_write(pool, n % 3, ts_count, &bytes) == 0 && bytes > 0);
        usleep(500);
    }
    return NULL;
}

/* The janitor beside `rounds` rounds of 4 random_ops threads. */
static void ts_run(int rounds)
{
    pthread_t janitor;
    atomic_store(&ts_stop, false);
    thr_start(&janitor, ts_janitor, NULL);
    for (int round = 0; round < rounds; round++) ro_run(4, 2000, 1000 + 4 * (unsigned)round);
    atomic_store(&ts_stop, true);
    thr_join(janitor);
}

static void test_trim_and_stats(void)
{
    ts_run(TS_ROUNDS);
}

/* main runs this before anything else, pools[] still all NULL: the process
 * is set up by whichever comes first, the janitor's trim and statistics of
 * the default pool or another thread's first allocation. */
static void test_init_race(void)
{
    ts_run(1);
}

/* ---- rings ------------------------------------------------------------------------- */

#define RING_THREADS 8
#define RING_BLOCKS (60000 / THR_SCALE)

static thr_ring rings[RING_THREADS];
static atomic_bool ring_abort; /* a failed allocation: everyone stops */

static void *ring_thread(void *argp)
{
    unsigned id = (unsigned)(uintptr_t)argp;
    thr_ring *in = &rings[id], *out = &rings[(id + 1) % RING_THREADS];
    tp_pool *pool = pools[id % NPOOLS];
    thr_rng r = thr_rng_make(100 + id);
    uint64_t seq = (uint64_t)(id + 1) << 40;
    int sent = 0, received = 0;
    thr_block pending = {0};
    while ((sent < RING_BLOCKS || received < RING_BLOCKS) && !atomic_load_explicit(&ring_abort, memory_order_relaxed)) {
        bool progress = false;
        if (sent < RING_BLOCKS) {
            if (!pending.p && !thr_block_alloc(&pending, pool, thr_size_mix(&r, 256 * 1024, 1), ++seq)) {
                atomic_store(&ring_abort, true);
                break;
            }
            if (thr_ring_push_pending(out, &pending)) {
                sent++;
                progress = true;
            }
        }
        thr_block b;
        while (received < RING_BLOCKS && thr_ring_pop(in, &b)) {
            received++;
            progress = true;
            if (thr_rand(&r) % 8 == 0) {
                /* realloc of another thread's block: stays in its pool */
                CHECK(thr_verify(b.p, b.size, b.tag));
                size_t size = thr_size_mix(&r, 64 * 1024, 0) + 1;
                void *q = tp_realloc(b.p, size);
                if (!CHECK(q != NULL)) continue;
                CHECK(tp_pool_of(q) == b.pool);
                b.p = q;
                b.size = size;
                thr_fill(q, size, b.tag);
            }
            thr_block_free(&b);
        }
        if (!progress) sched_yield();
    }
    thr_block_free(&pending);
    return NULL;
}

static void test_rings(void)
{
    memset(rings, 0, sizeof rings);
    thr_run_threads(RING_THREADS, ring_thread);
    thr_block b;
    for (unsigned i = 0; i < RING_THREADS; i++)
        while (thr_ring_pop(&rings[i], &b)) thr_block_free(&b);
}

/* ---- shared_bag --------------------------------------------------------------------- */

#define BAG_THREADS 8
#define BAG_CAP 8192
#define BAG_ROUNDS (3000 / THR_SCALE)

static thr_block bag_items[BAG_CAP];
static thr_bag bag = THR_BAG_INIT(bag_items);

static void *bag_thread(void *argp)
{
    unsigned id = (unsigned)(uintptr_t)argp;
    thr_rng r = thr_rng_make(200 + id);
    uint64_t seq = (uint64_t)(id + 1) << 40;
    thr_block burst[64];
    for (int round = 0; round < BAG_ROUNDS; round++) {
        /* A burst of one size class (fills pages), or of mixed sizes. */
        unsigned n = (unsigned)thr_range(&r, 1, 64);
        tp_pool *pool = pools[thr_rand(&r) % NPOOLS];
        size_t same = thr_rand(&r) % 2 ? thr_size_mix(&r, 16384, 0) : 0;
        if (thr_rand(&r) % 2) {
            for (unsigned i = 0; i < n; i++)
                if (!thr_block_alloc(&burst[i], pool, same ? same : thr_size_mix(&r, 65536, 1), ++seq)) n = i;
            for (size_t i = thr_bag_put(&bag, burst, n); i < n; i++) thr_block_free(&burst[i]);
        } else {
            size_t got = thr_bag_take(&bag, burst, n, 0, &r);
            for (size_t i = 0; i < got; i++) thr_block_free(&burst[i]);
        }
    }
    return NULL;
}

static void test_shared_bag(void)
{
    thr_run_threads(BAG_THREADS, bag_thread);
    thr_bag_drain(&bag);
}

/* ---- huge_churn ----------------------------------------------------------------------- */

#define HC_THREADS 6
#define HC_OPS (300 / THR_SCALE)
#define HC_SLOTS 6
/* Huge reallocs that move their block (growing past a mapping that cannot
 * grow in place) race other threads' mmaps for the old range; 0 keeps huge
 * blocks to shrinking reallocs. */
#define HC_MOVING_REALLOC 1

/* One block each thread leaves for another to free (or realloc). */
static struct {
    pthread_mutex_t lock;
    thr_block slot[HC_THREADS];
} hc_swap = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void hc_alloc(thr_rng *r, thr_block *b, uint64_t tag)
{
    tp_pool *pool = pools[thr_rand(r) % NPOOLS];
    size_t size = thr_range(r, THR_MIB + 1, 6 * THR_MIB);
    if (thr_rand(r) % 4) {
        thr_block_alloc(b, pool, size, tag);
        return;
    }
    size_t align = (size_t)1 << thr_range(r, 12, 23); /* 4 KiB .. 8 MiB */
    *b = (thr_block){.p = tp_pool_aligned_alloc(pool, align, size), .size = size, .tag = tag,
                     .pool = pool ? pool : tp_pool_default()};
    if (!CHECK(b->p != NULL)) return;
    CHECK(((uintptr_t)b->p & (align - 1)) == 0);
    thr_fill(b->p, size, tag);
}

static void *hc_thread(void *argp)
{
    unsigned id = (unsigned)(uintptr_t)argp;
    thr_rng r = thr_rng_make(400 + id);
    uint64_t seq = (uint64_t)(id + 1) << 40;
    thr_block mine[HC_SLOTS];
    memset(mine, 0, sizeof mine);
    for (int op = 0; op < HC_OPS; op++) {
        thr_block *b = &mine[thr_rand(&r) % HC_SLOTS];
        unsigned what = (unsigned)(thr_rand(&r) % 4);
        if (!b->p) {
            hc_alloc(&r, b, ++seq);
        } else if (what == 0) {
            /* realloc within the huge tier (mremap), or down to a slab block */
            CHECK(thr_verify(b->p, b->size, b->tag));
            bool huge = b->size > THR_MIB;
            size_t top = HC_MOVING_REALLOC || !huge ? 12 * THR_MIB : b->size;
            size_t size = thr_rand(&r) % 8 ? thr_range(&r, THR_MIB + 1, top) : thr_range(&r, 1, 4096);
            void *q = tp_realloc(b->p, size);
            if (!CHECK(q != NULL)) continue;
            size_t keep = size < b->size ? size : b->size;
            CHECK(thr_verify(q, keep < 256 ? keep : 256, b->tag));
            CHECK(tp_pool_of(q) == b->pool);
            *b = (thr_block){.p = q, .size = size, .tag = ++seq, .pool = b->pool};
            thr_fill(q, size, b->tag);
        } else if (what == 1) {
            /* leave it for the next thread, take what the previous one left */
            pthread_mutex_lock(&hc_swap.lock);
            thr_block other = hc_swap.slot[(id + HC_THREADS - 1) % HC_THREADS];
            hc_swap.slot[(id + HC_THREADS - 1) % HC_THREADS].p = NULL;
            thr_block *out = &hc_swap.slot[id];
            thr_block spill = *out;
            *out = *b;
            pthread_mutex_unlock(&hc_swap.lock);
            b->p = NULL;
            thr_block_free(&other);
            thr_block_free(&spill);
        } else {
            thr_block_free(b);
        }
    }
    for (int i = 0; i < HC_SLOTS; i++) thr_block_free(&mine[i]);
    return NULL;
}

/* Huge blocks (own mappings, the per-pool cache of freed mappings, mremap)
 * made, resized and freed on many threads. */
static void test_huge_churn(void)
{
    thr_run_threads(HC_THREADS, hc_thread);
    for (unsigned i = 0; i < HC_THREADS; i++) thr_block_free(&hc_swap.slot[i]);
}

/* ---- many_pools ----------------------------------------------------------------------- */

#define MP_POOLS 24 /* with the pools made before, ids past a thread's inline table (15) */
#define MP_THREADS 6
#define MP_ROUNDS (THR_TSAN ? 1 : 2)
#define MP_PER_POOL 24

static tp_pool *mp_pools[MP_POOLS];
static thr_block mp_left[MP_THREADS][MP_POOLS][MP_PER_POOL / 2];
static pthread_barrier_t mp_barrier;

/* Allocates from every pool; frees half of the blocks the previous thread
 * left (after a barrier); leaves its other half to the main thread. */
static void *mp_thread(void *argp)
{
    unsigned id = (unsigned)(uintptr_t)argp;
    thr_rng r = thr_rng_make(500 + id);
    uint64_t seq = (uint64_t)(id + 1) << 40;
    for (int k = 0; k < MP_POOLS; k++) {
        unsigned at = (id * 7 + (unsigned)k) % MP_POOLS; /* each thread in its own order */
        for (int i = 0; i < MP_PER_POOL; i++) {
            thr_block b;
            if (!thr_block_alloc(&b, mp_pools[at], thr_size_mix(&r, 4096, 0), ++seq)) continue;
            if (i % 2) mp_left[id][at][i / 2] = b;
            else thr_block_free(&b);
        }
    }
    pthread_barrier_wait(&mp_barrier);
    unsigned from = (id + MP_THREADS - 1) % MP_THREADS;
    for (int k = 0; k < MP_POOLS; k++)
        for (int i = 0; i < MP_PER_POOL / 2; i += 2) thr_block_free(&mp_left[from][k][i]);
    return NULL;
}

static void test_many_pools(void)
{
    for (int round = 0; round < MP_ROUNDS; round++) {
        for (int k = 0; k < MP_POOLS; k++) {
            char name[32];
            snprintf(name, sizeof name, "many-%d", k);
            mp_pools[k] = tp_pool_create(name, NULL);
            if (!CHECK(mp_pools[k] != NULL)) return;
        }
        memset(mp_left, 0, sizeof mp_left);
        pthread_barrier_init(&mp_barrier, NULL, MP_THREADS);
        thr_run_threads(MP_THREADS, mp_thread);
        pthread_barrier_destroy(&mp_barrier);
        /* The rest: freed here in odd rounds, dropped with the pools in even. */
        if (round % 2)
            for (int i = 0; i < MP_THREADS; i++)
                for (int k = 0; k < MP_POOLS; k++)
                    for (int j = 1; j < MP_PER_POOL / 2; j += 2) thr_block_free(&mp_left[i][k][j]);
        for (int k = 0; k < MP_POOLS; k++) tp_pool_destroy(mp_pools[k]);
    }
}

/* ---- pool_cycles ---------------------------------------------------------------------- */

#define PC_WORKERS 6
/* At least 8: a destroyed struct is reused once 4 others wait (pool.c) */
#define PC_CYCLES (40 / THR_SCALE > 8 ? 40 / THR_SCALE : 8)
#define PC_BLOCKS 400

static pthread_barrier_t pc_barrier;
static tp_pool *pc_pool;
static bool pc_done;
static thr_block pc_shared[PC_WORKERS][PC_BLOCKS / 2];

static void pc_wait(void)
{
    pthread_barrier_wait(&pc_barrier);
}

/* Allocates PC_BLOCKS from the pool: publishes half for the next worker,
 * frees the other half but a quarter, which the pool's destroy reclaims. */
static void pc_round(unsigned id, thr_rng *r, uint64_t *seq)
{
    thr_block mine[PC_BLOCKS / 2];
    for (int i = 0; i < PC_BLOCKS; i++) {
        thr_block *b = i % 2 ? &mine[i / 2] : &pc_shared[id][i / 2];
        if (!thr_block_alloc(b, pc_pool, thr_size_mix(r, 64 * 1024, 2), ++*seq)) b->p = NULL;
    }
    pc_wait();
    /* cross-thread frees of the previous worker's half */
    unsigned from = (id + PC_WORKERS - 1) % PC_WORKERS;
    for (int i = 0; i < PC_BLOCKS / 2; i++) thr_block_free(&pc_shared[from][i]);
    for (int i = 0; i < PC_BLOCKS / 2; i++) {
        if (i % 4 == 0) CHECK(!mine[i].p || thr_verify(mine[i].p, mine[i].size, mine[i].tag));
        else thr_block_free(&mine[i]);
    }
}

static void *pc_worker(void *argp)
{
    unsigned id = (unsigned)(uintptr_t)argp;
    thr_rng r = thr_rng_make(300 + id);
    uint64_t seq = (uint64_t)(id + 1) << 40;
    for (;;) {
        pc_wait(); /* main has made pc_pool (or set pc_done) */
        if (pc_done) return NULL;
        CHECK(strncmp(tp_pool_name(pc_pool), "cycle", 5) == 0);
        pc_round(id, &r, &seq);
        pc_wait(); /* main may reset the pool now */
        pc_wait();
        pc_round(id, &r, &seq); /* after a reset: a fresh cache again */
        pc_wait(); /* main destroys the pool */
    }
}

/* A thread that uses the pool and exits either before its destroy or after
 * (its cache of the destroyed pool must then be left alone). */
typedef struct pc_exiter {
    pthread_t t;
    tp_pool *pool;
    thr_gate stage; /* 1 = allocated, 2 = may exit */
    uint64_t seed;
} pc_exiter;

static void *pc_exiter_thread(void *argp)
{
    pc_exiter *e = argp;
    thr_rng r = thr_rng_make(e->seed);
    thr_block b[32];
    for (int i = 0; i < 32; i++) thr_block_alloc(&b[i], e->pool, thr_size_mix(&r, 8192, 0), (uint64_t)i);
    for (int i = 0; i < 32; i += 2) thr_block_free(&b[i]);
    thr_gate_set(&e->stage, 1);
    thr_gate_wait(&e->stage, 2);
    return NULL;
}

static void pc_exiter_leave(pc_exiter *e)
{
    thr_gate_set(&e->stage, 2);
    thr_join(e->t);
    e->pool = NULL;
}

static void test_pool_cycles(void)
{
    pthread_t t[PC_WORKERS];
    pthread_barrier_init(&pc_barrier, NULL, PC_WORKERS + 1);
    pc_done = false;
    for (unsigned i = 0; i < PC_WORKERS; i++) thr_start(&t[i], pc_worker, (void *)(uintptr_t)i);
    int reborn = 0;
    static pc_exiter late[PC_CYCLES]; /* each cycle's, until its struct is reborn */
    for (int cycle = 0; cycle < PC_CYCLES; cycle++) {
        char name[32];
        snprintf(name, sizeof name, "cycle%d", cycle);
        pc_pool = tp_pool_create(name, NULL);
        if (!CHECK(pc_pool != NULL)) break;
        /* an earlier cycle's late exiter leaves now, its pool struct reborn */
        for (int i = 0; i < cycle; i++) {
            if (late[i].pool != pc_pool) continue;
            pc_exiter_leave(&late[i]);
            reborn++;
        }
        pc_exiter early = {.stage = THR_GATE_INIT, .pool = pc_pool, .seed = 2 * (uint64_t)cycle};
        thr_start(&early.t, pc_exiter_thread, &early);
        late[cycle] = (pc_exiter){.stage = THR_GATE_INIT, .pool = pc_pool, .seed = 2 * (uint64_t)cycle + 1};
        thr_start(&late[cycle].t, pc_exiter_thread, &late[cycle]);
        pc_wait(); /* workers start */
        pc_wait(); /* first round: allocated */
        pc_wait(); /* first round: freed */
        /* Nobody may use the pool during a reset: the exiters are done. */
        thr_gate_wait(&early.stage, 1);
        thr_gate_wait(&late[cycle].stage, 1);
        if (cycle % 3 == 1) tp_pool_reset(pc_pool);
        pc_wait();
        thr_gate_set(&early.stage, 2);
        thr_join(early.t);
        pc_wait(); /* second round: allocated */
        pc_wait(); /* second round: freed */
        tp_pool_destroy(pc_pool);
    }
    for (int i = 0; i < PC_CYCLES; i++)
        if (late[i].pool) pc_exiter_leave(&late[i]);
    pc_done = true;
    pc_wait();
    for (unsigned i = 0; i < PC_WORKERS; i++) thr_join(t[i]);
    pthread_barrier_destroy(&pc_barrier);
    CHECK(reborn > 0); /* destroyed pool structs are reused */
}

int main(int argc, char **argv)
{
    thr_args(argc, argv);
    thr_run("init_race", test_init_race); /* first: nothing is set up yet */
    make_pools();
    thr_run("random_ops", test_random_ops);
    thr_run("rings", test_rings);
    thr_run("shared_bag", test_shared_bag);
    thr_run("trim_and_stats", test_trim_and_stats);
    thr_run("huge_churn", test_huge_churn);
    thr_run("many_pools", test_many_pools);
    for (int i = 1; i < NPOOLS; i++) tp_pool_destroy(pools[i]);
    thr_run("pool_cycles", test_pool_cycles);
    return thr_summary("test_threads");
}
