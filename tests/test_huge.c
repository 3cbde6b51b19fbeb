/* SPDX-License-Identifier: MIT */
/*
 * test_huge.c: huge blocks (src/huge.c): the header and registry layout for
 * every alignment, the pool's accounting, realloc in place and moved, the
 * cache of freed mappings (reuse, zeroing for calloc, its size bound, purge,
 * and its release when a limited pool needs the room).
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <sys/mman.h>

static size_t round_chunk(size_t n)
{
    return (n + TPI_CHUNK_MASK) & ~(size_t)TPI_CHUNK_MASK;
}

static size_t pool_mapped(tp_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    size_t m = pool->mapped;
    pthread_mutex_unlock(&pool->lock);
    return m;
}

/* Unmaps the pool's cached mappings now. */
static void drop_cache(tp_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    tpi_huge_cache_purge(pool, tpi_clock(), 0);
    pthread_mutex_unlock(&pool->lock);
}

/* Header, registry and accounting of one huge block. */
static void check_layout(tp_pool *pool, char *p, size_t size, size_t align)
{
    tpi_huge *h = tpi_huge_of(p);
    if (!CHECK(h != NULL)) return;
    size_t offset = align > 64 ? (align > TPI_CHUNK_SIZE ? TPI_CHUNK_SIZE : align) : 64;
    CHECK_EQ(h->magic, TPI_HUGE_MAGIC);
    CHECK_PTR_EQ(h->pool, pool);
    CHECK_PTR_EQ(tpi_huge_block(h), p);
    CHECK_PTR_EQ((char *)h + offset, p);
    CHECK_EQ((uintptr_t)h & TPI_CHUNK_MASK, 0);
    CHECK_EQ((uintptr_t)p % (align ? align : 16), 0);
    CHECK_EQ(h->map_size % TPI_CHUNK_SIZE, 0);
    CHECK_GE(h->map_size, offset + size);
    CHECK_EQ(h->size, h->map_size - offset);
    CHECK_EQ(tp_usable_size(p), h->size);
    /* the block's first chunk is HUGE; before it (header) and after it REST */
    uintptr_t block_chunk = (uintptr_t)p & ~(uintptr_t)TPI_CHUNK_MASK;
    for (uintptr_t a = (uintptr_t)h; a < (uintptr_t)h + h->map_size; a += TPI_CHUNK_SIZE)
        CHECK_EQ(tpi_registry_get(a), a == block_chunk ? TPI_REG_HUGE : TPI_REG_HUGE_REST);
    CHECK_EQ(tpi_registry_get((uintptr_t)h + h->map_size), TPI_REG_NONE);
    CHECK_PTR_EQ(tp_pool_of(p), pool);
    CHECK_PTR_EQ(tp_pool_of(p + size - 1), pool);
    /* the whole usable size is writable (contents kept) */
    volatile char *v = p;
    char first = v[0], last = v[h->size - 1];
    v[0] = 1;
    v[h->size - 1] = 2;
    v[0] = first;
    v[h->size - 1] = last;
}

static void test_layout(void)
{
    tp_pool *pool = tp_pool_create("huge-layout", NULL);
    const size_t aligns[] = {0, 64, 128, 4096, 128 * KiB, 1 * MiB, 4 * MiB, 8 * MiB, 32 * MiB};
    const size_t sizes[] = {1 * MiB + 1, 4 * MiB - 64, 4 * MiB - 63, 9 * MiB};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t before = pool_mapped(pool);
            char *p = tpi_huge_malloc(pool, sizes[s], aligns[a], false);
            if (!CHECK(p != NULL)) continue;
            check_layout(pool, p, sizes[s], aligns[a]);
            size_t map = tpi_huge_of(p)->map_size;
            CHECK_EQ(pool_mapped(pool), before + map);
            tpi_huge_free(p);
            CHECK_EQ(tpi_registry_get((uintptr_t)p), TPI_REG_NONE);
            CHECK_PTR_EQ(tpi_huge_of(p), NULL);
            drop_cache(pool);
            CHECK_EQ(pool_mapped(pool), before);
        }
    /* interior pointers are not blocks */
    char *p = tpi_huge_malloc(pool, 2 * MiB, 0, false);
    CHECK_PTR_EQ(tpi_huge_of(p + 16), NULL);
    CHECK_PTR_EQ(tpi_huge_of(p - 64), NULL);
    tpi_huge_free(p);
    tp_pool_destroy(pool);
}

