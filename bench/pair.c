/* SPDX-License-Identifier: MIT */
/*
 * pair.c: single-thread cost of malloc and free, tierpool against its peers,
 * all in one process.
 *
 *   pair       ns per warmed-up malloc+free pair, one size at a time
 *   lifo/fifo/random
 *              allocate N = 1000 blocks, then free them last-first,
 *              first-first or in a fixed random order; ns per operation
 *              (a malloc or a free)
 *
 * Allocators: tierpool (tp_malloc/tp_free, linked statically), the C
 * library's malloc/free, and, when their Debian packages are installed,
 * mimalloc (mi_malloc/mi_free from libmimalloc.so.2), tcmalloc
 * (tc_malloc/tc_free from libtcmalloc_minimal.so.4) and jemalloc. Debian's
 * libjemalloc.so.2 has no je_ prefix: it exports plain malloc/free, which
 * are taken from the dlopen handle (RTLD_LOCAL | RTLD_DEEPBIND keeps them
 * from replacing the process's malloc and binds jemalloc's own references
 * to itself). Its thread-locals are initial-exec, so dlopen needs more
 * static TLS than glibc keeps spare by default: the program re-executes
 * itself once with GLIBC_TUNABLES=glibc.rtld.optional_static_tls raised,
 * which changes nothing else. Every allocator is called through a function pointer, so each
 * pays the same indirect call. Each block gets one byte written, so no call
 * can be optimised away.
 *
 * Each figure is measured `--runs` times; the runs are interleaved (every
 * run measures all allocators, in an order that rotates from run to run) so
 * that a noisy neighbour hits them alike. The output is one tab-separated
 * line per measurement; bench/run.py turns it into tables of medians.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "tierpool.h"

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

typedef struct allocator {
    const char *name;
    malloc_fn malloc;
    free_fn free;
    /* Set for the "-direct" rows: the pair loop with direct calls, as a
     * program makes them (no function pointer); pairs only. */
    void (*direct_pairs)(size_t size, long iters);
} allocator;

#define MAX_ALLOCATORS 8
static allocator allocators[MAX_ALLOCATORS];
static unsigned allocator_count;

static const size_t pair_sizes[] = {16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536, 262144, 1048576};
static const size_t batch_sizes[] = {64, 1024, 16384};
#define BATCH_N 1000

enum pattern { PAT_PAIR, PAT_LIFO, PAT_FIFO, PAT_RANDOM };
static const char *const pattern_names[] = {"pair", "lifo", "fifo", "random"};

static double target_seconds = 0.02; /* length of one measurement */

/* ---- the peers ------------------------------------------------------------ */

static void add(const char *name, malloc_fn m, free_fn f)
{
    if (allocator_count < MAX_ALLOCATORS) allocators[allocator_count++] = (allocator){name, m, f, NULL};
}

/* The same loop as run_pairs, with the calls written out. */
#define DIRECT_PAIRS(fn_name, malloc_call, free_call)          \
    static __attribute__((noinline)) void fn_name(size_t size, long iters) \
    {                                                          \
        for (long i = 0; i < iters; i++) {                     \
            char *p = malloc_call(size);                       \
            *(volatile char *)p = 1;                           \
            free_call(p);                                      \
        }                                                      \
    }
DIRECT_PAIRS(tierpool_direct_pairs, tp_malloc, tp_free)
DIRECT_PAIRS(glibc_direct_pairs, malloc, free)

static void add_direct(const char *name, void (*pairs)(size_t, long))
{
    if (allocator_count < MAX_ALLOCATORS) allocators[allocator_count++] = (allocator){name, NULL, NULL, pairs};
}

static void add_dlopen(const char *name, const char *lib, int flags, const char *msym, const char *fsym)
{
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | flags);
    if (!h) {
        printf("# skip\t%s\t%s not loadable: %s\n", name, lib, dlerror());
        return;
    }
    malloc_fn m;
    free_fn f;
    /* POSIX sanctions this conversion of dlsym's result. */
    *(void **)&m = dlsym(h, msym);
    *(void **)&f = dlsym(h, fsym);
    if (!m || !f) {
        printf("# skip\t%s\t%s lacks %s/%s\n", name, lib, msym, fsym);
        return;
    }
    Dl_info info;
    const char *path = dladdr(*(void **)&m, &info) && info.dli_fname ? info.dli_fname : lib;
    printf("# allocator\t%s\t%s:%s/%s\n", name, path, msym, fsym);
    add(name, m, f);
}

/* ---- measurements ------------------------------------------------------------ */

static uint32_t order[BATCH_N];
static void *blocks[BATCH_N];

static __attribute__((noinline)) void run_pairs(const allocator *a, size_t size, long iters)
{
    if (a->direct_pairs) {
        a->direct_pairs(size, iters);
        return;
    }
    malloc_fn m = a->malloc;
    free_fn f = a->free;
    for (long i = 0; i < iters; i++) {
        char *p = m(size);
        *(volatile char *)p = 1;
        f(p);
    }
}

static __attribute__((noinline)) void run_batches(const allocator *a, size_t size, enum pattern pat, long iters)
{
    malloc_fn m = a->malloc;
    free_fn f = a->free;
    for (long r = 0; r < iters; r++) {
        for (unsigned i = 0; i < BATCH_N; i++) {
            char *p = m(size);
            *(volatile char *)p = 1;
            blocks[i] = p;
        }
        switch (pat) {
        case PAT_LIFO:
            for (unsigned i = BATCH_N; i-- > 0;) f(blocks[i]);
            break;
        case PAT_FIFO:
            for (unsigned i = 0; i < BATCH_N; i++) f(blocks[i]);
            break;
        default:
            for (unsigned i = 0; i < BATCH_N; i++) f(blocks[order[i]]);
            break;
        }
    }
}

