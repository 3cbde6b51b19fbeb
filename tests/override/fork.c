/* SPDX-License-Identifier: MIT */
/*
 * fork.c: a program that forks and execs under LD_PRELOAD=libtierpool-malloc.so.
 *
 * While two threads keep allocating, the main thread forks again and again.
 * Each child must find the parent's blocks intact, free some of them, run
 * its own allocations (in a thread of its own too: it may reuse the stack,
 * and so the id, of a parent thread that did not survive the fork), and
 * some children exec this program again, which must still have tierpool as
 * its malloc. popen and system cover the C library's own spawning.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "preload.h"

#define FORKS 24
#define EXEC_EVERY 4
#define BLOCKS 64

static preload_pool_of_fn pool_of;
static atomic_bool stop;
static unsigned char *blocks[BLOCKS];
static size_t block_size[BLOCKS];

static void *churn(void *arg)
{
    size_t salt = (size_t)(uintptr_t)arg;
    while (!atomic_load(&stop)) {
        void *held[32];
        for (size_t i = 0; i < 32; i++) held[i] = malloc(16 + (i * 97 + salt) % 8000);
        for (size_t i = 0; i < 32; i++) free(held[i]);
        free(malloc(((size_t)3 << 20) / 2));
        sched_yield(); /* leave the children a core */
    }
    return NULL;
}

static int block_intact(size_t i)
{
    for (size_t k = 0; k < block_size[i]; k += 511)
        if (blocks[i][k] != (unsigned char)(i + k)) return 0;
    return 1;
}

static void *child_thread(void *arg)
{
    (void)arg;
    void *p = malloc(3000);
    void *q = malloc((size_t)5 << 20);
    int ok = p && q && pool_of(p) && pool_of(q);
    free(p);
    free(q);
    return ok ? arg : NULL;
}

static int run_child(int round)
{
    for (size_t i = 0; i < BLOCKS; i++) CHECK(block_intact(i));
    for (size_t i = (size_t)round % 2; i < BLOCKS; i += 2) free(blocks[i]);
    char *s = malloc(100000);
    if (CHECK(s && pool_of(s))) {
        memset(s, 'c', 100000);
        s = realloc(s, (size_t)3 << 20);
        CHECK(s && pool_of(s) && s[99999] == 'c');
    }
    free(s);
    pthread_t t;
    void *result = NULL;
    if (CHECK_EQ(pthread_create(&t, NULL, child_thread, (void *)1), 0)) {
        pthread_join(t, &result);
        CHECK(result != NULL);
    }
    if (round % EXEC_EVERY == 0) {
        /* the exec'd program's status replaces this one's: report first */
        if (test_failed) return 1;
        fflush(NULL);
        execl("/proc/self/exe", "fork", "exec-child", (char *)NULL);
        perror("fork: exec");
        return 1;
    }
    return test_failed == 0 ? 0 : 1;
}

/* The program exec'ed by a child: is tierpool still the malloc? */
static int exec_child(void)
{
    void *p = malloc(50);
    int ours = pool_of && pool_of(p);
    free(p);
    return ours ? 0 : 1;
}

int main(int argc, char **argv)
{
    pool_of = preload_pool_of();
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0) return exec_child();
    if (!CHECK(pool_of != NULL)) return test_report();

    for (size_t i = 0; i < BLOCKS; i++) {
        block_size[i] = i % 8 == 7 ? ((size_t)2 << 20) + i : 40 + i * 1000;
        blocks[i] = malloc(block_size[i]);
        if (!CHECK(blocks[i] && pool_of(blocks[i]))) return test_report();
        for (size_t k = 0; k < block_size[i]; k += 511) blocks[i][k] = (unsigned char)(i + k);
    }

    pthread_t threads[2];
    for (int i = 0; i < 2; i++) CHECK_EQ(pthread_create(&threads[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0);

    for (int round = 0; round < FORKS; round++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) _exit(run_child(round));
        if (!CHECK(pid > 0)) break;
        int status = 0;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fprintf(stderr, "    child of round %d: status 0x%x\n", round, status);
    }

    FILE *out = popen("echo spawned", "r");
    char line[64] = "";
    if (CHECK(out != NULL)) {
        CHECK(fgets(line, sizeof line, out) != NULL);
        CHECK_EQ(pclose(out), 0);
    }
    CHECK(strcmp(line, "spawned\n") == 0);
    int status = system("exit 3");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);

    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    for (size_t i = 0; i < BLOCKS; i++) {
        CHECK(block_intact(i));
        free(blocks[i]);
    }
    return test_report();
}
