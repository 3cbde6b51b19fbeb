/* SPDX-License-Identifier: MIT */
/*
 * process.c: process start-up, once, before the first allocation (alloc.c
 * and the malloc override call it): the services, then each layer's own
 * state, then the callbacks through which lower layers reach higher ones
 * without naming them: the fatal reporter's pool lookup, the pool's
 * reclaim under its memory limit, the thread cache's call to start
 * publishing. fork is made safe by taking every lock around it, layer by
 * layer in lock order.
 */
#include "internal.h"

static void tpi_fork_prepare(void)
{
    tpi_sample_fork_prepare_writer();
    tpi_threads_lock();
    tpi_pools_lock_all();
    tpi_tcache_store_lock();
    tpi_sample_fork_prepare();
}

static void tpi_fork_parent(void)
{
    tpi_sample_fork_done();
    tpi_tcache_store_unlock();
    tpi_pools_unlock_all();
    tpi_threads_unlock();
    tpi_sample_fork_done_writer();
}

static void tpi_run_heap_after_fork_of(tp_pool *pool, void *arg)
{
    (void)arg;
    tpi_run_heap_after_fork(&pool->runs);
}

static void tpi_fork_child(void)
{
    tpi_background_after_fork();
    tpi_monitor_after_fork();
    /* Repairs what a thread of the parent left half done (a purge pass). */
    tpi_pools_each_held(tpi_run_heap_after_fork_of, NULL);
    tpi_sample_fork_done();
    tpi_tcache_store_unlock();
    tpi_pools_unlock_all();
    tpi_threads_unlock();
    tpi_sample_fork_done_writer();
}

static void tpi_process_init(void)
{
    tpi_services_init();
    tpi_fatal_set_owner(tpi_registry_pool);
    tpi_pool_set_reclaim(tpi_pool_reclaim_unused);
    tpi_tcache_set_slow_hook(tpi_monitor_ensure);
    tpi_track_pool_create(&tpi_pool_default_instance);
    pthread_mutex_lock(&tpi_pool_default_instance.lock);
    tpi_decay_init(&tpi_pool_default_instance.decay);
    pthread_mutex_unlock(&tpi_pool_default_instance.lock);
    tpi_lock_take(&tpi_pool_default_instance.runs.lock);
    tpi_decay_init(&tpi_pool_default_instance.runs.decay);
    tpi_lock_give(&tpi_pool_default_instance.runs.lock);
    tpi_stats_init();
    tpi_limit_refresh(true); /* the cgroup's and machine's limits */
    tpi_threads_init();
    pthread_atfork(tpi_fork_prepare, tpi_fork_parent, tpi_fork_child);
}

void tpi_process_ensure_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tpi_process_init);
}
