/* SPDX-License-Identifier: MIT */
/*
 * limit.c: the memory tierpool holds committed, the limits on it, and the
 * pressure they put on the purge delay (limit.h has the vocabulary,
 * docs/tuning.md the policy and its measurements).
 *
 * Counting: the page source calls tpi_limit_commit when it takes memory
 * into use that may not be resident yet (a clean slice or run page, a chunk
 * header, a huge mapping) and tpi_limit_release when memory goes back
 * (purged, unmapped). One atomic add each, on slow paths only. Past the
 * hard limit (the MEMORY_LIMIT option) the commit is refused and the
 * allocation fails upward, where oom.c purges and calls the handler.
 *
 * Limits: the options MEMORY_LIMIT (hard) and MEMORY_HIGH (soft) bound
 * tierpool's committed bytes; the cgroup's memory.max and memory.high (v1:
 * memory.limit_in_bytes and memory.soft_limit_in_bytes, the smallest along
 * the cgroup's ancestors) and the machine's MemTotal bound the cgroup's
 * usage, of which tierpool's committed bytes are a part: the rest (`other`,
 * the usage less tierpool's at the last read) is taken off those limits.
 * The nearest of them is the one with the least room left.
 *
 * Pressure: from 3/4 of the nearest limit (the pressure zone) the purge
 * delay shrinks linearly, to zero at 7/8 (the last eighth is the margin for
 * what is allocated before the next pass), and so it does under the
 * kernel's pressure-stall information (PSI some avg10 from TPI_PSI_LOW to
 * TPI_PSI_HIGH percent, or a PSI trigger that fired in the last refresh
 * period). Each rise through 1/TPI_PRESSURE_STEPS of the zone bumps tpi_pressure_gen,
 * which makes a purge pass due at once (tpi_decay_due).
 *
 * Files are read below TIERPOOL_SYSFS_ROOT when that is set: a directory
 * laid out like / (proc/self/cgroup, proc/meminfo, proc/pressure/memory,
 * sys/fs/cgroup/...), for tests to feed limits and pressure. It is not an
 * option: a test hook, read with secure_getenv.
 */
#define _GNU_SOURCE /* secure_getenv */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic size_t tpi_committed;
static _Atomic uint64_t tpi_refusals;
static _Atomic uint64_t tpi_handler_calls; /* counted here for the statistics, called by oom.c */
_Atomic uint32_t tpi_pressure_gen;
static _Atomic size_t tpi_gen_mark;   /* committed bytes at which gen is bumped next */
static _Atomic size_t tpi_zone_start; /* committed bytes from which pressure starts */
/* The options the two above were placed with: a change places them again. */
static _Atomic long long tpi_mark_hard, tpi_mark_high;

/* What the last refresh read; 0 = none. Written under tpi_limit_lock,
 * read without it. */
static _Atomic size_t tpi_cg_max, tpi_cg_high, tpi_cg_other, tpi_machine;
static _Atomic unsigned tpi_psi_some;     /* avg10 in hundredths of a percent */
static _Atomic uint64_t tpi_psi_event_ms; /* when the PSI trigger last fired */
static _Atomic uint64_t tpi_next_refresh;
static pthread_mutex_t tpi_limit_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- counting ------------------------------------------------------------------- */

static size_t tpi_load(_Atomic size_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* The nearest limit in bytes of tierpool's committed memory (SIZE_MAX for
 * none), and its source. */
static size_t tpi_limit_room(unsigned *source)
{
    size_t best = SIZE_MAX, other = tpi_load(&tpi_cg_other);
    unsigned src = TPI_LIMIT_NONE;
    struct { size_t limit, other; unsigned source; } c[] = {
        {(size_t)TPI_OPTION(memory_limit), 0, TPI_LIMIT_OPTION_HARD},
        {(size_t)TPI_OPTION(memory_high), 0, TPI_LIMIT_OPTION_HIGH},
        {tpi_load(&tpi_cg_max), other, TPI_LIMIT_CGROUP_MAX},
        {tpi_load(&tpi_cg_high), other, TPI_LIMIT_CGROUP_HIGH},
        {tpi_load(&tpi_machine), other, TPI_LIMIT_MACHINE},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        if (!c[i].limit) continue;
        size_t room = c[i].limit > c[i].other ? c[i].limit - c[i].other : 0;
        if (room < best) {
            best = room;
            src = c[i].source;
        }
    }
    if (source) *source = src;
    return best;
}

