/* SPDX-License-Identifier: MIT */
/*
 * track.c: the slow half of track.h: finding Memcheck at process start, a
 * pool's mempool, and the size a block was asked for.
 */
#include "internal.h"

#if !defined(TPI_SECURE_BUILD)
bool tpi_slow_only;
#endif

#if defined(TPI_VALGRIND)
bool tpi_track_valgrind;

/* Memcheck looks for leaks only when it knows of at least one block of the
 * malloc kind, which a program whose every allocation is tierpool's
 * (libtierpool-malloc) does not have: one byte of ours is such a block,
 * kept reachable, so that tierpool's own blocks are checked too. It shows
 * as "still reachable: 1 bytes in 1 blocks". */
static char tpi_track_anchor[16];
static void *tpi_track_anchor_ref __attribute__((used));
#endif

void tpi_track_init(void)
{
#if defined(TPI_VALGRIND)
    /* Other tools (callgrind, which counts the fast paths) leave the
     * request's default, 0; Memcheck answers -1. */
    if (RUNNING_ON_VALGRIND && (long)VALGRIND_MAKE_MEM_DEFINED(tpi_track_anchor, sizeof tpi_track_anchor) == -1) {
        tpi_track_valgrind = true;
        tpi_track_anchor_ref = tpi_track_anchor;
        VALGRIND_MALLOCLIKE_BLOCK(tpi_track_anchor, 1, 0, 1);
    }
#endif
}

void tpi_track_pool_create(tp_pool *pool)
{
#if defined(TPI_VALGRIND)
    if (tpi_track_valgrind) VALGRIND_CREATE_MEMPOOL(pool, 0, 0);
#endif
    (void)pool;
}

void tpi_track_pool_clear(tp_pool *pool, bool reset)
{
#if defined(TPI_VALGRIND)
    if (tpi_track_valgrind) {
        VALGRIND_DESTROY_MEMPOOL(pool);
        if (reset) VALGRIND_CREATE_MEMPOOL(pool, 0, 0);
    }
#endif
    (void)pool, (void)reset;
}

#if defined(TPI_TRACK_ASAN)
__attribute__((no_sanitize_address))
#endif
uint64_t tpi_track_peek(const void *p)
{
#if defined(TPI_VALGRIND)
    if (tpi_track_valgrind) {
        uint64_t v;
        VALGRIND_DISABLE_ERROR_REPORTING;
        v = *(const volatile uint64_t *)p;
        VALGRIND_ENABLE_ERROR_REPORTING;
        VALGRIND_MAKE_MEM_DEFINED(&v, sizeof v);
        return v;
    }
#endif
    return *(const uint64_t *)p;
}

#if defined(TPI_VALGRIND)
/* Memcheck keeps the size but offers no request to read it: the block's
 * addressable bytes are its first `size`, so the first byte that is not
 * (VALGRIND_GET_VBITS answers 3, and reports nothing) is found by bisection. */
size_t tpi_track_valgrind_size_of(const void *p, size_t usable)
{
    size_t lo = 0, hi = usable;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        unsigned char vbits;
        if (VALGRIND_GET_VBITS((const char *)p + mid, &vbits, 1) == 3)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}
#endif
