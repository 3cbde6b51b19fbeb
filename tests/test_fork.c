/* SPDX-License-Identifier: MIT */
/*
 * test_fork.c: fork while other threads allocate.
 *
 * FORK_WORKERS threads allocate and free in a loop (all tiers, the default
 * pool and an explicit one, and cross-thread through a shared bag), while the
 * main thread forks FORK_COUNT times. Each child, under an alarm() watchdog,
 * checks and frees blocks the parent made before the fork (its own and other
 * threads'), allocates and frees in every tier of both pools, reallocs a
 * huge block, makes and destroys a pool, starts a thread that allocates (not
 * under the sanitizers: TSan cannot start threads after a multi-threaded
 * fork, and ASan's thread registry may be inherited locked), then _exit()s. The parent fails the test if a child does not exit 0 within
 * FORK_TIMEOUT seconds (killing it), which is how a lock inherited in the
 * locked state shows.
 */
#include "test.h"

#include <signal.h>
#include <sys/wait.h>

#define FORK_WORKERS 3
#define FORK_COUNT (THR_TSAN ? 12 : 50)
#define FORK_TIMEOUT (THR_TSAN ? 60 : 20)
#define FORK_SLOTS 128
#define BAG_CAP 512

static tp_pool *pool;
static atomic_bool stop;

/* Blocks that one thread makes and another frees. */
static thr_block bag_items[BAG_CAP];
static thr_bag bag = THR_BAG_INIT(bag_items);

static void *worker(void *argp)
{
    unsigned id = (unsigned)(uintptr_t)argp;
    thr_rng r = thr_rng_make(id + 7);
    thr_block slots[FORK_SLOTS];
    memset(slots, 0, sizeof slots);
    uint64_t seq = (uint64_t)(id + 1) << 40;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        thr_block *b = &slots[thr_rand(&r) % FORK_SLOTS];
        if (b->p) {
            thr_block_free(b);
            continue;
        }
        if (!thr_block_alloc(b, thr_rand(&r) % 2 ? pool : NULL, thr_size_mix(&r, 256 * 1024, 2), ++seq)) break;
        if (thr_rand(&r) % 4) continue;
        /* Trade it through the bag: put ours in, take someone's out. */
        if (thr_bag_put(&bag, b, 1)) b->p = NULL;
        thr_block other;
        if (thr_bag_take(&bag, &other, 1, BAG_CAP / 2, &r)) thr_block_free(&other);
    }
    for (int i = 0; i < FORK_SLOTS; i++) thr_block_free(&slots[i]);
    return NULL;
}

#if !THR_TSAN && !defined(TP_SANITIZE_ADDRESS)
/* A thread started in the child. */
static void *child_thread(void *arg)
{
    (void)arg;
    thr_rng r = thr_rng_make(99);
    for (int i = 0; i < 50; i++) {
        thr_block b;
        if (thr_block_alloc(&b, i % 2 ? pool : NULL, thr_size_mix(&r, 65536, 0), (uint64_t)i)) thr_block_free(&b);
    }
    return NULL;
}
#endif

/* What a child does: must finish quickly and never block. */
static void child(thr_block *mine, unsigned nmine)
{
    alarm(10);
    /* The parent's blocks: made by this thread, and by the workers (whose
     * threads do not exist here). */
    for (unsigned i = 0; i < nmine; i++) thr_block_free(&mine[i]);
    thr_bag_drain(&bag);
    static const size_t sizes[] = {0, 8, 100, 1024, 1500, 5000, 70000, 600000, 2 * THR_MIB + 5};
    tp_pool *own = tp_pool_create("in-child", NULL);
    CHECK(own != NULL);
    tp_pool *pools[] = {NULL, pool, own};
    for (unsigned p = 0; p < 3; p++) {
        thr_block b[sizeof sizes / sizeof sizes[0]];
        for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) thr_block_alloc(&b[i], pools[p], sizes[i], i);
        for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) thr_block_free(&b[i]);
    }
    /* huge realloc, grown and shrunk (mremap) */
    char *h = tp_malloc(3 * THR_MIB);
    if (CHECK(h != NULL)) {
        thr_fill(h, 3 * THR_MIB, 1);
        h = tp_realloc(h, 12 * THR_MIB);
        if (CHECK(h != NULL)) CHECK(thr_verify(h, 256, 1));
        h = tp_realloc(h, 2 * THR_MIB);
        if (CHECK(h != NULL)) CHECK(thr_verify(h, 256, 1));
        tp_free(h);
    }
    tp_pool_destroy(own);
    tp_pool_trim(NULL);
    tp_pool_trim(pool);
#if !THR_TSAN && !defined(TP_SANITIZE_ADDRESS)
    /* Not under the sanitizers: their runtimes' own thread registries can be
     * left locked by a parent thread at fork, and the child's
     * pthread_create then waits forever (seen with GCC 12's ASan). */
    pthread_t t;
    thr_start(&t, child_thread, NULL);
    thr_join(t);
#endif
    _exit(__atomic_load_n(&test_failed, __ATOMIC_RELAXED) ? 1 : 0);
}

/* Waits for the child, killing it after FORK_TIMEOUT seconds. */
static void reap(pid_t pid)
{
    double deadline = thr_now() + FORK_TIMEOUT;
    int status = 0;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid) break;
        if (!CHECK(got == 0)) return;
        if (thr_now() > deadline) {
            fprintf(stderr, "child %d hung: killing it\n", (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECK(!"child hung after fork");
            return;
        }
        usleep(1000);
    }
    if (WIFSIGNALED(status)) fprintf(stderr, "child died of signal %d%s\n", WTERMSIG(status),
                                     WTERMSIG(status) == SIGALRM ? " (its watchdog: it hung)" : "");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_fork_while_allocating(void)
{
    pool = tp_pool_create("fork", NULL);
    if (!CHECK(pool != NULL)) return;
    pthread_t t[FORK_WORKERS];
    for (unsigned i = 0; i < FORK_WORKERS; i++) thr_start(&t[i], worker, (void *)(uintptr_t)i);
    thr_rng r = thr_rng_make(5);
    for (int n = 0; n < FORK_COUNT; n++) {
        usleep(2000); /* let the workers get going */
        thr_block mine[8];
        for (unsigned i = 0; i < 8; i++) thr_block_alloc(&mine[i], i % 2 ? pool : NULL, thr_size_any(&r), 1000 + i);
        fflush(stdout);
        fflush(stderr);
        /* The bag's lock is held across fork so the child finds it whole. */
        pthread_mutex_lock(&bag.lock);
        pid_t pid = fork();
        if (pid == 0) child(mine, 8); /* does not return */
        pthread_mutex_unlock(&bag.lock);
        if (!CHECK(pid > 0)) break;
        reap(pid);
        for (unsigned i = 0; i < 8; i++) thr_block_free(&mine[i]);
        if (__atomic_load_n(&test_failed, __ATOMIC_RELAXED)) break;
    }
    atomic_store(&stop, true);
    for (unsigned i = 0; i < FORK_WORKERS; i++) thr_join(t[i]);
    thr_bag_drain(&bag);
    tp_pool_destroy(pool);
}

int main(int argc, char **argv)
{
    thr_args(argc, argv);
    thr_run("fork_while_allocating", test_fork_while_allocating);
    return thr_summary("test_fork");
}
