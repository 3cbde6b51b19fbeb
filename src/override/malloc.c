/* SPDX-License-Identifier: MIT */
/*
 * override/malloc.c: the C allocation surface of libtierpool-malloc, routed
 * to the default pool. Built only into libtierpool-malloc.so/.a; the engine
 * knows nothing of it but the foreign-free hook it registers (tpo_foreign_free).
 *
 * Initialization is lazy and allocation-free: the first malloc of a thread
 * finds the empty tcache and takes the slow path, which sets the thread up
 * with mmap'ed memory only. No dlsym, no stdio, no recursion.
 *
 * Two ways out to the system allocator (glibc's), both rare:
 *
 * - TIERPOOL_PASSTHROUGH=1 routes every call to it, to tell an application
 *   bug from an allocator bug. The first call of the process decides (the
 *   engine reads its options then), once. malloc and free are the engine's
 *   fast paths themselves (alloc.h), inline here in front of this file's
 *   slow paths, and cost nothing more. A thread's malloc pops a block only
 *   from a tcache the engine set up for it, which the slow path below lets
 *   it do only once tierpool is in charge: until then the thread's tcache
 *   is the empty one and every malloc comes here; with passthrough the
 *   engine keeps every tcache's fast path closed, as in secure mode
 *   (tpi_slow_only), so a thread that used the tp_ API still comes here. A
 *   free the fast path does not take (anything but a slab block of the
 *   calling thread's) comes here too. The other entry points test one
 *   global word that is TPO_TIERPOOL from then on, one predictable branch.
 * - A pointer the chunk registry does not know, given to free, realloc or
 *   malloc_usable_size, goes to glibc's free when it provably is glibc's
 *   (tpo_glibc_owns); otherwise it is reported and aborts, as always in
 *   checked mode (TIERPOOL_CHECK=1).
 *
 * glibc's functions are found with dlsym(RTLD_NEXT, ...), only when one of
 * the two is needed. glibc 2.34+ no longer exports __libc_malloc and its
 * kin, so asking the next object in lookup order for "malloc" is the one
 * stable way; dlsym may itself allocate (its error buffer, on some
 * versions), and the allocations it makes while passthrough is being
 * decided come from a static bootstrap buffer that is never reused (so it
 * reads as zero, for calloc) and whose frees are ignored. A static
 * executable (tierpool-malloc.o) has no next malloc: passthrough then warns
 * once and tierpool stays in charge.
 */
#define _GNU_SOURCE
#include "../alloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "override.h"

#define TPO_EXPORT __attribute__((visibility("default")))
#define TPO_ALIAS(name) __attribute__((alias(#name), visibility("default")))

/* valloc and pvalloc promise the kernel's page, which is 16 or 64 KiB on
 * some arm64 and ppc64 systems, not the engine's 4 KiB unit. */
static size_t tpo_page_size(void)
{
    return (size_t)getpagesize();
}

static void tpo_say(const char *text)
{
    ssize_t w = write(STDERR_FILENO, text, strlen(text));
    (void)w;
}

/* ---- the system allocator ---------------------------------------------------------- */

static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*memalign)(size_t, size_t);
    size_t (*malloc_usable_size)(void *);
    int (*malloc_trim)(size_t);
    struct mallinfo2 (*mallinfo2)(void);
    void (*malloc_stats)(void);
    int (*malloc_info)(int, FILE *);
    int (*mallopt)(int, int);
} tpo_sys;
static bool tpo_sys_found;
static pthread_once_t tpo_sys_once = PTHREAD_ONCE_INIT;

static void *tpo_next(const char *name, void *ours)
{
    void *f = dlsym(RTLD_NEXT, name);
    return f == ours ? NULL : f;
}

