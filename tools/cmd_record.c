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
 */
#define _GNU_SOURCE
#include "cli.h"
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_COLUMNS \
    "time_s,live_bytes,committed_bytes,resident_bytes,mapped_bytes,allocs,frees,alloc_rate,free_rate,fragmentation"

typedef struct recorder {
    pid_t pid;
    FILE *out;
    tp_stats last;          /* the process totals of the last distinct snapshot */
    uint64_t last_updated;  /* its updated_ms; 0 before the first */
    double alloc_rate, free_rate;
    long rows;
} recorder;

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
    fprintf(r->out, "%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%.1f,%.1f,%.6f\n", seconds,
            (unsigned long long)s->live_bytes, (unsigned long long)s->committed_bytes,
            (unsigned long long)s->resident_bytes, (unsigned long long)s->mapped_bytes,
            (unsigned long long)s->allocs, (unsigned long long)s->frees, r->alloc_rate, r->free_rate,
            s->fragmentation);
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
        record_row(r, snap, (double)(cli_clock_ms() - start) / 1000.0);
        if (ferror(r->out)) return 1;
    }
    return 0;
}

static int record(int argc, char **argv)
{
    cli_parser p = cli_parser_init(&cmd_record, argc, argv);
    uint64_t interval_ms = 0, duration_ms = 0;
    const char *path = NULL;
    pid_t pid = 0;
    const char *arg;
    while ((arg = cli_next(&p))) {
        if (cli_is(&p, arg, "--output", "-o")) path = cli_value(&p, arg);
        else if (cli_is(&p, arg, "--interval", "-i")) cli_duration_value(&p, arg, &interval_ms);
        else if (cli_is(&p, arg, "--duration", "-t")) cli_duration_value(&p, arg, &duration_ms);
        else cli_pid_argument(&p, arg, &pid);
    }
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
    if (path && strcmp(path, "-") != 0 && !(r.out = fopen(path, "a"))) {
        fprintf(stderr, "tierpool record: cannot open %s: %s\n", path, strerror(errno));
        free(snap);
        return 1;
    }
    if (r.out == stdout || fseek(r.out, 0, SEEK_END) != 0 || ftell(r.out) == 0)
        fprintf(r.out, "%s\n", RECORD_COLUMNS);
    int rc = record_loop(&r, snap, interval_ms, duration_ms);
    if (r.out != stdout && fclose(r.out) != 0) rc = 1;
    if (rc) fprintf(stderr, "tierpool record: cannot write %s: %s\n", path ? path : "stdout", strerror(errno));
    else if (r.out != stdout) fprintf(stderr, "tierpool record: %ld rows appended to %s\n", r.rows, path);
    free(snap);
    return rc;
}

const command cmd_record = {
    "record", "PID [-o FILE.csv] [--interval T] [--duration T]", "record a publishing process's memory to CSV",
    "options:\n"
    "  -o, --output FILE    append to FILE (its header first when it is empty);\n"
    "                       without it, or with -, write to stdout\n"
    "  -i, --interval T     a row every T (100ms, 1s; default: the process's\n"
    "                       TIERPOOL_PUBLISH_INTERVAL)\n"
    "  -t, --duration T     stop after T (default: when the process exits or on\n"
    "                       Ctrl-C)\n"
    "\n"
    "Columns: " RECORD_COLUMNS "\n"
    "time_s counts from the start of the recording; rates are per second;\n"
    "fragmentation is (internal + external waste) / committed bytes, 0..1.\n"
    "Draw the file with tierpool plot FILE.csv -o FILE.svg.\n",
    record,
};
