/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c: one consistent copy of a process's published statistics.
 *
 * Each read opens the segment anew, maps it read-only, copies it with
 * tpi_shm_read and unmaps it, so a segment that goes away (the process
 * exited and unlinked it) is noticed at the next read. A segment can shrink
 * under a reader only if a new publisher of the same pid truncates it while
 * it is mapped; the copy then faults with SIGBUS, which is caught and read
 * as "busy".
 *
 * A process killed by a signal leaves its segment behind (the unlink runs
 * at exit). Such a segment is told apart by its process: gone, or started
 * after the segment was made (the pid was reused).
 */
#define _GNU_SOURCE
#include "snapshot.h"

#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

tpi_shm *snapshot_new(void)
{
    return calloc(1, sizeof(tpi_shm));
}

/* ---- /proc ----------------------------------------------------------------------------- */

bool process_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

void process_name(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, (int)cap, f)) snprintf(buf, cap, "?");
    if (f) fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

/* The process's start in clock ticks after boot (field 22 of its stat), or
 * -1. The command name (field 2) may hold spaces and parentheses: the
 * fields are counted from the last ')'. */
static double process_start_ticks(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    if (!p) return -1;
    /* after ')' come fields 3, 4, ...: skip to field 22 */
    for (int field = 2; field < 22 && p; field++) p = strchr(p + 1, ' ');
    return p ? strtod(p + 1, NULL) : -1;
}

static double read_first_number(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    double value = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0) {
            value = strtod(line + klen, NULL);
            break;
        }
    }
    fclose(f);
    return value;
}

double process_uptime_s(pid_t pid)
{
    double start = process_start_ticks(pid);
    double uptime = read_first_number("/proc/uptime", "");
    long hz = sysconf(_SC_CLK_TCK);
    if (start < 0 || uptime < 0 || hz <= 0) return -1;
    double up = uptime - start / (double)hz;
    return up < 0 ? 0 : up;
}

/* Whether the process started well after the segment was made: then the
 * segment is left from an earlier process of the same pid. */
static bool segment_older_than_process(pid_t pid, const struct stat *st)
{
    double start = process_start_ticks(pid);
    double boot = read_first_number("/proc/stat", "btime ");
    long hz = sysconf(_SC_CLK_TCK);
    if (start < 0 || boot < 0 || hz <= 0) return false;
    double started = boot + start / (double)hz;
    double made = (double)st->st_ctim.tv_sec + (double)st->st_ctim.tv_nsec * 1e-9;
    return started > made + 2.0; /* btime is in whole seconds */
}

/* ---- reading ---------------------------------------------------------------------------- */

static sigjmp_buf copy_fault;
static volatile sig_atomic_t copying;

