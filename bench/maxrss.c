/* SPDX-License-Identifier: MIT */
/*
 * maxrss.c: runs a command and reports its peak resident memory, wall time
 * and CPU time.
 *
 *   tp_bench_maxrss [--preload LIB] [--timeout SECONDS] [--] COMMAND [ARGS...]
 *
 * After the command exits, prints one line on stderr:
 *
 *   maxrss_kb N wall_s W user_s U sys_s S status X
 *
 * (X: the exit status, 128 + the signal number if it was killed, "timeout"
 * if --timeout ran out and the command was killed) and exits with the
 * command's status (124 after a timeout).
 *
 * bench/run.py starts every benchmark process through this program. A
 * process started straight from Python inherits the interpreter's peak
 * (Linux keeps ru_maxrss across fork and exec), while this program's own is
 * about 1 MiB. --preload sets LD_PRELOAD in the command's environment only,
 * so that this program itself runs on the C library's malloc under every
 * allocator and the 1 MiB the command inherits is the same for all of them.
 * --timeout kills the command (SIGKILL) after SECONDS of wall time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

static volatile sig_atomic_t timed_out;
static pid_t child;

static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
    kill(child, SIGKILL);
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--preload LIB] [--timeout SECONDS] [--] COMMAND [ARGS...]\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *preload = NULL;
    unsigned timeout = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--preload") && i + 1 < argc)
            preload = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else
            return usage(argv[0]);
    }
    if (i >= argc) return usage(argv[0]);

    double start = bench_now();
    child = fork();
    if (child < 0) {
        perror("fork");
        return 127;
    }
    if (child == 0) {
        if (preload && *preload) setenv("LD_PRELOAD", preload, 1);
        execvp(argv[i], argv + i);
        perror(argv[i]);
        _exit(127);
    }
    if (timeout) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
        alarm(timeout);
    }
    int status;
    struct rusage usage;
    pid_t got;
    while ((got = wait4(child, &status, 0, &usage)) < 0 && errno == EINTR) {
    }
    double wall = bench_now() - start;
    if (got < 0) {
        perror("wait4");
        return 127;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char code_text[16];
    if (timed_out)
        snprintf(code_text, sizeof code_text, "timeout");
    else
        snprintf(code_text, sizeof code_text, "%d", code);
    fprintf(stderr, "maxrss_kb %ld wall_s %.4f user_s %.4f sys_s %.4f status %s\n", usage.ru_maxrss, wall,
            (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec * 1e-6,
            (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec * 1e-6, code_text);
    return timed_out ? 124 : code;
}
