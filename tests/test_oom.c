/* SPDX-License-Identifier: MIT */
/*
 * test_oom.c: out of memory (issue 9). Each case runs in a forked child that
 * warms up, then lowers RLIMIT_AS to a little above the address space it
 * uses now, so that the next mapping tierpool asks for fails. Every
 * allocation path must then return NULL with errno ENOMEM, leave what it was
 * given intact and leak nothing (the pool's mapped bytes and live blocks are
 * what they were), and the process must keep working: after memory is freed
 * or the limit raised, the same call succeeds, another thread allocates (no
 * lock left held), and tp_stats_get, tp_pool_trim and tp_pool_destroy work.
 *
 * The paths: small, large and huge tiers, calloc, realloc (within the slab
 * tiers, slab to huge, and a huge block growing with mremap), aligned
 * allocations up to and above the chunk size, explicit pools (tp_pool_create
 * itself, and a pool's first tcache), bulk allocation, a new thread whose
 * first malloc comes under the limit (its thread record and tcache), a
 * thread's pool table growing, and tp_stats_write's scratch mapping. One
 * case sets no limit: a request larger than the machine (beyond_ram).
 *
 * A child reports its checks to the parent through a pipe and is killed by
 * an alarm if it hangs (a lock left held). The sanitizers' shadow memory is
 * reserved up front, so the limit works under them too; what they map
 * lazily for a thread (an alternate signal stack, a signal context) is
 * mapped before the limit comes.
 *
 * Links the shared library: only what its version script exports is used.
 */
#define _GNU_SOURCE
#include "tierpool.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>

/* Below the smallest mapping tierpool makes for slabs or huge blocks (4 MiB,
 * for which it reserves 8 MiB to align it): under the limit no chunk and no
 * huge block can be mapped, while small mappings (a thread record, a pool)
 * still can. */
#define SLACK (6 * MiB)

/* ---- the limit ------------------------------------------------------------------- */

static struct rlimit saved_limit;

/* The address space in use now plus `slack` bytes, and no more. */
static void limit_now(size_t slack)
{
    getrlimit(RLIMIT_AS, &saved_limit);
    struct rlimit r = saved_limit;
    r.rlim_cur = util_vm_size() + slack;
    if (setrlimit(RLIMIT_AS, &r) != 0) {
        perror("setrlimit");
        _exit(3);
    }
}

static void unlimit(void)
{
    setrlimit(RLIMIT_AS, &saved_limit);
}

/* A call that must fail with ENOMEM; a block it returns anyway is freed. */
#define CHECK_ENOMEM(call)                                                                          \
    do {                                                                                            \
        errno = 0;                                                                                  \
        void *oom_p_ = (call);                                                                      \
        CHECK(oom_p_ == NULL);                                                                      \
        CHECK_EQ(errno, ENOMEM);                                                                    \
        if (oom_p_) tp_free(oom_p_);                                                                \
    } while (0)

/* A realloc that must fail with ENOMEM, leaving the block where it was. */
#define CHECK_REALLOC_ENOMEM(ptr, size)                                                             \
    do {                                                                                            \
        errno = 0;                                                                                  \
        void *oom_q_ = tp_realloc(ptr, size);                                                       \
        CHECK(oom_q_ == NULL);                                                                      \
        CHECK_EQ(errno, ENOMEM);                                                                    \
        if (oom_q_) ptr = oom_q_;                                                                   \
    } while (0)

static tp_stats stats_scratch;

static uint64_t pool_mapped(tp_pool *pool)
{
    tp_stats_get(pool ? pool : tp_pool_default(), &stats_scratch);
    return stats_scratch.mapped_bytes;
}

static uint64_t pool_live(tp_pool *pool)
{
    tp_stats_get(pool ? pool : tp_pool_default(), &stats_scratch);
    return stats_scratch.live_blocks;
}

/* Allocates blocks of `size` from the pool until one fails, linking them
 * through their first word (no other memory needed); returns the list and
 * the count in *n. The failure must be ENOMEM. */
