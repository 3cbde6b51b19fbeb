/* SPDX-License-Identifier: MIT */
/*
 * publisher.c: a process that publishes its statistics, for the tests of
 * the `tierpool` tool's monitoring commands (cli_test.py) and the example
 * in docs/monitoring.md.
 *
 *   publisher [--self-stats DIR] [--extra-pools N] [--pool NAME]... [--comm NAME]
 *             [--fork-children N]
 *       starts publishing (tp_monitor_start; TIERPOOL_PUBLISH_INTERVAL sets
 *       how often), allocates a known set of blocks:
 *         pool "alpha":   ALPHA_BLOCKS blocks of 100 bytes
 *         pool "beta":    BETA_BLOCKS blocks of 3000 bytes and BETA_HUGE of 3 MiB
 *         default pool:   DEFAULT_BLOCKS blocks of 64 bytes
 *         N more pools:   "extra0", "extra1", ..., one 48-byte block each
 *         --pool NAME:    a pool of that name (- for none: unnamed), one
 *                         48-byte block; any number of them
 *       with --comm NAME it sets its process name (prctl) first; with
 *       --fork-children N it first forks N children that publish, wait
 *       for their segment and leave by _exit (no exit handlers: their
 *       segments stay behind), and waits for them (it fails if one had no
 *       segment); with --exec-child
 *       SECONDS it forks one that publishes, then becomes `sleep SECONDS`
 *       (its segment stays, no longer mapped);
 *       then, with --self-stats, writes what the library itself prints of
 *       them (tp_stats_print: text.txt, json.json, prometheus.txt in DIR),
 *       prints "ready PID" and waits for SIGTERM or SIGINT. Nothing is
 *       allocated after "ready", so every later snapshot is the same.
 *   publisher --workload SECONDS
 *       prints "ready PID", then runs phases of growth, churn and release
 *       over SECONDS (a chart worth looking at), and exits.
 *
 * On SIGTERM or SIGINT it frees everything and exits normally, so the
 * library unlinks its segment.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tierpool.h"

#define ALPHA_BLOCKS 1000
#define BETA_BLOCKS 300
#define BETA_HUGE 2
#define DEFAULT_BLOCKS 10

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void ready(void)
{
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int write_self_stats(const char *dir)
{
    static const struct { const char *name; int format; } files[] = {
        {"text.txt", TP_STATS_TEXT}, {"json.json", TP_STATS_JSON}, {"prometheus.txt", TP_STATS_PROMETHEUS}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        FILE *f = fopen(path, "w");
        if (!f || tp_stats_print(NULL, files[i].format, f) != 0 || fclose(f) != 0) {
            perror(path);
            return 1;
        }
    }
    return 0;
}

#define EXTRA_MAX 64

#define NAMED_MAX 16
static const char *named[NAMED_MAX];
static int named_count;

/* In a forked child: publishes (a forked child starts at its second
 * interval) until its segment is there, for the next step to leave behind;
 * exits 1 if it does not come within 10 s. */
static void child_publishes(void)
{
    void *p = tp_malloc(64);
    if (tp_monitor_start() != 0) _exit(1);
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/tierpool.%ld", (long)getpid());
    for (int tries = 0; access(path, F_OK) != 0; tries++) {
        if (tries == 1000) _exit(1);
        sleep_ms(10);
    }
    tp_free(p);
}

/* Children that publish, then leave by _exit. */
static int fork_children(int n)
{
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            child_publishes();
            _exit(0);
        }
    }
    int status, failed = 0;
    while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return failed;
}

/* A child that publishes, then execs sleep (not waited for). */
static int exec_child(const char *seconds)
{
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        child_publishes();
        execlp("sleep", "sleep", seconds, (char *)NULL);
        _exit(127);
    }
    sleep_ms(4 * tp_option_get("publish_interval"));
    return 0;
}

