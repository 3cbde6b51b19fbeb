/* SPDX-License-Identifier: MIT */
/*
 * fatal.c: the fatal error reporter, a service every layer may call. It
 * writes one line to stderr and aborts. To name the pool of a pointer it
 * asks the function registered at start-up (the chunk registry's lookup),
 * since it may not call up into the layers that know pools.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static tp_pool *(*tpi_fatal_owner)(const void *p);

void tpi_fatal_set_owner(tp_pool *(*owner)(const void *p))
{
    __atomic_store_n(&tpi_fatal_owner, owner, __ATOMIC_RELAXED);
}

/* Writes the line snprintf made (n bytes, or truncated) and aborts. */
static _Noreturn void tpi_die(const char *msg, int n, size_t size)
{
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)n < size ? (size_t)n : size - 1);
        (void)w;
    }
    abort();
}

_Noreturn void tpi_fatal(const char *what, const void *ptr)
{
    char msg[256];
    tp_pool *(*owner)(const void *) = __atomic_load_n(&tpi_fatal_owner, __ATOMIC_RELAXED);
    const tp_pool *pool = owner ? owner(ptr) : NULL;
    int n = pool ? snprintf(msg, sizeof msg, "tierpool: fatal: %s (pointer %p, pool \"%s\")\n", what, ptr,
                            pool->name)
                 : snprintf(msg, sizeof msg, "tierpool: fatal: %s (pointer %p, not in any pool)\n", what, ptr);
    tpi_die(msg, n, sizeof msg);
}

_Noreturn void tpi_fatal_pool(const char *what, const tp_pool *pool)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "tierpool: fatal: %s (pool %p \"%s\")\n", what, (const void *)pool,
                     pool->name);
    tpi_die(msg, n, sizeof msg);
}

#if defined(TPI_DEBUG)
_Noreturn void tpi_assert_fail(const char *cond, const char *file, int line)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "tierpool: fatal: invariant broken: %s (%s:%d)\n", cond, file, line);
    tpi_die(msg, n, sizeof msg);
}
#endif
