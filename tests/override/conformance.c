/* SPDX-License-Identifier: MIT */
/*
 * conformance.c: every call of libtierpool-malloc's C surface, made as a
 * program makes it, against glibc's semantics. Built twice:
 *   override_conformance          an ordinary dynamic program, run with
 *                                 LD_PRELOAD=libtierpool-malloc.so
 *   override_conformance_static   linked with tierpool-malloc.o (TPO_STATIC)
 * Either way each block must be tierpool's (tp_pool_of), and so must the C
 * library's own allocations (strdup, fopen, getline, a thread's). The C++
 * operators are checked by conformance_cxx.cc.
 *
 * Names glibc does not declare or link (cfree, free_sized, the __libc_
 * aliases, tp_pool_of) are declared here and reached through `fn`: by
 * dlsym(RTLD_DEFAULT) under LD_PRELOAD, which also shows that the preloaded
 * library is what a lookup finds; directly in the static link.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tierpool.h"

#include "../test.h"
#include "conformance.h"
#include "expect_fatal.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

void cfree(void *p);
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t alignment, size_t size);
void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
int __posix_memalign(void **out, size_t alignment, size_t size);

#ifdef TPO_STATIC
#define SYM(name) ((void *)&(name))
#else
#define SYM(name) dlsym(RTLD_DEFAULT, #name)
#endif

static struct {
    tp_pool *(*pool_of)(const void *p);
    void (*cfree)(void *p);
    void (*free_sized)(void *p, size_t size);
    void (*free_aligned_sized)(void *p, size_t alignment, size_t size);
    void *(*libc_malloc)(size_t size);
    void (*libc_free)(void *p);
    void *(*libc_calloc)(size_t count, size_t size);
    void *(*libc_realloc)(void *p, size_t size);
    void *(*libc_memalign)(size_t alignment, size_t size);
    void *(*libc_valloc)(size_t size);
    void *(*libc_pvalloc)(size_t size);
    int (*posix_memalign)(void **out, size_t alignment, size_t size);
} fn;

static void resolve(void)
{
    fn.pool_of = SYM(tp_pool_of);
    fn.cfree = SYM(cfree);
    fn.free_sized = SYM(free_sized);
    fn.free_aligned_sized = SYM(free_aligned_sized);
    fn.libc_malloc = SYM(__libc_malloc);
    fn.libc_free = SYM(__libc_free);
    fn.libc_calloc = SYM(__libc_calloc);
    fn.libc_realloc = SYM(__libc_realloc);
    fn.libc_memalign = SYM(__libc_memalign);
    fn.libc_valloc = SYM(__libc_valloc);
    fn.libc_pvalloc = SYM(__libc_pvalloc);
    fn.posix_memalign = SYM(__posix_memalign);
}

int conf_ours(const void *p)
{
    return p && fn.pool_of(p) != NULL;
}

static int is_aligned(const void *p, size_t alignment)
{
    return (uintptr_t)p % alignment == 0;
}

/* A usable block of tierpool's of at least `size` bytes, aligned to
 * `alignment` and in any case to 16. */
static int check_block(void *p, size_t size, size_t alignment)
{
    if (!CHECK(p != NULL)) return 0;
    int ok = CHECK(is_aligned(p, alignment > 16 ? alignment : 16));
    ok &= CHECK(conf_ours(p));
    ok &= CHECK_GE(malloc_usable_size(p), size);
    if (size) { /* writable at both ends, content kept */
        volatile char *v = p;
        v[0] = v[0];
        v[size - 1] = v[size - 1];
    }
    return ok;
}

/* ---- every symbol is the preloaded library's ------------------------------------- */

