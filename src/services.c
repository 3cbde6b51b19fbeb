/* SPDX-License-Identifier: MIT */
/*
 * services.c: the services' start, once per process: the options, and the
 * modes they decide before any page exists (secure mode, exact statistics,
 * Memcheck, and with them whether every call takes a slow path). Process
 * start-up (process.c) begins here; so do the public calls of the layers
 * below it that may come first (tp_pool_create, statistics, monitoring).
 */
#include "internal.h"

static void tpi_services_start(void)
{
    tpi_options_ensure_init();
    tpi_secure_init();
    tpi_exact_init();
    tpi_track_init();
#if !defined(TPI_SECURE_BUILD)
    /* Secure mode, exact statistics and Memcheck need every malloc and free
     * on a slow path: tcache.c then keeps direct[] empty and marks owner
     * words checked. So does passthrough: the malloc override's malloc is
     * the engine's fast path in front of its own slow path, which passes
     * the call on, and must not pop a block from the tcache that a call of
     * the tp_ API gave the thread. */
    tpi_slow_only = tpi_secure || tpi_stats_exact || tpi_track_valgrind || TPI_OPTION(passthrough);
#endif
    /* A profile written at exit needs samples to write. */
    if (TPI_OPTION(profile_at_exit)) __atomic_store_n(&tpi_options.profile, 1, __ATOMIC_RELAXED);
    if (TPI_OPTION(verbose)) tpi_options_print();
}

void tpi_services_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tpi_services_start);
}
