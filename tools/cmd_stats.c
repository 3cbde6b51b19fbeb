/* SPDX-License-Identifier: MIT */
/*
 * cmd_stats.c: `tierpool stats PID`, one snapshot of a publishing process
 * as text, JSON or Prometheus text, and `tierpool list`, the processes
 * publishing now.
 */
#include "cli.h"
#include "snapshot.h"
#include "stats_format.h"

#include <stdlib.h>
#include <string.h>

static int stats(int argc, char **argv)
{
    cli_parser p = cli_parser_init(&cmd_stats, argc, argv);
    int format = TP_STATS_TEXT;
    pid_t pid = 0;
    const char *arg;
    while ((arg = cli_next(&p))) {
        if (cli_is(&p, arg, "--json", NULL)) format = TP_STATS_JSON;
        else if (cli_is(&p, arg, "--prometheus", NULL)) format = TP_STATS_PROMETHEUS;
        else if (cli_is(&p, arg, "--text", NULL)) format = TP_STATS_TEXT;
        else cli_pid_argument(&p, arg, &pid);
    }
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
    "  --json        {\"version\": 1, \"pools\": [...], \"process\": {...}}\n"
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
    int status = cli_no_arguments(&cmd_list, argc, argv);
    if (status >= 0) return status;
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
    "list", "", "list the processes publishing statistics",
    "Lists the processes whose segment /dev/shm/tierpool.PID this user can read,\n"
    "with their pools, memory and the age of their last snapshot.\n",
    list,
};
