/* SPDX-License-Identifier: MIT */
/*
 * oom.c: what an allocation that failed does before it gives up (API
 * level; the engine below only reports the failure).
 *
 *   1. every pool gives back the free memory it holds (tp_pool_trim: the
 *      calling thread's caches, the pools' free slices and runs, the huge
 *      cache), and other threads' caches are told to shrink; then the
 *      allocation is tried again;
 *   2. the handler of the pool, or else the process's, is called once from
 *      this thread, unless this thread is inside a handler already;
 *   3. if it returns true, one more try; else NULL with errno ENOMEM.
 * A failure inside all this (a retry's, or the handler's own allocation)
 * fails at once: no recovery runs within another.
 *
 * The handler is read under a lock (it and its argument change together);
 * it is called with no lock of tierpool's held, so it may free and allocate.
 */
#include "internal.h"

#include <errno.h>

static pthread_mutex_t tpi_oom_lock = PTHREAD_MUTEX_INITIALIZER;
static tp_oom_handler tpi_oom_fn;
static void *tpi_oom_arg;
static TPI_TLS bool tpi_oom_inside; /* this thread recovers from a failure */

void tp_set_oom_handler(tp_oom_handler fn, void *arg)
{
    pthread_mutex_lock(&tpi_oom_lock);
    tpi_oom_fn = fn;
    tpi_oom_arg = arg;
    pthread_mutex_unlock(&tpi_oom_lock);
}

#define TPI_OOM_POOLS 64 /* pools trimmed per failure; the rest purge on time */

/* Gives back what every pool holds free. Trimmed outside the pools lock: a
 * trim may start the background thread, which may allocate. */
static void tpi_oom_purge(void)
{
    tp_pool *pools[TPI_OOM_POOLS];
    size_t count = tpi_pools_list(pools, TPI_OOM_POOLS);
    for (size_t i = 0; i < count; i++) tp_pool_trim(pools[i]);
    /* Other threads' caches: their next pass comes at once. */
    atomic_fetch_add_explicit(&tpi_pressure_gen, 1, memory_order_relaxed);
    tpi_limit_refresh(true);
}

void *tpi_oom_recover(tp_pool *pool, size_t size, void *(*again)(void *arg), void *arg)
{
    /* A destroyed pool (EINVAL) or a size no memory serves: nothing helps. */
    if (errno == EINVAL) return NULL;
    if (size > TPI_MAX_REQUEST || tpi_oom_inside) {
        errno = ENOMEM;
        return NULL;
    }
    if (!pool) pool = &tpi_pool_default_instance;
    tpi_oom_inside = true;
    tpi_oom_purge();
    void *p = again(arg);
    if (!p) {
        tp_oom_handler fn = pool->oom_handler;
        void *fn_arg = pool->oom_arg;
        if (!fn) {
            pthread_mutex_lock(&tpi_oom_lock);
            fn = tpi_oom_fn;
            fn_arg = tpi_oom_arg;
            pthread_mutex_unlock(&tpi_oom_lock);
        }
        if (fn) {
            tpi_limit_count_handler_call();
            if (fn(pool, size, fn_arg)) p = again(arg);
        }
    }
    tpi_oom_inside = false;
    if (!p) errno = ENOMEM;
    return p;
}
