/*
 * override/malloc.c: the C allocation surface of libtierpool-malloc, routed
 * to the default pool. Built only into libtierpool-malloc.so/.a; the engine
 * knows nothing of it.
 *
 * Initialization is lazy and allocation-free: the first malloc of a thread
 * finds the empty tcache and takes the slow path, which sets the thread up
 * with mmap'ed memory only. No dlsym, no stdio, no recursion.
 */
#define _GNU_SOURCE
#include "../internal.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TPO_EXPORT __attribute__((visibility("default")))
#define TPO_ALIAS(name) __attribute__((alias(#name), visibility("default")))

/* valloc and pvalloc promise the kernel's page, which is 16 or 64 KiB on
 * some arm64 and ppc64 systems, not the engine's 4 KiB unit. */
static size_t tpo_page_size(void)
{
    return (size_t)getpagesize();
}

TPO_EXPORT void *malloc(size_t size)
{
    return tp_malloc(size);
}

TPO_EXPORT void free(void *p)
{
    tp_free(p);
}

TPO_EXPORT void *calloc(size_t count, size_t size)
{
    return tp_calloc(count, size);
}

TPO_EXPORT void *realloc(void *p, size_t size)
{
    return tp_realloc(p, size);
}

TPO_EXPORT void *reallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return tp_realloc(p, total);
}

TPO_EXPORT void *aligned_alloc(size_t alignment, size_t size)
{
    return tp_aligned_alloc(alignment, size);
}

TPO_EXPORT void *memalign(size_t alignment, size_t size)
{
    /* glibc rounds a non-power-of-two alignment up instead of failing. */
    if (alignment & (alignment - 1)) {
        size_t a = 16;
        while (a < alignment && a) a <<= 1;
        if (!a) {
            errno = EINVAL;
            return NULL;
        }
        alignment = a;
    }
    return tp_aligned_alloc(alignment ? alignment : 16, size);
}

TPO_EXPORT int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1))) return EINVAL;
    int saved = errno;
    void *p = tp_aligned_alloc(alignment, size);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

TPO_EXPORT void *valloc(size_t size)
{
    return tp_aligned_alloc(tpo_page_size(), size);
}

TPO_EXPORT void *pvalloc(size_t size)
{
    size_t page = tpo_page_size();
    if (size > TPI_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    return tp_aligned_alloc(page, (size + page - 1) & ~(page - 1));
}

TPO_EXPORT size_t malloc_usable_size(void *p)
{
    return tp_usable_size(p);
}

TPO_EXPORT void cfree(void *p)
{
    tp_free(p);
}

TPO_EXPORT void free_sized(void *p, size_t size)
{
    tp_free_sized(p, size);
}

TPO_EXPORT void free_aligned_sized(void *p, size_t alignment, size_t size)
{
    (void)alignment;
    tp_free_sized(p, size);
}

TPO_EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    return tp_pool_trim(NULL) > 0;
}

TPO_EXPORT int mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1; /* accepted; glibc's tunables do not apply */
}

/* The glibc-internal names some callers use. */
TPO_EXPORT void *__libc_malloc(size_t size) TPO_ALIAS(malloc);
TPO_EXPORT void __libc_free(void *p) TPO_ALIAS(free);
TPO_EXPORT void *__libc_calloc(size_t count, size_t size) TPO_ALIAS(calloc);
TPO_EXPORT void *__libc_realloc(void *p, size_t size) TPO_ALIAS(realloc);
TPO_EXPORT void *__libc_memalign(size_t alignment, size_t size) TPO_ALIAS(memalign);
TPO_EXPORT void *__libc_valloc(size_t size) TPO_ALIAS(valloc);
TPO_EXPORT void *__libc_pvalloc(size_t size) TPO_ALIAS(pvalloc);
TPO_EXPORT int __posix_memalign(void **out, size_t alignment, size_t size) TPO_ALIAS(posix_memalign);

/* ---- glibc's reporting calls, filled from the default pool ------------------------ */

static struct mallinfo2 tpo_mallinfo2(void)
{
    tpi_usage u;
    tpi_pool_usage(&tpi_pool_default_instance, &u);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = u.chunks * TPI_CHUNK_SIZE;   /* slab address space */
    mi.ordblks = u.chunks;
    mi.hblks = u.huge_blocks;
    mi.hblkhd = u.huge_bytes;
    mi.uordblks = u.page_bytes + u.huge_bytes; /* in pages, cached blocks included */
    mi.fordblks = u.free_slice_bytes;
    mi.keepcost = u.free_slice_bytes;
    return mi;
}

TPO_EXPORT struct mallinfo2 mallinfo2(void)
{
    return tpo_mallinfo2();
}

static int tpo_clamp_int(size_t v)
{
    return v > (size_t)__INT_MAX__ ? __INT_MAX__ : (int)v;
}

TPO_EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = tpo_mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = tpo_clamp_int(m2.arena);
    mi.ordblks = tpo_clamp_int(m2.ordblks);
    mi.hblks = tpo_clamp_int(m2.hblks);
    mi.hblkhd = tpo_clamp_int(m2.hblkhd);
    mi.uordblks = tpo_clamp_int(m2.uordblks);
    mi.fordblks = tpo_clamp_int(m2.fordblks);
    mi.keepcost = tpo_clamp_int(m2.keepcost);
    return mi;
}

TPO_EXPORT void malloc_stats(void)
{
    struct mallinfo2 mi = tpo_mallinfo2();
    char line[256];
    int n = snprintf(line, sizeof line,
                     "tierpool default pool:\n  slab chunks      %10zu bytes\n  in pages         %10zu bytes\n"
                     "  free slices      %10zu bytes\n  huge blocks      %10zu (%zu bytes)\n",
                     mi.arena, mi.uordblks - mi.hblkhd, mi.fordblks, mi.hblks, mi.hblkhd);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

TPO_EXPORT int malloc_info(int options, FILE *out)
{
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    struct mallinfo2 mi = tpo_mallinfo2();
    fprintf(out,
            "<malloc version=\"tierpool-1\">\n"
            "<system type=\"current\" size=\"%zu\"/>\n"
            "<total type=\"slab\" size=\"%zu\"/>\n"
            "<total type=\"free\" size=\"%zu\"/>\n"
            "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
            "</malloc>\n",
            mi.arena + mi.hblkhd, mi.uordblks - mi.hblkhd, mi.fordblks, mi.hblks, mi.hblkhd);
    return 0;
}
