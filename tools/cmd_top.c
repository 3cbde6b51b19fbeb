/* SPDX-License-Identifier: MIT */
/*
 * cmd_top.c: `tierpool top [PID]`, a live view of a publishing process,
 * redrawn every interval like top(1): a header with the process totals and
 * rates, the pools, then the size classes by live bytes.
 *
 * Plain ANSI escapes (cursor home, erase to end of line and of screen), no
 * curses. On a terminal, stdin is read without echo or line buffering so
 * that 'q' quits at once; the terminal is restored however top ends (q,
 * -n, Ctrl-C, SIGTERM, the process exiting). Rates come from successive
 * snapshots, over the publisher's own timestamps (updated_ms): when top
 * redraws faster than the process publishes, a frame keeps the last rates.
 * Not on a terminal, frames are printed one after the other, in full.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "snapshot.h"
#include "tierpool_segment.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* Rates over the last two distinct snapshots. */
typedef struct rates {
    bool valid;
    double seconds;          /* between the two snapshots */
    double allocs, frees;    /* per second, the process */
    double hit;              /* 1 - refills / allocs over the interval, or -1 */
    double pool_allocs[TPI_SHM_POOLS];
    double class_allocs[TP_STATS_CLASSES];
} rates;

typedef struct top_view {
    pid_t pid;
    char name[PROCESS_NAME_SHOWN];
    tpi_shm *cur, *base;  /* the latest snapshot, the one before it that differs */
    tpi_shm *next;        /* read into, then swapped with cur if complete */
    rates r;
    bool tty;             /* stdout is a terminal: escapes, fit to its size */
    int rows, cols;
    cli_buffer frame;
} top_view;

/* ---- the terminal ---------------------------------------------------------------- */

static struct termios saved_termios;
static bool termios_changed, cursor_hidden;

static void terminal_restore(void)
{
    if (termios_changed) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    termios_changed = false;
    if (cursor_hidden) fputs("\033[?25h", stdout);
    cursor_hidden = false;
    fflush(stdout);
}

/* Keys without Enter and without echo; Ctrl-C still interrupts. */
static void terminal_raw(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) != 0) return;
    struct termios raw = saved_termios;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0) termios_changed = true;
    atexit(terminal_restore);
}

static void terminal_size(top_view *v)
{
    struct winsize ws;
    v->rows = 24;
    v->cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        v->rows = ws.ws_row;
        v->cols = ws.ws_col;
    }
}

/* Waits up to ms for a key; true if 'q' was pressed. */
static bool wait_for_quit(uint64_t ms, volatile int *stop)
{
    if (!termios_changed) {
        cli_sleep_ms(ms, stop);
        return false;
    }
    uint64_t until = cli_clock_ms() + ms;
    for (;;) {
        uint64_t now = cli_clock_ms();
        if (now >= until || *stop) return false;
        struct pollfd in = {STDIN_FILENO, POLLIN, 0};
        int n = poll(&in, 1, (int)(until - now));
        if (n < 0 && errno != EINTR) return false;
        if (n <= 0) continue;
        char keys[64];
        ssize_t got = read(STDIN_FILENO, keys, sizeof keys);
        if (got <= 0) { /* end of input: no more keys, only the time */
            cli_sleep_ms(until - now, stop);
            return false;
        }
        for (ssize_t i = 0; i < got; i++)
            if (keys[i] == 'q' || keys[i] == 'Q') return true;
    }
}

/* ---- rates ---------------------------------------------------------------------------- */

static double per_second(uint64_t now, uint64_t before, double seconds)
{
    return now >= before ? (double)(now - before) / seconds : 0.0;
}

/* The pool of that id in a snapshot (names may repeat, ids do not). */
static const tp_stats *pool_with_id(const tpi_shm *snap, uint32_t id)
{
    for (uint32_t i = 0; i < snap->pool_count && i < TPI_SHM_POOLS; i++)
        if (snap->pools[i].pool_id == id) return &snap->pools[i];
    return NULL;
}

/* After a new snapshot: rates against the base, and the new one becomes
 * the base. */
