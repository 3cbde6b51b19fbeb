/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c: one consistent copy of a process's published statistics, and
 * the segments in the shared-memory folder.
 *
 * Anyone may create a file in /dev/shm, so nothing there is trusted: a
 * segment of process PID is a regular file (no link is followed, no FIFO or
 * device opened) named "tierpool.PID" or "tierpool.PID.SUFFIX" (the name a
 * publisher falls back to when another user holds the first), owned by the
 * user the process runs as or by this one, at least as long as the layout,
 * and naming PID inside. What is copied out is then checked (snapshot_check):
 * counts within their arrays, names NUL-terminated, the one floating-point
 * figure finite. Names are escaped where they are printed.
 *
 * Each read opens the segment anew, maps it read-only, copies it with
 * tpi_shm_read and unmaps it, so a segment that goes away (the process
 * exited and unlinked it) is noticed at the next read. A segment can shrink
 * under a reader (its owner truncates it); the copy then faults with SIGBUS,
 * which is caught and read as "busy".
 *
 * A process killed by a signal, or one that left by _exit or exec, leaves
 * its segment behind. Such a segment is told apart by its process: gone,
 * started after the segment was made (the pid was reused), or no longer
 * mapping it. Readers remove those they may (snapshot_prune).
 */
#define _GNU_SOURCE
#include "snapshot.h"

#include "cli.h"
#include "tierpool_segment.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
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

void process_name_shown(pid_t pid, char *buf, size_t cap)
{
    char raw[64];
    process_name(pid, raw, sizeof raw);
    tpi_escape(buf, cap, raw, sizeof raw, TPI_ESCAPE_TEXT);
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

/* ---- the folder --------------------------------------------------------------------- */

static const char *segment_dir = "/dev/shm";

void snapshot_set_dir(const char *dir)
{
    segment_dir = dir;
}

/* The pid a segment's name is for ("tierpool.PID" or "tierpool.PID.SUFFIX"). */
static bool segment_name_pid(const char *name, pid_t *pid)
{
    if (strncmp(name, TPI_SHM_PREFIX, strlen(TPI_SHM_PREFIX)) != 0) return false;
    char digits[16];
    const char *p = name + strlen(TPI_SHM_PREFIX);
    size_t n = strcspn(p, ".");
    if (n == 0 || n >= sizeof digits || (p[n] == '.' && !p[n + 1])) return false;
    memcpy(digits, p, n);
    digits[n] = '\0';
    return cli_parse_pid(digits, pid);
}

/* The effective uid of process pid, or (uid_t)-1 if unknown. */
static uid_t process_uid(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return (uid_t)-1;
    unsigned long real, effective;
    uid_t uid = (uid_t)-1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Uid: %lu %lu", &real, &effective) == 2) uid = (uid_t)effective;
    fclose(f);
    return uid;
}

uint64_t snapshot_pid_namespace(void)
{
    static uint64_t ns;
    struct stat st;
    if (!ns && stat("/proc/self/ns/pid", &st) == 0) ns = (uint64_t)st.st_ino;
    return ns;
}

/* Whether process pid maps the file of inode ino (its /proc/PID/maps), or
 * -1 if that cannot be read. */
static int process_maps_inode(pid_t pid, ino_t ino)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int found = 0;
    unsigned long long inode;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "%*s %*s %*s %*s %llu", &inode) == 1 && inode == (unsigned long long)ino;
    bool whole = !ferror(f);
    fclose(f);
    return whole ? found : -1;
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

static void check_stats(tp_stats *s)
{
    s->pool[sizeof s->pool - 1] = '\0';
    if (!(s->fragmentation >= 0.0 && s->fragmentation <= 1.0)) s->fragmentation = 0.0; /* NaN too */
}

snapshot_status snapshot_check(tpi_shm *snap, pid_t pid)
{
    if (snap->magic != TPI_SHM_MAGIC || snap->version != TP_STATS_VERSION || snap->stats_size != sizeof(tp_stats))
        return SNAPSHOT_INCOMPATIBLE;
    uint64_t ns = snapshot_pid_namespace();
    if (snap->pid_ns && ns && snap->pid_ns != ns) return SNAPSHOT_ELSEWHERE;
    if (snap->pid != (int64_t)pid) return SNAPSHOT_STALE;
    if (snap->pool_count > TPI_SHM_POOLS) return SNAPSHOT_INCOMPATIBLE;
    check_stats(&snap->process);
    for (uint32_t i = 0; i < snap->pool_count; i++) check_stats(&snap->pools[i]);
    if (snap->interval_ms < 1) snap->interval_ms = 1;
    if (snap->interval_ms > 3600000) snap->interval_ms = 3600000;
    if (snap->updated_ms == 0) return SNAPSHOT_BUSY; /* set up, not yet written */
    return SNAPSHOT_OK;
}

