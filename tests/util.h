/*
 * util.h: helpers shared by the tests: resident memory, a seeded random
 * generator, block patterns, and running a call in a child process.
 */
#ifndef TP_TEST_UTIL_H
#define TP_TEST_UTIL_H

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/* Resident bytes from /proc/self/statm, read without allocating. */
static __attribute__((unused)) size_t util_rss(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strchr(buf, ' ');
    return p ? (size_t)strtoull(p + 1, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* splitmix64: small, seedable, good enough to pick operations. */
static __attribute__((unused)) uint64_t util_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The byte a block with this id holds at offset i. Never 0, so that a
 * zeroed or foreign byte is told from the pattern. */
static inline uint8_t util_pattern(uint64_t id, size_t i)
{
    return (uint8_t)((((id * 0x9e3779b97f4a7c15ULL) >> 56) + i * 131u) % 255u + 1u);
}

/* Marks: a pattern over a block's first and last 4 KiB and 16 bytes of each
 * 4 KiB between, so that blocks of megabytes are checked in little time.
 * util_marks writes them (UTIL_WRITE), or checks the marks below `limit`
 * (the part a realloc keeps) for the pattern (UTIL_VERIFY) or for zero
 * (UTIL_ZERO); returns the first bad offset, or UTIL_OK. */
enum { UTIL_WRITE, UTIL_VERIFY, UTIL_ZERO };
#define UTIL_OK SIZE_MAX
static __attribute__((unused)) size_t util_marks(void *p, size_t n, size_t limit, uint64_t id, int mode)
{
    uint8_t *b = p;
    size_t edge = 4096, tail = n > 2 * edge ? n - edge : edge;
    for (size_t i = 0; i < n && i < limit;) {
        uint8_t want = mode == UTIL_ZERO ? 0 : util_pattern(id, i);
        if (mode == UTIL_WRITE)
            b[i] = want;
        else if (b[i] != want)
            return i;
        i++;
        if (i >= edge && i < tail && i % edge >= 16) { /* past a stride's mark: skip to the next */
            size_t next = (i / edge + 1) * edge;
            i = next < tail ? next : tail;
        }
    }
    return UTIL_OK;
}
#define util_mark(p, n, id) ((void)util_marks(p, n, SIZE_MAX, id, UTIL_WRITE))
#define util_verify(p, n, limit, id) util_marks(p, n, limit, id, UTIL_VERIFY)
#define util_zero(p, n) util_marks(p, n, SIZE_MAX, 0, UTIL_ZERO)

/* Runs fn(arg) in a forked child with stderr captured into err (NUL
 * terminated). Returns the child's wait status. */
static __attribute__((unused)) int util_run_child(void (*fn)(void *), void *arg, char *err, size_t err_size)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn(arg);
        _exit(0); /* fn was expected not to return */
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], err + len, err_size - 1 - len)) > 0) len += (size_t)n;
    err[len] = 0;
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    return status;
}

#endif /* TP_TEST_UTIL_H */
