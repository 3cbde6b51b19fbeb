/* SPDX-License-Identifier: MIT */
/*
 * decay.c: the purge delay and how it adapts, and the clock purging reads.
 *
 * The delay adapts to reuse, because first-touching purged memory costs about
 * 12 us per 4 KiB page on a VM. Taking back memory purged less than
 * TPI_REGRET_WINDOW (4) delays ago is regret; when TPI_REGRET_BYTES (4 MiB)
 * per 100 ms of delay come back within such a window, as when a program's
 * working set comes and goes in bursts, the delay doubles (up to
 * PURGE_DELAY_MAX). Less costs at most 10 MiB of page faults a second
 * (2560 faults, about 3% of the time): a thread's pages of one class
 * emptying and filling again, or the few pages purged just before a heap
 * grows back, leave the delay short. The amount grows with the delay
 * because the window does: a fixed one would let a longer delay see more
 * regret and grow itself further. For the same reason a purge counts once:
 * slices taken back forget when they were purged (tpi_chunk_take_run).
 * Four delays without a doubling halve it back toward PURGE_DELAY.
 */
#include "internal.h"

uint64_t (*tpi_clock)(void) = tpi_os_clock_ms;

/* ---- the delay policy ---------------------------------------------------------- */

void tpi_decay_init(tpi_decay *d)
{
    __atomic_store_n(&d->delay_ms, (uint32_t)TPI_OPTION(purge_delay_ms), __ATOMIC_RELAXED);
    d->last_regret = 0;
    d->next_pass = 0;
    d->pressure_gen = atomic_load_explicit(&tpi_pressure_gen, memory_order_relaxed);
    d->regretted = 0;
    d->window_start = 0;
}

void tpi_decay_on_regret(tpi_decay *d, uint32_t now, size_t bytes)
{
    if ((uint64_t)(uint32_t)(now - d->window_start) >= (uint64_t)TPI_REGRET_WINDOW * d->delay_ms) {
        d->regretted = 0;
        d->window_start = now;
    }
    d->regretted += bytes;
    uint64_t delay = d->delay_ms > 100 ? d->delay_ms : 100;
    if (d->regretted < TPI_REGRET_BYTES * delay / 100) return;
    /* One doubling per delay at most: a burst that takes back many purged
     * runs at once is one regret, not one per run. */
    if (d->last_regret && (uint32_t)(now - d->last_regret) < d->delay_ms) return;
    uint64_t max = (uint64_t)TPI_OPTION(purge_delay_max_ms);
    uint64_t grown = d->delay_ms ? (uint64_t)d->delay_ms * 2 : 1;
    if (grown > max) grown = max;
    if (grown > d->delay_ms) __atomic_store_n(&d->delay_ms, (uint32_t)grown, __ATOMIC_RELAXED);
    d->last_regret = now ? now : 1;
    d->regretted = 0; /* the next doubling takes as much again */
}

void tpi_decay_on_pass(tpi_decay *d, uint32_t now)
{
    uint32_t base = (uint32_t)TPI_OPTION(purge_delay_ms);
    if (d->delay_ms > base && (uint64_t)(uint32_t)(now - d->last_regret) >= 4ull * d->delay_ms) {
        __atomic_store_n(&d->delay_ms, d->delay_ms / 2 > base ? d->delay_ms / 2 : base, __ATOMIC_RELAXED);
        d->last_regret = now;
    }
}

/* ---- passes ---------------------------------------------------------------------------- */