/* Runs `iters` rounds; returns the seconds taken. */
static double run(const allocator *a, size_t size, enum pattern pat, long iters)
{
    double t0 = bench_now();
    if (pat == PAT_PAIR)
        run_pairs(a, size, iters);
    else
        run_batches(a, size, pat, iters);
    return bench_now() - t0;
}

static long ops_per_round(enum pattern pat)
{
    return pat == PAT_PAIR ? 1 : 2 * BATCH_N;
}

/* Rounds that take about target_seconds, after a warm-up. */
static long calibrate(const allocator *a, size_t size, enum pattern pat)
{
    long iters = pat == PAT_PAIR ? 1000 : 2;
    run(a, size, pat, iters); /* warm-up: the first pages, the thread cache */
    for (;;) {
        double t = run(a, size, pat, iters);
        if (t >= target_seconds / 8 || iters > (1L << 30)) {
            double want = (double)iters * target_seconds / (t > 0 ? t : 1e-9);
            return want < 1 ? 1 : (long)want;
        }
        iters *= 4;
    }
}

static void measure(enum pattern pat, size_t size, unsigned runs)
{
    long iters[MAX_ALLOCATORS];
    for (unsigned k = 0; k < allocator_count; k++)
        if (pat == PAT_PAIR || !allocators[k].direct_pairs) iters[k] = calibrate(&allocators[k], size, pat);
    for (unsigned r = 0; r < runs; r++) {
        for (unsigned j = 0; j < allocator_count; j++) {
            unsigned k = (j + r) % allocator_count;
            const allocator *a = &allocators[k];
            if (pat != PAT_PAIR && a->direct_pairs) continue;
            run(a, size, pat, iters[k] / 16 + 1); /* re-warm after the others ran */
            double t = run(a, size, pat, iters[k]);
            double ns = t * 1e9 / ((double)iters[k] * (double)ops_per_round(pat));
            printf("%s\t%zu\t%s\t%u\t%.3f\n", pattern_names[pat], size, a->name, r, ns);
        }
        fflush(stdout);
    }
}

/* ---- main ------------------------------------------------------------------------ */

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--runs N] [--seconds S] [--only pair|batch]\n"
            "  --runs N      measurements per figure (default 7)\n"
            "  --seconds S   length of one measurement (default 0.02)\n"
            "  --only WHAT   only the pair or only the batch patterns\n",
            argv0);
    return 2;
}

/* dlopen of an initial-exec TLS library (jemalloc) needs spare static TLS,
 * which glibc sizes at start-up from this tunable: set it and start over. */
static void reexec_with_static_tls(char **argv)
{
    const char *tun = getenv("GLIBC_TUNABLES");
    if (tun && strstr(tun, "optional_static_tls")) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%sglibc.rtld.optional_static_tls=16384", tun ? tun : "", tun ? ":" : "");
    setenv("GLIBC_TUNABLES", buf, 1);
    execv("/proc/self/exe", argv);
    /* exec failed: go on; jemalloc will be reported as skipped */
}

int main(int argc, char **argv)
{
    reexec_with_static_tls(argv);
    unsigned runs = 7;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            target_seconds = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else
            return usage(argv[0]);
    }
    if (runs == 0 || !(target_seconds > 0)) return usage(argv[0]);

    add("tierpool", tp_malloc, tp_free);
    printf("# allocator\ttierpool\tstatic:tp_malloc/tp_free\n");
    add("glibc", malloc, free);
    printf("# allocator\tglibc\tlibc:malloc/free\n");
    add_dlopen("mimalloc", "libmimalloc.so.2", 0, "mi_malloc", "mi_free");
    add_dlopen("tcmalloc", "libtcmalloc_minimal.so.4", 0, "tc_malloc", "tc_free");
    add_dlopen("jemalloc", "libjemalloc.so.2", RTLD_DEEPBIND, "malloc", "free");
    add_direct("tierpool-direct", tierpool_direct_pairs);
    printf("# allocator\ttierpool-direct\tstatic:tp_malloc/tp_free, called directly\n");
    add_direct("glibc-direct", glibc_direct_pairs);
    printf("# allocator\tglibc-direct\tlibc:malloc/free, called directly\n");
    printf("# runs\t%u\n# seconds\t%g\n# batch_n\t%d\n", runs, target_seconds, BATCH_N);

    /* A fixed permutation (xorshift, fixed seed) for the random order. */
    uint32_t x = 2463534242u;
    for (uint32_t i = 0; i < BATCH_N; i++) order[i] = i;
    for (uint32_t i = BATCH_N - 1; i > 0; i--) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        uint32_t j = x % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    printf("pattern\tsize\tallocator\trun\tns\n");
    if (!only || !strcmp(only, "pair"))
        for (size_t s = 0; s < sizeof pair_sizes / sizeof pair_sizes[0]; s++) measure(PAT_PAIR, pair_sizes[s], runs);
    if (!only || !strcmp(only, "batch"))
        for (int pat = PAT_LIFO; pat <= PAT_RANDOM; pat++)
            for (size_t s = 0; s < sizeof batch_sizes / sizeof batch_sizes[0]; s++)
                measure((enum pattern)pat, batch_sizes[s], runs);
    return 0;
}