static void tpo_sys_resolve(void)
{
    tpo_sys.malloc = (void *(*)(size_t))tpo_next("malloc", (void *)tpo_malloc);
    tpo_sys.free = (void (*)(void *))tpo_next("free", (void *)tpo_free);
    tpo_sys.calloc = (void *(*)(size_t, size_t))tpo_next("calloc", NULL);
    tpo_sys.realloc = (void *(*)(void *, size_t))tpo_next("realloc", NULL);
    tpo_sys.memalign = (void *(*)(size_t, size_t))tpo_next("memalign", NULL);
    tpo_sys.malloc_usable_size = (size_t(*)(void *))tpo_next("malloc_usable_size", NULL);
    tpo_sys.malloc_trim = (int (*)(size_t))tpo_next("malloc_trim", NULL);
    tpo_sys.mallinfo2 = (struct mallinfo2(*)(void))tpo_next("mallinfo2", NULL);
    tpo_sys.malloc_stats = (void (*)(void))tpo_next("malloc_stats", NULL);
    tpo_sys.malloc_info = (int (*)(int, FILE *))tpo_next("malloc_info", NULL);
    tpo_sys.mallopt = (int (*)(int, int))tpo_next("mallopt", NULL);
    tpo_sys_found = tpo_sys.malloc && tpo_sys.free && tpo_sys.calloc && tpo_sys.realloc && tpo_sys.memalign &&
                    tpo_sys.malloc_usable_size;
}

/* Whether glibc's allocator was found (looked up once). */
static bool tpo_sys_ready(void)
{
    pthread_once(&tpo_sys_once, tpo_sys_resolve);
    return tpo_sys_found;
}

/* ---- the bootstrap buffer ------------------------------------------------------------ */

/* What dlsym allocates while passthrough is being decided. Each block has
 * its size in the word before it; nothing is ever reused. */
#define TPO_BOOT_SIZE (64u * 1024u)
static char tpo_boot[TPO_BOOT_SIZE] __attribute__((aligned(4096)));
static size_t tpo_boot_used;

