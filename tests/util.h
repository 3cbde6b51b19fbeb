/* SPDX-License-Identifier: MIT */
/*
 * util.h: helpers shared by the tests: resident memory, a seeded random
 * generator, block patterns, and running a call in a child process.
 */
#ifndef TP_TEST_UTIL_H
#define TP_TEST_UTIL_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/* Upper bounds on resident memory hold only without a sanitizer: ASan and
 * TSan keep shadow memory for every byte the program touched, which purging
 * the program's own pages does not release. */
#if defined(TP_SANITIZE_ADDRESS) || defined(TP_SANITIZE_THREAD)
#define UTIL_RSS_BOUNDS 0
#else
#define UTIL_RSS_BOUNDS 1
#endif

/* Field `index` of /proc/self/statm in bytes, read without allocating. */
static __attribute__((unused)) size_t util_statm(unsigned index)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = buf;
    for (unsigned i = 0; i < index && p; i++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    return p ? (size_t)strtoull(p, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Resident bytes. */
static __attribute__((unused)) size_t util_rss(void)
{
    return util_statm(1);
}

/* Resident bytes of the OS pages [p, p + n) touches, by mincore. */
static __attribute__((unused)) size_t util_resident(void *p, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), count = 0;
    char *start = (char *)((uintptr_t)p & ~(uintptr_t)(page - 1));
    n += (size_t)((char *)p - start);
    size_t pages = (n + page - 1) / page;
    unsigned char *vec = malloc(pages);
    if (!vec || mincore(start, n, vec) != 0) {
        free(vec);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < pages; i++) count += vec[i] & 1;
    free(vec);
    return count * page;
}

/* Bytes of address space mapped (what RLIMIT_AS limits). */
static __attribute__((unused)) size_t util_vm_size(void)
{
    return util_statm(0);
}

/* splitmix64: small, seedable, good enough to pick operations. */
static __attribute__((unused)) uint64_t util_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The byte a block with this id holds at offset i: odd, so never 0, so that
 * a zeroed byte is told from the pattern. */
static inline uint8_t util_pattern(uint64_t id, size_t i)
{
    return (uint8_t)(((id * 0x9e3779b97f4a7c15ULL) >> 56) + i * 131u) | 1u;
}

/* Marks: a pattern over a block's first and last KiB and 16 bytes of each
 * 32 KiB between, so that blocks of megabytes are checked in little time
 * (and without touching every OS page: page faults are what costs).
 * util_marks writes them (UTIL_WRITE), or checks the marks below `limit`
 * (the part a realloc keeps) for the pattern (UTIL_VERIFY) or for zero
 * (UTIL_ZERO); returns the first bad offset, or UTIL_OK. */
enum { UTIL_WRITE, UTIL_VERIFY, UTIL_ZERO };
#define UTIL_OK SIZE_MAX
#define UTIL_EDGE 1024u
#define UTIL_STRIDE 32768u

static size_t util_mark_range(uint8_t *b, size_t from, size_t to, uint64_t id, int mode)
{
    if (mode == UTIL_WRITE) {
        for (size_t i = from; i < to; i++) b[i] = util_pattern(id, i);
        return UTIL_OK;
    }
    for (size_t i = from; i < to; i++)
        if (b[i] != (mode == UTIL_ZERO ? 0 : util_pattern(id, i))) return i;
    return UTIL_OK;
}

static __attribute__((unused)) size_t util_marks(void *p, size_t n, size_t limit, uint64_t id, int mode)
{
    uint8_t *b = p;
    size_t end = n < limit ? n : limit, bad;
    if (n <= 2 * UTIL_EDGE) return util_mark_range(b, 0, end, id, mode);
    size_t tail = n - UTIL_EDGE;
    if ((bad = util_mark_range(b, 0, UTIL_EDGE < end ? UTIL_EDGE : end, id, mode)) != UTIL_OK) return bad;
    for (size_t off = UTIL_STRIDE; off < tail && off < end; off += UTIL_STRIDE) {
        size_t to = off + 16 < tail ? off + 16 : tail;
        if ((bad = util_mark_range(b, off, to < end ? to : end, id, mode)) != UTIL_OK) return bad;
    }
    return tail < end ? util_mark_range(b, tail, end, id, mode) : UTIL_OK;
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

/* Runs crash() in a child (util_run_child) and tells whether it died of
 * `signal` (0: exited with a non-zero status, as a sanitizer's report does)
 * having written `message` (NULL: anything) to stderr; says how it died
 * otherwise, and prints what it wrote. */
static __attribute__((unused)) bool util_died_of(const char *name, void (*crash)(void *), int signal,
                                                 const char *message)
{
    char err[4096];
    int status = util_run_child(crash, NULL, err, sizeof err);
    bool died = signal ? WIFSIGNALED(status) && WTERMSIG(status) == signal
                       : WIFEXITED(status) && WEXITSTATUS(status) != 0;
    if (!died)
        fprintf(stderr, "    %s: the child %s %d\n", name, WIFSIGNALED(status) ? "died of signal" : "exited with",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    bool said = !message || strstr(err, message) != NULL;
    if (!said) fprintf(stderr, "    %s: expected \"%s\", stderr was \"%s\"\n", name, message, err);
    printf("%s: %s", name, err[0] ? err : "(no message)\n");
    return died && said;
}

#endif /* TP_TEST_UTIL_H */
