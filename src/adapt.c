/* SPDX-License-Identifier: MIT */
/*
 * adapt.c: the per-class capacity policy of a thread cache.
 *
 * A tcache returns a page to its pool as soon as the page's last block comes
 * back, unless it may keep it: it keeps the class's current page always, and
 * up to `keep` more empty pages of the class. `keep` adapts per class:
 *
 *   grow   when the class takes a page from the pool within TPI_ADAPT_WINDOW
 *          page events of giving one back (the cache ran empty right after
 *          overflowing: a program cycling around a page boundary, or a burst
 *          that repeats): keep doubles, up to the CACHE_KEEP_MAX option and
 *          to a cap the caller gives (tcache.c: 1 MiB of the class's pages);
 *   shrink when the class has not grown for TPI_ADAPT_PERIOD page events, or
 *          when the caller forces it (a purge delay of the pool has passed):
 *          keep halves, and the empty pages above it go back to the pool.
 *
 * Time is counted in page events of the tcache (a page taken from or given
 * back to the pool), not in seconds: the policy is deterministic and tests
 * drive it with plain calls.
 */
#include "internal.h"

void tpi_adapt_init(tpi_adapt *a)
{
    a->keep = 0;
    a->retained = 0;
    a->last_release = 0;
    a->last_grow = 0;
}

bool tpi_adapt_may_keep(tpi_adapt *a)
{
    if (a->retained >= a->keep) return false;
    a->retained++;
    return true;
}

void tpi_adapt_on_release(tpi_adapt *a, uint32_t tick)
{
    a->last_release = tick;
}

void tpi_adapt_on_acquire(tpi_adapt *a, uint32_t tick, unsigned cap)
{
    if (a->last_release == 0 || tick - a->last_release > TPI_ADAPT_WINDOW) return;
    unsigned grown = a->keep ? a->keep * 2u : 1u, max = (unsigned)TPI_OPTION(cache_keep_max);
    if (max > cap) max = cap;
    a->keep = (uint8_t)(grown < max ? grown : max);
    a->last_grow = tick;
}

unsigned tpi_adapt_decay(tpi_adapt *a, uint32_t tick, bool force)
{
    if (a->keep && (force || tick - a->last_grow >= TPI_ADAPT_PERIOD)) {
        a->keep /= 2;
        a->last_grow = tick;
    }
    return a->retained > a->keep ? (unsigned)(a->retained - a->keep) : 0u;
}