static void test_symbols(void)
{
#ifdef TPO_STATIC
    /* The link itself is the check: libc.a's malloc.o would have clashed. */
    CHECK(fn.pool_of == &tp_pool_of);
#else
    static const char *const c_surface[] = {
        "malloc", "free", "calloc", "realloc", "reallocarray", "aligned_alloc", "posix_memalign",
        "memalign", "valloc", "pvalloc", "malloc_usable_size", "cfree", "free_sized",
        "free_aligned_sized", "malloc_trim", "mallinfo", "mallinfo2", "mallopt", "malloc_stats",
        "malloc_info", "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
        "__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__posix_memalign", "tp_pool_of",
    };
    for (size_t i = 0; i < sizeof c_surface / sizeof c_surface[0]; i++) {
        void *sym = dlsym(RTLD_DEFAULT, c_surface[i]);
        Dl_info info;
        int found = sym && dladdr(sym, &info) && info.dli_fname && strstr(info.dli_fname, "libtierpool-malloc");
        if (!CHECK(found)) fprintf(stderr, "    %s is not libtierpool-malloc's\n", c_surface[i]);
    }
#endif
}

/* ---- malloc and free --------------------------------------------------------------- */

static const size_t sizes[] = {
    0, 1, 8, 15, 16, 17, 100, KiB, KiB + 1, 4 * KiB, 4 * KiB + 1, 64 * KiB, 64 * KiB + 1,
    MiB, MiB + 1, 2 * MiB, 64 * MiB,
};
#define SIZE_COUNT (sizeof sizes / sizeof sizes[0])

static void test_malloc_free(void)
{
    void *a = malloc(0), *b = malloc(0);
    check_block(a, 0, 16);
    check_block(b, 0, 16);
    CHECK(a != b);
    free(a);
    free(b);
    free(NULL);
    CHECK_EQ(malloc_usable_size(NULL), 0);

    for (size_t i = 0; i < SIZE_COUNT; i++) {
        size_t n = sizes[i];
        void *p = malloc(n);
        check_block(p, n, 16);
        free(p);
        p = malloc(n);
        check_block(p, n, 16);
        fn.cfree(p);
        p = malloc(n);
        check_block(p, n, 16);
        fn.free_sized(p, n);
        p = aligned_alloc(64, n);
        check_block(p, n, 64);
        fn.free_aligned_sized(p, 64, n);
    }
}

/* ---- calloc -------------------------------------------------------------------------- */

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void test_calloc(void)
{
    for (size_t i = 0; i < SIZE_COUNT; i++) {
        size_t n = sizes[i];
        /* A dirty block freed just before is the likeliest to come back. */
        void *dirty = malloc(n);
        if (dirty) memset(dirty, 0xff, n);
        free(dirty);
        unsigned char *p = calloc(1, n);
        if (check_block(p, n, 16)) CHECK(all_zero(p, n));
        free(p);
        p = calloc(n, 1);
        if (check_block(p, n, 16)) CHECK(all_zero(p, n));
        free(p);
    }
    unsigned char *p = calloc(1000, 24);
    if (check_block(p, 24000, 16)) CHECK(all_zero(p, 24000));
    free(p);
    p = calloc(0, 0);
    check_block(p, 0, 16);
    free(p);
}

/* ---- realloc ------------------------------------------------------------------------------ */

static unsigned char *reference; /* the pattern every realloc'd block holds */
#define REFERENCE_SIZE (64 * MiB + 1)

static void test_realloc_tiers(void)
{
    static const size_t boundaries[] = {16, KiB, 4 * KiB, 64 * KiB, MiB, 2 * MiB, 64 * MiB};
    size_t steps[3 * sizeof boundaries / sizeof boundaries[0]], count = 0;
    for (size_t i = 0; i < sizeof boundaries / sizeof boundaries[0]; i++)
        for (size_t d = 0; d < 3; d++) steps[count++] = boundaries[i] - 1 + d;

    unsigned char *p = NULL;
    size_t have = 0;
    /* Up through every tier and back down, so each boundary is crossed both
     * ways; the block must keep its content all along. */
    for (size_t k = 0; k < 2 * count; k++) {
        size_t n = k < count ? steps[k] : steps[2 * count - 1 - k];
        unsigned char *q = realloc(p, n);
        if (!check_block(q, n, 16)) return;
        size_t kept = have < n ? have : n;
        if (!CHECK(memcmp(q, reference, kept) == 0)) fprintf(stderr, "    realloc %zu -> %zu\n", have, n);
        if (n > kept) memcpy(q + kept, reference + kept, n - kept);
        p = q;
        have = n;
    }
    free(p);
}

