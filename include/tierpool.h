/* SPDX-License-Identifier: MIT */
/*
 * tierpool: a multi-level memory pool allocator.
 *
 * Three tiers by size, all reached through the same calls:
 *   small  16 B .. 4 KiB    slab pages of one size class
 *   large  4 KiB .. 1 MiB   slab pages spanning several 64 KiB slices
 *   huge   > 1 MiB          a mapping of its own (realloc uses mremap)
 *
 * Every block is freed with tp_free, from any thread, whatever pool it came
 * from: the owner is found from the pointer itself. Explicit pools
 * (tp_pool_create) share the engine of the default pool and add reset,
 * destroy-at-once and a memory limit.
 *
 * Errors follow the C library: NULL with errno = ENOMEM when memory (or the
 * pool's limit, or TIERPOOL_MEMORY_LIMIT) runs out, after the out-of-memory
 * handler had its turn, or a size overflows; NULL with errno = EINVAL for an
 * alignment that is not a power of two, or a pool that was destroyed.
 */
#ifndef TIERPOOL_H
#define TIERPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* TP_VERSION_MAJOR, _MINOR, _PATCH and TP_VERSION_STRING: the version this
 * program is compiled against, generated from CMake's project(VERSION). */
#include "tierpool_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TP_API __attribute__((visibility("default")))
#define TP_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define TP_API
#define TP_MALLOC_ATTR
#endif

/* "MAJOR.MINOR.PATCH" of the library the program runs with, which may be a
 * later one than TP_VERSION_STRING (docs/versioning.md says what each kind of
 * release keeps). */
TP_API const char *tp_version(void);

/* ---- the default pool ------------------------------------------------------ */

/* malloc: at least `size` bytes aligned to 16; size 0 gives a unique block. */
TP_API TP_MALLOC_ATTR void *tp_malloc(size_t size);
/* calloc: count * size zeroed bytes; ENOMEM if the product overflows. */
TP_API TP_MALLOC_ATTR void *tp_calloc(size_t count, size_t size);
/* realloc: NULL ptr is malloc; size 0 frees ptr and returns NULL. On failure
 * returns NULL and leaves ptr untouched. Blocks stay in their own pool. */
TP_API void *tp_realloc(void *ptr, size_t size);
/* aligned_alloc: any power-of-two alignment (EINVAL otherwise), any size. */
TP_API TP_MALLOC_ATTR void *tp_aligned_alloc(size_t alignment, size_t size);
/* Frees a block of any pool, from any thread; NULL is a no-op. A pointer
 * tierpool does not own is reported and aborts the process. */
TP_API void tp_free(void *ptr);
/* tp_free with the size given at allocation (requested or usable). */
TP_API void tp_free_sized(void *ptr, size_t size);
/* Usable bytes of a block (at least the size requested); 0 for NULL. */
TP_API size_t tp_usable_size(const void *ptr);

/* ---- explicit pools ---------------------------------------------------------- */

typedef struct tp_pool tp_pool;

/* ---- out of memory ------------------------------------------------------------------
 * When an allocation fails (the OS refuses memory, or a pool's memory_limit
 * or the process's TIERPOOL_MEMORY_LIMIT would be passed), tierpool first
 * gives back the free memory every pool holds and tries again; then, if the
 * allocation still fails, it calls the handler of the pool (tp_pool_config)
 * or else the process's (tp_set_oom_handler), once, from the failing
 * thread, with the pool (never NULL) and the size asked for. The handler may
 * free memory (an application cache, another pool's blocks) and returns
 * true to have the allocation tried once more, false to let it fail with
 * NULL and errno ENOMEM. An allocation made inside a handler that fails
 * calls no handler (no recursion). Requests no memory could serve (sizes
 * that overflow) and destroyed pools fail at once, without a handler. */
typedef bool (*tp_oom_handler)(tp_pool *pool, size_t size, void *arg);
/* Sets the process's handler and its argument (NULL: none, the default). */
TP_API void tp_set_oom_handler(tp_oom_handler fn, void *arg);

/* A pool maps memory in units of this many bytes (4 MiB): a chunk for slab
 * blocks of every thread (the pool's metadata included), or a huge block's
 * size plus 64 bytes rounded up to whole units. */
#define TP_POOL_LIMIT_UNIT ((size_t)4 << 20)

