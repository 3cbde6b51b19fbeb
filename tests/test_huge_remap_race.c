/* SPDX-License-Identifier: MIT */
/*
 * test_huge_remap_race.c: a huge realloc that moves its block must not
 * unregister another thread's memory.
 *
 * tpi_huge_realloc (src/huge.c) grows a block that cannot grow in place by
 * mremap()ing it to a new address, which unmaps the old range at once, and
 * only then clears the old range in the chunk registry. In between, another
 * thread's mmap may be given that range (a new huge block or slab chunk) and
 * register it; the late clear then wipes that registration, so the other
 * thread's live block is no longer tierpool's: tp_pool_of() returns NULL,
 * tp_usable_size() 0, and tp_free() aborts with "free of a pointer tierpool
 * does not own".
 *
 * One thread grows 2 MiB blocks to 24 MiB (they move); two others map 4 MiB
 * blocks (aligned allocations bypass the cache of freed mappings, so each is
 * a fresh mmap, often at an address just vacated) and check that each stays
 * registered until they free it. A block found unregistered is leaked, not
 * freed, so the test reports instead of aborting.
 */
#include "test.h"

#define MOVES (600 / THR_SCALE)
#define MAPPERS 2
#define KEEP 4

static atomic_bool done;
static atomic_long lost;

static void *mover(void *arg)
{
    (void)arg;
    for (int i = 0; i < MOVES; i++) {
        char *p = tp_malloc(2 * THR_MIB);
        if (!CHECK(p != NULL)) break;
        thr_fill(p, 2 * THR_MIB, (uint64_t)i);
        char *q = tp_realloc(p, 24 * THR_MIB);
        if (!CHECK(q != NULL)) break;
        CHECK(thr_verify(q, 256, (uint64_t)i));
        tp_free(q);
    }
    atomic_store(&done, true);
    return NULL;
}

/* True when b is still a registered block of the default pool. */
static bool still_ours(const thr_block *b)
{
    return tp_pool_of(b->p) == tp_pool_default() && tp_usable_size(b->p) >= b->size;
}

static void *mapper(void *arg)
{
    thr_rng r = thr_rng_make((uintptr_t)arg + 1);
    thr_block keep[KEEP];
    memset(keep, 0, sizeof keep);
    uint64_t tag = 0;
    while (!atomic_load_explicit(&done, memory_order_relaxed)) {
        thr_block *b = &keep[thr_rand(&r) % KEEP];
        if (b->p) {
            if (!still_ours(b)) {
                atomic_fetch_add(&lost, 1);
                b->p = NULL; /* leaked: tp_free would abort */
                continue;
            }
            thr_block_free(b);
        }
        size_t size = 3 * THR_MIB + thr_range(&r, 0, 512 * 1024);
        *b = (thr_block){.p = tp_aligned_alloc(4096, size), .size = size, .tag = ++tag, .pool = tp_pool_default()};
        if (!CHECK(b->p != NULL)) break;
        thr_fill(b->p, size, tag);
    }
    for (int i = 0; i < KEEP; i++) {
        if (keep[i].p && !still_ours(&keep[i])) {
            atomic_fetch_add(&lost, 1);
            continue;
        }
        thr_block_free(&keep[i]);
    }
    return NULL;
}

static void test_realloc_move_vs_mmap(void)
{
    pthread_t m;
    thr_start(&m, mover, NULL);
    thr_run_threads(MAPPERS, mapper); /* until the mover is done */
    thr_join(m);
    long n = atomic_load(&lost);
    if (n) printf("    %ld live huge blocks lost their registration\n", n);
    CHECK(n == 0);
}

int main(int argc, char **argv)
{
    thr_args(argc, argv);
    thr_run("realloc_move_vs_mmap", test_realloc_move_vs_mmap);
    return thr_summary("test_huge_remap_race");
}
