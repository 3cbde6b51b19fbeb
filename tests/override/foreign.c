/* SPDX-License-Identifier: MIT */
/*
 * foreign.c: the system allocator beside libtierpool-malloc, run with
 * LD_PRELOAD (tests/override.cmake). glibc's own malloc is reached through
 * a handle on libc.so.6, as a library that bypasses interposition would.
 *
 *   foreign      free, realloc and malloc_usable_size of glibc's blocks:
 *                the small ones (in the brk heap, provably glibc's) go back
 *                to glibc (which hands the same block out again); one glibc
 *                mmapped, or a pointer into static data, is reported and
 *                aborts
 *   checked      (TIERPOOL_CHECK=1) free of a glibc block reports and aborts
 *   passthrough  (TIERPOOL_PASSTHROUGH=1) every call, the C library's own
 *                allocations and other threads' included, comes from glibc:
 *                no block is tierpool's and its statistics count none
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "expect_fatal.h"
#include "preload.h"
#include "tierpool.h"

static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    preload_pool_of_fn pool_of;
    int (*stats_get)(tp_pool *, tp_stats *);
    long long (*option_get)(const char *);
} fn;

static void resolve(void)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    fn.malloc = libc ? (void *(*)(size_t))dlsym(libc, "malloc") : NULL;
    fn.free = libc ? (void (*)(void *))dlsym(libc, "free") : NULL;
    fn.pool_of = preload_pool_of();
    fn.stats_get = (int (*)(tp_pool *, tp_stats *))dlsym(RTLD_DEFAULT, "tp_stats_get");
    fn.option_get = (long long (*)(const char *))dlsym(RTLD_DEFAULT, "tp_option_get");
}

static void call_free(void *p)
{
    free(p);
}

static void call_realloc(void *p)
{
    CHECK(realloc(p, 10) == NULL); /* not reached */
}

static char not_ours[256] __attribute__((aligned(64)));

static void test_foreign(void)
{
    /* free: back to glibc, whose cache gives the same block out again. */
    char *g = fn.malloc(40);
    CHECK(g != NULL && !fn.pool_of(g));
    free(g);
    char *again = fn.malloc(40);
    CHECK_PTR_EQ(again, g);
    free(again);
    /* malloc_usable_size and realloc: a tierpool block takes its place. */
    g = fn.malloc(100);
    memset(g, 0x3c, 100);
    CHECK_GE(malloc_usable_size(g), 100);
    char *r = realloc(g, 5000);
    CHECK(r != NULL && fn.pool_of(r));
    for (int i = 0; i < 100; i++) CHECK_EQ((unsigned char)r[i], 0x3c);
    free(r);
    g = fn.malloc(64);
    CHECK(realloc(g, 0) == NULL);
    CHECK_PTR_EQ(fn.malloc(64), g); /* freed by glibc */
    fn.free(g);
    /* Not provably glibc's: reported, as before. */
    char *mapped = fn.malloc(4 << 20); /* glibc mmaps it */
    expect_fatal(call_free, mapped, "tierpool: fatal: free of a pointer tierpool does not own");
    expect_fatal(call_realloc, mapped, "tierpool: fatal: realloc of a pointer tierpool does not own");
    fn.free(mapped);
    expect_fatal(call_free, not_ours + 16, "tierpool: fatal: free of a pointer tierpool does not own");
    expect_fatal(call_free, g + 16, "tierpool: fatal: free of a pointer tierpool does not own");
    CHECK_EQ(malloc_usable_size(not_ours + 16), 0);
}

static void test_checked(void)
{
    CHECK_EQ(fn.option_get("CHECK"), 1);
    char *g = fn.malloc(40);
    expect_fatal(call_free, g, "tierpool: fatal: free of a pointer tierpool does not own");
    expect_fatal(call_realloc, g, "tierpool: fatal: realloc of a pointer tierpool does not own");
    fn.free(g);
}

static void *thread_allocs(void *arg)
{
    (void)arg;
    void *p = malloc(300);
    uintptr_t ours = fn.pool_of(p) != NULL;
    free(p);
    return (void *)ours;
}

static void test_passthrough(void)
{
    CHECK_EQ(fn.option_get("PASSTHROUGH"), 1);
    void *blocks[] = {
        malloc(10), malloc(3000), malloc(200000), malloc(5 << 20), calloc(10, 10), realloc(NULL, 70),
        aligned_alloc(64, 640), memalign(4096, 100), valloc(10), strdup("text"),
    };
    size_t n = sizeof blocks / sizeof blocks[0];
    for (size_t i = 0; i < n; i++) {
        CHECK(blocks[i] != NULL);
        CHECK(!fn.pool_of(blocks[i]));
        CHECK_GE(malloc_usable_size(blocks[i]), 5);
    }
    CHECK_EQ((uintptr_t)blocks[6] % 64, 0);
    CHECK_EQ((uintptr_t)blocks[7] % 4096, 0);
    void *pm = NULL;
    CHECK_EQ(posix_memalign(&pm, 256, 100), 0);
    CHECK(pm && !fn.pool_of(pm) && (uintptr_t)pm % 256 == 0);
    free(pm);
    blocks[0] = realloc(blocks[0], 100000);
    CHECK(blocks[0] && !fn.pool_of(blocks[0]));
    for (size_t i = 0; i < n; i++) free(blocks[i]);
    errno = 0;
    CHECK(malloc(SIZE_MAX / 2) == NULL && errno == ENOMEM);
    FILE *f = fopen("/proc/self/status", "r"); /* the C library's own buffers */
    CHECK(f != NULL);
    char line[256];
    CHECK(f && fgets(line, sizeof line, f) != NULL);
    if (f) fclose(f);
    pthread_t t;
    void *ours = (void *)1;
    CHECK_EQ(pthread_create(&t, NULL, thread_allocs, NULL), 0);
    pthread_join(t, &ours);
    CHECK(ours == NULL);
    /* A block of tierpool's own API is still tierpool's to free. */
    void *(*tp_malloc_fn)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "tp_malloc");
    void *tp = tp_malloc_fn(100);
    CHECK(fn.pool_of(tp) != NULL);
    CHECK_GE(malloc_usable_size(tp), 100);
    /* This thread has a tierpool cache now; malloc still passes through. */
    void *after = malloc(100);
    CHECK(after && !fn.pool_of(after));
    free(after);
    free(tp);
    tp_stats s;
    CHECK_EQ(fn.stats_get(NULL, &s), 0);
    CHECK_EQ(s.live_blocks, 0);
    CHECK_LE(s.allocs, 1); /* the tp_malloc above */
}

int main(int argc, char **argv)
{
    resolve();
    if (!fn.pool_of || !fn.malloc || !fn.stats_get) {
        fprintf(stderr, "foreign: run it with LD_PRELOAD=libtierpool-malloc.so\n");
        return 1;
    }
    const char *mode = argc > 1 ? argv[1] : "foreign";
    if (strcmp(mode, "foreign") == 0) test_foreign();
    if (strcmp(mode, "checked") == 0) test_checked();
    if (strcmp(mode, "passthrough") == 0) test_passthrough();
    return test_report();
}
