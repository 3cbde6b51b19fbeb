/* SPDX-License-Identifier: MIT */
/*
 * expect_fatal.h: a death check for the preload test programs (after
 * ../test.h): runs call(arg) in a child with its stderr captured, which
 * must abort with `message` on stderr.
 */
#ifndef TPO_EXPECT_FATAL_H
#define TPO_EXPECT_FATAL_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void expect_fatal(void (*call)(void *), void *arg, const char *message)
{
    int fds[2];
    if (!CHECK_EQ(pipe(fds), 0)) return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fds[1], STDERR_FILENO);
        call(arg);
        _exit(0);
    }
    close(fds[1]);
    char out[512];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof out - 1 && (n = read(fds[0], out + len, sizeof out - 1 - len)) > 0) len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    if (!CHECK_EQ(waitpid(pid, &status, 0), pid)) return;
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    if (!CHECK(strstr(out, message) != NULL)) fprintf(stderr, "    stderr: %s\n", out);
}

#endif /* TPO_EXPECT_FATAL_H */
