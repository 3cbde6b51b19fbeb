/* SPDX-License-Identifier: MIT */
/*
 * cmd_stats.c: `tierpool stats PID`, one snapshot of a publishing process
 * as text, JSON or Prometheus text, and `tierpool list`, the processes
 * publishing now.
 */
#include "cli.h"
#include "snapshot.h"
#include "stats_format.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int stats(int argc, char **argv)
{
    static const struct option options[] = {
        {"text", no_argument, NULL, 256 + TP_STATS_TEXT},
        {"json", no_argument, NULL, 256 + TP_STATS_JSON},
        {"prometheus", no_argument, NULL, 256 + TP_STATS_PROMETHEUS},
        {0},
    };
    cli_parser p = cli_parser_init(&cmd_stats, argc, argv, "", options);
    int format = TP_STATS_TEXT, opt;
    pid_t pid = 0;
    while ((opt = cli_getopt(&p)) != -1) format = opt - 256;
    const char *arg = cli_next_argument(&p);
    if (arg) cli_pid_argument(&p, arg, &pid);
    if (!cli_finish(&p, pid ? NULL : "no process id given")) return cli_stop_status(&p);

    tpi_shm *snap = snapshot_first(cmd_stats.name, pid);
    if (!snap) return 1;
    cli_writer out = cli_file_writer(stdout);
    stats_format(&out, snap, format);
    free(snap);
    return fflush(stdout) == 0 ? 0 : 1;
}

const command cmd_stats = {
    "stats", "PID [--text|--json|--prometheus]", "print one snapshot of a publishing process's statistics",
    "options:\n"
    "  --text        a table per pool, then the process total (the default)\n"
    "  --json        {\"version\": N, \"pools\": [...], \"process\": {...}}\n"
    "  --prometheus  the Prometheus text format (as `tierpool exporter` serves it)\n"
    "\n"
    "The formats are those of tp_stats_print(NULL, TP_STATS_TEXT/JSON/PROMETHEUS)\n"
    "in process PID. PID publishes when it runs with TIERPOOL_PUBLISH=1 or calls\n"
    "tp_monitor_start(); it updates its snapshot every TIERPOOL_PUBLISH_INTERVAL\n"
    "(1s by default). Exits 1 when PID is not publishing.\n",
    stats,
};

static int list(int argc, char **argv)
{
    static const struct option options[] = {{"prune", no_argument, NULL, 256}, {0}};
    cli_parser p = cli_parser_init(&cmd_list, argc, argv, "", options);
    bool report = false;
    while (cli_getopt(&p) != -1) report = true;
    if (!cli_finish(&p, NULL)) return cli_stop_status(&p);
    size_t removed = snapshot_prune(report ? stdout : NULL);
    if (report) printf("%zu segment%s left behind removed\n\n", removed, removed == 1 ? "" : "s");
    pid_t pids[256];
    size_t count = snapshot_list(pids, sizeof pids / sizeof pids[0]);
    if (!count) {
        printf("no process is publishing statistics (start one with TIERPOOL_PUBLISH=1)\n");
        return 0;
    }
    snapshot_print_list(stdout, pids, count < 256 ? count : 256);
    return 0;
}

const command cmd_list = {
    "list", "[--prune]", "list the processes publishing statistics",
    "options:\n"
    "  --prune   say which segments left behind were removed\n"
    "\n"
    "Lists the processes whose segment /dev/shm/tierpool.PID this user can read,\n"
    "with their pools, memory and the age of their last snapshot. Segments left\n"
    "behind (their process was killed, left by _exit, or called exec) are\n"
    "removed first when this user may remove them: its own, or any for root.\n",
    list,
};