static void rates_update(top_view *v)
{
    const tpi_shm *a = v->base, *b = v->cur;
    if (a->updated_ms == 0) {
        memcpy(v->base, v->cur, sizeof *v->base);
        return;
    }
    if (b->updated_ms <= a->updated_ms) return;
    rates *r = &v->r;
    r->seconds = (double)(b->updated_ms - a->updated_ms) / 1000.0;
    r->allocs = per_second(b->process.allocs, a->process.allocs, r->seconds);
    r->frees = per_second(b->process.frees, a->process.frees, r->seconds);
    uint64_t allocs = b->process.allocs - a->process.allocs, refills = b->process.refills - a->process.refills;
    r->hit = b->process.allocs > a->process.allocs && refills <= allocs ? 1.0 - (double)refills / (double)allocs : -1;
    for (uint32_t i = 0; i < b->pool_count && i < TPI_SHM_POOLS; i++) {
        const tp_stats *old = pool_with_id(a, b->pools[i].pool_id);
        r->pool_allocs[i] = old ? per_second(b->pools[i].allocs, old->allocs, r->seconds) : 0.0;
    }
    for (unsigned k = 0; k < TP_STATS_CLASSES; k++)
        r->class_allocs[k] = per_second(b->process.classes[k].allocs, a->process.classes[k].allocs, r->seconds);
    r->valid = true;
    memcpy(v->base, v->cur, sizeof *v->base);
}

/* ---- drawing ------------------------------------------------------------------------------ */