/* Pool settings; a NULL config or a zeroed one means the defaults. */
typedef struct tp_pool_config {
    /* Bytes of memory the pool may map (slab chunks plus huge mappings,
     * including the pool's own metadata); 0 = unlimited. Allocations that
     * would pass it fail with NULL/ENOMEM. Counted in TP_POOL_LIMIT_UNIT
     * (4 MiB) steps, so only whole units of the limit are used: below one
     * unit a pool can allocate nothing at all (its first block needs a
     * chunk), 4 MiB..8 MiB-1 allow one chunk of slab blocks and no huge
     * block beside it, and so on (docs/tuning.md). */
    size_t memory_limit;
    /* Called when an allocation from this pool fails, instead of the
     * process's handler (see tp_set_oom_handler); NULL: the process's. */
    tp_oom_handler oom_handler;
    void *oom_arg;            /* its last argument */
} tp_pool_config;

/* Creates a pool (name is copied, up to 31 bytes cut at a whole UTF-8
 * character; NULL allowed: unnamed). Returns NULL with ENOMEM when out of
 * memory. Any thread may use the pool. */
TP_API tp_pool *tp_pool_create(const char *name, const tp_pool_config *config);
/* Releases every block of the pool at once, freed or not, and returns its
 * memory to the OS. No thread may use the pool or its blocks during or after
 * the call. Used after it, the pool is detected while its structure waits
 * for reuse (tp_pool_create reuses the oldest destroyed one once four
 * others wait; the old handle then names the new pool): allocation from it
 * (tp_pool_malloc, _calloc, _realloc of NULL, _aligned_alloc, _malloc_bulk)
 * returns NULL with errno EINVAL and maps nothing, and tp_pool_destroy or
 * tp_pool_reset of it aborts with a message naming the pool. The default
 * pool cannot be destroyed (the call is ignored). */
TP_API void tp_pool_destroy(tp_pool *pool);
/* Frees every block of the pool but keeps (some of) its memory for reuse,
 * as a request arena does. Same contract as destroy; ignored for the
 * default pool. */
TP_API void tp_pool_reset(tp_pool *pool);
/* Returns free memory to the OS now; NULL = default pool. Returns the bytes
 * given back. */
TP_API size_t tp_pool_trim(tp_pool *pool);
/* The process-wide default pool that tp_malloc uses. */
TP_API tp_pool *tp_pool_default(void);
/* The pool owning ptr, or NULL if the pointer is not tierpool's. */
TP_API tp_pool *tp_pool_of(const void *ptr);
/* The pool's name ("default" for the default pool). */
TP_API const char *tp_pool_name(const tp_pool *pool);

/* Allocation from a given pool (NULL = default pool); same semantics as the
 * tp_ calls above. tp_pool_realloc keeps the block in `pool`. */
TP_API TP_MALLOC_ATTR void *tp_pool_malloc(tp_pool *pool, size_t size);
TP_API TP_MALLOC_ATTR void *tp_pool_calloc(tp_pool *pool, size_t count, size_t size);
TP_API void *tp_pool_realloc(tp_pool *pool, void *ptr, size_t size);
TP_API TP_MALLOC_ATTR void *tp_pool_aligned_alloc(tp_pool *pool, size_t alignment, size_t size);

/* Bulk calls for buffer pools: `count` blocks of `size` bytes into out[].
 * All or nothing: returns count, or 0 (errno ENOMEM/EINVAL) with nothing
 * allocated. */
TP_API size_t tp_pool_malloc_bulk(tp_pool *pool, size_t size, size_t count, void **out);
/* Frees count blocks (any pools, NULL entries skipped). */
TP_API void tp_free_bulk(void **ptrs, size_t count);

/* ---- statistics ----------------------------------------------------------------------
 * Each field is defined once, here: X(name, kind, unit, help). kind is
 * counter (only grows) or gauge; unit is bytes, ms or empty. The struct,
 * the text table, JSON and Prometheus output all come from these lists.
 *
 * Counting costs the fast paths nothing shared: allocations are counted in
 * the calling thread's cache, live blocks are read from the pages. So frees
 * are allocations minus live blocks, and a block freed by another thread
 * counts as live until its page's owner collects it. Figures from running
 * threads are read without stopping them: exact when the pool is quiet,
 * close while it is busy.
 *
 * Requested bytes and peak live bytes need every call counted. By default
 * (stats_exact 0) requested bytes are estimated per class from the requests
 * that took a slow path, and the peak is the highest live bytes a statistics
 * read has seen (a lower bound; peak_page_bytes is an upper bound). With
 * TIERPOOL_STATS_EXACT=1 (stats_exact 1) every call takes a slow path, each
 * block keeps its requested size, and both are exact. */

