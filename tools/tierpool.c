/*
 * tierpool: the command-line tool. One binary, a table of subcommands:
 *
 *   tierpool run [--stats] [--] PROGRAM [ARGS...]
 *       runs PROGRAM with libtierpool-malloc preloaded (docs/override.md)
 *   tierpool version
 *   tierpool help
 *
 * A new subcommand is one function and one row of `commands`. Exit status:
 * 0, or 2 for a usage error; `run` becomes the program, or exits 125 when
 * the library cannot be found, 126 when the program cannot be executed and
 * 127 when it is not found (as env(1) does).
 *
 * The library is found from the tool's own path, never from the search
 * path, so `tierpool run` preloads the build next to it: the build tree
 * keeps both in one folder, an install keeps the tool in <prefix>/bin and
 * the library in <prefix>/<libdir> (TP_CLI_LIBDIR, relative to bin) or one
 * of the usual lib folders.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tierpool.h"

#ifndef TP_CLI_LIBRARY
#define TP_CLI_LIBRARY "libtierpool-malloc.so.0"
#endif
#ifndef TP_CLI_LIBDIR
#define TP_CLI_LIBDIR "../lib"
#endif
#ifndef TP_CLI_MULTIARCH
#define TP_CLI_MULTIARCH ""
#endif

enum { EXIT_USAGE = 2, EXIT_NO_LIBRARY = 125, EXIT_CANNOT_EXEC = 126, EXIT_NOT_FOUND = 127 };

typedef struct command {
    const char *name;
    const char *usage; /* arguments, for help */
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
} command;

static int cmd_run(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const command commands[] = {
    {"run", "[--stats] [--] PROGRAM [ARGS...]", "run PROGRAM with tierpool as its malloc (LD_PRELOAD)", cmd_run},
    {"version", "", "print the version and the library `run` preloads", cmd_version},
    {"help", "", "print this help", cmd_help},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: tierpool COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %s%s%s\n      %s\n", commands[i].name, *commands[i].usage ? " " : "", commands[i].usage,
                commands[i].summary);
    fprintf(out,
            "\nrun options:\n"
            "  --stats   set TIERPOOL_SHOW_STATS=1: the allocator prints its statistics\n"
            "            when the program exits\n"
            "\nrun exits with the program's status, or 125 (library not found),\n"
            "126 (program not executable), 127 (program not found).\n");
}

/* ---- finding libtierpool-malloc ------------------------------------------------- */

/* Folders the library may be in, relative to the tool's folder: the build
 * tree's, then the install's. */
static const char *const library_dirs[] = {
    ".",
    TP_CLI_LIBDIR,
    "../lib/" TP_CLI_MULTIARCH,
    "../lib",
};

/* Writes the library's path into out; false (with a message) if absent. */
static bool find_library(char *out, size_t size)
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

/* ---- run ------------------------------------------------------------------------------ */

static int cmd_run(int argc, char **argv)
{
    bool stats = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--stats") == 0) {
            stats = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tierpool run: unknown option %s\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (i == argc) {
        fprintf(stderr, "tierpool run: no program given\nusage: tierpool run %s\n", commands[0].usage);
        return EXIT_USAGE;
    }

    char library[PATH_MAX];
    if (!find_library(library, sizeof library)) return EXIT_NO_LIBRARY;
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

/* ---- version, help ------------------------------------------------------------------ */

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("tierpool %d.%d.%d\n", TIERPOOL_VERSION_MAJOR, TIERPOOL_VERSION_MINOR, TIERPOOL_VERSION_PATCH);
    char library[PATH_MAX];
    if (!find_library(library, sizeof library)) return EXIT_NO_LIBRARY;
    printf("library: %s\n", library);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) name = "help";
    if (strcmp(name, "--version") == 0) name = "version";
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i].name, name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tierpool: unknown command '%s' (see tierpool --help)\n", argv[1]);
    return EXIT_USAGE;
}
