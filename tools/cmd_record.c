/* SPDX-License-Identifier: MIT */
/*
 * cmd_record.c: `tierpool record PID -o FILE.csv`, one CSV row per interval
 * from a publishing process's snapshots, until the process exits, the
 * duration passes or Ctrl-C. `tierpool plot` draws the file.
 *
 * Columns (RECORD_COLUMNS): time_s (seconds since the recording started),
 * the process's live, committed, resident and mapped bytes, its allocation
 * and free counters, their rates per second and the fragmentation ratio.
 * Rates come from the last two distinct snapshots, over the publisher's
 * own timestamps; rows taken faster than the process publishes repeat its
 * last snapshot. The file is appended to (its header written when it is
 * empty) and flushed row by row, so it is whole whenever record stops.
 *
 * With --ring ROWS the file is a ring of fixed size instead, for recording
 * a service for days: a first line "# tierpool ring ..." (fixed width: the
 * slot count, the next slot to write, the time the ring started), the CSV
 * header, then ROWS slots of RING_ROW_WIDTH bytes, each a row left-padded
 * with spaces (or blank while unused). Each new row overwrites the oldest;
 * time_s counts from the ring's start, across recordings. `tierpool plot`
 * reads the slots from the oldest.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECORD_COLUMNS \
    "time_s,live_bytes,committed_bytes,resident_bytes,mapped_bytes,allocs,frees,alloc_rate,free_rate,fragmentation"

#define RING_ROW_WIDTH 200 /* bytes of a slot, its newline included */
#define RING_MAX_ROWS 100000000L

typedef struct recorder {
    pid_t pid;
    FILE *out;
    long ring_rows;         /* slots of a ring file, or 0 */
    long ring_next;         /* the slot the next row goes to */
    double ring_start;      /* CLOCK_REALTIME seconds at the ring's start */
    long ring_data;         /* offset of slot 0 */
    tp_stats last;          /* the process totals of the last distinct snapshot */
    uint64_t last_updated;  /* its updated_ms; 0 before the first */
    double alloc_rate, free_rate;
    long rows;
} recorder;

/* ---- the ring file ---- */

static void ring_header(recorder *r)
{
    fseek(r->out, 0, SEEK_SET);
    fprintf(r->out, "# tierpool ring rows=%09ld next=%09ld start=%017.3f\n", r->ring_rows, r->ring_next,
            r->ring_start);
}

static void ring_write(recorder *r, const char *row, int len)
{
    if (len > RING_ROW_WIDTH - 1) len = RING_ROW_WIDTH - 1; /* cannot happen: the widest row is about 190 */
    fseek(r->out, r->ring_data + r->ring_next * RING_ROW_WIDTH, SEEK_SET);
    fprintf(r->out, "%*.*s\n", RING_ROW_WIDTH - 1, len, row);
    r->ring_next = (r->ring_next + 1) % r->ring_rows;
    ring_header(r);
}

static double wall_clock_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Opens (or creates) the ring file path of `rows` slots; false with a
 * message if it cannot, or if the file is something else. */
