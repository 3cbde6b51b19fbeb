/* SPDX-License-Identifier: MIT */
/*
 * cmd_profile.c: `tierpool profile PID`, a heap profile of a running
 * process that publishes its statistics. The request goes through the
 * process's segment (tierpool_segment.h, tpi_shm_profile): this tool writes
 * the file's name and the pool's, bumps the request number and waits; the
 * process's monitor thread writes the profile and answers.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "snapshot.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { OPT_POOL = 256, OPT_TIMEOUT };

static int profile(int argc, char **argv)
{
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        {"pool", required_argument, NULL, OPT_POOL},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {0},
    };
    cli_parser p = cli_parser_init(&cmd_profile, argc, argv, "o:", options);
    const char *output = NULL, *pool = "";
    uint64_t timeout_ms = 10000;
    pid_t pid = 0;
    int opt;
    while ((opt = cli_getopt(&p)) != -1) {
        if (opt == 'o') output = optarg;
        else if (opt == OPT_POOL) pool = optarg;
        else if (opt == OPT_TIMEOUT) cli_duration_value(&p, 1, &timeout_ms);
    }
    const char *arg = cli_next_argument(&p);
    if (arg) cli_pid_argument(&p, arg, &pid);
    if (!cli_finish(&p, pid ? NULL : "no process id given")) return cli_stop_status(&p);
    if (strlen(pool) >= sizeof(((tpi_shm_profile *)0)->pool))
        return cli_usage_error(&p, "the pool name '%s' is too long", pool);

    /* The process writes the file: its name must not depend on our folder. */
    char path[TPI_SHM_PATH_MAX], cwd[PATH_MAX], fallback[64];
    if (!output) {
        snprintf(fallback, sizeof fallback, "tierpool-%ld.heap", (long)pid);
        output = fallback;
    }
    int n;
    if (output[0] == '/') n = snprintf(path, sizeof path, "%s", output);
    else if (getcwd(cwd, sizeof cwd)) n = snprintf(path, sizeof path, "%s/%s", cwd, output);
    else return cli_usage_error(&p, "cannot tell the current folder; give -o an absolute path");
    if (n < 0 || (size_t)n >= sizeof path) return cli_usage_error(&p, "the output file name is too long");

    tpi_shm *shm = NULL;
    uint64_t until = cli_clock_ms() + SNAPSHOT_FIRST_WAIT_MS;
    snapshot_status status;
    while ((status = snapshot_map_writable(pid, &shm)) == SNAPSHOT_BUSY && cli_clock_ms() < until)
        cli_sleep_ms(20, NULL);
    if (status != SNAPSHOT_OK) return snapshot_report(cmd_profile.name, pid, status);

    tpi_shm_profile *req = &shm->profile;
    memset(req->pool, 0, sizeof req->pool);
    memset(req->path, 0, sizeof req->path);
    memcpy(req->pool, pool, strlen(pool));
    memcpy(req->path, path, strlen(path));
    uint64_t number = atomic_fetch_add_explicit(&req->request, 1, memory_order_acq_rel) + 1;
    until = cli_clock_ms() + timeout_ms;
    bool answered = false;
    while (!(answered = atomic_load_explicit(&req->done, memory_order_acquire) >= number) &&
           cli_clock_ms() < until && process_alive(pid))
        cli_sleep_ms(10, NULL);
    int err = answered ? req->status : 0;
    munmap(shm, sizeof(tpi_shm));
    if (!answered) {
        fprintf(stderr, "tierpool profile: process %ld did not answer within %.1f s%s\n", (long)pid,
                (double)timeout_ms / 1000, process_alive(pid) ? "" : " (it exited)");
        return 1;
    }
    if (err == ENOENT && *pool) {
        fprintf(stderr, "tierpool profile: process %ld has no pool named '%s'\n", (long)pid, pool);
        return 1;
    }
    if (err) {
        fprintf(stderr, "tierpool profile: process %ld could not write %s: %s\n", (long)pid, path, strerror(err));
        return 1;
    }
    /* A process that does not sample writes a profile of nothing. */
    long long objects = -1, bytes = -1, allocated = -1;
    FILE *written = fopen(path, "r");
    if (written) {
        if (fscanf(written, "heap profile: %lld: %lld [%lld:", &objects, &bytes, &allocated) != 3) objects = -1;
        fclose(written);
    }
    if (objects == 0 && allocated == 0)
        fprintf(stderr, "tierpool profile: the profile is empty: does process %ld sample (TIERPOOL_PROFILE=1)?\n",
                (long)pid);
    char exe[PATH_MAX], link[64];
    snprintf(link, sizeof link, "/proc/%ld/exe", (long)pid);
    ssize_t len = readlink(link, exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    printf("heap profile of process %ld written to %s\nread it with: google-pprof --text %s %s\n", (long)pid, path,
           len > 0 ? exe : "PROGRAM", path);
    return fflush(stdout) == 0 ? 0 : 1;
}

const command cmd_profile = {
    "profile", "PID [-o FILE] [--pool NAME] [--timeout DURATION]",
    "write a heap profile of a publishing process, for google-pprof",
    "options:\n"
    "  -o, --output FILE    where the process writes the profile (default\n"
    "                       tierpool-PID.heap in the current folder)\n"
    "  --pool NAME          the blocks of the pool named NAME only (default: every pool)\n"
    "  --timeout DURATION   how long to wait for the answer (default 10s; a process\n"
    "                       that does not sample answers once per publishing interval)\n"
    "\n"
    "PID must publish its statistics (TIERPOOL_PUBLISH=1 or tp_monitor_start())\n"
    "and sample allocations (TIERPOOL_PROFILE=1; one sample per TIERPOOL_PROFILE_SAMPLE\n"
    "bytes, 512K by default). The process itself writes FILE, as its own user,\n"
    "in gperftools' heap profile format: `google-pprof --text PROGRAM FILE`\n"
    "lists the functions holding its live memory (docs/profiling.md).\n",
    profile,
};