#define TP_STATS_VERSION 4
#define TP_STATS_CLASSES 64   /* size classes of the small and large tiers */

#define TP_STATS_POOL_FIELDS(X)                                                                       \
    X(allocs, counter, , "blocks allocated, all tiers")                                                \
    X(frees, counter, , "blocks freed and collected by their page")                                    \
    X(live_blocks, gauge, , "blocks allocated and not freed")                                          \
    X(live_bytes, gauge, bytes, "usable bytes of live blocks")                                         \
    X(live_requested_bytes, gauge, bytes, "requested bytes of live blocks (exact if stats_exact)")     \
    X(peak_live_bytes, gauge, bytes, "highest live bytes (exact if stats_exact, else as reads saw)")   \
    X(pages, gauge, , "slab pages in use")                                                             \
    X(page_bytes, gauge, bytes, "bytes of slab pages in use")                                          \
    X(occupied_page_bytes, gauge, bytes, "bytes of slab pages holding at least one live block")       \
    X(peak_page_bytes, gauge, bytes, "highest bytes of slab pages and huge blocks so far")             \
    X(committed_bytes, gauge, bytes, "bytes in pages, free slices not yet purged, and huge mappings")  \
    X(resident_bytes, gauge, bytes, "bytes of the pool's mappings resident in RAM (mincore)")          \
    X(mapped_bytes, gauge, bytes, "bytes of address space mapped for the pool")                        \
    X(refills, counter, , "thread-cache refills: a page's free list taken in one batch")               \
    X(flushes, counter, , "empty pages handed from thread caches back to the pool")                    \
    X(remote_frees, counter, , "blocks freed by a thread other than their page's owner")               \
    X(purges, counter, , "purge passes that gave memory back")                                         \
    X(purged_bytes, counter, bytes, "bytes given back to the OS by purging")                           \
    X(huge_blocks, gauge, , "live huge blocks")                                                        \
    X(huge_bytes, gauge, bytes, "bytes mapped for live huge blocks")                                   \
    X(huge_cached_bytes, gauge, bytes, "bytes of freed huge mappings kept for reuse")                  \
    X(purge_delay_ms, gauge, ms, "current purge delay (adapts to reuse)")                              \
    X(internal_waste_bytes, gauge, bytes, "usable minus requested bytes of live blocks")               \
    X(external_waste_bytes, gauge, bytes, "committed bytes not in live blocks")                        \
    X(stats_exact, gauge, , "1 if requested and peak bytes are exact (TIERPOOL_STATS_EXACT=1)")   \
    X(memory_limit_bytes, gauge, bytes, "the pool's memory_limit on mapped bytes, 0 for none")           \
    X(process_limit_bytes, gauge, bytes, "the process's nearest memory limit (any pool: the same), 0 none") \
    X(process_limit_source, gauge, , "its source: 1 MEMORY_LIMIT, 2 MEMORY_HIGH, 3 cgroup max, 4 cgroup high, 5 machine") \
    X(process_committed_bytes, gauge, bytes, "memory all pools hold committed, as the limits count it")   \
    X(process_other_bytes, gauge, bytes, "the cgroup's other memory, taken off its limits")             \
    X(pressure_percent, gauge, , "memory pressure 0..100: how far the purge delay is shortened")       \
    X(psi_some, gauge, , "PSI memory some avg10, in hundredths of a percent")                           \
    X(limit_refusals, counter, , "memory commits the hard limit refused (process)")                    \
    X(oom_handler_calls, counter, , "out-of-memory handler calls (process)")

#define TP_STATS_CLASS_FIELDS(X)                                                                       \
    X(block_size, gauge, bytes, "block size of the class")                                             \
    X(allocs, counter, , "blocks allocated")                                                           \
    X(frees, counter, , "blocks freed and collected by their page")                                    \
    X(live_blocks, gauge, , "blocks allocated and not freed")                                          \
    X(live_bytes, gauge, bytes, "usable bytes of live blocks")                                         \
    X(live_requested_bytes, gauge, bytes, "requested bytes of live blocks")                            \
    X(peak_live_bytes, gauge, bytes, "highest live bytes")                                             \
    X(pages, gauge, , "pages of the class in use")                                                     \
    X(page_bytes, gauge, bytes, "bytes of the class's pages")                                          \
    X(refills, counter, , "thread-cache refills")                                                      \
    X(flushes, counter, , "empty pages handed back to the pool")                                       \
    X(remote_frees, counter, , "blocks freed by another thread than the owner")                        \
    X(cache_keep, gauge, , "most empty pages a thread cache keeps (largest over threads)")