/* What a file of the folder is to a reader of process pid's statistics:
 * SNAPSHOT_OK if it may be read, with its status in *st. */
static snapshot_status segment_vet(int dir, const char *name, pid_t pid, struct stat *st)
{
    if (fstatat(dir, name, st, AT_SYMLINK_NOFOLLOW) != 0)
        return process_alive(pid) ? SNAPSHOT_NOT_PUBLISHING : SNAPSHOT_NO_PROCESS;
    if (!S_ISREG(st->st_mode)) return SNAPSHOT_UNTRUSTED;
    if (st->st_uid != geteuid() && st->st_uid != process_uid(pid)) return SNAPSHOT_UNTRUSTED;
    if ((size_t)st->st_size < sizeof(tpi_shm)) return st->st_size == 0 ? SNAPSHOT_BUSY : SNAPSHOT_INCOMPATIBLE;
    return SNAPSHOT_OK;
}

/* Reads the segment `name` of the folder as process pid's. */
static snapshot_status segment_read(int dir, const char *name, pid_t pid, tpi_shm *out)
{
    struct stat st, opened;
    snapshot_status status = segment_vet(dir, name, pid, &st);
    if (status != SNAPSHOT_OK) return status;
    /* Never a link, never blocking, and the file vetted above. */
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return errno == EACCES ? SNAPSHOT_DENIED : SNAPSHOT_BUSY;
    if (fstat(fd, &opened) != 0 || opened.st_ino != st.st_ino || opened.st_dev != st.st_dev ||
        !S_ISREG(opened.st_mode) || (size_t)opened.st_size < sizeof(tpi_shm)) {
        close(fd);
        return SNAPSHOT_BUSY; /* replaced meanwhile: read it next time */
    }
    void *map = mmap(NULL, sizeof(tpi_shm), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return SNAPSHOT_BUSY;
    copy_guarded(map, out, &status);
    munmap(map, sizeof(tpi_shm));
    if (!process_alive(pid)) return SNAPSHOT_NO_PROCESS;
    if (status != SNAPSHOT_OK) return status;
    if ((status = snapshot_check(out, pid)) != SNAPSHOT_OK) return status;
    return segment_older_than_process(pid, &st) ? SNAPSHOT_STALE : SNAPSHOT_OK;
}

/* Which of two statuses tells more of why a read failed. */
static snapshot_status more_telling(snapshot_status a, snapshot_status b)
{
    return a == SNAPSHOT_NOT_PUBLISHING || a == SNAPSHOT_NO_PROCESS ? b : a;
}

/* Reads process pid's segment from the folder `dir`, trying the names a
 * publisher falls back to; the name read in name[cap] when SNAPSHOT_OK. */
static snapshot_status segment_find(int dir, pid_t pid, tpi_shm *out, char *name, size_t cap)
{
    snprintf(name, cap, TPI_SHM_PREFIX "%ld", (long)pid);
    snapshot_status status = segment_read(dir, name, pid, out);
    if (status != SNAPSHOT_OK) {
        DIR *d = fdopendir(dup(dir));
        struct dirent *entry;
        size_t len = strlen(name);
        while (d && status != SNAPSHOT_OK && (entry = readdir(d)))
            if (strncmp(entry->d_name, name, len) == 0 && entry->d_name[len] == '.') {
                status = more_telling(segment_read(dir, entry->d_name, pid, out), status);
                if (status == SNAPSHOT_OK) snprintf(name, cap, "%s", entry->d_name);
            }
        if (d) closedir(d);
    }
    return status;
}

snapshot_status snapshot_read(pid_t pid, tpi_shm *out)
{
    int dir = open(segment_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return process_alive(pid) ? SNAPSHOT_NOT_PUBLISHING : SNAPSHOT_NO_PROCESS;
    char name[300];
    snapshot_status status = segment_find(dir, pid, out, name, sizeof name);
    close(dir);
    return status;
}

snapshot_status snapshot_map_writable(pid_t pid, tpi_shm **map)
{
    *map = NULL;
    tpi_shm *copy = snapshot_new();
    if (!copy) return SNAPSHOT_BUSY;
    int dir = open(segment_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        free(copy);
        return process_alive(pid) ? SNAPSHOT_NOT_PUBLISHING : SNAPSHOT_NO_PROCESS;
    }
    char name[300];
    snapshot_status status = segment_find(dir, pid, copy, name, sizeof name);
    free(copy);
    if (status == SNAPSHOT_OK) {
        struct stat st;
        int fd = openat(dir, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            status = errno == EACCES ? SNAPSHOT_DENIED : SNAPSHOT_BUSY;
        } else {
            void *m = MAP_FAILED;
            if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size >= sizeof(tpi_shm))
                m = mmap(NULL, sizeof(tpi_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);
            if (m == MAP_FAILED) status = SNAPSHOT_BUSY;
            else *map = m;
        }
    }
    close(dir);
    return status;
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
                "%s/" TPI_SHM_PREFIX "%ld is left from an earlier process\n",
                p, segment_dir, p);
        break;
    case SNAPSHOT_DENIED:
        fprintf(stderr, "process %ld publishes statistics, but this user may not read them\n", p);
        break;
    case SNAPSHOT_UNTRUSTED:
        fprintf(stderr,
                "%s/" TPI_SHM_PREFIX "%ld is not a segment of process %ld (not a regular file, or not its "
                "user's): ignored\n",
                segment_dir, p, p);
        break;
    case SNAPSHOT_ELSEWHERE:
        fprintf(stderr,
                "%s/" TPI_SHM_PREFIX "%ld is from a process of another pid namespace (a container): run the tool "
                "in its namespace\n",
                segment_dir, p);
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

/* ---- the folder's segments ------------------------------------------------------------- */

/* Whether the segment `name` names a pid of another pid namespace: its pid
 * says nothing of the processes here. */
static bool segment_elsewhere(int dir, const char *name)
{
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return false;
    tpi_shm head; /* pread, not a mapping: a short file gives a short read, no SIGBUS */
    ssize_t n = pread(fd, &head, offsetof(tpi_shm, process), 0);
    close(fd);
    uint64_t ns = snapshot_pid_namespace();
    return n == (ssize_t)offsetof(tpi_shm, process) && head.magic == TPI_SHM_MAGIC && head.pid_ns && ns &&
           head.pid_ns != ns;
}

/* Why the segment `name` (status *st) of process pid is left behind, or
 * NULL if it is not. */
static const char *segment_left_behind(pid_t pid, const struct stat *st)
{
    if (!process_alive(pid)) return "its process is gone";
    if (segment_older_than_process(pid, st)) return "its process is gone, the pid reused";
    /* A process that left by exec no longer maps it; a new one maps it
     * right after making it, so only older ones are judged. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double age = (double)(now.tv_sec - st->st_ctim.tv_sec) + (double)(now.tv_nsec - st->st_ctim.tv_nsec) * 1e-9;
    if (age > SNAPSHOT_PRUNE_AGE_S && process_maps_inode(pid, st->st_ino) == 0)
        return "its process no longer maps it (exec)";
    return NULL;
}

size_t snapshot_prune(FILE *report)
{
    int dir = open(segment_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dir >= 0 ? fdopendir(dup(dir)) : NULL;
    size_t removed = 0;
    struct dirent *entry;
    uid_t self = geteuid();
    while (d && (entry = readdir(d))) {
        pid_t pid;
        struct stat st;
        if (!segment_name_pid(entry->d_name, &pid) || fstatat(dir, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || (st.st_uid != self && self != 0))
            continue;
        const char *why = segment_left_behind(pid, &st);
        if (!why || segment_elsewhere(dir, entry->d_name) || unlinkat(dir, entry->d_name, 0) != 0) continue;
        removed++;
        if (report) {
            char shown[6 * 256 + 1];
            tpi_escape(shown, sizeof shown, entry->d_name, strlen(entry->d_name), TPI_ESCAPE_TEXT);
            fprintf(report, "removed %s/%s: %s\n", segment_dir, shown, why);
        }
    }
    if (d) closedir(d);
    if (dir >= 0) close(dir);
    return removed;
}

static int compare_pids(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

size_t snapshot_list(pid_t *pids, size_t cap)
{
    int dir = open(segment_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dir >= 0 ? fdopendir(dup(dir)) : NULL;
    size_t count = 0;
    tpi_shm *snap = snapshot_new();
    struct dirent *entry;
    while (d && snap && (entry = readdir(d))) {
        pid_t pid;
        if (!segment_name_pid(entry->d_name, &pid) || segment_read(dir, entry->d_name, pid, snap) != SNAPSHOT_OK)
            continue;
        bool seen = false; /* two segments of one pid: listed once */
        for (size_t i = 0; i < count && i < cap && !seen; i++) seen = pids[i] == pid;
        if (seen) continue;
        if (count < cap) pids[count] = pid;
        count++;
    }
    if (d) closedir(d);
    if (dir >= 0) close(dir);
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
        char name[PROCESS_NAME_SHOWN], live[16], committed[16], resident[16];
        process_name_shown(pids[i], name, sizeof name);
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