static void *fill(tp_pool *pool, size_t size, size_t *n)
{
    void *list = NULL;
    *n = 0;
    for (size_t i = 0; i < ((size_t)1 << 22); i++) {
        errno = 0;
        void **p = tp_pool_malloc(pool, size);
        if (!p) {
            CHECK_EQ(errno, ENOMEM);
            return list;
        }
        *p = list;
        list = p;
        ++*n;
    }
    CHECK(!"the fill never ran out of memory");
    return list;
}

static void free_list(void *list)
{
    while (list) {
        void *next = *(void **)list;
        tp_free(list);
        list = next;
    }
}

/* A block of `size` from the default pool can be had (and written), then
 * freed. */
static void check_allocates(size_t size)
{
    void *p = tp_malloc(size);
    CHECK(p != NULL);
    if (p) memset(p, 3, size);
    tp_free(p);
}

/* Memory taken before the limit, to be freed under it: `bytes` in blocks of
 * 256 KiB, which fill chunks of their own. */
static void *hold(tp_pool *pool, size_t bytes)
{
    void *list = NULL;
    for (size_t i = 0; i < bytes / (256 * KiB); i++) {
        void **p = tp_pool_malloc(pool, 256 * KiB);
        if (!CHECK(p != NULL)) break;
        *p = list;
        list = p;
    }
    return list;
}

/* ---- the process keeps working --------------------------------------------------- */

static void *other_thread(void *arg)
{
    tp_pool *pool = arg;
    uintptr_t ok = 1;
    const size_t sizes[] = {24, 700, 5000, 200 * KiB, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *a = tp_malloc(sizes[i]);
        void *b = pool ? tp_pool_malloc(pool, sizes[i]) : NULL;
        ok &= a != NULL && (!pool || b != NULL);
        if (a) memset(a, 1, sizes[i]);
        tp_free(a);
        tp_free(b);
    }
    return (void *)ok;
}

/* Once the limit is gone: every tier allocates again, from this thread and
 * from another one; statistics, trim and (for an explicit pool) destroy
 * return. The alarm set by run_case catches a lock left held. */
static void check_recovered(tp_pool *pool)
{
    unlimit();
    const size_t sizes[] = {16, 1000, 4096, 64 * KiB, 1 * MiB, 2 * MiB, 40 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_allocates(sizes[i]);
        void *b = pool ? tp_pool_calloc(pool, 1, sizes[i]) : NULL;
        CHECK(!pool || b != NULL);
        tp_free(b);
    }
    pthread_t t;
    void *ok = NULL;
    CHECK_EQ(pthread_create(&t, NULL, other_thread, pool), 0);
    pthread_join(t, &ok);
    CHECK(ok == (void *)1);
    tp_stats s;
    CHECK_EQ(tp_stats_get(NULL, &s), 0);
    CHECK_EQ(tp_stats_get(pool, &s), 0);
    tp_pool_trim(NULL);
    if (pool) {
        tp_pool_trim(pool);
        tp_pool_destroy(pool);
    }
}

/* Warm-up: the default pool and this thread's cache exist, every tier used;
 * then trimmed, so no cached huge mapping or empty chunk gives room later. */
static void warm_up(void)
{
    const size_t sizes[] = {16, 100, 1000, 4000, 100 * KiB, 2 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) tp_free(tp_malloc(sizes[i]));
    tp_pool_trim(NULL);
}

/* ---- the cases ---------------------------------------------------------------------- */

/* Small blocks until the slabs run out; then the other small classes,
 * calloc, aligned and realloc growing within the tier fail too, the block
 * given to realloc unharmed. Freed blocks serve again, and so does a huge
 * block: the chunks left empty give their address space back when a
 * mapping fails (this failed before: they stayed mapped for the purge
 * delay, so memory freed by the program could not serve it). */
