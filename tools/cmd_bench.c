/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c: `tierpool bench [ARGS...]`, the benchmark comparison (what
 * `make bench` runs, without its dependency step): python3 bench/run.py of
 * the source tree this tool was built from, with --build-dir its build
 * folder, and ARGS passed on (--quick, --only suite, --runs N, ...).
 *
 * The benchmark programs and the runner live in the source and build trees,
 * not in an install: a tool installed from a tree that is gone says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int bench(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) { /* no ARGS: help, not 11 min */
        cli_print_help(&cmd_bench, stdout);
        return 0;
    }
    const char *runner = TP_CLI_SOURCE_DIR "/bench/run.py";
    if (access(runner, R_OK) != 0) {
        fprintf(stderr,
                "tierpool bench: %s: %s\n"
                "The benchmark runs from the tierpool source tree this tool was built from;\n"
                "run `make bench` in a source tree instead.\n",
                runner, strerror(errno));
        return 125;
    }
    char *args[argc + 4];
    int n = 0;
    args[n++] = "python3";
    args[n++] = (char *)runner;
    args[n++] = "--build-dir";
    args[n++] = TP_CLI_BUILD_DIR;
    for (int i = 1; i < argc; i++) args[n++] = argv[i];
    args[n] = NULL;
    execvp(args[0], args);
    fprintf(stderr, "tierpool bench: python3: %s\n", strerror(errno));
    return 127;
}

const command cmd_bench = {
    "bench", "ARGS...", "compare tierpool with glibc, jemalloc, mimalloc and tcmalloc",
    "Runs bench/run.py of the source tree this tool was built from, on its\n"
    "build folder, and writes bench/results/ (report.md, time.svg, memory.svg,\n"
    "pair.md, threads.md, memory.md, note.md). ARGS go to run.py: --quick,\n"
    "--runs N, --only suite|pair|threads|memory|note, --workload TEXT, --out DIR,\n"
    "... (see"
    " `python3 bench/run.py --help`). It needs that source tree: an installed\n"
    "tool without it says so and stops. The peers are used when installed\n"
    "(`make bench` installs them as root on Debian). docs/benchmarks.md\n"
    "describes the workloads and the report. With no ARGS, this help: the whole\n"
    "suite (`tierpool bench --runs 5`) takes about 11 minutes.\n",
    bench,
};