/* The pressure zone of a limit leaving `room` bytes: from *start the delay
 * shrinks, from *full it is zero. */
static void tpi_zone(size_t room, size_t *start, size_t *full)
{
    *start = room - room / TPI_PRESSURE_ZONE_DIV;
    *full = room - room / TPI_PRESSURE_FULL_DIV;
}

/* Committed bytes reached the mark: a step of pressure (a purge pass is due
 * now), or the mark moves up to the start of the zone. */
static tpi_cold void tpi_pressure_step(size_t total)
{
    atomic_store_explicit(&tpi_mark_hard, TPI_OPTION(memory_limit), memory_order_relaxed);
    atomic_store_explicit(&tpi_mark_high, TPI_OPTION(memory_high), memory_order_relaxed);
    size_t room = tpi_limit_room(NULL), start, full;
    if (room == SIZE_MAX) {
        atomic_store_explicit(&tpi_zone_start, SIZE_MAX, memory_order_relaxed);
        atomic_store_explicit(&tpi_gen_mark, SIZE_MAX, memory_order_relaxed);
        return;
    }
    tpi_zone(room, &start, &full);
    atomic_store_explicit(&tpi_zone_start, start, memory_order_relaxed);
    if (total < start) {
        atomic_store_explicit(&tpi_gen_mark, start, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&tpi_pressure_gen, 1, memory_order_relaxed);
    size_t step = (full - start) / TPI_PRESSURE_STEPS;
    atomic_store_explicit(&tpi_gen_mark, total + (step ? step : 1), memory_order_relaxed);
}

bool tpi_limit_commit(size_t bytes)
{
    size_t total = atomic_fetch_add_explicit(&tpi_committed, bytes, memory_order_relaxed) + bytes;
    size_t hard = (size_t)TPI_OPTION(memory_limit);
    if (tpi_unlikely(hard && total > hard)) {
        atomic_fetch_sub_explicit(&tpi_committed, bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&tpi_refusals, 1, memory_order_relaxed);
        errno = ENOMEM;
        return false;
    }
    if (tpi_unlikely(total >= tpi_load(&tpi_gen_mark) ||
                     (long long)hard != atomic_load_explicit(&tpi_mark_hard, memory_order_relaxed) ||
                     TPI_OPTION(memory_high) != atomic_load_explicit(&tpi_mark_high, memory_order_relaxed)))
        tpi_pressure_step(total);
    return true;
}

void tpi_limit_release(size_t bytes)
{
    atomic_fetch_sub_explicit(&tpi_committed, bytes, memory_order_relaxed);
}

size_t tpi_limit_committed(void)
{
    return tpi_load(&tpi_committed);
}

/* ---- pressure ------------------------------------------------------------------- */

unsigned tpi_pressure_percent(void)
{
    unsigned p = 0;
    size_t room = tpi_limit_room(NULL), used = tpi_load(&tpi_committed), start, full;
    if (room != SIZE_MAX) {
        tpi_zone(room, &start, &full);
        if (used >= full)
            p = 100;
        else if (used > start)
            p = (unsigned)((used - start) * 100 / (full - start));
    }
    unsigned psi = atomic_load_explicit(&tpi_psi_some, memory_order_relaxed);
    unsigned q = 0;
    if (psi >= TPI_PSI_HIGH * 100)
        q = 100;
    else if (psi > TPI_PSI_LOW * 100)
        q = (psi - TPI_PSI_LOW * 100) / (TPI_PSI_HIGH - TPI_PSI_LOW);
    uint64_t event = atomic_load_explicit(&tpi_psi_event_ms, memory_order_relaxed);
    if (event && tpi_os_clock_ms() - event < TPI_LIMIT_REFRESH_MS) q = 100;
    return p > q ? p : q;
}

uint32_t tpi_pressure_delay(uint32_t delay)
{
    /* The common case, far from every limit and no stall: two loads and a
     * compare before the full reckoning. */
    if (tpi_load(&tpi_committed) < tpi_load(&tpi_zone_start) &&
        TPI_OPTION(memory_limit) == atomic_load_explicit(&tpi_mark_hard, memory_order_relaxed) &&
        TPI_OPTION(memory_high) == atomic_load_explicit(&tpi_mark_high, memory_order_relaxed) &&
        atomic_load_explicit(&tpi_psi_some, memory_order_relaxed) <= TPI_PSI_LOW * 100 &&
        !atomic_load_explicit(&tpi_psi_event_ms, memory_order_relaxed))
        return delay;
    unsigned p = tpi_pressure_percent();
    return p ? (uint32_t)((uint64_t)delay * (100 - p) / 100) : delay;
}

void tpi_limit_get(tpi_limit_view *out)
{
    unsigned source;
    size_t room = tpi_limit_room(&source);
    out->source = source;
    out->other = source >= TPI_LIMIT_CGROUP_MAX ? tpi_load(&tpi_cg_other) : 0;
    out->limit = room == SIZE_MAX ? 0 : room + out->other;
    out->committed = tpi_load(&tpi_committed);
    out->pressure = tpi_pressure_percent();
    out->psi_some = atomic_load_explicit(&tpi_psi_some, memory_order_relaxed);
    out->refusals = atomic_load_explicit(&tpi_refusals, memory_order_relaxed);
    out->handler_calls = atomic_load_explicit(&tpi_handler_calls, memory_order_relaxed);
}

void tpi_limit_count_handler_call(void)
{
    atomic_fetch_add_explicit(&tpi_handler_calls, 1, memory_order_relaxed);
}

/* ---- reading the limits ----------------------------------------------------------- */

typedef struct tpi_paths {
    char root[256];   /* TIERPOOL_SYSFS_ROOT, or "" */
    char cgroup[512]; /* the cgroup's directory, "" if none found */
    size_t base_len;  /* length of the hierarchy's mount point in `cgroup` */
    bool v1;          /* the cgroup is v1's memory controller */
} tpi_paths;

/* Reads up to cap - 1 bytes of root + path into buf; its length or -1. */
static ssize_t tpi_read(const char *root, const char *path, char *buf, size_t cap)
{
    char full[1024];
    if (!tpi_concat(full, sizeof full, root, path, NULL)) return -1;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = '\0';
    return n;
}

/* A limit file's value: a number of bytes, or 0 for "max", none, or v1's
 * "unlimited" (a page-rounded LLONG_MAX, above any machine). */
static size_t tpi_read_bytes(const char *root, const char *dir, const char *file)
{
    char path[1024], buf[64];
    if (!tpi_concat(path, sizeof path, dir, "/", file, NULL)) return 0;
    if (tpi_read(root, path, buf, sizeof buf) <= 0 || buf[0] < '0' || buf[0] > '9') return 0;
    unsigned long long v = strtoull(buf, NULL, 10);
    return v >= (1ULL << 62) ? 0 : (size_t)v;
}

/* The smallest non-zero limit of `file` from the cgroup up to the
 * hierarchy's root. */
static size_t tpi_read_limit(const tpi_paths *p, const char *file)
{
    char dir[512];
    tpi_concat(dir, sizeof dir, p->cgroup, NULL);
    size_t best = 0;
    for (;;) {
        size_t v = tpi_read_bytes(p->root, dir, file);
        if (v && (!best || v < best)) best = v;
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= p->base_len || !slash || (size_t)(slash - dir) < p->base_len) break;
        *slash = '\0';
    }
    return best;
}