static void *tpo_boot_alloc(size_t size, size_t alignment)
{
    if (alignment < 16) alignment = 16;
    size_t used = __atomic_load_n(&tpo_boot_used, __ATOMIC_RELAXED), end;
    uintptr_t p;
    do {
        p = ((uintptr_t)tpo_boot + used + 16 + alignment - 1) & ~(uintptr_t)(alignment - 1);
        if (alignment > TPO_BOOT_SIZE || size > TPO_BOOT_SIZE ||
            p + size > (uintptr_t)tpo_boot + TPO_BOOT_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
        end = p + size - (uintptr_t)tpo_boot;
    } while (!__atomic_compare_exchange_n(&tpo_boot_used, &used, end, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    ((size_t *)p)[-1] = size;
    return (void *)p;
}

static bool tpo_boot_owns(const void *p)
{
    return (const char *)p >= tpo_boot && (const char *)p < tpo_boot + TPO_BOOT_SIZE;
}

/* ---- passthrough: deciding once ------------------------------------------------------ */

enum { TPO_UNDECIDED, TPO_DECIDING, TPO_TIERPOOL, TPO_SYSTEM };
static int tpo_state = TPO_UNDECIDED;
static uintptr_t tpo_decider; /* the thread deciding, whose calls meanwhile take the buffer */

static inline bool tpo_tierpool(void)
{
    return tpi_likely(__atomic_load_n(&tpo_state, __ATOMIC_RELAXED) == TPO_TIERPOOL);
}

static bool tpo_foreign_free(void *p);

static int tpo_decide(void)
{
    tpi_set_foreign_free(tpo_foreign_free);
    tpi_process_ensure_init(); /* the options, PASSTHROUGH among them */
    if (!TPI_OPTION(passthrough)) return TPO_TIERPOOL;
    if (tpo_sys_ready()) return TPO_SYSTEM;
    tpo_say("tierpool: warning: TIERPOOL_PASSTHROUGH: no system allocator to pass to (static executable?); "
            "tierpool stays in charge\n");
    return TPO_TIERPOOL;
}

/* The route of a call made before the decision, or with passthrough on:
 * TPO_TIERPOOL, TPO_SYSTEM, or TPO_DECIDING for the deciding thread's own
 * calls (the bootstrap buffer serves them). Others wait for the decision. */
static tpi_noinline int tpo_route(void)
{
    int s = __atomic_load_n(&tpo_state, __ATOMIC_ACQUIRE);
    if (s == TPO_UNDECIDED &&
        __atomic_compare_exchange_n(&tpo_state, &s, TPO_DECIDING, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&tpo_decider, tpi_thread_id(), __ATOMIC_RELAXED);
        s = tpo_decide();
        __atomic_store_n(&tpo_state, s, __ATOMIC_RELEASE);
        return s;
    }
    if (s == TPO_DECIDING && __atomic_load_n(&tpo_decider, __ATOMIC_RELAXED) == tpi_thread_id()) return s;
    while (s == TPO_DECIDING) {
        sched_yield();
        s = __atomic_load_n(&tpo_state, __ATOMIC_ACQUIRE);
    }
    return s;
}

/* ---- foreign pointers ------------------------------------------------------------------- */

/* The start of the brk heap (start_brk, field 47 of /proc/self/stat), read
 * once without allocating; 0 if unknown. */
static uintptr_t tpo_heap_start(void)
{
    static uintptr_t start;
    uintptr_t known = __atomic_load_n(&start, __ATOMIC_RELAXED);
    if (known) return known;
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    for (int field = 2; p && field < 47; field++) {
        p = strchr(p + 1, ' ');
    }
    if (!p) return 0;
    known = (uintptr_t)strtoull(p + 1, NULL, 10);
    __atomic_store_n(&start, known, __ATOMIC_RELAXED);
    return known;
}

/* Whether p is provably a block of glibc's: it lies in the brk heap, which
 * only glibc's main arena uses (tierpool maps all it has with mmap), its
 * chunk header says so (16-byte aligned, a size of at least 32 bytes in
 * 16-byte steps, not mmapped, of the main arena), the chunk ends inside the
 * heap, and the next chunk's header marks this one in use. Blocks glibc
 * mmapped (128 KiB and more) or took from another arena are not proven so:
 * nothing tells them from any other mapping. */
static bool tpo_glibc_owns(const void *p)
{
    uintptr_t a = (uintptr_t)p, start = tpo_heap_start(), end = (uintptr_t)sbrk(0);
    if (a % 16 || !start || end == (uintptr_t)-1 || a < start + 16 || a >= end) return false;
    size_t field = ((const size_t *)p)[-1], size = field & ~(size_t)7;
    if (field & 6 || size < 32 || size % 16 || size > end - (a - 16) - 16) return false;
    const size_t *next = (const size_t *)(a - 16 + size);
    return next[1] & 1;
}

/* The usable size of a pointer the registry does not know: the bootstrap
 * buffer's, or glibc's when it is provably glibc's (and not in checked
 * mode); else 0, or with `fatal` the report and abort. */
static size_t tpo_foreign_usable(void *p, const char *fatal)
{
    if (tpo_boot_owns(p)) return ((size_t *)p)[-1];
    if (!TPI_OPTION(check) && tpo_glibc_owns(p) && tpo_sys_ready()) return tpo_sys.malloc_usable_size(p);
    if (fatal || TPI_OPTION(check)) tpi_fatal(fatal ? fatal : "malloc_usable_size of a pointer tierpool does not own", p);
    return 0;
}

/* The engine's free met a pointer the registry does not know (alloc.c):
 * true if it was the bootstrap buffer's or glibc's, now dealt with.
 * Registered with the engine when tierpool takes charge (tpo_decide). */
static bool tpo_foreign_free(void *p)
{
    if (tpo_boot_owns(p)) return true;
    if (TPI_OPTION(check) || !tpo_glibc_owns(p) || !tpo_sys_ready()) return false;
    tpo_sys.free(p);
    return true;
}

/* realloc of such a pointer: a tierpool block replaces it. */
static tpi_noinline void *tpo_foreign_realloc(void *p, size_t size)
{
    size_t old = tpo_foreign_usable(p, "realloc of a pointer tierpool does not own");
    void *q = size ? tpo_malloc(size) : NULL;
    if (!q && size) return NULL;
    if (q) memcpy(q, p, old < size ? old : size);
    if (!tpo_boot_owns(p)) tpo_sys.free(p);
    return q;
}

/* ---- the calls -------------------------------------------------------------------------- */

/* malloc before the decision, or with passthrough on. */
static void *tpo_malloc_routed(size_t size)
{
    switch (tpo_route()) {
    case TPO_SYSTEM: return tpo_sys.malloc(size);
    case TPO_DECIDING: return tpo_boot_alloc(size, 16);
    default: return tp_malloc(size);
    }
}

/* The fast path popped nothing: the engine's slow path (a refill, the
 * thread's first call) once tierpool is in charge, else the route. */
static tpi_noinline void *tpo_slow_malloc(size_t size, tpi_tcache *tc)
{
    if (tpi_likely(tpo_tierpool())) return tpi_malloc_slow(size, tc);
    return tpo_malloc_routed(size);
}

/* tp_malloc's instructions, with the slow path above (alloc.h). */
void *tpo_malloc(size_t size)
{
    return tpi_malloc_fast(tpi_tls_default, size, tpo_slow_malloc);
}

/* Any free but the owner's of a slab block: the engine's (a remote free,
 * a large or huge block, a foreign pointer: tpo_foreign_free) once tierpool
 * is in charge, else the route. */
static tpi_noinline void tpo_slow_free(void *p)
{
    if (tpi_likely(tpo_tierpool())) {
        tpi_free_generic(p);
        return;
    }
    if (tpo_boot_owns(p)) return;
    if (tpo_route() == TPO_SYSTEM && tpi_registry_get((uintptr_t)p) == TPI_REG_NONE)
        tpo_sys.free(p);
    else
        tpi_free_generic(p); /* tierpool's, or foreign: the engine calls tpo_foreign_free */
}

/* tp_free's instructions, with the slow path above (alloc.h). */
void tpo_free(void *p)
{
    tpi_free_fast(p, tpo_slow_free);
}

void tpo_free_sized(void *p, size_t size)
{
    (void)size; /* as in tp_free_sized: the pointer says all */
    tpo_free(p);
}

static tpi_noinline void *tpo_slow_aligned_alloc(size_t alignment, size_t size)
{
    switch (tpo_route()) {
    case TPO_SYSTEM:
        if (alignment == 0 || (alignment & (alignment - 1))) {
            errno = EINVAL;
            return NULL;
        }
        return tpo_sys.memalign(alignment, size);
    case TPO_DECIDING: return tpo_boot_alloc(size, alignment);
    default: return tp_aligned_alloc(alignment, size);
    }
}

void *tpo_aligned_alloc(size_t alignment, size_t size)
{
    if (tpo_tierpool()) return tp_aligned_alloc(alignment, size);
    return tpo_slow_aligned_alloc(alignment, size);
}

TPO_EXPORT void *malloc(size_t size) TPO_ALIAS(tpo_malloc);
TPO_EXPORT void free(void *p) TPO_ALIAS(tpo_free);

static tpi_noinline void *tpo_slow_calloc(size_t count, size_t size)
{
    size_t total;
    switch (tpo_route()) {
    case TPO_SYSTEM: return tpo_sys.calloc(count, size);
    case TPO_DECIDING:
        if (__builtin_mul_overflow(count, size, &total)) {
            errno = ENOMEM;
            return NULL;
        }
        return tpo_boot_alloc(total, 16); /* never used before: zero */
    default: return tp_calloc(count, size);
    }
}

TPO_EXPORT void *calloc(size_t count, size_t size)
{
    if (tpo_tierpool()) return tp_calloc(count, size);
    return tpo_slow_calloc(count, size);
}

static tpi_noinline void *tpo_slow_realloc(void *p, size_t size)
{
    if (p && tpi_registry_get((uintptr_t)p) == TPI_REG_NONE) {
        if (tpo_boot_owns(p) || tpo_route() != TPO_SYSTEM) return tpo_foreign_realloc(p, size);
        return tpo_sys.realloc(p, size);
    }
    if (!p && tpo_route() != TPO_TIERPOOL) return tpo_malloc_routed(size);
    return tp_realloc(p, size);
}

TPO_EXPORT void *realloc(void *p, size_t size)
{
    if (tpo_tierpool() && tpi_likely(!p || tpi_registry_get((uintptr_t)p) != TPI_REG_NONE))
        return tp_realloc(p, size);
    return tpo_slow_realloc(p, size);
}

TPO_EXPORT void *reallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

TPO_EXPORT void *aligned_alloc(size_t alignment, size_t size) TPO_ALIAS(tpo_aligned_alloc);

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
    return tpo_aligned_alloc(alignment ? alignment : 16, size);
}

TPO_EXPORT int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1))) return EINVAL;
    int saved = errno;
    void *p = tpo_aligned_alloc(alignment, size);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