static void test_small(void)
{
    warm_up();
    void *held = hold(NULL, 24 * MiB);
    unsigned char *keep = tp_malloc(48);
    memset(keep, 0x5a, 48);
    limit_now(SLACK);
    size_t n;
    void *list = fill(NULL, 64, &n);
    CHECK_GE(n, 1000);
    const size_t sizes[] = {16, 128, 160, 1024, 3000, 4096};
    void *lists[6];
    for (size_t i = 0; i < 6; i++) lists[i] = fill(NULL, sizes[i], &n);
    uint64_t mapped = pool_mapped(NULL), live = pool_live(NULL);
    CHECK_ENOMEM(tp_malloc(64));
    CHECK_ENOMEM(tp_calloc(4, 16));
    CHECK_ENOMEM(tp_calloc(1, 4096));
    CHECK_ENOMEM(tp_aligned_alloc(32, 64));
    CHECK_REALLOC_ENOMEM(keep, 4096);
    for (size_t i = 0; i < 48; i++) CHECK_EQ(keep[i], 0x5a);
    CHECK_EQ(pool_mapped(NULL), mapped);
    CHECK_EQ(pool_live(NULL), live);
    /* A freed block is allocated again, still under the limit. */
    void *one = list;
    list = *(void **)list;
    tp_free(one);
    check_allocates(64);
    free_list(list);
    for (size_t i = 0; i < 6; i++) free_list(lists[i]);
    free_list(held);
    /* Everything is free: its chunks make room for a huge block. */
    check_allocates(12 * MiB);
    tp_free(keep);
    check_recovered(NULL);
}

/* Large blocks (4 KiB .. 1 MiB) of several classes and alignments. */
static void test_large(void)
{
    warm_up();
    limit_now(SLACK);
    size_t n;
    void *list = fill(NULL, 256 * KiB, &n);
    CHECK_GE(n, 8);
    const size_t sizes[] = {4097, 20 * KiB, 100 * KiB, 600 * KiB, 1 * MiB};
    void *lists[5];
    for (size_t i = 0; i < 5; i++) lists[i] = fill(NULL, sizes[i], &n);
    uint64_t mapped = pool_mapped(NULL), live = pool_live(NULL);
    CHECK_ENOMEM(tp_malloc(1 * MiB));
    CHECK_ENOMEM(tp_malloc(5000));
    CHECK_ENOMEM(tp_calloc(1, 300 * KiB));
    CHECK_ENOMEM(tp_aligned_alloc(4096, 64 * KiB));
    CHECK_ENOMEM(tp_aligned_alloc(64 * KiB, 64 * KiB));
    CHECK_ENOMEM(tp_aligned_alloc(128 * KiB, 5000));
    CHECK_EQ(pool_mapped(NULL), mapped);
    CHECK_EQ(pool_live(NULL), live);
    free_list(list);
    for (size_t i = 0; i < 5; i++) free_list(lists[i]);
    /* Freed: the largest class is served again, and a huge block in the
     * chunks given back. */
    check_allocates(1 * MiB);
    unlimit();
    void *held = hold(NULL, 24 * MiB);
    limit_now(SLACK);
    CHECK_ENOMEM(tp_malloc(8 * MiB));
    free_list(held);
    check_allocates(8 * MiB);
    check_recovered(NULL);
}

/* Huge blocks: malloc, calloc, aligned (up to and above the chunk size),
 * and realloc growing a huge block (mremap) or a slab block into the huge
 * tier; a failed realloc keeps the block and its contents. Shrinking needs
 * no memory; and a freed huge block's mapping, kept in the huge cache,
 * makes room for a block of another size (this failed before). */