static bool tpi_exists(const char *root, const char *dir, const char *file)
{
    char path[1024], buf[8];
    if (!tpi_concat(path, sizeof path, dir, "/", file, NULL)) return false;
    return tpi_read(root, path, buf, sizeof buf) >= 0;
}

/* Finds the process's memory cgroup from /proc/self/cgroup: v2's "0::/path"
 * under /sys/fs/cgroup (or /sys/fs/cgroup/unified), else v1's memory line. */
static void tpi_find_cgroup(tpi_paths *p)
{
    char buf[2048];
    p->cgroup[0] = '\0';
    if (tpi_read(p->root, "/proc/self/cgroup", buf, sizeof buf) <= 0) return;
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        const char *path = NULL;
        bool v1 = false;
        if (strncmp(line, "0::", 3) == 0) {
            path = line + 3;
        } else {
            char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2) continue;
            *c2 = '\0';
            for (char *ctl = c1 + 1, *comma; ctl; ctl = comma ? comma + 1 : NULL) {
                comma = strchr(ctl, ',');
                if (comma) *comma = '\0';
                if (strcmp(ctl, "memory") == 0) v1 = true;
            }
            if (!v1) continue;
            path = c2 + 1;
        }
        if (strcmp(path, "/") == 0) path = "";
        static const char *const bases[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
        char dir[512];
        if (v1) {
            tpi_concat(dir, sizeof dir, "/sys/fs/cgroup/memory", path, NULL);
            if (!tpi_exists(p->root, dir, "memory.limit_in_bytes")) continue;
        } else {
            bool found = false;
            for (size_t i = 0; i < 2 && !found; i++) {
                tpi_concat(dir, sizeof dir, bases[i], path, NULL);
                found = tpi_exists(p->root, dir, "memory.max") || tpi_exists(p->root, dir, "memory.current");
            }
            if (!found) continue;
        }
        tpi_concat(p->cgroup, sizeof p->cgroup, dir, NULL);
        p->base_len = strlen(dir) - strlen(path);
        p->v1 = v1;
        if (!v1) return; /* v2 wins where both are */
    }
}