TPO_EXPORT void *valloc(size_t size)
{
    return tpo_aligned_alloc(tpo_page_size(), size);
}

TPO_EXPORT void *pvalloc(size_t size)
{
    size_t page = tpo_page_size();
    if (size > TPI_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    return tpo_aligned_alloc(page, (size + page - 1) & ~(page - 1));
}

/* Passthrough's reporting calls: glibc's when it has them. */
static bool tpo_system(void)
{
    return !tpo_tierpool() && tpo_route() == TPO_SYSTEM;
}

TPO_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p) return 0;
    if (tpi_registry_get((uintptr_t)p) != TPI_REG_NONE) return tp_usable_size(p);
    if (tpo_system() && !tpo_boot_owns(p)) return tpo_sys.malloc_usable_size(p);
    return tpo_foreign_usable(p, NULL);
}

TPO_EXPORT void cfree(void *p) TPO_ALIAS(tpo_free);

TPO_EXPORT void free_sized(void *p, size_t size) TPO_ALIAS(tpo_free_sized);

TPO_EXPORT void free_aligned_sized(void *p, size_t alignment, size_t size)
{
    (void)alignment;
    tpo_free_sized(p, size);
}

TPO_EXPORT int malloc_trim(size_t pad)
{
    if (tpo_system() && tpo_sys.malloc_trim) return tpo_sys.malloc_trim(pad);
    return tp_pool_trim(NULL) > 0;
}

