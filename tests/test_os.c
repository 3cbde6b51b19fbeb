/* SPDX-License-Identifier: MIT */
/*
 * test_os.c: the OS contract (src/os.c, declared in internal.h): aligned
 * mappings with an offset, purge (resident memory drops, contents read as
 * zero), remap without copying, resize in place, the clock, and errno left
 * as it was by every call.
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>

/* Whether [p, p + n) is mapped at all (mincore fails with ENOMEM if not). */
static int is_mapped(void *p, size_t n)
{
    unsigned char vec[64];
    return mincore(p, n < 64 * 4096 ? n : 64 * 4096, vec) == 0;
}

static void test_map_aligned(void)
{
    for (size_t align = 4096; align <= 64 * MiB; align *= 2) {
        const size_t offsets[] = {0, 4096, align >= 2 * TPI_CHUNK_SIZE ? TPI_CHUNK_SIZE : 0};
        for (size_t k = 0; k < 3; k++) {
            size_t size = 3 * TPI_CHUNK_SIZE, off = offsets[k];
            errno = 4321;
            char *p = tpi_os_map_aligned(size, align, off);
            CHECK_EQ(errno, 4321);
            if (!CHECK(p != NULL)) continue;
            if (!CHECK_EQ(((uintptr_t)p + off) % align, 0))
                fprintf(stderr, "    map_aligned(%zu, %zu, %zu) = %p\n", size, align, off, (void *)p);
            CHECK(p[0] == 0 && p[size / 2] == 0 && p[size - 1] == 0);
            p[0] = 1;
            p[size - 1] = 2;
            tpi_os_unmap(p, size);
            CHECK_EQ(errno, 4321);
            CHECK(!is_mapped(p, 4096));
        }
    }
    /* too large to map: NULL, errno untouched */
    errno = 4321;
    CHECK_PTR_EQ(tpi_os_map_aligned((size_t)1 << 62, TPI_CHUNK_SIZE, 0), NULL);
    CHECK_PTR_EQ(tpi_os_map_aligned(SIZE_MAX - 4095, 4096, 0), NULL);
    CHECK_EQ(errno, 4321);
}

static void test_purge(void)
{
    size_t size = TEST_SCALE(16 * MiB);
    size &= ~(size_t)4095;
    char *p = tpi_os_map_aligned(size, TPI_CHUNK_SIZE, 0);
    if (!CHECK(p != NULL)) return;
    memset(p, 0x5c, size);
    size_t rss0 = util_rss();
    errno = 4321;
    tpi_os_purge(p + 4096, size - 8192);
    CHECK_EQ(errno, 4321);
    size_t rss1 = util_rss();
    printf("purge of %zu KiB: rss %zu -> %zu KiB\n", size / 1024, rss0 / 1024, rss1 / 1024);
    CHECK_LE(rss1 + (size - 8192) / 2, rss0);
    /* the purged range reads as zero, the pages around it are kept */
    CHECK_EQ(p[4095], 0x5c);
    CHECK_EQ(p[4096], 0);
    CHECK_EQ(p[size / 2], 0);
    CHECK_EQ(p[size - 4097], 0);
    CHECK_EQ(p[size - 4096], 0x5c);
    tpi_os_unmap(p, size);
}

static void test_remap(void)
{
    size_t old_size = 2 * TPI_CHUNK_SIZE, new_size = 5 * TPI_CHUNK_SIZE;
    char *a = tpi_os_map_aligned(old_size, TPI_CHUNK_SIZE, 0);
    char *dest = tpi_os_map_aligned(new_size, TPI_CHUNK_SIZE, 0);
    if (!CHECK(a && dest)) return;
    util_mark(a, old_size, 7);
    errno = 4321;
    char *moved = tpi_os_remap(a, old_size, new_size, dest);
    CHECK_EQ(errno, 4321);
    CHECK_PTR_EQ(moved, dest);
    CHECK_EQ(util_verify(dest, old_size, SIZE_MAX, 7), UTIL_OK);
    CHECK_EQ(dest[old_size], 0);
    dest[new_size - 1] = 1;
    CHECK(!is_mapped(a, 4096)); /* moved away, not copied */
    tpi_os_unmap(dest, new_size);

    /* in place: grows into free address space, shrinks always */
    char *b = tpi_os_map_aligned(2 * TPI_CHUNK_SIZE, TPI_CHUNK_SIZE, 0);
    if (!CHECK(b != NULL)) return;
    tpi_os_unmap(b + TPI_CHUNK_SIZE, TPI_CHUNK_SIZE);
    util_mark(b, TPI_CHUNK_SIZE, 8);
    CHECK(tpi_os_resize_in_place(b, TPI_CHUNK_SIZE, 2 * TPI_CHUNK_SIZE));
    CHECK_EQ(util_verify(b, TPI_CHUNK_SIZE, SIZE_MAX, 8), UTIL_OK);
    b[2 * TPI_CHUNK_SIZE - 1] = 1;
    CHECK(tpi_os_resize_in_place(b, 2 * TPI_CHUNK_SIZE, TPI_CHUNK_SIZE));
    CHECK(!is_mapped(b + TPI_CHUNK_SIZE, 4096));
    /* not in place when the next address space is taken */
    char *next = mmap(b + TPI_CHUNK_SIZE, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (CHECK_PTR_EQ(next, b + TPI_CHUNK_SIZE)) { /* free: resize_in_place just gave it back */
        errno = 4321;
        CHECK(!tpi_os_resize_in_place(b, TPI_CHUNK_SIZE, 2 * TPI_CHUNK_SIZE));
        CHECK_EQ(errno, 4321);
        munmap(next, 4096);
    }
    tpi_os_unmap(b, TPI_CHUNK_SIZE);
}

static void test_clock(void)
{
    uint64_t a = tpi_os_clock_ms(), b = tpi_os_clock_ms();
    CHECK_LE(a, b);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK_GE(tpi_os_clock_ms(), b + 19);
}

TEST_MAIN(
    CASE(map_aligned),
    CASE(purge),
    CASE(remap),
    CASE(clock))