static int known_blocks(const char *self_stats, int extra_pools)
{
    tp_pool *alpha = tp_pool_create("alpha", NULL), *beta = tp_pool_create("beta", NULL), *extra[EXTRA_MAX];
    static void *a[ALPHA_BLOCKS], *b[BETA_BLOCKS + BETA_HUGE], *d[DEFAULT_BLOCKS];
    if (!alpha || !beta) return 1;
    for (int i = 0; i < extra_pools; i++) {
        char name[16];
        snprintf(name, sizeof name, "extra%d", i);
        if (!(extra[i] = tp_pool_create(name, NULL)) || !tp_pool_malloc(extra[i], 48)) return 1;
    }
    tp_pool *pools[NAMED_MAX];
    for (int i = 0; i < named_count; i++)
        if (!(pools[i] = tp_pool_create(strcmp(named[i], "-") ? named[i] : NULL, NULL)) ||
            !tp_pool_malloc(pools[i], 48))
            return 1;
    for (int i = 0; i < ALPHA_BLOCKS; i++) a[i] = tp_pool_malloc(alpha, 100);
    for (int i = 0; i < BETA_BLOCKS; i++) b[i] = tp_pool_malloc(beta, 3000);
    for (int i = 0; i < BETA_HUGE; i++) b[BETA_BLOCKS + i] = tp_pool_malloc(beta, 3u << 20);
    for (int i = 0; i < DEFAULT_BLOCKS; i++) d[i] = tp_malloc(64);
    for (int i = 0; i < ALPHA_BLOCKS; i++) memset(a[i], 1, 100);
    if (self_stats && write_self_stats(self_stats) != 0) return 1;
    /* The signals are blocked but while waiting, so none is missed. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    ready();
    while (!stop) sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    for (int i = 0; i < ALPHA_BLOCKS; i++) tp_free(a[i]);
    for (int i = 0; i < BETA_BLOCKS + BETA_HUGE; i++) tp_free(b[i]);
    for (int i = 0; i < DEFAULT_BLOCKS; i++) tp_free(d[i]);
    tp_pool_destroy(alpha);
    tp_pool_destroy(beta);
    for (int i = 0; i < extra_pools; i++) tp_pool_destroy(extra[i]);
    for (int i = 0; i < named_count; i++) tp_pool_destroy(pools[i]);
    return 0;
}

/* ---- the workload ---- */

#define CACHE_MAX 60000
#define REQUEST_BLOCKS 200

static unsigned long rng = 88172645463325252UL;

static unsigned long next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Phases, each a quarter of the run: a cache fills, then loses a random
 * half, fills again with bigger blocks, then is emptied; four huge blocks
 * live through the middle of the last two. All along, requests take small
 * blocks from their own pool and free them at once. (Not with
 * tp_pool_reset: it drops the pool's counters.) */
static int workload(double seconds)
{
    tp_pool *cache = tp_pool_create("cache", NULL), *requests = tp_pool_create("requests", NULL);
    static void *blocks[CACHE_MAX];
    void *big[4] = {0};
    if (!cache || !requests) return 1;
    ready();
    long ticks = (long)(seconds * 100), quarter = ticks / 4;
    for (long t = 0; t < ticks && !stop; t++) {
        int phase = (int)(t / (quarter ? quarter : 1));
        void *request[REQUEST_BLOCKS];
        for (int i = 0; i < REQUEST_BLOCKS; i++)
            if ((request[i] = tp_pool_malloc(requests, 32 + next_random() % 480))) memset(request[i], 0, 16);
        tp_free_bulk(request, REQUEST_BLOCKS);
        for (int i = 0; i < 120; i++) {
            size_t k = next_random() % CACHE_MAX;
            if (phase == 0 && !blocks[k]) {
                size_t size = 64 + next_random() % 2048;
                if ((blocks[k] = tp_pool_malloc(cache, size))) memset(blocks[k], 1, size);
            } else if (phase == 1 && blocks[k] && (next_random() & 1)) {
                tp_free(blocks[k]);
                blocks[k] = NULL;
            } else if (phase == 2 && !blocks[k]) {
                size_t size = 1024 + next_random() % 6144;
                if ((blocks[k] = tp_pool_malloc(cache, size))) memset(blocks[k], 1, size);
            }
        }
        if (phase == 3) { /* a sweep over the cache, emptied by the end */
            size_t from = (size_t)(t - 3 * quarter) * CACHE_MAX / (size_t)quarter;
            for (size_t k = from; k < from + CACHE_MAX / (size_t)quarter + 1 && k < CACHE_MAX; k++) {
                tp_free(blocks[k]);
                blocks[k] = NULL;
            }
        }
        if (t == quarter * 2 + quarter / 2)
            for (int i = 0; i < 4; i++)
                if ((big[i] = tp_malloc(4u << 20))) memset(big[i], 1, 4u << 20);
        if (t == quarter * 3 + quarter / 2)
            for (int i = 0; i < 4; i++) tp_free(big[i]);
        sleep_ms(10);
    }
    for (size_t k = 0; k < CACHE_MAX; k++) tp_free(blocks[k]);
    tp_pool_destroy(cache);
    tp_pool_destroy(requests);
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (argc == 3 && strcmp(argv[1], "--workload") == 0) {
        if (tp_monitor_start() != 0) return 1;
        return workload(atof(argv[2]));
    }
    const char *self_stats = NULL;
    int extra_pools = 0, children = 0;
    const char *exec_seconds = NULL;
    bool usage = argc % 2 == 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--self-stats") == 0) self_stats = argv[i + 1];
        else if (strcmp(argv[i], "--extra-pools") == 0) extra_pools = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--pool") == 0 && named_count < NAMED_MAX) named[named_count++] = argv[i + 1];
        else if (strcmp(argv[i], "--comm") == 0) prctl(PR_SET_NAME, argv[i + 1], 0, 0, 0);
        else if (strcmp(argv[i], "--fork-children") == 0) children = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--exec-child") == 0) exec_seconds = argv[i + 1];
        else usage = true;
    }
    /* Children are forked before this process starts its monitor thread: a
     * fork beside a running thread is what the sanitizers' runtimes do not
     * survive (ASan's allocator lock, TSan refuses), not what is tested. */
    if (children > 0 && fork_children(children) != 0) return 1;
    if (exec_seconds && exec_child(exec_seconds) != 0) return 1;
    if (tp_monitor_start() != 0) {
        perror("tp_monitor_start");
        return 1;
    }
    if (!usage && extra_pools >= 0 && extra_pools <= EXTRA_MAX) return known_blocks(self_stats, extra_pools);
    fprintf(stderr, "usage: publisher [--self-stats DIR] [--extra-pools N] [--pool NAME]... [--comm NAME]\n"
                    "                 [--fork-children N] [--exec-child SECONDS] | --workload SECONDS\n");
    return 2;
}