static void on_sigbus(int sig)
{
    if (copying) siglongjmp(copy_fault, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* tpi_shm_read with a truncated segment's SIGBUS caught: -1 then. */
static int copy_guarded(const tpi_shm *shm, tpi_shm *out, snapshot_status *header)
{
    static bool installed;
    if (!installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigbus;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, NULL);
        installed = true;
    }
    if (sigsetjmp(copy_fault, 1)) {
        copying = 0;
        *header = SNAPSHOT_BUSY;
        return -1;
    }
    copying = 1;
    /* The header first, to tell another layout from one being set up. */
    uint64_t magic = *(const volatile uint64_t *)&shm->magic;
    uint32_t version = *(const volatile uint32_t *)&shm->version;
    uint32_t stats_size = *(const volatile uint32_t *)&shm->stats_size;
    int rc = -1;
    if (magic != TPI_SHM_MAGIC) *header = magic ? SNAPSHOT_INCOMPATIBLE : SNAPSHOT_BUSY;
    else if (version != TP_STATS_VERSION || stats_size != sizeof(tp_stats)) *header = SNAPSHOT_INCOMPATIBLE;
    else if ((rc = tpi_shm_read(shm, out)) != 0) *header = SNAPSHOT_BUSY;
    copying = 0;
    return rc;
}

snapshot_status snapshot_read(pid_t pid, tpi_shm *out)
{
    char name[64];
    snprintf(name, sizeof name, TPI_SHM_NAME_FORMAT, (long)pid);
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0) {
        if (errno == EACCES) return SNAPSHOT_DENIED;
        return process_alive(pid) ? SNAPSHOT_NOT_PUBLISHING : SNAPSHOT_NO_PROCESS;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return SNAPSHOT_BUSY;
    }
    if ((size_t)st.st_size < sizeof(tpi_shm)) {
        close(fd);
        return st.st_size == 0 ? SNAPSHOT_BUSY : SNAPSHOT_INCOMPATIBLE;
    }
    void *map = mmap(NULL, sizeof(tpi_shm), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return SNAPSHOT_BUSY;
    snapshot_status status = SNAPSHOT_OK;
    copy_guarded(map, out, &status);
    munmap(map, sizeof(tpi_shm));
    if (!process_alive(pid)) return SNAPSHOT_NO_PROCESS;
    if (status != SNAPSHOT_OK) return status;
    if (out->pid != (int64_t)pid || segment_older_than_process(pid, &st)) return SNAPSHOT_STALE;
    if (out->updated_ms == 0) return SNAPSHOT_BUSY; /* set up, not yet written */
    return SNAPSHOT_OK;
}

snapshot_status snapshot_read_wait(pid_t pid, tpi_shm *out, uint64_t wait_ms)
{
    uint64_t until = cli_clock_ms() + wait_ms;
    snapshot_status status;
    while ((status = snapshot_read(pid, out)) == SNAPSHOT_BUSY && cli_clock_ms() < until) cli_sleep_ms(20, NULL);
    return status;
}

tpi_shm *snapshot_first(const char *cmd, pid_t pid)
{
    tpi_shm *snap = snapshot_new();
    if (!snap) {
        fprintf(stderr, "tierpool %s: out of memory\n", cmd);
        return NULL;
    }
    snapshot_status status = snapshot_read_wait(pid, snap, SNAPSHOT_FIRST_WAIT_MS);
    if (status == SNAPSHOT_OK) return snap;
    free(snap);
    snapshot_report(cmd, pid, status);
    return NULL;
}

int snapshot_report(const char *cmd, pid_t pid, snapshot_status status)
{
    long p = (long)pid;
    fprintf(stderr, "tierpool %s: ", cmd);
    switch (status) {
    case SNAPSHOT_OK: fprintf(stderr, "process %ld: no error\n", p); break;
    case SNAPSHOT_NOT_PUBLISHING:
        fprintf(stderr, "process %ld is not publishing statistics (start it with TIERPOOL_PUBLISH=1)\n", p);
        break;
    case SNAPSHOT_NO_PROCESS: fprintf(stderr, "no process %ld is running\n", p); break;
    case SNAPSHOT_STALE:
        fprintf(stderr,
                "process %ld is not publishing statistics (start it with TIERPOOL_PUBLISH=1); "
                "/dev/shm" TPI_SHM_NAME_FORMAT " is left from an earlier process\n",
                p, p);
        break;
    case SNAPSHOT_DENIED:
        fprintf(stderr, "process %ld publishes statistics, but this user may not read them\n", p);
        break;
    case SNAPSHOT_INCOMPATIBLE:
        fprintf(stderr, "process %ld publishes statistics of another tierpool version than this tool's\n", p);
        break;
    case SNAPSHOT_BUSY:
        fprintf(stderr, "process %ld publishes statistics, but no complete snapshot could be read\n", p);
        break;
    }
    return 1;
}

/* ---- listing ------------------------------------------------------------------------------ */

static int compare_pids(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

size_t snapshot_list(pid_t *pids, size_t cap)
{
    DIR *dir = opendir("/dev/shm");
    if (!dir) return 0;
    size_t count = 0;
    tpi_shm *snap = snapshot_new();
    struct dirent *entry;
    while (snap && (entry = readdir(dir))) {
        pid_t pid;
        if (strncmp(entry->d_name, "tierpool.", 9) != 0 || !cli_parse_pid(entry->d_name + 9, &pid)) continue;
        if (snapshot_read(pid, snap) != SNAPSHOT_OK) continue;
        if (count < cap) pids[count] = pid;
        count++;
    }
    closedir(dir);
    free(snap);
    qsort(pids, count < cap ? count : cap, sizeof *pids, compare_pids);
    return count;
}

void snapshot_print_list(FILE *out, const pid_t *pids, size_t count)
{
    tpi_shm *snap = snapshot_new();
    if (!snap) return;
    fprintf(out, "%8s  %-16s %5s %9s %9s %9s %9s\n", "PID", "COMMAND", "POOLS", "LIVE", "COMMITTED", "RESIDENT",
            "UPDATED");
    for (size_t i = 0; i < count; i++) {
        if (snapshot_read(pids[i], snap) != SNAPSHOT_OK) continue;
        char name[64], live[16], committed[16], resident[16];
        process_name(pids[i], name, sizeof name);
        cli_format_bytes(live, sizeof live, (double)snap->process.live_bytes);
        cli_format_bytes(committed, sizeof committed, (double)snap->process.committed_bytes);
        cli_format_bytes(resident, sizeof resident, (double)snap->process.resident_bytes);
        uint64_t now = cli_clock_ms();
        double age = now > snap->updated_ms ? (double)(now - snap->updated_ms) / 1000.0 : 0.0;
        fprintf(out, "%8ld  %-16s %5u %9s %9s %9s %7.1fs\n", (long)pids[i], name, snap->pool_count, live, committed,
                resident, age);
    }
    free(snap);
}
