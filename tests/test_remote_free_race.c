/* SPDX-License-Identifier: MIT */
/*
 * test_remote_free_race.c: a remote free must not race with the owner's
 * carving of the same page.
 *
 * The owner allocates 16-byte blocks (pages of 4096 blocks, carved lazily a
 * batch at a time) and hands each to a second thread through a ring; that
 * thread frees it, a remote free into a page its owner is still carving. The
 * free's pointer validation (tpi_free_generic -> tpi_page_block_start) reads
 * page->carved without synchronisation while the owner writes it in
 * tpi_page_extend: a data race that ThreadSanitizer reports. In other builds
 * this is a plain cross-thread workload and passes.
 */
#include "test.h"

#define RACE_BLOCKS (400000 / THR_SCALE)

static thr_ring ring;
static atomic_bool stop;
static thr_block held[RACE_BLOCKS];

/* Frees one block in four at once, so that the owner keeps carving (freed
 * blocks alone never refill it), and the others at the end. */
static void *freer(void *arg)
{
    (void)arg;
    long got = 0;
    while (got < RACE_BLOCKS && !atomic_load_explicit(&stop, memory_order_relaxed)) {
        thr_block *b = &held[got];
        if (!thr_ring_pop(&ring, b)) {
            sched_yield();
            continue;
        }
        if (got++ % 4 == 0) thr_block_free(b);
    }
    for (long i = 0; i < got; i++) thr_block_free(&held[i]);
    return NULL;
}

static void test_carve_vs_remote_free(void)
{
    pthread_t t;
    thr_start(&t, freer, NULL);
    for (long i = 0; i < RACE_BLOCKS; i++) {
        thr_block b;
        if (!thr_block_alloc(&b, NULL, 16, (uint64_t)i)) {
            atomic_store(&stop, true);
            break;
        }
        while (!thr_ring_push(&ring, &b)) sched_yield();
    }
    thr_join(t);
}

int main(int argc, char **argv)
{
    thr_args(argc, argv);
    thr_run("carve_vs_remote_free", test_carve_vs_remote_free);
    return thr_summary("test_remote_free_race");
}