typedef struct tp_class_stats {
#define TP_STATS_DECLARE(name, kind, unit, help) uint64_t name;
    TP_STATS_CLASS_FIELDS(TP_STATS_DECLARE)
} tp_class_stats;

typedef struct tp_stats {
    uint32_t version;         /* TP_STATS_VERSION of the library that filled it */
    uint32_t size;            /* sizeof(tp_stats) of the library that filled it */
    char pool[32];            /* pool name, or "process" for all pools */
    uint32_t pool_id;         /* tells the pools of a process apart, names alike or not;
                               * 0 for the default pool, UINT32_MAX for "process" */
    uint32_t reserved;
    TP_STATS_POOL_FIELDS(TP_STATS_DECLARE)
    double fragmentation;     /* 1 - requested live bytes / (occupied page bytes + large and
                               * huge blocks' bytes),
                               * 0..1: the waste in memory that holds live blocks; 0 when
                               * nothing is live (free memory kept is a cache, not waste
                               * between blocks: see external_waste_bytes) */
    tp_class_stats classes[TP_STATS_CLASSES];
#undef TP_STATS_DECLARE
} tp_stats;

enum { TP_STATS_TEXT = 0, TP_STATS_JSON = 1, TP_STATS_PROMETHEUS = 2 };

/* Fills *out for a pool, or for every pool together when pool is NULL.
 * Returns 0, or -1 with errno EINVAL for a NULL out. */
TP_API int tp_stats_get(tp_pool *pool, tp_stats *out);
/* Writes the statistics of a pool in a format, a piece of text at a time,
 * allocating nothing. With pool NULL: each live pool, at most 64 of them
 * (past 64 some are left out, the default pool first), then the process
 * total, which counts every pool. Returns 0, or
 * -1 with errno EINVAL for an unknown format or a NULL write, ENOMEM when
 * its scratch mapping fails. */
TP_API int tp_stats_write(tp_pool *pool, int format, void (*write)(void *arg, const char *text), void *arg);
/* tp_stats_write to a stdio stream. */
TP_API int tp_stats_print(tp_pool *pool, int format, FILE *out);

/* Starts publishing this process's statistics to shared memory, as
 * TIERPOOL_PUBLISH=1 does, for `tierpool top PID` and `tierpool stats PID`.
 * Returns 0 (also when already publishing), or -1 with errno ENOMEM. */
TP_API int tp_monitor_start(void);

/* ---- heap profiles (docs/profiling.md) ----------------------------------------------
 * With the PROFILE option on (TIERPOOL_PROFILE=1, or tp_option_set) one
 * allocation in about PROFILE_SAMPLE bytes (512 KiB) is sampled with its
 * stack. */

/* Writes a heap profile of a pool's live blocks (pool NULL: of every pool)
 * to `out`, in gperftools' heap profile text format that google-pprof
 * reads: estimated live objects and bytes per stack, the allocations since
 * start (or tp_profile_mark) beside them, then the process's mappings.
 * Returns 0, or -1 with errno EINVAL for a NULL out, EIO if writing failed. */
TP_API int tp_profile_write(FILE *out, tp_pool *pool);
/* The allocations a profile counts restart from zero here. */
TP_API void tp_profile_mark(void);

/* ---- options ----------------------------------------------------------------------
 * Every option is also read from the environment as TIERPOOL_<NAME> at the
 * first allocation; `tierpool options` and docs/tuning.md list them. Names are
 * case-insensitive, with or without the TIERPOOL_ prefix. */

/* Sets an option from text (sizes take K/M/G, durations ms/s, booleans
 * 0/1/true/false). Returns 0, or -1 with errno EINVAL and one warning on
 * stderr for an unknown name or a bad value (the old value stays), or -1
 * with errno EPERM for an option read at start only (SECURE). */
TP_API int tp_option_set(const char *name, const char *value);
/* The option's current value (booleans 0/1, sizes in bytes, durations in
 * ms); -1 with errno EINVAL for an unknown name. */
TP_API long long tp_option_get(const char *name);

typedef struct tp_option_desc {
    const char *name;        /* e.g. "PURGE_DELAY" */
    const char *type;        /* "bool", "int", "size", "milliseconds", "format", "path"
                              * (value 1 when a path is set) */
    const char *description;
    long long value, default_value, min, max;
} tp_option_desc;
/* Describes option number `index` (0, 1, ...); -1 past the last one. */
TP_API int tp_option_at(size_t index, tp_option_desc *out);

#ifdef __cplusplus
}
#endif

#endif /* TIERPOOL_H */
