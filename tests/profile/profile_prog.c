/* SPDX-License-Identifier: MIT */
/*
 * profile_prog.c: the program the profile tests look at (profile_test.py),
 * linked with libtierpool-malloc (in sanitizer builds, whose runtime owns
 * malloc, with libtierpool and its tp_malloc). It allocates known amounts
 * from three call sites and keeps them live:
 *
 *   site_small   malloc(240), SMALL_COUNT times      (slab blocks, the fast path)
 *   site_large   malloc(20000), LARGE_COUNT times    (runs)
 *   site_pool    tp_pool_malloc(pool "profiled", 300), POOL_COUNT times
 *
 * prints "ready <pid>" and waits for a line on stdin, then frees it all and
 * exits. With "fork" it also forks children that allocate and sample while
 * the parent's threads do and another writes profiles; with "threads"
 * threads that sample and exit.
 *
 * Built with PROFILE_UNWINDER (profile_prog_unwinder), the program defines
 * _Unwind_Backtrace, which allocates small, large and huge blocks before it
 * unwinds (libgcc's and glibc's backtrace allocate on first use): the
 * library's calls land here, and must neither recurse nor deadlock.
 * Without it, the library unwinds with glibc's backtrace where libgcc_s is
 * not loaded (a C program) and with libgcc's unwinder where it is (the
 * sanitizers' runtimes load it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tierpool.h"

#if defined(PROFILE_TP_API)
#define ALLOC tp_malloc
#define FREE tp_free
#else
#define ALLOC malloc
#define FREE free
#endif

#define SMALL_SIZE 240
#define SMALL_COUNT 280000  /* 67.2 MB */
#define LARGE_SIZE 20000
#define LARGE_COUNT 2400    /* 48 MB */
#define POOL_SIZE 300
#define POOL_COUNT 100000   /* 30 MB */

static void *small_blocks[SMALL_COUNT], *large_blocks[LARGE_COUNT], *pool_blocks[POOL_COUNT];

__attribute__((noinline)) static void site_small(void)
{
    for (int i = 0; i < SMALL_COUNT; i++) small_blocks[i] = ALLOC(SMALL_SIZE);
}

__attribute__((noinline)) static void site_large(void)
{
    for (int i = 0; i < LARGE_COUNT; i++) large_blocks[i] = ALLOC(LARGE_SIZE);
}

__attribute__((noinline)) static void site_pool(tp_pool *pool)
{
    for (int i = 0; i < POOL_COUNT; i++) pool_blocks[i] = tp_pool_malloc(pool, POOL_SIZE);
}

#if defined(PROFILE_UNWINDER)
#include <unwind.h>

static int unwinder_calls;

/* libgcc's function `name`, loaded if need be. */
static void *libgcc(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        void *gcc = dlopen("libgcc_s.so.1", RTLD_NOW);
        if (gcc) f = dlsym(gcc, name);
    }
    if (!f) abort();
    return f;
}

/* The library reaches libgcc's unwinder through weak references: these
 * definitions are the ones it finds. */
_Unwind_Ptr _Unwind_GetIP(struct _Unwind_Context *ctx);
_Unwind_Ptr _Unwind_GetIP(struct _Unwind_Context *ctx)
{
    static _Unwind_Ptr (*real)(struct _Unwind_Context *);
    if (!real) real = (_Unwind_Ptr(*)(struct _Unwind_Context *))libgcc("_Unwind_GetIP");
    return real(ctx);
}

/* Allocates, then unwinds with the real one. */
_Unwind_Reason_Code _Unwind_Backtrace(_Unwind_Trace_Fn fn, void *arg);
_Unwind_Reason_Code _Unwind_Backtrace(_Unwind_Trace_Fn fn, void *arg)
{
    static _Unwind_Reason_Code (*real)(_Unwind_Trace_Fn, void *);
    if (!real) real = (_Unwind_Reason_Code(*)(_Unwind_Trace_Fn, void *))libgcc("_Unwind_Backtrace");
    __atomic_fetch_add(&unwinder_calls, 1, __ATOMIC_RELAXED);
    /* Through volatile pointers: the compiler drops a malloc whose block is
     * freed unused. */
    void *(*volatile alloc)(size_t) = ALLOC;
    void (*volatile release)(void *) = FREE;
    void *a = alloc(64), *b = alloc(5000), *c = alloc(100000), *d = alloc(3 << 20);
    release(d);
    release(c);
    release(b);
    release(a);
    return real(fn, arg);
}
#endif

/* Allocates and frees, sampling as it goes, then exits (threads, fork). */
static void *churn(void *arg)
{
    (void)arg;
    void *(*volatile alloc)(size_t) = ALLOC;
    void (*volatile release)(void *) = FREE;
    for (int round = 0; round < 20; round++) {
        void *keep[500];
        for (int i = 0; i < 500; i++) keep[i] = alloc((size_t)(16 + (i * 37) % 3000));
        for (int i = 0; i < 500; i++) release(keep[i]);
    }
    return NULL;
}

static int profiling_done;

/* Writes profiles while the program forks: the writer allocates (stdio)
 * while it holds the live set's writer lock. */
static void *profile_repeatedly(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&profiling_done, __ATOMIC_RELAXED)) {
        FILE *out = fopen("/dev/null", "w");
        if (!out || tp_profile_write(out, NULL) != 0) exit(7);
        fclose(out);
    }
    return NULL;
}

static void start_churners(pthread_t *t, int n)
{
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, churn, NULL) != 0) exit(3);
}

static void join_churners(pthread_t *t, int n)
{
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    tp_pool *pool = tp_pool_create("profiled", NULL);
    if (!pool) return 2;
    pthread_t threads[4];
    bool churning = strcmp(mode, "fork") == 0 || strcmp(mode, "threads") == 0;
    if (churning) start_churners(threads, 4);
    if (strcmp(mode, "fork") == 0) {
        pthread_t profiler;
        if (pthread_create(&profiler, NULL, profile_repeatedly, NULL) != 0) return 3;
        for (int i = 0; i < 8; i++) {
            pid_t child = fork();
            if (child < 0) return 4;
            if (child == 0) {
                churn(NULL);
                site_small();
                _exit(0);
            }
            int status;
            if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "child %d failed (status %d)\n", i, status);
                return 5;
            }
        }
        __atomic_store_n(&profiling_done, 1, __ATOMIC_RELAXED);
        pthread_join(profiler, NULL);
    }
    site_small();
    site_large();
    site_pool(pool);
    if (churning) join_churners(threads, 4);
#if defined(PROFILE_UNWINDER)
    if (unwinder_calls == 0) {
        fprintf(stderr, "the library never called _Unwind_Backtrace\n");
        return 6;
    }
#endif
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) line[0] = '\0';
    for (int i = 0; i < SMALL_COUNT; i++) FREE(small_blocks[i]);
    for (int i = 0; i < LARGE_COUNT; i++) FREE(large_blocks[i]);
    for (int i = 0; i < POOL_COUNT; i++) tp_free(pool_blocks[i]);
    tp_pool_destroy(pool);
    return 0;
}