static bool ring_open(recorder *r, const char *path, long rows)
{
    r->out = fopen(path, "r+");
    if (!r->out && errno == ENOENT) r->out = fopen(path, "w+");
    if (!r->out) {
        fprintf(stderr, "tierpool record: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    char line[256];
    long have = 0, next = 0;
    double start = 0;
    if (fgets(line, sizeof line, r->out)) {
        if (sscanf(line, "# tierpool ring rows=%ld next=%ld start=%lf", &have, &next, &start) != 3 || have != rows ||
            next < 0 || next >= rows || !fgets(line, sizeof line, r->out) || strcmp(line, RECORD_COLUMNS "\n") != 0) {
            fprintf(stderr,
                    "tierpool record: %s is not a ring of %ld rows of this version (remove it, or give its own "
                    "--ring)\n",
                    path, rows);
            fclose(r->out);
            return false;
        }
        r->ring_rows = rows;
        r->ring_next = next;
        r->ring_start = start;
        r->ring_data = ftell(r->out);
        return true;
    }
    r->ring_rows = rows;
    r->ring_start = wall_clock_s();
    ring_header(r);
    fprintf(r->out, "%s\n", RECORD_COLUMNS);
    r->ring_data = ftell(r->out);
    char blank[RING_ROW_WIDTH];
    memset(blank, ' ', sizeof blank - 1);
    blank[sizeof blank - 1] = '\n';
    for (long i = 0; i < rows; i++) fwrite(blank, 1, sizeof blank, r->out);
    return fflush(r->out) == 0;
}

/* ---- rows ---- */

static void record_row(recorder *r, const tpi_shm *snap, double seconds)
{
    const tp_stats *s = &snap->process;
    if (r->last_updated && snap->updated_ms > r->last_updated) {
        double dt = (double)(snap->updated_ms - r->last_updated) / 1000.0;
        r->alloc_rate = s->allocs >= r->last.allocs ? (double)(s->allocs - r->last.allocs) / dt : 0.0;
        r->free_rate = s->frees >= r->last.frees ? (double)(s->frees - r->last.frees) / dt : 0.0;
    }
    if (snap->updated_ms != r->last_updated) {
        r->last = *s;
        r->last_updated = snap->updated_ms;
    }
    char row[RING_ROW_WIDTH * 2];
    int n = snprintf(row, sizeof row, "%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%.1f,%.1f,%.6f", seconds,
                     (unsigned long long)s->live_bytes, (unsigned long long)s->committed_bytes,
                     (unsigned long long)s->resident_bytes, (unsigned long long)s->mapped_bytes,
                     (unsigned long long)s->allocs, (unsigned long long)s->frees, r->alloc_rate, r->free_rate,
                     s->fragmentation);
    if (r->ring_rows) ring_write(r, row, n);
    else fprintf(r->out, "%s\n", row);
    fflush(r->out);
    r->rows++;
}

/* Rows at start, start + interval, ... until the end; 0, or 1 if the file
 * could not be written. */
static int record_loop(recorder *r, tpi_shm *snap, uint64_t interval_ms, uint64_t duration_ms)
{
    static volatile int stop;
    cli_stop_on_signals(&stop);
    uint64_t start = cli_clock_ms();
    for (uint64_t tick = 0; !stop; tick++) {
        uint64_t due = start + tick * interval_ms;
        if (duration_ms && due - start > duration_ms) break;
        uint64_t now = cli_clock_ms();
        if (due > now) cli_sleep_ms(due - now, &stop);
        if (stop) break;
        snapshot_status status = snapshot_read(r->pid, snap);
        if (status == SNAPSHOT_BUSY) continue;
        if (status != SNAPSHOT_OK) {
            fprintf(stderr, "tierpool record: process %ld has exited\n", (long)r->pid);
            break;
        }
        double seconds = r->ring_rows ? wall_clock_s() - r->ring_start : (double)(cli_clock_ms() - start) / 1000.0;
        record_row(r, snap, seconds);
        if (ferror(r->out)) return 1;
    }
    return 0;
}

static int record(int argc, char **argv)
{
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        {"interval", required_argument, NULL, 'i'},
        {"duration", required_argument, NULL, 't'},
        {"ring", required_argument, NULL, 256},
        {0},
    };
    cli_parser p = cli_parser_init(&cmd_record, argc, argv, "o:i:t:", options);
    uint64_t interval_ms = 0, duration_ms = 0;
    long ring = 0;
    const char *path = NULL;
    pid_t pid = 0;
    int opt;
    while ((opt = cli_getopt(&p)) != -1) {
        if (opt == 'o') path = optarg;
        else if (opt == 'i') cli_duration_value(&p, 10, &interval_ms);
        else if (opt == 't') cli_duration_value(&p, 1, &duration_ms);
        else cli_count_value(&p, &ring);
    }
    const char *arg = cli_next_argument(&p);
    if (arg) cli_pid_argument(&p, arg, &pid);
    if (!p.failed && ring && (!path || strcmp(path, "-") == 0)) cli_usage_error(&p, "--ring needs -o FILE");
    if (!p.failed && ring > RING_MAX_ROWS) cli_usage_error(&p, "--ring: at most %ld rows", RING_MAX_ROWS);
    if (!cli_finish(&p, pid ? NULL : "no process id given")) return cli_stop_status(&p);

    tpi_shm *snap = snapshot_first(cmd_record.name, pid);
    if (!snap) return 1;
    if (!interval_ms) interval_ms = snap->interval_ms ? snap->interval_ms : 1000;
    else if (interval_ms < snap->interval_ms)
        fprintf(stderr,
                "tierpool record: note: process %ld publishes every %llu ms; rows between its updates repeat "
                "the last (set TIERPOOL_PUBLISH_INTERVAL)\n",
                (long)pid, (unsigned long long)snap->interval_ms);

    recorder r = {.pid = pid, .out = stdout};
    if (ring && !ring_open(&r, path, ring)) {
        free(snap);
        return 1;
    }
    if (!ring && path && strcmp(path, "-") != 0 && !(r.out = fopen(path, "a"))) {
        fprintf(stderr, "tierpool record: cannot open %s: %s\n", path, strerror(errno));
        free(snap);
        return 1;
    }
    if (!ring && (r.out == stdout || fseek(r.out, 0, SEEK_END) != 0 || ftell(r.out) == 0))
        fprintf(r.out, "%s\n", RECORD_COLUMNS);
    int rc = record_loop(&r, snap, interval_ms, duration_ms);
    if (r.out != stdout && fclose(r.out) != 0) rc = 1;
    if (rc) fprintf(stderr, "tierpool record: cannot write %s: %s\n", path ? path : "stdout", strerror(errno));
    else if (ring) fprintf(stderr, "tierpool record: %ld rows written to the ring %s\n", r.rows, path);
    else if (r.out != stdout) fprintf(stderr, "tierpool record: %ld rows appended to %s\n", r.rows, path);
    free(snap);
    return rc;
}

const command cmd_record = {
    "record", "PID [-o FILE.csv] [--interval T] [--duration T] [--ring ROWS]",
    "record a publishing process's memory to CSV",
    "options:\n"
    "  -o, --output FILE    append to FILE (its header first when it is empty);\n"
    "                       without it, or with -, write to stdout\n"
    "  -i, --interval T     a row every T (100ms, 1s; a bare number is ms;\n"
    "                       at least 10ms; default: the process's\n"
    "                       TIERPOOL_PUBLISH_INTERVAL)\n"
    "  -t, --duration T     stop after T (default: when the process exits or on\n"
    "                       Ctrl-C)\n"
    "      --ring ROWS      keep FILE a ring of ROWS rows (200 bytes each), the\n"
    "                       newest overwriting the oldest: days of recording in\n"
    "                       fixed space (86400 rows = a day at 1s, 17 MB);\n"
    "                       time_s counts from the ring's creation\n"
    "\n"
    "Columns: " RECORD_COLUMNS "\n"
    "time_s counts from the start of the recording; rates are per second;\n"
    "fragmentation is (internal + external waste) / committed bytes, 0..1.\n"
    "Draw the file with tierpool plot FILE.csv -o FILE.svg.\n",
    record,
};
