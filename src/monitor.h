/* SPDX-License-Identifier: MIT */
/*
 * monitor.h: the shared-memory segment a process publishes its statistics
 * to (TIERPOOL_PUBLISH=1), and the lock-free way to read it. Shared by the
 * library (monitor.c, the writer) and the `tierpool` tool (the reader).
 *
 * The segment is the POSIX shared memory object "/tierpool.<pid>" (or
 * "/tierpool.<pid>.<suffix>" when another user holds that name). The writer
 * bumps `seq` to odd, writes, bumps it to even; a reader copies the snapshot
 * and keeps it only if `seq` was even and unchanged around the copy.
 */
#ifndef TPI_MONITOR_H
#define TPI_MONITOR_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "tierpool.h"

#define TPI_SHM_MAGIC 0x74706d6f6e697432ULL /* "tpmonit2" */
#define TPI_SHM_POOLS 32                    /* pools published, beyond that summed only */
#define TPI_SHM_PREFIX "tierpool."        /* names in /dev/shm: tierpool.<pid>[.<suffix>] */
#define TPI_SHM_NAME_FORMAT "/" TPI_SHM_PREFIX "%ld"

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

#endif /* TPI_MONITOR_H */
