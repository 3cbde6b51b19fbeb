/* SPDX-License-Identifier: MIT */
/*
 * monitor.c: publishing statistics to shared memory for `tierpool top`,
 * `tierpool stats PID` and friends in another process.
 *
 * With TIERPOOL_PUBLISH=1 (or tp_monitor_start()) a helper thread gathers
 * tp_stats for every pool each PUBLISH_INTERVAL and writes them into the
 * segment "/tierpool.<pid>" under a sequence counter (tierpool_segment.h). The thread
 * starts lazily from a slow path that holds no lock, restarts in a forked
 * child (which publishes under its own pid), and the segment is unlinked at
 * exit. Nothing of this touches the allocation fast paths.
 *
 * The segment is created exclusively, never opened: a name another user
 * holds makes the process publish under a fresh one and say so. Before each
 * update the thread checks that its file is still there whole, and makes it
 * anew if not (removed, or truncated: writing there would raise SIGBUS).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Atomic int tpi_monitor_state; /* 0 off, 1 starting or running */
/* The monitor thread's own once it runs (set up before it starts): */
static tpi_shm *tpi_monitor_shm;      /* the mapping written */
static char tpi_monitor_name[64];     /* its name, "/tierpool.<pid>[.<suffix>]" */
static dev_t tpi_monitor_dev;         /* and its file, to notice it removed or replaced */
static ino_t tpi_monitor_ino;
static pid_t tpi_monitor_pid;         /* the process it was made for */
static bool tpi_monitor_forked;       /* a forked child: publish from the second interval */
static _Atomic bool tpi_monitor_warned;
/* Held while the segment is made or unlinked: once the exit handler has
 * unlinked it, the thread (which runs on through exit) must not make it
 * anew. */
static pthread_mutex_t tpi_monitor_lock = PTHREAD_MUTEX_INITIALIZER;
static bool tpi_monitor_exiting;

/* One line on stderr, once per process: what went wrong with publishing. */
__attribute__((format(printf, 1, 2))) static void tpi_monitor_say(const char *fmt, ...)
{
    if (atomic_exchange(&tpi_monitor_warned, true)) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0 && write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0) return;
}

static void tpi_monitor_publish(tpi_shm *shm)
{
    static tpi_shm scratch; /* the monitor thread's only: built, then copied in */
    /* Pools are gathered outside the pools lock (tp_stats_get takes each
     * pool's own), so first list them. */
    static tp_pool *pools[TPI_SHM_POOLS]; /* the monitor thread's only */
    uint32_t count = (uint32_t)tpi_pools_list(pools, TPI_SHM_POOLS);
    tp_stats_get(NULL, &scratch.process);
    for (uint32_t i = 0; i < count; i++) tp_stats_get(pools[i], &scratch.pools[i]);
    /* Odd while writing: the acquire half keeps the writes below after it. */
    atomic_fetch_add_explicit(&shm->seq, 1, memory_order_acq_rel);
    shm->pool_count = count;
    shm->updated_ms = tpi_os_clock_ms();
    shm->interval_ms = (uint64_t)TPI_OPTION(publish_interval_ms);
    memcpy(&shm->process, &scratch.process, sizeof shm->process);
    memcpy(shm->pools, scratch.pools, count * sizeof(tp_stats));
    atomic_fetch_add_explicit(&shm->seq, 1, memory_order_release);
}

static void tpi_monitor_unlink(void)
{
    pthread_mutex_lock(&tpi_monitor_lock);
    tpi_monitor_exiting = true;
    if (tpi_monitor_shm && tpi_monitor_pid == getpid()) shm_unlink(tpi_monitor_name);
    pthread_mutex_unlock(&tpi_monitor_lock);
}

static uint32_t tpi_monitor_random(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == sizeof r) return r;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint32_t)t.tv_nsec ^ (uint32_t)(uintptr_t)&t;
}

/* Creates the segment exclusively: "/tierpool.<pid>", or when another user
 * holds that name (squatting it, or left from their process of this pid),
 * a fresh "/tierpool.<pid>.<random>", which readers find as well. */
static int tpi_monitor_open(pid_t pid, char *name, size_t cap)
{
    snprintf(name, cap, TPI_SHM_NAME_FORMAT, (long)pid);
    /* Ours, left by a killed process whose pid was reused: unlink it, so its
     * readers keep their (stale) mapping intact. Another user's stays. */
    shm_unlink(name);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd >= 0 || errno != EEXIST) return fd;
    char taken[64];
    snprintf(taken, sizeof taken, "%s", name);
    for (int tries = 0; fd < 0 && tries < 4; tries++) {
        snprintf(name, cap, TPI_SHM_NAME_FORMAT ".%08x", (long)pid, (unsigned)tpi_monitor_random());
        fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd >= 0)
        tpi_monitor_say("tierpool: /dev/shm%s is taken by another user; publishing to /dev/shm%s instead\n", taken,
                        name);
    return fd;
}

/* Creates and maps the segment, its header written; NULL (and a line on
 * stderr, once) if it cannot. */
