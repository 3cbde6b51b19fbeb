/*
 * maxrss.c: runs a command and reports its peak resident memory.
 *
 *   tp_bench_maxrss COMMAND [ARGS...]
 *
 * Prints "maxrss_kb N" on stderr after the command exits, and exits with
 * its status. bench/run.py uses it for the threaded workloads: a process
 * started straight from Python inherits the interpreter's peak (Linux keeps
 * ru_maxrss across fork and exec), while this program's own is about 1 MiB.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) {
        perror("wait4");
        return 127;
    }
    fprintf(stderr, "maxrss_kb %ld\n", usage.ru_maxrss);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