static void line(top_view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(top_view *v, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cli_writer w = cli_buffer_writer(&v->frame);
    size_t len = strlen(text);
    if (v->tty && len > (size_t)v->cols) len = (size_t)v->cols;
    w.write(w.arg, text, len);
    cli_printf(&w, "%s\n", v->tty ? "\033[K" : "");
}

static void bytes(char *buf, uint64_t value)
{
    cli_format_bytes(buf, 16, (double)value);
}

static void rate(char *buf, const top_view *v, double value)
{
    if (v->r.valid) cli_format_count(buf, 16, value);
    else snprintf(buf, 16, "-");
}

static void duration(char *buf, size_t cap, double seconds)
{
    if (seconds < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    unsigned long s = (unsigned long)seconds;
    if (s >= 86400) snprintf(buf, cap, "%lud %02lu:%02lu:%02lu", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    else snprintf(buf, cap, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
}

/* The cache hit rate, 1 - refills / allocations, as "97.5%"; "-" before
 * any allocation. */
static void hit_rate(char *buf, uint64_t refills, uint64_t allocs)
{
    if (!allocs) snprintf(buf, 16, "-");
    else snprintf(buf, 16, "%.1f%%", refills <= allocs ? 100.0 * (1.0 - (double)refills / (double)allocs) : 0.0);
}

/* The process's nearest memory limit, its source (the values of
 * process_limit_source in tierpool.h) and the pressure on it. */
static void draw_limit(top_view *v, const tp_stats *s)
{
    static const char *const sources[] = {"none", "MEMORY_LIMIT", "MEMORY_HIGH", "cgroup max", "cgroup high",
                                          "machine"};
    const char *source = s->process_limit_source < sizeof sources / sizeof sources[0]
                             ? sources[s->process_limit_source] : "?";
    char limit[16], committed[16], other[16];
    bytes(limit, s->process_limit_bytes);
    bytes(committed, s->process_committed_bytes);
    bytes(other, s->process_other_bytes);
    if (!s->process_limit_bytes) snprintf(limit, sizeof limit, "none");
    line(v, "limit   %s (%s)  committed %s  other %s  pressure %llu%%  psi %.2f%%  refused %llu  oom handler %llu",
         limit, source, committed, other, (unsigned long long)s->pressure_percent, (double)s->psi_some / 100.0,
         (unsigned long long)s->limit_refusals, (unsigned long long)s->oom_handler_calls);
}

static void draw_header(top_view *v)
{
    const tp_stats *s = &v->cur->process;
    uint64_t now = cli_clock_ms();
    double age = now > v->cur->updated_ms ? (double)(now - v->cur->updated_ms) / 1000.0 : 0.0;
    char up[32], live[16], req[16], committed[16], resident[16], mapped[16], pages[16], peak[16], huge[16],
        cached[16], purged[16], allocs[16], frees[16], total[16], remote[16];
    duration(up, sizeof up, process_uptime_s(v->pid));
    bytes(live, s->live_bytes);
    bytes(req, s->live_requested_bytes);
    bytes(committed, s->committed_bytes);
    bytes(resident, s->resident_bytes);
    bytes(mapped, s->mapped_bytes);
    bytes(pages, s->page_bytes);
    bytes(peak, s->peak_page_bytes);
    bytes(huge, s->huge_bytes);
    bytes(cached, s->huge_cached_bytes);
    bytes(purged, s->purged_bytes);
    rate(allocs, v, v->r.allocs);
    rate(frees, v, v->r.frees);
    cli_format_count(total, sizeof total, (double)s->allocs);
    cli_format_count(remote, sizeof remote, (double)s->remote_frees);
    char hit[48], all[16];
    hit_rate(all, s->refills, s->allocs);
    if (v->r.valid && v->r.hit >= 0) snprintf(hit, sizeof hit, "%.1f%% (last %.1fs)", 100.0 * v->r.hit, v->r.seconds);
    else snprintf(hit, sizeof hit, "%s (all)", all);

    line(v, "tierpool top - pid %ld (%s), up %s, snapshot %.1fs old, published every %.1fs%s", (long)v->pid,
         v->name, up, age, (double)v->cur->interval_ms / 1000.0, termios_changed ? "   q quits" : "");
    line(v, "memory  live %s (requested %s)  committed %s  resident %s  mapped %s  fragmentation %.1f%%", live,
         req, committed, resident, mapped, 100.0 * s->fragmentation);
    line(v, "allocs  %s/s  frees %s/s  total %s  cache hit %s  remote frees %s", allocs, frees, total, hit,
         remote);
    line(v, "pages   %llu (%s, peak %s)  huge %llu (%s, cached %s)  purged %s in %llu passes, delay %.1fs",
         (unsigned long long)s->pages, pages, peak, (unsigned long long)s->huge_blocks, huge, cached, purged,
         (unsigned long long)s->purges, (double)s->purge_delay_ms / 1000.0);
    draw_limit(v, s);
    line(v, "%s", "");
}

/* A pool's name as shown: escaped, and "(unnamed N)" for an empty one. */
#define TOP_NAME_CAP (6 * sizeof(((tp_stats *)0)->pool) + 1)
static void pool_shown(char *buf, const tp_stats *p)
{
    if (!p->pool[0]) snprintf(buf, TOP_NAME_CAP, "(unnamed %u)", p->pool_id);
    else tpi_escape(buf, TOP_NAME_CAP, p->pool, sizeof p->pool, TPI_ESCAPE_TEXT);
}

static void draw_pools(top_view *v)
{
    line(v, "%-20s %10s %9s %9s %9s %9s %9s %7s %6s", "POOL", "BLOCKS", "LIVE", "COMMITTED", "RESIDENT", "MAPPED",
         "ALLOCS/S", "HIT%", "FRAG%");
    for (uint32_t i = 0; i < v->cur->pool_count && i < TPI_SHM_POOLS; i++) {
        const tp_stats *p = &v->cur->pools[i];
        char live[16], committed[16], resident[16], mapped[16], allocs[16], hit[16], name[TOP_NAME_CAP];
        hit_rate(hit, p->refills, p->allocs);
        pool_shown(name, p);
        bytes(live, p->live_bytes);
        bytes(committed, p->committed_bytes);
        bytes(resident, p->resident_bytes);
        bytes(mapped, p->mapped_bytes);
        rate(allocs, v, v->r.pool_allocs[i]);
        line(v, "%-20s %10llu %9s %9s %9s %9s %9s %7s %5.1f%%", name,
             (unsigned long long)p->live_blocks, live, committed, resident, mapped, allocs, hit,
             100.0 * p->fragmentation);
    }
    line(v, "%s", "");
}

static const tp_class_stats *sort_classes_of;

static int by_live_bytes(const void *a, const void *b)
{
    const tp_class_stats *x = &sort_classes_of[*(const unsigned *)a], *y = &sort_classes_of[*(const unsigned *)b];
    if (x->live_bytes != y->live_bytes) return x->live_bytes < y->live_bytes ? 1 : -1;
    if (x->allocs != y->allocs) return x->allocs < y->allocs ? 1 : -1;
    return x->block_size > y->block_size ? 1 : -1;
}

static void draw_classes(top_view *v, int lines_used)
{
    const tp_stats *s = &v->cur->process;
    unsigned order[TP_STATS_CLASSES], used = 0;
    for (unsigned k = 0; k < TP_STATS_CLASSES; k++)
        if (s->classes[k].allocs || s->classes[k].pages) order[used++] = k;
    sort_classes_of = s->classes;
    qsort(order, used, sizeof order[0], by_live_bytes);
    unsigned room = used;
    if (v->tty) {
        int left = v->rows - lines_used - 2; /* the heading, and the line the cursor rests on */
        room = left <= 0 ? 0 : (unsigned)left < used ? (unsigned)left - 1 : used;
    }
    line(v, "%10s %10s %9s %7s %10s %9s %10s %10s %7s %4s", "CLASS", "BLOCKS", "LIVE", "PAGES", "PAGE BYTES",
         "ALLOCS/S", "ALLOCS", "FREES", "HIT%", "KEEP");
    for (unsigned i = 0; i < room; i++) {
        const tp_class_stats *c = &s->classes[order[i]];
        char live[16], page_bytes[16], allocs_s[16], allocs[16], frees[16], hit[16];
        hit_rate(hit, c->refills, c->allocs);
        bytes(live, c->live_bytes);
        bytes(page_bytes, c->page_bytes);
        rate(allocs_s, v, v->r.class_allocs[order[i]]);
        cli_format_count(allocs, sizeof allocs, (double)c->allocs);
        cli_format_count(frees, sizeof frees, (double)c->frees);
        line(v, "%10llu %10llu %9s %7llu %10s %9s %10s %10s %7s %4llu", (unsigned long long)c->block_size,
             (unsigned long long)c->live_blocks, live, (unsigned long long)c->pages, page_bytes, allocs_s, allocs,
             frees, hit, (unsigned long long)c->cache_keep);
    }
    if (room < used) line(v, "(%u more classes)", used - room);
}

static void draw(top_view *v, bool first)
{
    v->frame.len = 0;
    if (v->tty) {
        terminal_size(v);
        cli_writer w = cli_buffer_writer(&v->frame);
        cli_printf(&w, "%s\033[H", first ? "\033[2J" : "");
    }
    draw_header(v);
    draw_pools(v);
    draw_classes(v, 7 + (int)v->cur->pool_count);
    if (v->tty) {
        cli_writer w = cli_buffer_writer(&v->frame);
        cli_printf(&w, "\033[J");
    } else {
        line(v, "%s", "");
    }
    if (v->frame.data) fwrite(v->frame.data, 1, v->frame.len, stdout);
    fflush(stdout);
}

/* ---- the command ------------------------------------------------------------------------- */

/* Reads the next snapshot; cur changes only if it was read whole. */
static snapshot_status top_read(top_view *v, uint64_t wait_ms)
{
    snapshot_status status = snapshot_read_wait(v->pid, v->next, wait_ms);
    if (status == SNAPSHOT_OK) {
        tpi_shm *t = v->cur;
        v->cur = v->next;
        v->next = t;
    }
    return status;
}

/* Without a pid: the only publishing process, or a list and 0. */
static pid_t pick_process(void)
{
    pid_t pids[64];
    snapshot_prune(NULL);
    size_t count = snapshot_list(pids, sizeof pids / sizeof pids[0]);
    if (count == 1) return pids[0];
    if (count == 0) {
        fprintf(stderr, "tierpool top: no process is publishing statistics (start one with TIERPOOL_PUBLISH=1)\n");
        return 0;
    }
    printf("%zu processes are publishing statistics; choose one with tierpool top PID:\n\n", count);
    snapshot_print_list(stdout, pids, count < 64 ? count : 64);
    return 0;
}

static int top_loop(top_view *v, uint64_t interval_ms, long iterations, bool once)
{
    static volatile int stop;
    cli_stop_on_signals(&stop);
    snapshot_status status = top_read(v, SNAPSHOT_FIRST_WAIT_MS);
    if (status != SNAPSHOT_OK) return snapshot_report(cmd_top.name, v->pid, status);
    rates_update(v);
    if (once) {
        /* One frame with rates: wait for the process's next snapshot. */
        uint64_t until = cli_clock_ms() + (v->cur->interval_ms < 3000 ? v->cur->interval_ms : 3000) + 200;
        while (!stop && cli_clock_ms() < until && top_read(v, 0) == SNAPSHOT_OK &&
               v->cur->updated_ms == v->base->updated_ms)
            cli_sleep_ms(20, &stop);
        rates_update(v);
    }
    process_name_shown(v->pid, v->name, sizeof v->name);
    v->tty = !once && isatty(STDOUT_FILENO); /* --once prints a plain frame, as to a pipe */
    if (v->tty) {
        terminal_raw();
        fputs("\033[?25l", stdout);
        cursor_hidden = true;
    }
    int rc = 0;
    for (long frame = 0;; frame++) {
        draw(v, frame == 0);
        if ((iterations && frame + 1 >= iterations) || wait_for_quit(interval_ms, &stop) || stop) break;
        status = top_read(v, 0);
        if (status == SNAPSHOT_BUSY) continue;
        if (status != SNAPSHOT_OK) {
            terminal_restore();
            if (status == SNAPSHOT_NO_PROCESS || status == SNAPSHOT_NOT_PUBLISHING)
                fprintf(stderr, "tierpool top: process %ld has exited\n", (long)v->pid);
            else rc = snapshot_report(cmd_top.name, v->pid, status);
            break;
        }
        rates_update(v);
    }
    terminal_restore();
    return rc;
}

static int top(int argc, char **argv)
{
    static const struct option options[] = {
        {"interval", required_argument, NULL, 'd'},
        {"iterations", required_argument, NULL, 'n'},
        {"once", no_argument, NULL, 256},
        {0},
    };
    cli_parser p = cli_parser_init(&cmd_top, argc, argv, "d:n:", options);
    uint64_t interval_ms = 1000;
    long iterations = 0;
    bool once = false;
    pid_t pid = 0;
    int opt;
    while ((opt = cli_getopt(&p)) != -1) {
        if (opt == 'd') cli_duration_value(&p, 10, &interval_ms);
        else if (opt == 'n') cli_count_value(&p, &iterations);
        else once = true;
    }
    const char *arg = cli_next_argument(&p);
    if (arg) cli_pid_argument(&p, arg, &pid);
    if (!cli_finish(&p, NULL)) return cli_stop_status(&p);
    if (once) iterations = 1;
    if (!pid && !(pid = pick_process())) return 1;

    top_view v = {.pid = pid, .cur = snapshot_new(), .base = snapshot_new(), .next = snapshot_new()};
    int rc = v.cur && v.base && v.next ? top_loop(&v, interval_ms, iterations, once) : 1;
    free(v.cur);
    free(v.base);
    free(v.next);
    cli_buffer_free(&v.frame);
    return rc;
}

const command cmd_top = {
    "top", "[PID] [--interval 1s] [-n ITERATIONS] [--once]", "a live view of a publishing process, like top",
    "options:\n"
    "  -d, --interval T     redraw every T (250ms, 1s, 2.5s; default 1s; a bare\n"
    "                       number is milliseconds)\n"
    "  -n, --iterations N   stop after N frames\n"
    "      --once           one frame (waits for the process's next snapshot, for\n"
    "                       the rates), then exit\n"
    "\n"
    "A header (the process total), the pools, then the size classes by live\n"
    "bytes. Sizes in K, M, G of 1024; rates per second between the last two\n"
    "distinct snapshots, '-' until there are two. q or Ctrl-C quits. Without\n"
    "PID: the only process publishing statistics, or the list of them.\n"
    "\n"
    "header:\n"
    "  memory     live (usable bytes of live blocks; requested: what was asked),\n"
    "             committed (pages, unpurged free memory, huge mappings),\n"
    "             resident (in RAM), mapped (address space), fragmentation\n"
    "             (waste inside the memory that holds live blocks; 0 if none)\n"
    "  allocs     allocations and frees per second, all allocations, cache hit\n"
    "             (1 - refills / allocations), frees from other threads\n"
    "  pages      slab pages in use (bytes, peak), huge blocks (bytes, freed\n"
    "             mappings kept), bytes given back to the OS and in how many\n"
    "             passes, the current purge delay\n"
    "  limit      the process's nearest memory limit and its source\n"
    "             (MEMORY_LIMIT, MEMORY_HIGH, cgroup max or high, machine),\n"
    "             the memory all pools hold committed as limits count it, the\n"
    "             cgroup's other memory, memory pressure (how far the purge\n"
    "             delay is shortened), PSI some avg10, commits the hard limit\n"
    "             refused, out-of-memory handler calls\n"
    "pools:\n"
    "  POOL       the name ('(unnamed ID)' if none), escaped; BLOCKS live blocks;\n"
    "             LIVE, COMMITTED, RESIDENT, MAPPED as above; ALLOCS/S; HIT% the\n"
    "             cache hit rate since start; FRAG% fragmentation as above\n"
    "classes:\n"
    "  CLASS      block size; BLOCKS, LIVE live blocks and bytes; PAGES, PAGE BYTES\n"
    "             pages of the class in use; ALLOCS/S; ALLOCS, FREES since start;\n"
    "             HIT%; KEEP the most empty pages a thread cache keeps\n",
    top,
};
