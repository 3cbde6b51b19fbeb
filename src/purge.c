/* SPDX-License-Identifier: MIT */
/*
 * purge.c: giving memory back to the OS, on a delay that adapts.
 *
 * Free slices of a pool's chunks stay resident ("dirty") until they have been
 * free for the pool's purge delay; then a pass purges them (MADV_DONTNEED)
 * and unmaps chunks left empty and clean. Cached huge mappings age the same
 * way. Passes run from slow paths (a page taken from or given to the pool, a
 * huge free, thread exit), from the optional background thread, and in full
 * from tp_pool_trim.
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

/* Pool lock held. Purges what has been free for the delay (everything when
 * forced), unmaps empty clean chunks; returns the bytes given back. */
size_t tpi_pool_purge(tp_pool *pool, uint64_t now, bool force)
{
    if (!force && !tpi_decay_due(&pool->decay, now)) return 0;
    /* next_pass is read without the lock by tpi_purge_maybe_unlocked. */
    __atomic_store_n(&pool->decay.pressure_gen, atomic_load_explicit(&tpi_pressure_gen, memory_order_relaxed),
                     __ATOMIC_RELAXED);
    uint32_t now32 = (uint32_t)now;
    /* The delay in force: memory pressure shortens it (limit.c). */
    uint32_t delay = tpi_decay_delay(&pool->decay);
    uint32_t min_age = force ? 0 : delay;
    size_t released = tpi_huge_cache_purge(pool, now, min_age);
    size_t purged = 0;
    tpi_chunk *c = pool->chunks;
    while (c) {
        tpi_chunk *next = c->next;
        purged += tpi_chunk_purge(c, now32, min_age);
        /* An empty chunk stays mapped (it costs no resident memory) for 8
         * delays after its slices were purged, so that taking them back soon
         * still counts as regret; then, or on a forced pass, it is unmapped. */
        if (tpi_chunk_is_empty(c) && tpi_chunk_is_clean(c) &&
            (force || tpi_chunk_purged_before(c, now32 - 8 * delay))) {
            tpi_pool_unlink_chunk(pool, c);
            tpi_chunk_destroy(c);
        }
        c = next;
    }
    if (purged) {
        pool->purged_bytes += purged;
        pool->purges++;
    }
    tpi_decay_on_pass(&pool->decay, now32);
    atomic_fetch_add_explicit(&pool->purge_epoch, 1, memory_order_relaxed);
    uint64_t step = delay / 4;
    __atomic_store_n(&pool->decay.next_pass, now + (step > 10 ? step : 10), __ATOMIC_RELAXED);
    return released + purged;
}

/* Pool lock held. Unmaps every chunk with no page in use, dirty or not
 * (when the memory limit needs the room). Returns the bytes unmapped. */
size_t tpi_pool_release_empty_chunks(tp_pool *pool)
{
    size_t released = 0;
    tpi_chunk *c = pool->chunks;
    while (c) {
        tpi_chunk *next = c->next;
        if (tpi_chunk_is_empty(c)) {
            tpi_pool_unlink_chunk(pool, c);
            tpi_chunk_destroy(c);
            released += TPI_CHUNK_SIZE;
        }
        c = next;
    }
    return released;
}

/* A pass if one is due; cheap to call from slow paths (pool lock held). */
void tpi_purge_maybe(tp_pool *pool)
{
    uint64_t now = tpi_clock();
    if (tpi_decay_due(&pool->decay, now)) tpi_pool_purge(pool, now, false);
}

/* The same from a slow path that holds no lock: the lock is taken only when
 * a pass is due. */
void tpi_purge_maybe_unlocked(tp_pool *pool)
{
    uint64_t now = tpi_clock();
    tpi_run_heap_purge(pool, now, false);
    if (!tpi_decay_due(&pool->decay, now)) return;
    /* As often as passes come (every quarter delay, 10 ms at least). */
    tpi_limit_refresh(false);
    pthread_mutex_lock(&pool->lock);
    tpi_pool_purge(pool, now, false);
    pthread_mutex_unlock(&pool->lock);
}

/* ---- the background thread -------------------------------------------------------------- */

static _Atomic int tpi_background_started;

static void tpi_background_visit(tp_pool *pool, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool->lock);
    tpi_purge_maybe(pool);
    pthread_mutex_unlock(&pool->lock);
    tpi_run_heap_purge(pool, tpi_clock(), false);
}

static void *tpi_background_main(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t ms = (uint64_t)TPI_OPTION(purge_delay_ms) / 4;
        if (ms < 10) ms = 10;
        if (ms > 1000) ms = 1000;
        /* Woken early by a PSI trigger when the kernel reports stalls. */
        tpi_limit_wait(ms);
        tpi_limit_refresh(false);
        tpi_pools_each(tpi_background_visit, NULL);
    }
    return NULL;
}

/* Starts the thread once, lazily, from a slow path that holds no lock. */
void tpi_background_ensure(void)
{
    if (!TPI_OPTION(background_purge)) return;
    if (atomic_load_explicit(&tpi_background_started, memory_order_relaxed)) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&tpi_background_started, &expected, 1)) return;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, tpi_background_main, NULL) != 0)
        atomic_store(&tpi_background_started, 0);
    pthread_attr_destroy(&attr);
}

/* The child of a fork has no background thread: start one again lazily. */
void tpi_background_after_fork(void)
{
    atomic_store(&tpi_background_started, 0);
    tpi_limit_after_fork();
}
