/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c: explicit pools (src/pool.c) through the public API: names,
 * the memory limit (ENOMEM, then success after freeing), bulk calls (all or
 * nothing), destroy with live blocks in every tier (resident memory goes
 * back), reset (memory reused), trim, blocks staying in their pool, and a
 * destroyed pool refusing to allocate (EINVAL, nothing mapped).
 *
 * Links the shared library: only what its version script exports is used.
 */
#include "tierpool.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>

#define CHUNK (4 * MiB) /* what a pool maps at a time for slabs */
#define BLOCKS_3000_PER_SLICE 21 /* 3000 B blocks (class 3072) in a 64 KiB slice */

/* One size of each tier. */
static const size_t tier_sizes[] = {48, 3000, 40 * KiB, 1 * MiB, 2 * MiB, 9 * MiB};
#define TIER_COUNT (sizeof tier_sizes / sizeof tier_sizes[0])

static void test_names(void)
{
    CHECK(tp_pool_default() != NULL);
    CHECK_EQ(strcmp(tp_pool_name(tp_pool_default()), "default"), 0);
    CHECK_EQ(strcmp(tp_pool_name(NULL), "default"), 0);
    char name[64];
    strcpy(name, "requests");
    tp_pool *a = tp_pool_create(name, NULL);
    strcpy(name, "changed"); /* the name was copied */
    CHECK_EQ(strcmp(tp_pool_name(a), "requests"), 0);
    tp_pool *b = tp_pool_create(NULL, NULL);
    CHECK_EQ(strcmp(tp_pool_name(b), ""), 0);
    const char *long_name = "0123456789abcdef0123456789ABCDEF-and-more";
    tp_pool_config zero = {0};
    tp_pool *c = tp_pool_create(long_name, &zero);
    CHECK_EQ(strlen(tp_pool_name(c)), 31);
    CHECK_EQ(strncmp(tp_pool_name(c), long_name, 31), 0);
    CHECK(a != b && b != c && a != tp_pool_default());
    tp_pool_destroy(a);
    tp_pool_destroy(b);
    tp_pool_destroy(c);
}

/* Every call of the pool API, every tier: blocks belong to their pool,
 * and realloc keeps them there. */