static void test_huge(void)
{
    warm_up();
    char *big = tp_malloc(20 * MiB);
    char *small = tp_malloc(1000);
    util_mark(big, 20 * MiB, 7);
    util_mark(small, 1000, 8);
    limit_now(SLACK);
    uint64_t mapped = pool_mapped(NULL), live = pool_live(NULL);
    /* (a huge block mapped exactly, as os.c tries first, fits the slack
     * up to about its size: these are beyond it) */
    CHECK_ENOMEM(tp_malloc(7 * MiB));
    CHECK_ENOMEM(tp_malloc(64 * MiB));
    CHECK_ENOMEM(tp_malloc((size_t)1 << 46));
    CHECK_ENOMEM(tp_calloc(1, 5 * MiB));
    CHECK_ENOMEM(tp_calloc(2048, 4 * KiB));
    CHECK_ENOMEM(tp_aligned_alloc(1 * MiB, 7 * MiB));
    CHECK_ENOMEM(tp_aligned_alloc(4 * MiB, 4 * MiB));
    CHECK_ENOMEM(tp_aligned_alloc(4 * MiB, 7 * MiB));
    CHECK_ENOMEM(tp_aligned_alloc(16 * MiB, 1 * MiB));
    CHECK_REALLOC_ENOMEM(big, 64 * MiB);
    CHECK_REALLOC_ENOMEM(big, 30 * MiB);
    CHECK_EQ(util_verify(big, 20 * MiB, SIZE_MAX, 7), UTIL_OK);
    CHECK_GE(tp_usable_size(big), 20 * MiB);
    CHECK_REALLOC_ENOMEM(small, 5 * MiB);
    CHECK_EQ(util_verify(small, 1000, SIZE_MAX, 8), UTIL_OK);
    CHECK_EQ(pool_mapped(NULL), mapped);
    CHECK_EQ(pool_live(NULL), live);
    /* Shrinking gives address space back; growing again may use it. */
    char *q = tp_realloc(big, 10 * MiB);
    CHECK(q != NULL);
    if (q) big = q;
    CHECK_EQ(util_verify(big, 20 * MiB, 10 * MiB, 7), UTIL_OK);
    q = tp_realloc(big, 16 * MiB);
    CHECK(q != NULL);
    if (q) big = q;
    CHECK_EQ(util_verify(big, 20 * MiB, 10 * MiB, 7), UTIL_OK);
    /* Freed, the block's mapping is cached; a request it does not fit
     * gets the room. */
    tp_free(big);
    check_allocates(6 * MiB);
    tp_free(small);
    check_recovered(NULL);
}

/* Growing a huge block by mremap, in place and moved, with exactly the room
 * for the growth or not quite. A huge block's mapping is whole chunks ending
 * right after its usable bytes (src/huge.c); shrinking it unmaps the tail,
 * so the address space after it is then free, for this test to take or not. */