static tpi_shm *tpi_monitor_create(void)
{
    char name[64];
    pid_t pid = getpid();
    int fd = tpi_monitor_open(pid, name, sizeof name);
    if (fd < 0) {
        int err = errno;
        tpi_monitor_say("tierpool: cannot publish statistics to /dev/shm%s: %s\n", name, strerror(err));
        return NULL;
    }
    tpi_shm *shm = NULL;
    struct stat st;
    if (ftruncate(fd, (off_t)sizeof(tpi_shm)) == 0 && fstat(fd, &st) == 0) {
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
    struct stat ns;
    shm->pid_ns = stat("/proc/self/ns/pid", &ns) == 0 ? (uint64_t)ns.st_ino : 0;
    shm->interval_ms = (uint64_t)TPI_OPTION(publish_interval_ms);
    atomic_store_explicit(&shm->seq, 0, memory_order_relaxed);
    /* Readers check the magic after a consistent copy, so its order with
     * the fields above does not matter. */
    shm->magic = TPI_SHM_MAGIC;
    if (!tpi_monitor_pid) atexit(tpi_monitor_unlink);
    tpi_monitor_pid = pid;
    tpi_monitor_dev = st.st_dev;
    tpi_monitor_ino = st.st_ino;
    snprintf(tpi_monitor_name, sizeof tpi_monitor_name, "%s", name);
    return shm;
}

/* Whether the segment is still there whole. Someone of this user may have
 * removed it (rm, a reader pruning) or truncated it, and writing past the
 * end of a truncated file would kill the process with SIGBUS: then it is
 * made anew. (Only a truncation between this check and the copy, a few
 * microseconds a second, could still do that.) */
static bool tpi_monitor_intact(void)
{
    char path[80];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm%s", tpi_monitor_name);
    return stat(path, &st) == 0 && st.st_dev == tpi_monitor_dev && st.st_ino == tpi_monitor_ino &&
           (size_t)st.st_size >= sizeof(tpi_shm);
}

static int (*tpi_monitor_profile_writer)(const char *path, const char *pool);

void tpi_monitor_set_profile_writer(int (*fn)(const char *path, const char *pool))
{
    __atomic_store_n(&tpi_monitor_profile_writer, fn, __ATOMIC_RELEASE);
}

/* A request of `tierpool profile` in the segment, answered. */
static void tpi_monitor_profile(tpi_shm *shm)
{
    tpi_shm_profile *req = &shm->profile;
    uint64_t number = atomic_load_explicit(&req->request, memory_order_acquire);
    if (number == atomic_load_explicit(&req->done, memory_order_relaxed)) return;
    char path[TPI_SHM_PATH_MAX], pool[sizeof req->pool];
    memcpy(path, req->path, sizeof path);
    memcpy(pool, req->pool, sizeof pool);
    path[sizeof path - 1] = '\0';
    pool[sizeof pool - 1] = '\0';
    int (*writer)(const char *, const char *) = __atomic_load_n(&tpi_monitor_profile_writer, __ATOMIC_ACQUIRE);
    /* Only a file named from the root: the tool's current folder is not ours. */
    int status = path[0] != '/' ? EINVAL : writer ? writer(path, pool) : ENOSYS;
    req->status = status;
    atomic_store_explicit(&req->done, number, memory_order_release);
}

static void *tpi_monitor_main(void *arg)
{
    (void)arg;
    for (bool first = true;; first = false) {
        /* A forked child publishes from its second interval, so that one
         * that soon execs or _exits (which skip the unlink at exit) leaves
         * no segment behind. */
        if (!(first && tpi_monitor_forked)) {
            pthread_mutex_lock(&tpi_monitor_lock);
            if (tpi_monitor_shm && !tpi_monitor_exiting && !tpi_monitor_intact()) {
                munmap(tpi_monitor_shm, sizeof(tpi_shm));
                tpi_monitor_shm = NULL;
            }
            if (!tpi_monitor_shm && !tpi_monitor_exiting) tpi_monitor_shm = tpi_monitor_create();
            pthread_mutex_unlock(&tpi_monitor_lock);
            if (tpi_monitor_shm) tpi_monitor_publish(tpi_monitor_shm);
        }
        /* The interval; while the process samples for heap profiles, in
         * slices short enough that a request is answered at once (else one
         * is answered once an interval, with a profile of nothing). */
        for (uint64_t ms = (uint64_t)TPI_OPTION(publish_interval_ms), slice; ms > 0; ms -= slice) {
            slice = ms < TPI_SHM_PROFILE_POLL_MS || !TPI_OPTION(profile) ? ms : TPI_SHM_PROFILE_POLL_MS;
            struct timespec t = {0, (long)slice * 1000000L};
            nanosleep(&t, NULL);
            /* Read only while whole: a truncated file would raise SIGBUS
             * (tpi_monitor_intact). */
            pthread_mutex_lock(&tpi_monitor_lock);
            tpi_shm *shm = !tpi_monitor_exiting && tpi_monitor_shm && tpi_monitor_intact() ? tpi_monitor_shm : NULL;
            pthread_mutex_unlock(&tpi_monitor_lock);
            if (shm) tpi_monitor_profile(shm);
        }
    }
    return NULL;
}

int tp_monitor_start(void)
{
    tpi_services_init();
    int expected = 0;
    if (!atomic_compare_exchange_strong(&tpi_monitor_state, &expected, 1)) return 0;
    /* Made here, so that a failure is this call's; a forked child's later. */
    if (!tpi_monitor_forked && !(tpi_monitor_shm = tpi_monitor_create())) {
        atomic_store(&tpi_monitor_state, 0);
        errno = ENOMEM;
        return -1;
    }
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&thread, &attr, tpi_monitor_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        atomic_store(&tpi_monitor_state, 0);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void tpi_monitor_ensure(void)
{
    if (TPI_OPTION(publish) && !atomic_load_explicit(&tpi_monitor_state, memory_order_relaxed))
        tp_monitor_start();
}

/* In a forked child the thread is gone, and the mapping is the parent's:
 * publish anew under the child's pid (monitor thread, second interval). */
void tpi_monitor_after_fork(void)
{
    pthread_mutex_init(&tpi_monitor_lock, NULL); /* the parent's thread may have held it */
    if (tpi_monitor_shm) munmap(tpi_monitor_shm, sizeof(tpi_shm));
    tpi_monitor_shm = NULL;
    tpi_monitor_forked = true;
    atomic_store(&tpi_monitor_state, 0);
}