static void test_realloc(void)
{
    tp_pool *pool = tp_pool_create("huge-realloc", NULL);
    size_t size = 5 * MiB;
    char *p = tpi_huge_malloc(pool, size, 0, false);
    util_mark(p, size, 1);
    size_t base = pool_mapped(pool);
    /* same chunks: the same block */
    CHECK_PTR_EQ(tpi_huge_realloc(p, 8 * MiB - 64), p);
    CHECK_EQ(pool_mapped(pool), base);
    /* shrink: the tail goes back at once */
    char *q = tpi_huge_realloc(p, 2 * MiB);
    CHECK_PTR_EQ(q, p);
    CHECK_EQ(tpi_huge_of(q)->map_size, 4 * MiB);
    CHECK_EQ(pool_mapped(pool), base - 4 * MiB);
    CHECK_EQ(tpi_registry_get((uintptr_t)q + 4 * MiB), TPI_REG_NONE);
    CHECK_EQ(util_verify(q, size, 2 * MiB, 1), UTIL_OK);
    /* grow, in place or moved: contents kept, layout right */
    for (size_t n = 6 * MiB; n <= 48 * MiB; n *= 2) {
        char *r = tpi_huge_realloc(q, n);
        if (!CHECK(r != NULL)) break;
        CHECK_EQ(util_verify(r, size, 2 * MiB, 1), UTIL_OK);
        check_layout(pool, r, n, 0);
        CHECK_EQ(pool_mapped(pool), base - 8 * MiB + round_chunk(64 + n));
        q = r;
    }
    /* a block whose neighbour is taken (by this page, or already by another
     * mapping: EEXIST) moves */
    char *s = tpi_huge_malloc(pool, 3 * MiB, 0, false);
    char *end = (char *)tpi_huge_of(s) + tpi_huge_of(s)->map_size;
    char *blocker = mmap(end, TPI_OS_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(blocker == end || (blocker == MAP_FAILED && errno == EEXIST));
    util_mark(s, 3 * MiB, 2);
    char *t = tpi_huge_realloc(s, 30 * MiB);
    CHECK(t != NULL && t != s);
    CHECK_EQ(util_verify(t, 3 * MiB, SIZE_MAX, 2), UTIL_OK);
    check_layout(pool, t, 30 * MiB, 0);
    CHECK_EQ(tpi_registry_get((uintptr_t)s), TPI_REG_NONE);
    if (blocker == end) munmap(blocker, TPI_OS_PAGE);
    tpi_huge_free(t);
    tpi_huge_free(q);
    tp_pool_destroy(pool);
}

static void test_cache(void)
{
    tp_pool *pool = tp_pool_create("huge-cache", NULL);
    char *p = tpi_huge_malloc(pool, 6 * MiB, 0, false);
    memset(p, 0xcc, 6 * MiB);
    size_t mapped = pool_mapped(pool);
    tpi_huge_free(p);
    /* cached: still mapped and charged, but no longer a block */
    CHECK_EQ(pool->huge_cache_bytes, 8 * MiB);
    CHECK_EQ(pool_mapped(pool), mapped);
    CHECK_PTR_EQ(tp_pool_of(p), NULL);
    CHECK_EQ(tp_usable_size(p), 0);
    /* a request within 25% reuses it; calloc's is cleared */
    char *q = tpi_huge_malloc(pool, 7 * MiB, 0, true);
    CHECK_PTR_EQ(q, p);
    CHECK_EQ(util_zero(q, 7 * MiB), UTIL_OK);
    CHECK_EQ(pool->huge_cache_bytes, 0);
    check_layout(pool, q, 7 * MiB, 0);
    tpi_huge_free(q);
    /* one much smaller takes it too, and the OS pages its 7 MiB kept
     * resident past the 2 MiB now asked for go back */
    char *r = tpi_huge_malloc(pool, 2 * MiB, 0, false);
    CHECK_PTR_EQ(r, q);
    CHECK_EQ(pool->huge_cache_bytes, 0);
    CHECK_EQ(util_resident(r + 3 * MiB, 4 * MiB), 0);
    CHECK_GE(util_resident(r, 2 * MiB), 2 * MiB);
    tpi_huge_free(r);
    CHECK_EQ(pool->huge_cache_bytes, 8 * MiB);
    /* aligned blocks are not cached */
    size_t cached = pool->huge_cache_bytes;
    char *a = tpi_huge_malloc(pool, 2 * MiB, 1 * MiB, false);
    tpi_huge_free(a);
    CHECK_EQ(pool->huge_cache_bytes, cached);
    /* the cache holds at most HUGE_CACHE bytes */
    char *big[4];
    for (int i = 0; i < 4; i++) big[i] = tpi_huge_malloc(pool, 30 * MiB, 0, false);
    for (int i = 0; i < 4; i++) tpi_huge_free(big[i]);
    CHECK_LE(pool->huge_cache_bytes, (size_t)tpi_options.huge_cache_bytes);
    CHECK_GE(pool->huge_cache_bytes, 32 * MiB);
    /* a purge of everything due gives it all back */
    size_t before = pool_mapped(pool);
    drop_cache(pool);
    CHECK_EQ(pool->huge_cache_bytes, 0);
    CHECK_PTR_EQ(pool->huge_cache, NULL);
    CHECK_LE(pool_mapped(pool) + 32 * MiB, before);
    tp_pool_destroy(pool);

    /* a limited pool drops its cache rather than fail */
    tp_pool_config cfg = {.memory_limit = 12 * MiB};
    pool = tp_pool_create("huge-cache-limit", &cfg);
    void *meta = tp_pool_malloc(pool, 16);
    p = tpi_huge_malloc(pool, 3 * MiB, 0, false);
    CHECK(meta && p);
    tpi_huge_free(p);
    CHECK_EQ(pool->huge_cache_bytes, 4 * MiB);
    q = tpi_huge_malloc(pool, 7 * MiB, 0, false); /* 8 MiB: only without the cache */
    CHECK(q != NULL);
    CHECK_EQ(pool->huge_cache_bytes, 0);
    tpi_huge_free(q);
    tp_free(meta);
    tp_pool_destroy(pool);
}

/* Reset and destroy release live and cached mappings alike. */
static void test_release_all(void)
{
    tp_pool *pool = tp_pool_create("huge-release", NULL);
    void *small = tp_pool_malloc(pool, 16);
    char *live = tpi_huge_malloc(pool, 5 * MiB, 0, false);
    char *cached = tpi_huge_malloc(pool, 2 * MiB, 0, false);
    char *aligned = tpi_huge_malloc(pool, 2 * MiB, 16 * MiB, false);
    tpi_huge_free(cached);
    size_t slabs = 0;
    for (tpi_chunk *c = pool->chunks; c; c = c->next) slabs += TPI_CHUNK_SIZE;
    tp_pool_reset(pool);
    CHECK_PTR_EQ(pool->huge, NULL);
    CHECK_PTR_EQ(pool->huge_cache, NULL);
    CHECK_EQ(pool->mapped, slabs);
    CHECK_EQ(tpi_registry_get((uintptr_t)live), TPI_REG_NONE);
    CHECK_EQ(tpi_registry_get((uintptr_t)aligned), TPI_REG_NONE);
    CHECK_EQ(tpi_registry_get((uintptr_t)aligned - 1), TPI_REG_NONE);
    (void)small;
    tp_pool_destroy(pool);
}

TEST_MAIN(
    CASE(layout),
    CASE(realloc),
    CASE(cache),
    CASE(release_all))