static void test_huge_realloc(void)
{
    warm_up();
    char *p = tp_malloc(6 * MiB);
    util_mark(p, 6 * MiB, 9);
    limit_now(2 * MiB);
    CHECK_ENOMEM(tp_realloc(p, 20 * MiB));
    CHECK_EQ(util_verify(p, 6 * MiB, SIZE_MAX, 9), UTIL_OK);
    unlimit();
    char *q = tp_realloc(p, 10 * MiB);
    if (!CHECK(q != NULL)) return;
    p = tp_realloc(q, 6 * MiB); /* in place: the 4 MiB after it are free now */
    CHECK_PTR_EQ(p, q);
    char *end = p + tp_usable_size(p);
    CHECK_EQ((uintptr_t)end % (4 * MiB), 0);
    /* Room for the growth but not for a second mapping: it grows in place. */
    limit_now(8 * MiB);
    q = tp_realloc(p, 10 * MiB);
    CHECK_PTR_EQ(q, p);
    if (q) p = q;
    CHECK_EQ(util_verify(p, 6 * MiB, SIZE_MAX, 9), UTIL_OK);
    unlimit();
    CHECK_PTR_EQ(tp_realloc(p, 6 * MiB), p);
    /* The same room with the address space after it taken: moving needs a
     * new mapping of 12 MiB, which does not fit; with room for it, it moves. */
    void *blocker = mmap(end, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK_PTR_EQ(blocker, end);
    limit_now(8 * MiB);
    CHECK_REALLOC_ENOMEM(p, 10 * MiB);
    CHECK_EQ(util_verify(p, 6 * MiB, SIZE_MAX, 9), UTIL_OK);
    unlimit();
    limit_now(24 * MiB);
    q = tp_realloc(p, 10 * MiB);
    CHECK(q != NULL && q != p);
    if (q) p = q;
    CHECK_EQ(util_verify(p, 6 * MiB, SIZE_MAX, 9), UTIL_OK);
    unlimit();
    if (blocker != MAP_FAILED) munmap(blocker, 4096);
    tp_free(p);
    check_recovered(NULL);
}

/* The kernel's overcommit mode (/proc/sys/vm/overcommit_memory): 0 the
 * heuristic, 1 always, 2 strict; -1 if unknown. */
static int overcommit_mode(void)
{
    char c = 0;
    int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 && c >= '0' && c <= '2' ? c - '0' : -1;
}

/* A request larger than the machine (twice its RAM plus swap, no limit
 * set) fails with ENOMEM in every huge path, as glibc's does under the
 * default overcommit heuristic (it succeeded when tierpool mapped with
 * MAP_NORESERVE, and the OOM killer came once the block was used), and
 * nothing stays mapped or becomes resident. With overcommit_memory=1 the
 * kernel grants anything: nothing to check. */
static void test_beyond_ram(void)
{
    int mode = overcommit_mode();
    struct sysinfo si;
    if (mode == 1 || mode < 0 || !CHECK_EQ(sysinfo(&si), 0)) {
        printf("  beyond_ram: overcommit_memory=%d grants any request; skipped\n", mode);
        return;
    }
    size_t machine = ((size_t)si.totalram + (size_t)si.totalswap) * si.mem_unit;
    size_t size = 2 * machine;
    getrlimit(RLIMIT_AS, &saved_limit); /* no limit: check_recovered restores this one */
    warm_up();
    tp_pool *pool = tp_pool_create("beyond", NULL);
    void *first = tp_pool_malloc(pool, 100); /* the pool's tcache and first chunk */
    char *big = tp_malloc(6 * MiB);
    util_mark(big, 6 * MiB, 11);
    uint64_t mapped = pool_mapped(NULL), pool_bytes = pool_mapped(pool), live = pool_live(NULL);
    size_t vm = util_vm_size(), rss = util_rss();
    CHECK_ENOMEM(tp_malloc(size));
    CHECK_ENOMEM(tp_malloc(machine + GiB));
    CHECK_ENOMEM(tp_calloc(1, size));
    CHECK_ENOMEM(tp_calloc(size / (64 * KiB), 64 * KiB));
    CHECK_ENOMEM(tp_aligned_alloc(64 * MiB, size));
    CHECK_ENOMEM(tp_pool_malloc(pool, size));
    CHECK_REALLOC_ENOMEM(big, size);
    CHECK_EQ(util_verify(big, 6 * MiB, SIZE_MAX, 11), UTIL_OK);
    CHECK_EQ(pool_mapped(NULL), mapped);
    CHECK_EQ(pool_mapped(pool), pool_bytes);
    CHECK_EQ(pool_live(NULL), live);
    CHECK_LE(util_vm_size(), vm + 1 * MiB);
    if (UTIL_RSS_BOUNDS) CHECK_LE(util_rss(), rss + 1 * MiB);
    tp_free(big);
    tp_free(first);
    check_recovered(pool);
}

/* Explicit pools: tp_pool_create when no pool struct is left to reuse, a
 * new pool's first allocation (its tcache needs a slice of a chunk), its
 * blocks of every tier, bulk allocation (all or nothing); then destroy. */
static void test_pools(void)
{
    warm_up();
    tp_pool *made = tp_pool_create("before", NULL);
    limit_now(0);
    errno = 0;
    tp_pool *p = tp_pool_create("under", NULL);
    CHECK(p == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_ENOMEM(tp_pool_malloc(made, 64));
    CHECK_ENOMEM(tp_pool_malloc(made, 64)); /* the failed tcache was not kept */
    CHECK_ENOMEM(tp_pool_calloc(made, 1, 100));
    CHECK_ENOMEM(tp_pool_calloc(made, 1, 3 * MiB));
    CHECK_ENOMEM(tp_pool_aligned_alloc(made, 128, 100));
    CHECK_ENOMEM(tp_pool_aligned_alloc(made, 8 * MiB, 100));
    CHECK_ENOMEM(tp_pool_realloc(made, NULL, 100));
    void *out[64];
    for (size_t i = 0; i < 64; i++) out[i] = (void *)1;
    errno = 0;
    CHECK_EQ(tp_pool_malloc_bulk(made, 64, 64, out), 0);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(pool_mapped(made), 0);
    unlimit();
    /* A pool that has memory, then runs out: bulk gives back what it took. */
    void *first = tp_pool_malloc(made, 64);
    CHECK(first != NULL);
    hold(made, 16 * MiB);
    uint64_t live = pool_live(made);
    limit_now(SLACK);
    static void *many[1 << 17];
    errno = 0;
    CHECK_EQ(tp_pool_malloc_bulk(made, 1000, 1 << 17, many), 0);
    CHECK_EQ(errno, ENOMEM);
    CHECK(many[0] == NULL && many[1000] == NULL);
    CHECK_EQ(pool_live(made), live);
    /* Destroying a pool gives its memory back: another can be created. */
    size_t n;
    void *list = fill(made, 3000, &n);
    CHECK_GE(n, 1);
    (void)list;
    tp_pool_destroy(made);
    tp_pool *again = tp_pool_create("after", NULL); /* reuses the struct */
    CHECK(again != NULL);
    void *b = again ? tp_pool_malloc(again, 64) : NULL;
    CHECK(b != NULL);
    tp_free(b);
    check_recovered(again);
}

/* A thread started before the limit makes its first allocations under it:
 * its thread record (a mapping of its own) or, recycled, its tcache. */
typedef struct thread_arg {
    sem_t warm, ready, go, done;
    tp_pool *pool;
    size_t huge;     /* a size no cached huge mapping serves */
    int results[6];
} thread_arg;

static void *late_thread(void *varg)
{
    thread_arg *a = varg;
    /* A blocking call first: ThreadSanitizer maps a thread's signal
     * context at its first one, which must not come under the limit. */
    sem_wait(&a->warm);
    sem_post(&a->ready); /* running: its start (a sanitizer's too) is over */
    sem_wait(&a->go);
    errno = 0;
    void *p = tp_malloc(64);
    a->results[0] = p == NULL && errno == ENOMEM;
    errno = 0;
    void *q = tp_pool_malloc(a->pool, 64);
    a->results[1] = q == NULL && errno == ENOMEM;
    errno = 0;
    void *h = tp_malloc(a->huge);
    a->results[2] = h == NULL && errno == ENOMEM;
    sem_post(&a->done);
    sem_wait(&a->go); /* the limit is raised */
    p = tp_malloc(64);
    q = tp_pool_malloc(a->pool, 64);
    h = tp_malloc(a->huge);
    a->results[3] = p != NULL;
    a->results[4] = q != NULL;
    a->results[5] = h != NULL;
    tp_free(p);
    tp_free(q);
    tp_free(h);
    return NULL;
}

static void run_late_thread(tp_pool *pool, size_t slack, size_t huge)
{
    thread_arg a = {.pool = pool, .huge = huge};
    sem_init(&a.warm, 0, 1);
    sem_init(&a.ready, 0, 0);
    sem_init(&a.go, 0, 0);
    sem_init(&a.done, 0, 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, late_thread, &a), 0);
    sem_wait(&a.ready);
    limit_now(slack);
    sem_post(&a.go);
    sem_wait(&a.done);
    unlimit();
    sem_post(&a.go);
    pthread_join(t, NULL);
    for (int i = 0; i < 6; i++)
        if (!CHECK(a.results[i])) fprintf(stderr, "    late thread result %d\n", i);
}

static void test_new_thread(void)
{
    warm_up();
    /* No thread record to recycle: the first malloc maps one, and fails. */
    tp_pool *pool = tp_pool_create("threads", NULL);
    run_late_thread(pool, 0, 9 * MiB);
    /* Now a record is recycled (the thread above exited) but the tcaches
     * are new: fill the default pool so that none can be carved. */
    tp_pool *fresh = tp_pool_create("fresh", NULL);
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL); /* a tcache to recycle */
    pthread_join(t, NULL);
    void *keep[2];
    for (int i = 0; i < 2; i++) keep[i] = tp_malloc(100); /* a thread busy elsewhere */
    limit_now(0);
    size_t n;
    void *list = fill(NULL, 512 * KiB, &n);
    void *list16 = fill(NULL, 16, &n); /* and every slice left over */
    unlimit();
    run_late_thread(fresh, 0, 30 * MiB);
    free_list(list);
    free_list(list16);
    tp_free(keep[0]);
    tp_free(keep[1]);
    tp_pool_destroy(pool);
    check_recovered(fresh);
}

