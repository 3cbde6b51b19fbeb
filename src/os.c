/* SPDX-License-Identifier: MIT */
/*
 * os.c: the OS contract (declared in internal.h): map aligned address space,
 * unmap, purge and remap. Linux and other systems with mmap/madvise/mremap.
 *
 * Mappings are private and anonymous: the kernel backs an OS page only when
 * it is first touched. They are charged to the kernel's commit accounting
 * when made, as glibc's are (no MAP_NORESERVE): under the default overcommit
 * heuristic a request larger than the machine (RAM plus swap) fails here
 * with ENOMEM instead of succeeding and bringing the OOM killer once it is
 * used, and under overcommit_memory=2 the commit limit holds. The alignment
 * slack is charged for the moment between the mmap and its trim only.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>

void *tpi_os_map_aligned(size_t size, size_t alignment, size_t offset)
{
    int saved = errno;
    /* The kernel places a mapping right below the last one, so one the size
     * of a chunk often lands aligned after chunks: try that first (one call,
     * and no address space beyond the size, which RLIMIT_AS may lack). */
    int flags = MAP_PRIVATE | MAP_ANONYMOUS; /* committed: counted as glibc's memory is (no MAP_NORESERVE) */
    char *exact = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (exact != MAP_FAILED) {
        if ((((uintptr_t)exact + offset) & (alignment - 1)) == 0) return exact;
        munmap(exact, size);
#if defined(MAP_FIXED_NOREPLACE) && !defined(__SANITIZE_THREAD__)
        /* The aligned places around it are often free too. A kernel that
         * ignores the flag may map elsewhere: such a mapping is undone.
         * (ThreadSanitizer's mmap takes a fixed address outside its
         * application ranges for a fatal error: not under it.) */
        uintptr_t up = (((uintptr_t)exact + offset + alignment - 1) & ~(uintptr_t)(alignment - 1)) - offset;
        uintptr_t at[2] = {up, up - alignment};
        for (int i = 0; i < 2; i++) {
            char *p = mmap((void *)at[i], size, PROT_READ | PROT_WRITE, flags | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == (char *)at[i]) {
                errno = saved;
                return p;
            }
            if (p != MAP_FAILED) munmap(p, size);
        }
#endif
    }
    errno = saved;
    /* Else map more than needed, then trim both ends so the result is aligned. */
    size_t span = size + alignment;
    if (span < size) return NULL;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (raw == MAP_FAILED) {
        errno = saved;
        return NULL;
    }
    uintptr_t start = (uintptr_t)raw + offset;
    start = (start + alignment - 1) & ~(uintptr_t)(alignment - 1);
    char *aligned = (char *)(start - offset);
    size_t head = (size_t)(aligned - raw);
    size_t tail = span - head - size;
    if (head) munmap(raw, head);
    if (tail) munmap(aligned + size, tail);
    return aligned;
}

void tpi_os_unmap(void *addr, size_t size)
{
    int saved = errno;
    tpi_track_forget(addr, size); /* ASan's shadow stays behind otherwise */
    munmap(addr, size);
    errno = saved;
}

void tpi_os_discard(void *addr, size_t size, bool lazy)
{
    int saved = errno;
    if (!lazy || madvise(addr, size, MADV_FREE) != 0)
        madvise(addr, size, MADV_DONTNEED);
    errno = saved;
}

bool tpi_os_protect(void *addr, size_t size)
{
    int saved = errno;
    bool ok = mprotect(addr, size, PROT_NONE) == 0;
    errno = saved;
    return ok;
}

void tpi_os_huge_pages(void *addr, size_t size, bool enable)
{
    int saved = errno;
    madvise(addr, size, enable ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    errno = saved;
}

uint64_t tpi_os_clock_ms(void)
{
    struct timespec t;
    /* Milliseconds are all the purge delays need: the coarse clock (a tick
     * of 1-4 ms) is read from the vDSO without the time counter, several
     * times cheaper, and run heap calls read it on every lock. */
#if defined(CLOCK_MONOTONIC_COARSE)
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
#else
    clock_gettime(CLOCK_MONOTONIC, &t);
#endif
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

void *tpi_os_remap(void *addr, size_t old_size, size_t new_size, void *new_addr)
{
    int saved = errno;
    tpi_track_forget(addr, old_size);
    void *p = mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

bool tpi_os_resize_in_place(void *addr, size_t old_size, size_t new_size)
{
    int saved = errno;
    void *p = mremap(addr, old_size, new_size, 0);
    errno = saved;
    return p != MAP_FAILED;
}
