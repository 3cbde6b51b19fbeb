/* SPDX-License-Identifier: MIT */
/*
 * monitor.c: publishing statistics to shared memory for `tierpool top`,
 * `tierpool stats PID` and friends in another process.
 *
 * With TIERPOOL_PUBLISH=1 (or tp_monitor_start()) a helper thread gathers
 * tp_stats for every pool each PUBLISH_INTERVAL and writes them into the
 * segment "/tierpool.<pid>" under a sequence counter (monitor.h). The thread
 * starts lazily from a slow path that holds no lock, restarts in a forked
 * child (which publishes under its own pid), and the segment is unlinked at
 * exit. Nothing of this touches the allocation fast paths.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static _Atomic int tpi_monitor_state; /* 0 off, 1 starting or running */
static tpi_shm *tpi_monitor_shm;
static pid_t tpi_monitor_pid;

/* Pools are gathered outside the pools lock (tp_stats_get takes each
 * pool's own), so first list them. */
typedef struct tpi_pool_refs {
    tp_pool *pools[TPI_SHM_POOLS];
    uint32_t count;
} tpi_pool_refs;

static void tpi_monitor_list(tp_pool *pool, void *arg)
{
    tpi_pool_refs *refs = arg;
    if (refs->count < TPI_SHM_POOLS) refs->pools[refs->count++] = pool;
}

static void tpi_monitor_publish(tpi_shm *shm)
{
    static tpi_shm scratch; /* the monitor thread's only: built, then copied in */
    tpi_pool_refs refs = {.count = 0};
    tpi_pools_each(tpi_monitor_list, &refs);
    tp_stats_get(NULL, &scratch.process);
    for (uint32_t i = 0; i < refs.count; i++) tp_stats_get(refs.pools[i], &scratch.pools[i]);
    /* Odd while writing: the acquire half keeps the writes below after it. */
    atomic_fetch_add_explicit(&shm->seq, 1, memory_order_acq_rel);
    shm->pool_count = refs.count;
    shm->updated_ms = tpi_os_clock_ms();
    shm->interval_ms = (uint64_t)TPI_OPTION(publish_interval_ms);
    memcpy(&shm->process, &scratch.process, sizeof shm->process);
    memcpy(shm->pools, scratch.pools, refs.count * sizeof(tp_stats));
    atomic_fetch_add_explicit(&shm->seq, 1, memory_order_release);
}

static void tpi_monitor_unlink(void)
{
    if (!tpi_monitor_shm || tpi_monitor_pid != getpid()) return;
    char name[64];
    snprintf(name, sizeof name, TPI_SHM_NAME_FORMAT, (long)tpi_monitor_pid);
    shm_unlink(name);
}

static tpi_shm *tpi_monitor_create(void)
{
    char name[64];
    pid_t pid = getpid();
    snprintf(name, sizeof name, TPI_SHM_NAME_FORMAT, (long)pid);
    /* A segment of this name may be left by a killed process whose pid was
     * reused: unlink it, so its readers keep their (stale) mapping intact. */
    shm_unlink(name);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) return NULL;
    tpi_shm *shm = NULL;
    if (ftruncate(fd, (off_t)sizeof(tpi_shm)) == 0) {
        void *p = mmap(NULL, sizeof(tpi_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) shm = p;
    }
    close(fd);
    if (!shm) {
        shm_unlink(name);
        return NULL;
    }
    shm->version = TP_STATS_VERSION;
    shm->stats_size = sizeof(tp_stats);
    shm->pid = pid;
    shm->interval_ms = (uint64_t)TPI_OPTION(publish_interval_ms);
    atomic_store_explicit(&shm->seq, 0, memory_order_relaxed);
    /* Readers check the magic after a consistent copy, so its order with
     * the fields above does not matter. */
    shm->magic = TPI_SHM_MAGIC;
    if (!tpi_monitor_shm) atexit(tpi_monitor_unlink);
    tpi_monitor_pid = pid;
    return shm;
}

static void *tpi_monitor_main(void *arg)
{
    tpi_shm *shm = arg;
    for (;;) {
        tpi_monitor_publish(shm);
        uint64_t ms = (uint64_t)TPI_OPTION(publish_interval_ms);
        struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    return NULL;
}

int tp_monitor_start(void)
{
    tpi_process_ensure_init();
    int expected = 0;
    if (!atomic_compare_exchange_strong(&tpi_monitor_state, &expected, 1)) return 0;
    tpi_shm *shm = tpi_monitor_create();
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = shm && pthread_create(&thread, &attr, tpi_monitor_main, shm) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        atomic_store(&tpi_monitor_state, 0);
        errno = ENOMEM;
        return -1;
    }
    tpi_monitor_shm = shm;
    return 0;
}

void tpi_monitor_ensure(void)
{
    if (TPI_OPTION(publish) && !atomic_load_explicit(&tpi_monitor_state, memory_order_relaxed))
        tp_monitor_start();
}

/* In a forked child the thread is gone: publish anew under the child's pid. */
void tpi_monitor_after_fork(void)
{
    atomic_store(&tpi_monitor_state, 0);
}