/* Metadata: a thread's table of pools growing past its inline slots, and
 * tp_stats_write's scratch mapping. */
static void test_metadata(void)
{
    warm_up();
    tp_pool *pools[24];
    for (int i = 0; i < 24; i++) pools[i] = tp_pool_create("many", NULL);
    limit_now(0);
    CHECK_ENOMEM(tp_pool_malloc(pools[23], 64));
    CHECK_ENOMEM(tp_pool_malloc(pools[23], 5 * MiB));
    unlimit();
    void *p = tp_pool_malloc(pools[23], 64);
    CHECK(p != NULL);
    tp_free(p);
    for (int i = 0; i < 23; i++) tp_pool_destroy(pools[i]);
    check_recovered(pools[23]);
}

static void count_text(void *arg, const char *text)
{
    *(size_t *)arg += strlen(text);
}

static void test_stats_write(void)
{
    warm_up();
    limit_now(0);
    size_t chars = 0;
    errno = 0;
    int rc = tp_stats_write(NULL, TP_STATS_TEXT, count_text, &chars);
    CHECK(rc == -1 && errno == ENOMEM);
    tp_stats s;
    CHECK_EQ(tp_stats_get(NULL, &s), 0);
    unlimit();
    CHECK_EQ(tp_stats_write(NULL, TP_STATS_TEXT, count_text, &chars), 0);
    CHECK_GE(chars, 100);
    check_recovered(NULL);
}

