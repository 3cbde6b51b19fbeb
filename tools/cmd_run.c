/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c: `tierpool run [--stats] [--] PROGRAM [ARGS...]` runs PROGRAM
 * with libtierpool-malloc preloaded (docs/override.md). It becomes the
 * program, or exits 125 when the library cannot be found, 126 when the
 * program cannot be executed and 127 when it is not found (as env(1) does).
 *
 * The library is found from the tool's own path, never from the search
 * path, so `tierpool run` preloads the build next to it: the build tree
 * keeps both in one folder, an install keeps the tool in <prefix>/bin and
 * the library in <prefix>/<libdir> (TP_CLI_LIBDIR, relative to bin) or one
 * of the usual lib folders.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TP_CLI_LIBRARY
#define TP_CLI_LIBRARY "libtierpool-malloc.so.0"
#endif
#ifndef TP_CLI_LIBDIR
#define TP_CLI_LIBDIR "../lib"
#endif
#ifndef TP_CLI_MULTIARCH
#define TP_CLI_MULTIARCH ""
#endif

enum { EXIT_NO_LIBRARY = 125, EXIT_CANNOT_EXEC = 126, EXIT_NOT_FOUND = 127 };

/* Folders the library may be in, relative to the tool's folder: the build
 * tree's, then the install's. */
static const char *const library_dirs[] = {
    ".",
    TP_CLI_LIBDIR,
    "../lib/" TP_CLI_MULTIARCH,
    "../lib",
};

bool cli_find_library(char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) {
        fprintf(stderr, "tierpool: cannot read /proc/self/exe: %s\n", strerror(errno));
        return false;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    for (size_t i = 0; i < sizeof library_dirs / sizeof library_dirs[0]; i++) {
        /* The folder made canonical, the name kept: the soname's link, not
         * the file it points to now, so the program gets what an upgrade
         * installs. */
        int len = snprintf(out, size, "%s/%s", self, library_dirs[i]);
        if (len < 0 || (size_t)len >= size) continue;
        char *dir = realpath(out, NULL);
        if (!dir) continue;
        len = snprintf(out, size, "%s/%s", dir, TP_CLI_LIBRARY);
        free(dir);
        if (len > 0 && (size_t)len < size && access(out, R_OK) == 0) return true;
    }
    fprintf(stderr, "tierpool: %s not found next to %s nor in", TP_CLI_LIBRARY, self);
    for (size_t i = 1; i < sizeof library_dirs / sizeof library_dirs[0]; i++)
        fprintf(stderr, " %s/%s", self, library_dirs[i]);
    fprintf(stderr, "\n");
    return false;
}

static int run(int argc, char **argv)
{
    static const struct option options[] = {{"stats", no_argument, NULL, 256}, {0}};
    /* '+': the options end at PROGRAM, whose own options are its own. */
    cli_parser p = cli_parser_init(&cmd_run, argc, argv, "+", options);
    bool stats = false;
    while (cli_getopt(&p) != -1) stats = true;
    if (p.help || p.failed) return cli_stop_status(&p);
    int i = optind;
    if (i == argc) return cli_usage_error(&p, "no program given");

    char library[PATH_MAX];
    if (!cli_find_library(library, sizeof library)) return EXIT_NO_LIBRARY;
    /* The loader splits LD_PRELOAD at spaces and colons, so such a path
     * cannot be preloaded at all. */
    if (strpbrk(library, " :")) {
        fprintf(stderr, "tierpool: cannot preload %s: LD_PRELOAD cannot hold a path with ' ' or ':'\n",
                library);
        return EXIT_NO_LIBRARY;
    }
    /* First, so that tierpool's malloc wins over any other preloaded one. */
    const char *old = getenv("LD_PRELOAD");
    char *preload;
    int len = old && *old ? asprintf(&preload, "%s:%s", library, old) : asprintf(&preload, "%s", library);
    if (len < 0 || setenv("LD_PRELOAD", preload, 1) != 0 || (stats && setenv("TIERPOOL_SHOW_STATS", "1", 1) != 0)) {
        fprintf(stderr, "tierpool: cannot set the environment: %s\n", strerror(errno));
        return EXIT_NO_LIBRARY;
    }
    free(preload);

    execvp(argv[i], &argv[i]);
    int err = errno;
    fprintf(stderr, "tierpool: cannot run %s: %s\n", argv[i], strerror(err));
    return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

const command cmd_run = {
    "run", "[--stats] [--] PROGRAM [ARGS...]", "run PROGRAM with tierpool as its malloc (LD_PRELOAD)",
    "options:\n"
    "  --stats   set TIERPOOL_SHOW_STATS=1: the allocator prints its statistics\n"
    "            when the program exits\n"
    "\n"
    "The program's environment is kept, so TIERPOOL_PUBLISH=1 tierpool run PROGRAM\n"
    "publishes its statistics for tierpool top, stats, record and exporter.\n"
    "\n"
    "run exits with the program's status, or 125 (library not found),\n"
    "126 (program not executable), 127 (program not found).\n",
    run,
};
