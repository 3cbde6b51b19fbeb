/* SPDX-License-Identifier: MIT */
/*
 * tierpool_segment.h: what a reader of tierpool's published statistics
 * needs, installed beside tierpool.h; the `tierpool` tool builds on these
 * two headers alone, against an installed libtierpool.a.
 *
 * 1. The segment a process publishes its statistics to (TIERPOOL_PUBLISH=1,
 *    or tp_monitor_start) and the lock-free way to read it. It is the POSIX
 *    shared memory object "/tierpool.<pid>" (or "/tierpool.<pid>.<suffix>"
 *    when another user holds that name). The writer bumps `seq` to odd,
 *    writes, bumps it to even; a reader copies the snapshot and keeps it
 *    only if `seq` was even and unchanged around the copy. The layout is
 *    checked by `magic`, TP_STATS_VERSION and sizeof(tp_stats).
 * 2. What the library's own reports are made with, so that a reader prints
 *    a snapshot as the library prints its statistics: the text/JSON and
 *    Prometheus writers, name escaping, and the size-class table. These
 *    tpi_ names are in the static library only (libtierpool.so exports
 *    the tp_ API alone).
 */
#ifndef TIERPOOL_SEGMENT_H
#define TIERPOOL_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tierpool.h"

/* ---- 1. the segment ---------------------------------------------------------------- */

#define TPI_SHM_MAGIC 0x74706d6f6e697432ULL /* "tpmonit2" */
#define TPI_SHM_POOLS 32                    /* pools published, beyond that summed only */
#define TPI_SHM_PREFIX "tierpool."        /* names in /dev/shm: tierpool.<pid>[.<suffix>] */
#define TPI_SHM_NAME_FORMAT "/" TPI_SHM_PREFIX "%ld"

/* `tierpool profile PID`: the tool writes the file's absolute name and the
 * pool's (empty: every pool), then bumps `request`. The process's monitor
 * thread looks every TPI_SHM_PROFILE_POLL_MS while the process samples
 * (else once per publishing interval), writes the heap profile to the
 * file, stores `status` (0 or an errno) and then sets `done` to the
 * request's number. */
#define TPI_SHM_PATH_MAX 1024
#define TPI_SHM_PROFILE_POLL_MS 50
typedef struct tpi_shm_profile {
    _Atomic uint64_t request; /* the tool's: the number of its last request */
    _Atomic uint64_t done;    /* the process's: the number of the last one answered */
    int32_t status;           /* the process's: 0, or the errno of its failure */
    uint32_t reserved;
    char pool[32];            /* the tool's */
    char path[TPI_SHM_PATH_MAX];
} tpi_shm_profile;

typedef struct tpi_shm {
    uint64_t magic;          /* TPI_SHM_MAGIC once the writer set it up */
    uint32_t version;        /* TP_STATS_VERSION of the writer */
    uint32_t stats_size;     /* sizeof(tp_stats) of the writer */
    _Atomic uint64_t seq;    /* odd while the writer writes */
    int64_t pid;             /* the publishing process */
    uint64_t updated_ms;     /* CLOCK_MONOTONIC ms of the last update */
    uint64_t interval_ms;    /* how often the writer updates */
    uint32_t pool_count;     /* pools[] entries in use */
    uint32_t reserved;
    uint64_t pid_ns;         /* inode of the writer's pid namespace (0: unknown): pid means
                              * this process only to a reader in the same namespace */
    tp_stats process;        /* all pools together */
    tp_stats pools[TPI_SHM_POOLS];
    tpi_shm_profile profile; /* heap profile requests (outside the seq protocol) */
} tpi_shm;

/* Copies a consistent snapshot of `shm` into `out`; 0, or -1 if the writer
 * kept writing through every try (or the segment is not a tierpool one). */
static inline int tpi_shm_read(const tpi_shm *shm, tpi_shm *out)
{
    for (int attempt = 0; attempt < 1000; attempt++) {
        uint64_t before = atomic_load_explicit(&((tpi_shm *)shm)->seq, memory_order_acquire);
        if (before & 1) continue;
        memcpy((void *)out, (const void *)shm, sizeof *out);
#if defined(__SANITIZE_THREAD__)
        __asm__ volatile("" ::: "memory"); /* TSan has no fences; x86 and the test need none */
#else
        atomic_thread_fence(memory_order_acquire); /* the copy's loads stay before the re-check */
#endif
        uint64_t after = atomic_load_explicit(&((tpi_shm *)shm)->seq, memory_order_relaxed);
        if (before == after) return out->magic == TPI_SHM_MAGIC && out->stats_size == sizeof(tp_stats) ? 0 : -1;
    }
    return -1;
}

/* ---- 2. the library's writers and tables (libtierpool.a) ----------------------------- */

/* stats.c: writes gathered statistics (pools, and the process total if not
 * NULL) in a TP_STATS_* format; tp_stats_write's output, and the tool's for
 * a published snapshot. */
void tpi_stats_format(const tp_stats *pools, size_t count, const tp_stats *process, int format,
                      void (*write)(void *arg, const char *text), void *arg);
/* stats.c: the Prometheus text of `count` pools, every sample labelled
 * prefix[i] (such as `pid="7",comm="app",`; none if prefix is NULL), then
 * pool and pool_id; the per-class families only if `classes`. A prefix may
 * take TPI_PROM_LABELS_CAP - 256 bytes. */
#define TPI_PROM_LABELS_CAP 768
void tpi_stats_prometheus(const tp_stats *pools, size_t count, const char *const *prefix, bool classes,
                          void (*write)(void *arg, const char *text), void *arg);

/* escape.c: a name (at most len bytes, or up to its NUL) escaped for an
 * output into dst (cap bytes, always NUL-terminated, whole escapes only);
 * returns the length written. 6 * len + 1 bytes always hold it. */
typedef enum { TPI_ESCAPE_TEXT, TPI_ESCAPE_JSON, TPI_ESCAPE_PROMETHEUS } tpi_escape_style;
size_t tpi_escape(char *dst, size_t cap, const char *src, size_t len, tpi_escape_style style);

/* size_class.c: the size classes, generated (tools/gen_size_classes.c). */
typedef struct tpi_class_info {
    uint32_t block_size;  /* bytes per block, a multiple of 16 */
    uint8_t slices;       /* TPI_CLASS_SLICE_BYTES slices per page */
    uint16_t blocks;      /* blocks per page */
} tpi_class_info;

#define TPI_CLASS_COUNT 64              /* checked against the generated table */
#define TPI_CLASS_SLICE_BYTES 65536u    /* a slice, 64 KiB (TPI_SLICE_SIZE) */
extern const tpi_class_info tpi_classes[TPI_CLASS_COUNT];

#endif /* TIERPOOL_SEGMENT_H */