/* ---- running each case in a child --------------------------------------------------- */

typedef struct oom_case {
    const char *name;
    void (*fn)(void);
} oom_case;

static void run_case(const oom_case *c)
{
    int fds[2];
    if (!CHECK_EQ(pipe(fds), 0)) return;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        test_passed = test_failed = 0;
        alarm(30); /* a lock left held shows as a hang */
        c->fn();
        unsigned long counts[2] = {test_passed, test_failed};
        ssize_t w = write(fds[1], counts, sizeof counts);
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    unsigned long counts[2] = {0, 0};
    ssize_t r = read(fds[0], counts, sizeof counts);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int ok = r == (ssize_t)sizeof counts && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!CHECK(ok))
        fprintf(stderr, "    case %s: the child %s %d\n", c->name,
                WIFSIGNALED(status) ? "was killed by signal" : "exited with", WIFSIGNALED(status) ? WTERMSIG(status)
                                                                                             : WEXITSTATUS(status));
    test_passed += counts[0];
    test_failed += counts[1];
    printf("  %-12s %lu checks passed, %lu failed\n", c->name, counts[0], counts[1]);
}

int main(int argc, char **argv)
{
    /* No purge pass may unmap memory while a case runs: the room a case
     * finds must be the room it made. */
    setenv("TIERPOOL_PURGE_DELAY", "3600s", 1);
    static const oom_case cases[] = {
        {"small", test_small},       {"large", test_large},           {"huge", test_huge},
        {"huge_realloc", test_huge_realloc}, {"pools", test_pools},   {"new_thread", test_new_thread},
        {"metadata", test_metadata}, {"stats_write", test_stats_write}, {"beyond_ram", test_beyond_ram},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int run = argc < 2;
        for (int a = 1; a < argc; a++) run |= strcmp(argv[a], cases[i].name) == 0;
        if (run) run_case(&cases[i]);
    }
    return test_report();
}