/* PSI's "some avg10=X.YZ" in hundredths of a percent. */
static unsigned tpi_parse_psi(const char *text)
{
    const char *s = strstr(text, "some avg10=");
    if (!s) return 0;
    s += strlen("some avg10=");
    unsigned whole = (unsigned)strtoul(s, (char **)&s, 10), frac = 0;
    if (*s == '.') {
        s++;
        for (int i = 0; i < 2; i++) frac = frac * 10 + (unsigned)(*s >= '0' && *s <= '9' ? *s++ - '0' : 0);
    }
    return whole * 100 + frac;
}

static void tpi_paths_get(tpi_paths *p)
{
    const char *root = secure_getenv("TIERPOOL_SYSFS_ROOT");
    tpi_concat(p->root, sizeof p->root, root ? root : "", NULL);
    tpi_find_cgroup(p);
}

/* The PSI file that applies: the cgroup's memory.pressure, else the system's. */
static void tpi_psi_path(const tpi_paths *p, char *out, size_t cap)
{
    if (p->cgroup[0] && !p->v1 && tpi_exists(p->root, p->cgroup, "memory.pressure"))
        tpi_concat(out, cap, p->cgroup, "/memory.pressure", NULL);
    else
        tpi_concat(out, cap, "/proc/pressure/memory", NULL);
}

