/* SPDX-License-Identifier: MIT */
/*
 * thread.c: per-thread state. A thread reaches the default pool's tcache
 * through one initial-exec TLS pointer; every other pool's through a table
 * indexed by pool id whose entries carry the pool's generation, so a tcache
 * of a pool destroyed or reset since is never used again.
 *
 * Thread exit (a pthread key destructor) hands every tcache's pages back to
 * its pool. fork is made safe by taking every lock around it.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

TPI_TLS tpi_tcache *tpi_tls_default = &tpi_tcache_empty;
TPI_TLS char tpi_tls_id_anchor __attribute__((aligned(16)));

/* tpi_tls_last.pool when there is no last pool: the address of no pool. */
static const char tpi_no_pool;
#define TPI_NO_POOL ((tp_pool *)&tpi_no_pool)
TPI_TLS tpi_thread_last tpi_tls_last = {TPI_NO_POOL, NULL, 0};

typedef struct tpi_slot {
    tp_pool *pool;
    uint32_t gen;
    tpi_tcache *tcache;
} tpi_slot;

typedef struct tpi_thread {
    tpi_slot *slots;              /* indexed by pool id */
    size_t slot_count;
    size_t slots_mapped;          /* bytes mapped for slots (0 = inline) */
    struct tpi_thread *next_free; /* recycled thread records */
    tpi_slot inline_slots[15];    /* enough for most programs */
} tpi_thread;

static TPI_TLS tpi_thread *tpi_tls_thread;

static pthread_key_t tpi_thread_key;
static pthread_mutex_t tpi_threads_mutex = PTHREAD_MUTEX_INITIALIZER;
static tpi_thread *tpi_threads_free;

static void tpi_thread_exit(void *arg);

/* Process start-up (process.c), before any thread record. */
void tpi_threads_init(void)
{
    pthread_key_create(&tpi_thread_key, tpi_thread_exit);
}

/* Around fork (process.c), first of every lock. */
void tpi_threads_lock(void)
{
    pthread_mutex_lock(&tpi_threads_mutex);
}

void tpi_threads_unlock(void)
{
    pthread_mutex_unlock(&tpi_threads_mutex);
}

static tpi_thread *tpi_thread_record(void)
{
    tpi_thread *t = tpi_tls_thread;
    if (tpi_likely(t != NULL)) return t;
    pthread_mutex_lock(&tpi_threads_mutex);
    t = tpi_threads_free;
    if (t) tpi_threads_free = t->next_free;
    pthread_mutex_unlock(&tpi_threads_mutex);
    if (!t) {
        t = tpi_os_map_aligned(TPI_OS_PAGE, TPI_OS_PAGE, 0);
        if (!t) return NULL;
    }
    memset(t, 0, sizeof *t);
    t->slots = t->inline_slots;
    t->slot_count = sizeof t->inline_slots / sizeof t->inline_slots[0];
    tpi_tls_thread = t;
    pthread_setspecific(tpi_thread_key, t);
    return t;
}

static bool tpi_thread_grow_slots(tpi_thread *t, uint32_t id)
{
    size_t count = t->slot_count;
    while (count <= id) count *= 2;
    size_t bytes = (count * sizeof(tpi_slot) + TPI_OS_PAGE - 1) & ~(size_t)(TPI_OS_PAGE - 1);
    tpi_slot *slots = tpi_os_map_aligned(bytes, TPI_OS_PAGE, 0);
    if (!slots) return false;
    memcpy(slots, t->slots, t->slot_count * sizeof(tpi_slot));
    if (t->slots_mapped) tpi_os_unmap(t->slots, t->slots_mapped);
    t->slots = slots;
    t->slot_count = bytes / sizeof(tpi_slot);
    t->slots_mapped = bytes;
    return true;
}

/* tc, which tp_pool_malloc is to find next without the table if pool is
 * an explicit one (the default pool has tpi_tls_default). */
static tpi_tcache *tpi_thread_remember(tp_pool *pool, uint32_t gen, tpi_tcache *tc)
{
    if (pool != &tpi_pool_default_instance) tpi_tls_last = (tpi_thread_last){pool, tc, gen};
    return tc;
}

/* NULL with errno ENOMEM, or EINVAL when the pool was destroyed. */
tpi_tcache *tpi_thread_tcache(tp_pool *pool)
{
    tpi_thread *t = tpi_thread_record();
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t gen = atomic_load_explicit(&pool->gen, memory_order_acquire);
    if (pool->id < t->slot_count) {
        tpi_slot *s = &t->slots[pool->id];
        if (s->tcache && s->pool == pool && s->gen == gen) return tpi_thread_remember(pool, gen, s->tcache);
    } else if (!tpi_thread_grow_slots(t, pool->id)) {
        errno = ENOMEM;
        return NULL;
    }
    tpi_tcache *tc = tpi_pool_tcache_acquire(pool, tpi_thread_id());
    if (!tc) return NULL;
    tpi_slot *s = &t->slots[pool->id];
    s->pool = pool;
    s->gen = gen;
    s->tcache = tc;
    if (pool == &tpi_pool_default_instance) tpi_tls_default = tc;
    return tpi_thread_remember(pool, gen, tc);
}

tpi_tcache *tpi_thread_tcache_peek(tp_pool *pool)
{
    tpi_thread *t = tpi_tls_thread;
    if (!t || pool->id >= t->slot_count) return NULL;
    tpi_slot *s = &t->slots[pool->id];
    uint32_t gen = atomic_load_explicit(&pool->gen, memory_order_acquire);
    if (!s->tcache || s->pool != pool || s->gen != gen) return NULL;
    return tpi_thread_remember(pool, gen, s->tcache);
}

tpi_tcache *tpi_thread_live_tcache(tp_pool *pool)
{
    if (pool == &tpi_pool_default_instance) return tpi_tls_default == &tpi_tcache_empty ? NULL : tpi_tls_default;
    return tpi_thread_tcache_peek(pool);
}

tpi_tcache *tpi_thread_init_default(void)
{
    return tpi_thread_tcache(&tpi_pool_default_instance);
}

static void tpi_thread_exit(void *arg)
{
    tpi_thread *t = arg;
    tpi_tls_default = &tpi_tcache_empty;
    tpi_tls_last = (tpi_thread_last){TPI_NO_POOL, NULL, 0};
    pthread_mutex_t *pools_lock = tpi_pools_mutex();
    pthread_mutex_lock(pools_lock);
    for (size_t i = 0; i < t->slot_count; i++) {
        tpi_slot *s = &t->slots[i];
        if (!s->tcache) continue;
        if (s->pool->live && atomic_load_explicit(&s->pool->gen, memory_order_relaxed) == s->gen) {
            tpi_tcache_abandon(s->tcache);
            tpi_pool_tcache_release(s->pool, s->tcache);
        }
        s->tcache = NULL;
    }
    pthread_mutex_unlock(pools_lock);
    if (t->slots_mapped) tpi_os_unmap(t->slots, t->slots_mapped);
    tpi_tls_thread = NULL;
    pthread_mutex_lock(&tpi_threads_mutex);
    t->next_free = tpi_threads_free;
    tpi_threads_free = t;
    pthread_mutex_unlock(&tpi_threads_mutex);
}