static void test_pool_blocks(void)
{
    tp_pool *pool = tp_pool_create("blocks", NULL);
    for (size_t i = 0; i < TIER_COUNT; i++) {
        size_t size = tier_sizes[i];
        void *m = tp_pool_malloc(pool, size);
        void *z = tp_pool_calloc(pool, 1, size);
        void *a = tp_pool_aligned_alloc(pool, 4096, size);
        CHECK(m && z && a);
        CHECK_EQ((uintptr_t)a % 4096, 0);
        CHECK_EQ(util_zero(z, size), UTIL_OK);
        void *blocks[] = {m, z, a};
        for (size_t k = 0; k < 3; k++) {
            CHECK_PTR_EQ(tp_pool_of(blocks[k]), pool);
            CHECK_GE(tp_usable_size(blocks[k]), size);
            util_mark(blocks[k], size, k);
        }
        /* realloc (either call) keeps a block in its pool, to any tier */
        m = tp_realloc(m, size * 3 + 1);
        z = tp_pool_realloc(pool, z, size / 3 + 1);
        a = tp_realloc(a, size + 5 * MiB);
        CHECK(m && z && a);
        CHECK_PTR_EQ(tp_pool_of(m), pool);
        CHECK_PTR_EQ(tp_pool_of(z), pool);
        CHECK_PTR_EQ(tp_pool_of(a), pool);
        CHECK_EQ(util_verify(m, size, SIZE_MAX, 0), UTIL_OK);
        CHECK_EQ(util_verify(z, size, size / 3 + 1, 1), UTIL_OK);
        CHECK_EQ(util_verify(a, size, SIZE_MAX, 2), UTIL_OK);
        tp_free(m);
        tp_free_sized(z, size / 3 + 1);
        tp_free(a);
    }
    /* NULL is the default pool in every call */
    void *d = tp_pool_malloc(NULL, 10);
    CHECK_PTR_EQ(tp_pool_of(d), tp_pool_default());
    d = tp_pool_realloc(NULL, d, 5000);
    CHECK_PTR_EQ(tp_pool_of(d), tp_pool_default());
    tp_free(d);
    d = tp_pool_calloc(tp_pool_default(), 3, 7);
    CHECK_PTR_EQ(tp_pool_of(d), tp_pool_default());
    tp_free(d);
    /* errno cases of the pool calls */
    errno = 0;
    CHECK_PTR_EQ(tp_pool_calloc(pool, SIZE_MAX, 3), NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK_PTR_EQ(tp_pool_malloc(pool, SIZE_MAX), NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK_PTR_EQ(tp_pool_aligned_alloc(pool, 48, 16), NULL);
    CHECK_EQ(errno, EINVAL);
    tp_pool_destroy(pool);
}

/* Fills the pool with blocks of `size` until it fails; returns how many. */
static size_t fill(tp_pool *pool, size_t size, void **out, size_t max)
{
    size_t n = 0;
    errno = 0;
    while (n < max && (out[n] = tp_pool_malloc(pool, size)) != NULL) n++;
    CHECK_EQ(errno, ENOMEM);
    return n;
}

static void test_memory_limit(void)
{
    enum { MAX = 4096 };
    static void *blocks[MAX];
    /* below one chunk (the pool's metadata lives in one): nothing fits */
    tp_pool_config tiny = {.memory_limit = 1 * MiB};
    tp_pool *pool = tp_pool_create("tiny", &tiny);
    errno = 0;
    CHECK_PTR_EQ(tp_pool_malloc(pool, 16), NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK_PTR_EQ(tp_pool_aligned_alloc(pool, 64, 16), NULL);
    CHECK_EQ(errno, ENOMEM);
    tp_pool_destroy(pool);

    /* slabs: fill to the limit, free one, allocate again */
    tp_pool_config cfg = {.memory_limit = 3 * CHUNK};
    pool = tp_pool_create("limited", &cfg);
    size_t n = fill(pool, 64 * KiB, blocks, MAX);
    CHECK_GE(n, 2 * CHUNK / (64 * KiB) - 8);
    CHECK_LE(n * 64 * KiB, 3 * CHUNK);
    tp_free(blocks[n / 2]);
    blocks[n / 2] = tp_pool_malloc(pool, 64 * KiB);
    CHECK(blocks[n / 2] != NULL);
    /* another class may not fit, but realloc failing keeps the block */
    util_mark(blocks[0], 64 * KiB, 5);
    errno = 0;
    void *r = tp_pool_realloc(pool, blocks[0], 6 * MiB);
    CHECK_PTR_EQ(r, NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(util_verify(blocks[0], 64 * KiB, SIZE_MAX, 5), UTIL_OK);
    for (size_t i = 0; i < n; i++) tp_free(blocks[i]);
    /* all freed: the same count fits again */
    size_t again = fill(pool, 64 * KiB, blocks, MAX);
    CHECK_EQ(again, n);
    for (size_t i = 0; i < again; i++) tp_free(blocks[i]);
    tp_pool_destroy(pool);

    /* huge blocks: each maps whole chunks, charged until freed */
    pool = tp_pool_create("limited-huge", &cfg);
    void *first = tp_pool_malloc(pool, 16); /* the metadata chunk */
    void *h1 = tp_pool_malloc(pool, 3 * MiB);
    void *h2 = tp_pool_malloc(pool, 3 * MiB);
    CHECK(first && h1 && h2);
    errno = 0;
    CHECK_PTR_EQ(tp_pool_malloc(pool, 3 * MiB), NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK_PTR_EQ(tp_pool_realloc(pool, h2, 5 * MiB), NULL); /* growing past the limit */
    CHECK_EQ(errno, ENOMEM);
    CHECK_GE(tp_usable_size(h2), 3 * MiB);
    tp_free(h1);
    void *h3 = tp_pool_malloc(pool, 3 * MiB);
    CHECK(h3 != NULL);
    tp_free(h3);
    /* with h1 gone, the grow fits */
    h2 = tp_pool_realloc(pool, h2, 5 * MiB);
    CHECK(h2 != NULL);
    CHECK_GE(tp_usable_size(h2), 5 * MiB);
    tp_free(h2);
    tp_free(first);
    tp_pool_destroy(pool);
}

/* The limit is used in whole TP_POOL_LIMIT_UNITs (docs/tuning.md's table):
 * below one, nothing; one unit and up to a byte short of two hold either
 * nearly a whole chunk of slab blocks or a huge block of up to a unit (the
 * pool's thread caches live outside its chunks); two units hold both.
 * Returns how many 1 KiB blocks fit in a pool of that limit, after it tried
 * for a 2 MiB huge block first (*huge) if `try_huge`. */
static size_t limit_fill_count(size_t limit, bool try_huge, void **huge)
{
    enum { MAX = 8192 };
    static void *blocks[MAX];
    tp_pool_config cfg = {.memory_limit = limit};
    tp_pool *pool = tp_pool_create("granularity", &cfg);
    errno = 0;
    *huge = try_huge ? tp_pool_malloc(pool, 2 * MiB) : NULL;
    CHECK(*huge != NULL || !try_huge || errno == ENOMEM);
    size_t n = fill(pool, 1 * KiB, blocks, MAX);
    tp_pool_destroy(pool);
    return n;
}

static void test_limit_granularity(void)
{
    CHECK_EQ(TP_POOL_LIMIT_UNIT, CHUNK);
    void *huge;
    CHECK_EQ(limit_fill_count(TP_POOL_LIMIT_UNIT - 1, true, &huge), 0);
    CHECK_PTR_EQ(huge, NULL);
    size_t one = limit_fill_count(TP_POOL_LIMIT_UNIT, false, &huge);
    CHECK_GE(one * KiB, TP_POOL_LIMIT_UNIT - 4 * 64 * KiB); /* all the chunk but its header and a few slices */
    CHECK_LE(one * KiB, TP_POOL_LIMIT_UNIT);
    CHECK_EQ(limit_fill_count(2 * TP_POOL_LIMIT_UNIT - 1, false, &huge), one);
    CHECK_EQ(limit_fill_count(TP_POOL_LIMIT_UNIT, true, &huge), 0); /* the huge block took the unit */
    CHECK(huge != NULL);
    CHECK_EQ(limit_fill_count(2 * TP_POOL_LIMIT_UNIT - 1, true, &huge), 0);
    CHECK(huge != NULL);
    CHECK_EQ(limit_fill_count(2 * TP_POOL_LIMIT_UNIT, true, &huge), one);
    CHECK(huge != NULL);
}

/* After every block is freed, the pool's memory is free: an allocation
 * of another class, and one of another tier, fit again without a trim. */
static void test_limit_other_tier(void)
{
    enum { MAX = 4096 };
    static void *blocks[MAX];
    tp_pool_config cfg = {.memory_limit = 3 * CHUNK};
    tp_pool *fresh = tp_pool_create("limit-fresh", &cfg);
    size_t capacity = fill(fresh, 3000, blocks, MAX);
    tp_pool_destroy(fresh);

    tp_pool *pool = tp_pool_create("limit-other", &cfg);
    size_t n = fill(pool, 64 * KiB, blocks, MAX);
    for (size_t i = 0; i < n; i++) tp_free(blocks[i]);
    /* another class: all but the freed class's kept page fit */
    size_t m = fill(pool, 3000, blocks, MAX);
    CHECK_GE(m, capacity - 8 * BLOCKS_3000_PER_SLICE);
    for (size_t i = 0; i < m; i++) tp_free(blocks[i]);
    /* another tier: a huge block needs a mapping of its own */
    errno = 0;
    void *h = tp_pool_malloc(pool, 3 * MiB);
    if (!CHECK(h != NULL)) fprintf(stderr, "    huge block refused (errno %d) in a pool with no block left\n", errno);
    tp_free(h);
    tp_pool_destroy(pool);
}

static void test_bulk(void)
{
    enum { N = 1000 };
    static void *out[N];
    tp_pool *pool = tp_pool_create("bulk", NULL);
    for (size_t t = 0; t < TIER_COUNT; t++) {
        size_t size = tier_sizes[t], count = size > 1 * MiB ? 4 : 100;
        CHECK_EQ(tp_pool_malloc_bulk(pool, size, count, out), count);
        int bad = 0;
        for (size_t i = 0; i < count; i++) {
            bad += !out[i] || tp_pool_of(out[i]) != pool || tp_usable_size(out[i]) < size;
            for (size_t j = 0; j < i && size < 1 * MiB; j++) bad += out[i] == out[j];
        }
        CHECK_EQ(bad, 0);
        out[1] = NULL; /* NULL entries are skipped */
        tp_free_bulk(out, count);
        tp_free(NULL);
    }
    /* the default pool, and nothing asked */
    CHECK_EQ(tp_pool_malloc_bulk(NULL, 24, 10, out), 10);
    CHECK_PTR_EQ(tp_pool_of(out[9]), tp_pool_default());
    tp_free_bulk(out, 10);
    CHECK_EQ(tp_pool_malloc_bulk(pool, 24, 0, out), 0);
    errno = 0;
    CHECK_EQ(tp_pool_malloc_bulk(pool, 24, 3, NULL), 0);
    CHECK_EQ(errno, EINVAL);
    tp_pool_destroy(pool);

    /* all or nothing: a bulk call past the limit allocates nothing, and
     * leaves the pool as able as a fresh one */
    tp_pool_config cfg = {.memory_limit = 3 * CHUNK};
    const size_t sizes[] = {64 * KiB, 1 * MiB, 3 * MiB};
    for (size_t s = 0; s < 3; s++) {
        pool = tp_pool_create("bulk-capacity", &cfg);
        size_t capacity = fill(pool, sizes[s], out, N);
        tp_pool_destroy(pool);
        CHECK_LT(capacity, N - 1);
        pool = tp_pool_create("bulk-limited", &cfg);
        for (size_t i = 0; i < N; i++) out[i] = (void *)1;
        errno = 0;
        CHECK_EQ(tp_pool_malloc_bulk(pool, sizes[s], capacity + 1, out), 0);
        CHECK_EQ(errno, ENOMEM);
        size_t left = 0;
        for (size_t i = 0; i <= capacity; i++) left += out[i] != NULL;
        CHECK_EQ(left, 0);
        if (!CHECK_EQ(tp_pool_malloc_bulk(pool, sizes[s], capacity, out), capacity))
            fprintf(stderr, "    bulk of %zu x %zu after a failed one\n", capacity, sizes[s]);
        tp_pool_destroy(pool);
    }
}

/* Fills a pool with about `budget` bytes of touched blocks of every tier;
 * returns the bytes. */
static size_t populate(tp_pool *pool, void **blocks, size_t max, size_t budget)
{
    size_t total = 0, n = 0;
    for (size_t i = 0; n < max && total < budget; i++) {
        size_t size = i % 8 < 6 ? 48 + i % 100 : i % 8 == 6 ? 64 * KiB : 3 * MiB;
        if (size == 3 * MiB && total > budget / 2) continue;
        void *p = tp_pool_malloc(pool, size);
        if (!CHECK(p != NULL)) break;
        memset(p, 0x6b, size);
        blocks[n++] = p;
        total += size;
    }
    return total;
}

/* Destroy with live blocks in every tier: resident memory comes back. */
static void test_destroy_rss(void)
{
    enum { N = 4000 };
    static void *blocks[N];
    size_t rss0 = util_rss();
    tp_pool *pool = tp_pool_create("destroy", NULL);
    size_t total = populate(pool, blocks, N, TEST_SCALE(64 * MiB));
    size_t rss1 = util_rss();
    printf("destroy: %zu KiB in use, rss %zu -> %zu KiB\n", total / 1024, rss0 / 1024, rss1 / 1024);
    CHECK_GE(rss1, rss0 + total / 2);
    tp_pool_destroy(pool); /* everything still allocated */
    size_t rss2 = util_rss();
    printf("after destroy: rss %zu KiB\n", rss2 / 1024);
    CHECK_LT(rss2, rss0 + 2 * MiB);
    for (int i = 0; i < N; i += 97) CHECK_PTR_EQ(tp_pool_of(blocks[i]), NULL);

    /* destroy and reset of the default pool are ignored */
    void *p = tp_malloc(100);
    tp_pool_destroy(tp_pool_default());
    tp_pool_reset(tp_pool_default());
    tp_pool_destroy(NULL);
    tp_pool_reset(NULL);
    CHECK_PTR_EQ(tp_pool_of(p), tp_pool_default());
    CHECK_GE(tp_usable_size(p), 100);
    tp_free(p);
}

/* Reset frees every block but keeps the memory: a limited pool filled to
 * its limit fills again after a reset, from the same chunks. */
static void test_reset(void)
{
    enum { MAX = 4096 };
    static void *blocks[MAX];
    static uintptr_t chunks[MAX];
    tp_pool_config cfg = {.memory_limit = 3 * CHUNK};
    tp_pool *pool = tp_pool_create("reset", &cfg);
    for (int round = 0; round < 4; round++) {
        size_t size = round % 2 ? 3000 : 4000;
        size_t n = fill(pool, size, blocks, MAX);
        CHECK_GE(n, 1000);
        for (size_t i = 0; i < n; i++) {
            uintptr_t c = (uintptr_t)blocks[i] & ~(uintptr_t)(CHUNK - 1);
            if (round == 0) chunks[i] = c;
            else {
                int known = 0;
                for (size_t k = 0; k < MAX && chunks[k]; k++) known |= chunks[k] == c;
                if (!CHECK(known)) break;
            }
        }
        tp_pool_reset(pool); /* without freeing anything */
        CHECK_PTR_EQ(tp_pool_of(blocks[0]), pool); /* the chunk is kept */
    }
    /* the pool works as before; calloc memory is zero though reused */
    void *p = tp_pool_calloc(pool, 10, 400);
    CHECK(p != NULL);
    CHECK_EQ(util_zero(p, 4000), UTIL_OK);
    tp_pool_destroy(pool);

    /* huge blocks are unmapped by a reset */
    pool = tp_pool_create("reset-huge", NULL);
    void *h = tp_pool_malloc(pool, 2 * MiB);
    void *s = tp_pool_malloc(pool, 20);
    CHECK(h && s);
    tp_pool_reset(pool);
    CHECK_PTR_EQ(tp_pool_of(h), NULL);
    CHECK_PTR_EQ(tp_pool_of(s), pool);
    h = tp_pool_malloc(pool, 2 * MiB);
    CHECK(h != NULL);
    tp_pool_destroy(pool);
}

static void test_trim(void)
{
    enum { N = 600 };
    static void *blocks[N];
    tp_pool *pool = tp_pool_create("trim", NULL);
    for (int i = 0; i < N; i++) {
        blocks[i] = tp_pool_malloc(pool, 30 * KiB);
        memset(blocks[i], 1, 30 * KiB);
    }
    for (int i = 0; i < N; i++) tp_free(blocks[i]);
    size_t first = tp_pool_trim(pool);
    size_t second = tp_pool_trim(pool);
    printf("trim: %zu KiB, then %zu KiB\n", first / 1024, second / 1024);
    CHECK_GE(first, 1 * MiB);
    CHECK_EQ(second, 0);
    /* the default pool too (NULL) */
    void *p = tp_malloc(200 * KiB);
    memset(p, 1, 200 * KiB);
    tp_free(p);
    (void)tp_pool_trim(NULL);
    p = tp_malloc(10);
    CHECK(p != NULL);
    tp_free(p);
    tp_pool_destroy(pool);
}

/* Many pools at once (more than a thread's inline table) and pool reuse
 * after destroy. */
static void test_many_pools(void)
{
    enum { N = 40 };
    tp_pool *pools[N];
    void *blocks[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            pools[i] = tp_pool_create("many", NULL);
            blocks[i] = tp_pool_malloc(pools[i], 16 + (size_t)i);
            CHECK(blocks[i] != NULL);
            util_mark(blocks[i], 16 + (size_t)i, (uint64_t)i);
        }
        for (int i = 0; i < N; i++) {
            CHECK_PTR_EQ(tp_pool_of(blocks[i]), pools[i]);
            CHECK_EQ(util_verify(blocks[i], 16 + (size_t)i, SIZE_MAX, (uint64_t)i), UTIL_OK);
        }
        for (int i = 0; i < N; i += 2) tp_free(blocks[i]);
        for (int i = 0; i < N; i++) tp_pool_destroy(pools[i]);
    }
}

/* A call that must fail with EINVAL; a block it returns anyway is freed. */
#define CHECK_EINVAL(call)                 \
    do {                                   \
        errno = 0;                         \
        void *einval_p_ = (call);          \
        CHECK_PTR_EQ(einval_p_, NULL);     \
        CHECK_EQ(errno, EINVAL);           \
        if (einval_p_) tp_free(einval_p_); \
    } while (0)

/* Allocation from a destroyed pool fails with EINVAL in every tier and call,
 * and maps nothing (each call mapped the dead pool a 4 MiB chunk that
 * nothing freed or counted); the pool structs reused afterwards are
 * distinct pools that work. */
static void test_destroyed_pool(void)
{
    tp_pool *pool = tp_pool_create("gone", NULL);
    void *before = tp_pool_malloc(pool, 100);
    CHECK(before != NULL);
    tp_pool_destroy(pool);
    size_t vm = util_vm_size();
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < TIER_COUNT; i++) {
            CHECK_EINVAL(tp_pool_malloc(pool, tier_sizes[i]));
            CHECK_EINVAL(tp_pool_calloc(pool, 1, tier_sizes[i]));
            CHECK_EINVAL(tp_pool_aligned_alloc(pool, 4096, tier_sizes[i]));
            CHECK_EINVAL(tp_pool_realloc(pool, NULL, tier_sizes[i]));
        }
        CHECK_EINVAL(tp_pool_aligned_alloc(pool, 8 * MiB, 100));
        void *out[4] = {NULL, NULL, NULL, NULL};
        errno = 0;
        CHECK_EQ(tp_pool_malloc_bulk(pool, 64, 4, out), 0);
        CHECK_EQ(errno, EINVAL);
        CHECK(out[0] == NULL && out[3] == NULL);
    }
    CHECK_LE(util_vm_size(), vm + 1 * MiB);
    /* Created afterwards: two pools, not one struct handed out twice. */
    tp_pool *a = tp_pool_create("after-a", NULL);
    tp_pool *b = tp_pool_create("after-b", NULL);
    CHECK(a != NULL && b != NULL && a != b);
    void *pa = tp_pool_malloc(a, 100), *pb = tp_pool_malloc(b, 100);
    CHECK(pa != NULL && pb != NULL);
    CHECK_PTR_EQ(tp_pool_of(pa), a);
    CHECK_PTR_EQ(tp_pool_of(pb), b);
    tp_pool_destroy(a);
    tp_pool_destroy(b);
}

TEST_MAIN(
    CASE(names),
    CASE(pool_blocks),
    CASE(memory_limit),
    CASE(limit_other_tier),
    CASE(limit_granularity),
    CASE(bulk),
    CASE(destroy_rss),
    CASE(reset),
    CASE(trim),
    CASE(many_pools),
    CASE(destroyed_pool))