TPO_EXPORT int mallopt(int param, int value)
{
    if (tpo_system() && tpo_sys.mallopt) return tpo_sys.mallopt(param, value);
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
    mi.arena = (u.chunks + u.run_chunks) * TPI_CHUNK_SIZE; /* slab and run address space */
    mi.ordblks = u.chunks + u.run_chunks;
    mi.hblks = u.huge_blocks;
    mi.hblkhd = u.huge_bytes;
    mi.uordblks = u.page_bytes + u.run_bytes + u.huge_bytes; /* in pages and runs, cached blocks included */
    mi.fordblks = u.free_slice_bytes + u.run_chunks * TPI_CHUNK_SIZE - u.run_bytes;
    mi.keepcost = u.free_slice_bytes;
    return mi;
}

TPO_EXPORT struct mallinfo2 mallinfo2(void)
{
    if (tpo_system() && tpo_sys.mallinfo2) return tpo_sys.mallinfo2();
    return tpo_mallinfo2();
}

static int tpo_clamp_int(size_t v)
{
    return v > (size_t)__INT_MAX__ ? __INT_MAX__ : (int)v;
}

TPO_EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
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
    if (tpo_system() && tpo_sys.malloc_stats) {
        tpo_sys.malloc_stats();
        return;
    }
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
    if (tpo_system() && tpo_sys.malloc_info) return tpo_sys.malloc_info(options, out);
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