static void test_realloc(void)
{
    void *p = realloc(NULL, 100);
    check_block(p, 100, 16);
    CHECK(realloc(p, 0) == NULL);
    p = realloc(NULL, 0);
    check_block(p, 0, 16);
    free(p);

    test_realloc_tiers();

    p = reallocarray(NULL, 100, 30);
    if (check_block(p, 3000, 16)) memcpy(p, reference, 3000);
    p = reallocarray(p, 1000, 30);
    if (check_block(p, 30000, 16)) CHECK(memcmp(p, reference, 3000) == 0);
    free(p);
}

/* ---- aligned allocation -------------------------------------------------------------- */

static void test_alignment_sweep(void)
{
    for (size_t align = 1; align <= 4 * MiB; align <<= 1) {
        size_t three[] = {0, 1, align + 1};
        for (size_t k = 0; k < 3; k++) {
            size_t n = three[k];
            void *p = aligned_alloc(align, n);
            check_block(p, n, align);
            free(p);
            p = memalign(align, n);
            check_block(p, n, align);
            free(p);
            if (align >= sizeof(void *)) {
                p = NULL;
                CHECK_EQ(posix_memalign(&p, align, n), 0);
                check_block(p, n, align);
                free(p);
            }
        }
    }
}

static void test_aligned(void)
{
    test_alignment_sweep();

    /* posix_memalign: EINVAL for an alignment that is not a power of two
     * or below sizeof(void *), ENOMEM when out of memory; the out pointer
     * untouched and errno unchanged either way. */
    static const size_t bad[] = {0, 1, 2, 4, 24, 48, 3 * KiB};
    void *sentinel = &sentinel;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = sentinel;
        errno = 0;
        CHECK_EQ(posix_memalign(&out, bad[i], 64), EINVAL);
        CHECK(out == sentinel);
        CHECK_EQ(errno, 0);
    }
    void *out = sentinel;
    errno = 0;
    CHECK_EQ(posix_memalign(&out, 64, SIZE_MAX), ENOMEM);
    CHECK(out == sentinel);
    CHECK_EQ(errno, 0);

    errno = 0;
    CHECK(aligned_alloc(24, 100) == NULL);
    CHECK_EQ(errno, EINVAL);
    /* memalign rounds a bad alignment up to a power of two, as glibc's does. */
    void *p = memalign(48, 100);
    check_block(p, 100, 64);
    free(p);
    p = memalign(0, 100);
    check_block(p, 100, 16);
    free(p);

    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    p = valloc(100);
    check_block(p, 100, page);
    free(p);
    p = valloc(3 * page + 1);
    check_block(p, 3 * page + 1, page);
    free(p);
    p = pvalloc(1);
    check_block(p, page, page); /* rounded up to a whole page */
    free(p);
    p = pvalloc(0);
    check_block(p, 0, page);
    free(p);
}

/* ---- out of memory -------------------------------------------------------------------------- */

#define CHECK_ENOMEM(call)            \
    do {                              \
        errno = 0;                    \
        CHECK((call) == NULL);        \
        CHECK_EQ(errno, ENOMEM);      \
    } while (0)

