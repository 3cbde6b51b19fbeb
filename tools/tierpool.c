/* SPDX-License-Identifier: MIT */
/*
 * tierpool: the command-line tool. One binary, a table of subcommands:
 *
 *   tierpool run [--stats] [--] PROGRAM [ARGS...]   tierpool as PROGRAM's malloc
 *   tierpool stats PID [--json|--prometheus]        one snapshot of a publishing process
 *   tierpool list                                   the processes publishing statistics
 *   tierpool top [PID]                              a live view, refreshed every second
 *   tierpool record PID -o FILE.csv                 a CSV row per interval
 *   tierpool plot FILE.csv -o FILE.svg              an SVG chart of a recording
 *   tierpool exporter --listen ADDR:PORT PID        /metrics over HTTP for Prometheus
 *   tierpool classes                                the size-class table
 *   tierpool options                                every option, its default and value
 *   tierpool profile PID [-o FILE] [--pool NAME]    a heap profile of the process, for google-pprof
 *   tierpool bench [ARGS...]                        the benchmark comparison (bench/run.py)
 *   tierpool version, tierpool help [COMMAND]      the version and library; this help
 *   tierpool --version                              the version only
 *
 * A process publishes with TIERPOOL_PUBLISH=1 or tp_monitor_start()
 * (docs/monitoring.md). Each command is a `command` in its own file (see
 * cli.h); `tierpool COMMAND --help` prints its help.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tierpool.h"

static const command cmd_version, cmd_help;

static const command *const commands[] = {
    &cmd_run, &cmd_stats, &cmd_list, &cmd_top, &cmd_record, &cmd_plot, &cmd_exporter, &cmd_classes,
    &cmd_options, &cmd_profile, &cmd_bench, &cmd_version, &cmd_help,
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: tierpool COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %s%s%s\n      %s\n", commands[i]->name, *commands[i]->usage ? " " : "", commands[i]->usage,
                commands[i]->summary);
    fprintf(out,
            "\n`tierpool COMMAND --help` or `tierpool help COMMAND` tells more of each.\n"
            "A process publishes the statistics that stats, list, top, record and exporter\n"
            "read when it runs with TIERPOOL_PUBLISH=1 or calls tp_monitor_start().\n");
}

/* ---- version, help ------------------------------------------------------------------ */

static int version(int argc, char **argv)
{
    int status = cli_no_arguments(&cmd_version, argc, argv);
    if (status >= 0) return status;
    printf("tierpool %s\n", tp_version());
    char library[PATH_MAX];
    if (!cli_find_library(library, sizeof library)) return 125;
    printf("library: %s\n", library);
    return 0;
}

static const command cmd_version = {"version", "", "print the version and the library `run` preloads", "",
                                     version};

static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const command *cmd = find_command(strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ? "help" : argv[1]);
    if (!cmd) {
        fprintf(stderr, "tierpool help: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    cli_print_help(cmd, stdout);
    return 0;
}

static const command cmd_help = {"help", "[COMMAND]", "print this help, or a command's", "", help};

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) name = "help";
    if (strcmp(name, "--version") == 0) {
        printf("tierpool %s\n", tp_version());
        return 0;
    }
    const command *cmd = find_command(name);
    if (cmd) return cmd->run(argc - 1, argv + 1);
    fprintf(stderr, "tierpool: unknown command '%s' (see tierpool --help)\n", argv[1]);
    return EXIT_USAGE;
}
