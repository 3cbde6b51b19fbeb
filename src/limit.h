/* SPDX-License-Identifier: MIT */
/*
 * limit.h: memory limits, memory pressure and the out-of-memory handler.
 *
 *   limit.c     (page-source level) the bytes tierpool holds committed in
 *               all pools, the hard limit checked where memory is taken
 *               into use, the limits read from the cgroup and the machine,
 *               and the pressure they put on the purge delay
 *   oom.c       (API level) what a failing allocation does: purge every
 *               pool, call the handler, retry once
 *
 * "Committed" means what the kernel may keep resident for tierpool: pages
 * and runs handed out or cached, free memory not yet purged (dirty), chunk
 * headers, huge mappings. The page source counts it where memory is taken
 * into use (tpi_limit_commit, which fails past the hard limit) and where it
 * is purged or unmapped (tpi_limit_release). docs/tuning.md has the policy.
 */
#ifndef TPI_LIMIT_H
#define TPI_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tierpool.h"

/* Where the nearest limit comes from: the values of the statistics field
 * process_limit_source (tierpool.h lists them). */
enum {
    TPI_LIMIT_NONE = 0,
    TPI_LIMIT_OPTION_HARD = 1,  /* TIERPOOL_MEMORY_LIMIT */
    TPI_LIMIT_OPTION_HIGH = 2,  /* TIERPOOL_MEMORY_HIGH */
    TPI_LIMIT_CGROUP_MAX = 3,   /* cgroup v2 memory.max, v1 memory.limit_in_bytes */
    TPI_LIMIT_CGROUP_HIGH = 4,  /* cgroup v2 memory.high, v1 memory.soft_limit_in_bytes */
    TPI_LIMIT_MACHINE = 5,      /* MemTotal of /proc/meminfo */
};

/* The pressure zone (docs/tuning.md): from the last 1/TPI_PRESSURE_ZONE_DIV
 * of the nearest limit the purge delay shrinks linearly, to zero at the last
 * 1/TPI_PRESSURE_FULL_DIV; each 1/TPI_PRESSURE_STEPS of the way makes a pass
 * due at once. */
#define TPI_PRESSURE_ZONE_DIV 4
#define TPI_PRESSURE_FULL_DIV 8
#define TPI_PRESSURE_STEPS 8
/* From this pressure on (percent), a thread cache's pass gives back every
 * empty page and cached run it holds, not only those it did not need. */
#define TPI_PRESSURE_FLUSH 50u
/* Limits and PSI are read again at most this often (ms). */
#define TPI_LIMIT_REFRESH_MS 1000u
/* PSI "some avg10" (percent of time a task stalled on memory) from which the
 * delay shrinks, and at which it is zero. */
#define TPI_PSI_LOW 1u
#define TPI_PSI_HIGH 10u

/* ---- limit.c ---------------------------------------------------------------------- */

/* Takes `bytes` into use; false (errno ENOMEM, nothing counted) when the
 * hard limit would be passed. */
bool tpi_limit_commit(size_t bytes);
/* Gives `bytes` back (purged or unmapped). */
void tpi_limit_release(size_t bytes);
size_t tpi_limit_committed(void);
/* Reads the cgroup's and machine's limits and PSI: at most every
 * TPI_LIMIT_REFRESH_MS of the OS clock, or now when forced; no lock held. */
void tpi_limit_refresh(bool force);

/* The purge delay `delay` under the present pressure: unchanged far from
 * every limit, shrinking to 0 across the pressure zone and under PSI. */
uint32_t tpi_pressure_delay(uint32_t delay);
/* 0..100: how far the delay is shrunk (100: memory goes back at once). */
unsigned tpi_pressure_percent(void);
/* Bumped whenever pressure rises by a step: a purge pass is due at once
 * for a decay that saw an older value (tpi_decay_due). */
extern _Atomic uint32_t tpi_pressure_gen;
/* The background thread's sleep of `ms`, cut short when the PSI trigger
 * fires (pressure then rises at once). */
void tpi_limit_wait(uint64_t ms);
void tpi_limit_after_fork(void);

typedef struct tpi_limit_view {
    size_t limit;        /* the nearest limit, in bytes of the process (0: none) */
    unsigned source;     /* TPI_LIMIT_* */
    size_t committed;    /* tierpool's committed bytes */
    size_t other;        /* the cgroup's or process's memory that is not tierpool's */
    unsigned pressure;   /* tpi_pressure_percent */
    unsigned psi_some;   /* PSI some avg10, in hundredths of a percent */
    uint64_t refusals;   /* commits refused by the hard limit */
    uint64_t handler_calls; /* out-of-memory handler calls (oom.c) */
} tpi_limit_view;
void tpi_limit_get(tpi_limit_view *out);
/* oom.c calls a handler: counted here, where the statistics read it. */
void tpi_limit_count_handler_call(void);

/* ---- oom.c ------------------------------------------------------------------------- */

/* An allocation of `size` from `pool` failed (errno set). Unless the size
 * could never be served or the pool is gone, purges what every pool holds
 * free and calls `again(arg)`; then the handler (once, never from inside a
 * handler) and `again` once more if it asks. Returns the block or NULL with
 * errno ENOMEM. */
void *tpi_oom_recover(tp_pool *pool, size_t size, void *(*again)(void *arg), void *arg);

#endif /* TPI_LIMIT_H */