static void test_enomem(void)
{
    /* volatile: the compiler must not see (and warn about) the sizes. */
    volatile size_t max = SIZE_MAX, half = SIZE_MAX / 2 + 1, big = PTRDIFF_MAX;
    CHECK_ENOMEM(malloc(max));
    CHECK_ENOMEM(malloc(big));
    CHECK_ENOMEM(calloc(half, 2));
    CHECK_ENOMEM(calloc(2, half));
    CHECK_ENOMEM(calloc(1, max));
    CHECK_ENOMEM(aligned_alloc(64, max));
    CHECK_ENOMEM(memalign(4096, max));
    CHECK_ENOMEM(valloc(max));
    CHECK_ENOMEM(pvalloc(max));
    CHECK_ENOMEM(fn.libc_malloc(max));

    /* A failed realloc leaves the block as it was (which GCC cannot know). */
    unsigned char *p = malloc(5000);
    if (!check_block(p, 5000, 16)) return;
    memcpy(p, reference, 5000);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
    CHECK_ENOMEM(realloc(p, max));
    CHECK_ENOMEM(reallocarray(p, half, 2));
    CHECK_ENOMEM(reallocarray(p, 3, max / 2));
    CHECK(memcmp(p, reference, 5000) == 0);
    CHECK_GE(malloc_usable_size(p), 5000);
    free(p);
#pragma GCC diagnostic pop
}

/* ---- trim and the reports ------------------------------------------------------------------- */

/* malloc_stats writes to stderr: catch it in a file. */
static void capture_malloc_stats(char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *tmp = tmpfile();
    if (!CHECK(tmp != NULL)) return;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    malloc_stats();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, size - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
}

static void test_reports(void)
{
    enum { BLOCKS = 4096, BLOCK = 16 * KiB }; /* 64 MiB of slab pages */
    void **blocks = malloc(BLOCKS * sizeof *blocks);
    if (!CHECK(blocks != NULL)) return;
    for (size_t i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(BLOCK);
        check_block(blocks[i], BLOCK, 16);
        memset(blocks[i], (int)i, BLOCK);
    }
    void *huge = malloc(8 * MiB);
    check_block(huge, 8 * MiB, 16);

    struct mallinfo2 mi2 = mallinfo2();
    CHECK_GE(mi2.arena, BLOCKS * BLOCK);
    CHECK_GE(mi2.uordblks, BLOCKS * BLOCK);
    CHECK_GE(mi2.hblks, 1);
    CHECK_GE(mi2.hblkhd, 8 * MiB);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo mi = mallinfo();
#pragma GCC diagnostic pop
    CHECK_GE(mi.arena, BLOCKS * BLOCK);
    CHECK_GE(mi.uordblks, BLOCKS * BLOCK);
    CHECK_GE(mi.hblks, 1);
    CHECK_GE(mi.hblkhd, 8 * MiB);

    char stats[1024];
    capture_malloc_stats(stats, sizeof stats);
    CHECK(strstr(stats, "tierpool") != NULL);

    char *xml = NULL;
    size_t xml_size = 0;
    FILE *out = open_memstream(&xml, &xml_size);
    if (CHECK(out != NULL)) {
        CHECK_EQ(malloc_info(0, out), 0);
        errno = 0;
        CHECK_EQ(malloc_info(1, out), -1);
        CHECK_EQ(errno, EINVAL);
        fclose(out);
        CHECK(strstr(xml, "<malloc version=\"tierpool") != NULL);
        CHECK(conf_ours(xml));
        free(xml);
    }

    CHECK_EQ(mallopt(M_TRIM_THRESHOLD, 1 << 20), 1);
    CHECK_EQ(mallopt(M_ARENA_MAX, 1), 1);

    for (size_t i = 0; i < BLOCKS; i++) free(blocks[i]);
    free(blocks);
    free(huge);
    CHECK_EQ(malloc_trim(0), 1);
}

/* ---- glibc's internal names -------------------------------------------------------------- */