void tpi_limit_refresh(bool force)
{
    if (!force) {
        uint64_t now = tpi_os_clock_ms();
        uint64_t due = atomic_load_explicit(&tpi_next_refresh, memory_order_relaxed);
        if (now < due) return;
        if (!atomic_compare_exchange_strong(&tpi_next_refresh, &due, now + TPI_LIMIT_REFRESH_MS)) return;
    }
    int saved = errno;
    pthread_mutex_lock(&tpi_limit_lock);
    tpi_paths p;
    tpi_paths_get(&p);
    size_t max = 0, high = 0, usage = 0, machine = 0;
    if (TPI_OPTION(memory_cgroup)) {
        if (p.cgroup[0]) {
            max = tpi_read_limit(&p, p.v1 ? "memory.limit_in_bytes" : "memory.max");
            high = tpi_read_limit(&p, p.v1 ? "memory.soft_limit_in_bytes" : "memory.high");
            usage = tpi_read_bytes(p.root, p.cgroup, p.v1 ? "memory.usage_in_bytes" : "memory.current");
        }
        char buf[256];
        if (tpi_read(p.root, "/proc/meminfo", buf, sizeof buf) > 0) {
            const char *s = strstr(buf, "MemTotal:");
            if (s) machine = (size_t)strtoull(s + strlen("MemTotal:"), NULL, 10) << 10;
        }
    }
    size_t committed = tpi_load(&tpi_committed);
    atomic_store_explicit(&tpi_cg_max, max, memory_order_relaxed);
    atomic_store_explicit(&tpi_cg_high, high, memory_order_relaxed);
    atomic_store_explicit(&tpi_cg_other, usage > committed ? usage - committed : 0, memory_order_relaxed);
    atomic_store_explicit(&tpi_machine, machine, memory_order_relaxed);
    char path[600], buf[256];
    tpi_psi_path(&p, path, sizeof path);
    unsigned psi = tpi_read(p.root, path, buf, sizeof buf) > 0 ? tpi_parse_psi(buf) : 0;
    atomic_store_explicit(&tpi_psi_some, psi, memory_order_relaxed);
    uint64_t event = atomic_load_explicit(&tpi_psi_event_ms, memory_order_relaxed);
    if (event && tpi_os_clock_ms() - event >= TPI_LIMIT_REFRESH_MS)
        atomic_store_explicit(&tpi_psi_event_ms, 0, memory_order_relaxed);
    /* The limits moved: the next commit places the marks afresh. */
    atomic_store_explicit(&tpi_gen_mark, 0, memory_order_relaxed);
    atomic_store_explicit(&tpi_zone_start, 0, memory_order_relaxed);
    pthread_mutex_unlock(&tpi_limit_lock);
    errno = saved;
}

/* ---- the PSI trigger ------------------------------------------------------------------- */

/* A stall of 100 ms within any second fires the trigger (the kernel's
 * finest window is 500 ms; unprivileged triggers need 2 s windows, which
 * fails here and falls back to reading avg10 each refresh). */
#define TPI_PSI_TRIGGER "some 100000 1000000"

static int tpi_psi_fd = -1;
static bool tpi_psi_tried;

void tpi_limit_wait(uint64_t ms)
{
    if (!tpi_psi_tried) {
        tpi_psi_tried = true;
        tpi_paths p;
        tpi_paths_get(&p);
        char path[600], full[1024];
        tpi_psi_path(&p, path, sizeof path);
        tpi_concat(full, sizeof full, p.root, path, NULL);
        /* A test's root holds plain files, which a trigger would overwrite. */
        int fd = p.root[0] ? -1 : open(full, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0 && write(fd, TPI_PSI_TRIGGER, strlen(TPI_PSI_TRIGGER) + 1) < 0) {
            close(fd);
            fd = -1;
        }
        tpi_psi_fd = fd;
    }
    if (tpi_psi_fd >= 0) {
        struct pollfd pfd = {.fd = tpi_psi_fd, .events = POLLPRI};
        int n = poll(&pfd, 1, (int)ms);
        if (n == 0) return;
        if (n > 0 && (pfd.revents & POLLPRI) && !(pfd.revents & (POLLERR | POLLNVAL))) {
            uint64_t now = tpi_os_clock_ms();
            atomic_store_explicit(&tpi_psi_event_ms, now ? now : 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&tpi_pressure_gen, 1, memory_order_relaxed);
            return;
        }
        if (n > 0) {
            /* Not a trigger after all, or gone (its cgroup removed). */
            close(tpi_psi_fd);
            tpi_psi_fd = -1;
        }
    }
    struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* The child of a fork has no background thread; its trigger is the
 * parent's file: the next background thread opens its own. */
void tpi_limit_after_fork(void)
{
    if (tpi_psi_fd >= 0) close(tpi_psi_fd);
    tpi_psi_fd = -1;
    tpi_psi_tried = false;
    pthread_mutex_init(&tpi_limit_lock, NULL);
}