static void test_libc_aliases(void)
{
    void *p = fn.libc_malloc(100);
    check_block(p, 100, 16);
    p = fn.libc_realloc(p, 10000);
    check_block(p, 10000, 16);
    fn.libc_free(p);
    unsigned char *z = fn.libc_calloc(10, 100);
    if (check_block(z, 1000, 16)) CHECK(all_zero(z, 1000));
    fn.libc_free(z);
    p = fn.libc_memalign(256, 100);
    check_block(p, 100, 256);
    fn.libc_free(p);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    p = fn.libc_valloc(100);
    check_block(p, 100, page);
    fn.libc_free(p);
    p = fn.libc_pvalloc(100);
    check_block(p, page, page);
    fn.libc_free(p);
    p = NULL;
    CHECK_EQ(fn.posix_memalign(&p, 128, 100), 0);
    check_block(p, 100, 128);
    fn.libc_free(p);
}

/* ---- the C library allocates from tierpool too ------------------------------------------- */

static void *thread_malloc(void *arg)
{
    (void)arg;
    return malloc(200);
}

static void test_libc_allocations(void)
{
    char *s = strdup("tierpool");
    CHECK(conf_ours(s));
    free(s);

    char *formatted = NULL;
    CHECK(asprintf(&formatted, "%0*d", 3000, 7) == 3000);
    CHECK(conf_ours(formatted));
    free(formatted);

    FILE *f = fopen("/proc/self/maps", "r");
    if (CHECK(f != NULL)) {
        CHECK(conf_ours(f)); /* the FILE itself is malloc'ed */
        char *line = NULL;
        size_t cap = 0;
        CHECK(getline(&line, &cap, f) > 0);
        CHECK(conf_ours(line));
        free(line);
        fclose(f);
    }

    DIR *dir = opendir("/");
    if (CHECK(dir != NULL)) {
        CHECK(conf_ours(dir));
        closedir(dir);
    }

    char *path = realpath(".", NULL);
    CHECK(conf_ours(path));
    free(path);

    pthread_t t;
    void *from_thread = NULL;
    if (CHECK_EQ(pthread_create(&t, NULL, thread_malloc, NULL), 0)) {
        pthread_join(t, &from_thread);
        CHECK(conf_ours(from_thread));
        free(from_thread); /* a block of an exited thread */
    }
}

/* ---- a pointer tierpool does not own ------------------------------------------------------ */

static char not_ours[64];

static void free_not_ours(void *unused)
{
    (void)unused;
    char *volatile p = not_ours + 16; /* volatile: GCC would see a static */
    free(p);
}

static void realloc_not_ours(void *unused)
{
    (void)unused;
    char *volatile p = not_ours + 16;
    CHECK(realloc(p, 100) == NULL); /* not reached */
}

static void test_not_ours(void)
{
    expect_fatal(free_not_ours, NULL, "tierpool: fatal: free of a pointer tierpool does not own");
    expect_fatal(realloc_not_ours, NULL, "tierpool: fatal: realloc of a pointer tierpool does not own");
}

int main(void)
{
    resolve();
    if (!fn.pool_of) {
        fprintf(stderr, "conformance: tp_pool_of not found: tierpool is not this process's malloc "
                        "(run it with LD_PRELOAD=libtierpool-malloc.so)\n");
        return 1;
    }
    reference = malloc(REFERENCE_SIZE);
    if (!CHECK(reference != NULL)) return test_report();
    for (size_t i = 0; i < REFERENCE_SIZE; i++) reference[i] = (unsigned char)((i ^ (i >> 9)) * 31 + 1);

    test_symbols();
    test_malloc_free();
    test_calloc();
    test_realloc();
    test_aligned();
    test_enomem();
    test_reports();
    test_libc_aliases();
    test_libc_allocations();
    test_not_ours();
    unsigned long cxx_passed = 0, cxx_failed = 0;
    conformance_cxx(&cxx_passed, &cxx_failed);
    __atomic_fetch_add(&test_passed, cxx_passed, __ATOMIC_RELAXED);
    __atomic_fetch_add(&test_failed, cxx_failed, __ATOMIC_RELAXED);

    free(reference);
    return test_report();
}
