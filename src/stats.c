/* SPDX-License-Identifier: MIT */
/*
 * stats.c: statistics, gathered on demand and written as a text table, JSON
 * or the Prometheus text format from the one field list in tierpool.h.
 *
 * Nothing here runs on a fast path. A read takes the pool lock (so pages and
 * tcaches stay put) and adds up:
 *   allocations   the counters of every live tcache of the pool (written by
 *                 their threads without atomics: read racily, which is benign
 *                 for aligned 64-bit words) plus those folded in from tcaches
 *                 of exited threads;
 *   live blocks   page->used of every page in the pool's chunks (abandoned
 *                 pages' remote frees collected first);
 *   memory        the chunks' slice maps, the huge lists, and mincore() for
 *                 what is resident.
 * Frees are allocations minus live blocks.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(TP_STATS_CLASSES == TPI_CLASS_COUNT, "tierpool.h's class count is stale");

#if defined(__clang__) || defined(__GNUC__)
#define TPI_RACY_READER __attribute__((no_sanitize("thread")))
#else
#define TPI_RACY_READER
#endif

/* ---- gathering -------------------------------------------------------------------- */

static size_t tpi_resident(const void *addr, size_t size)
{
    unsigned char vec[1024];
    size_t resident = 0;
    for (size_t off = 0; off < size; off += sizeof vec * TPI_OS_PAGE) {
        size_t len = size - off < sizeof vec * TPI_OS_PAGE ? size - off : sizeof vec * TPI_OS_PAGE;
        if (mincore((char *)addr + off, len, vec) != 0) continue;
        for (size_t i = 0; i < (len + TPI_OS_PAGE - 1) / TPI_OS_PAGE; i++) resident += vec[i] & 1;
    }
    return resident * TPI_OS_PAGE;
}

/* requested[] gathers, per class, the bytes and the count of the slow-path
 * allocations: the sample the requested bytes of live blocks are estimated
 * from (the fast path counts blocks, not bytes). */
TPI_RACY_READER static void tpi_add_counters(tp_class_stats *c, unsigned cls, uint64_t *requested,
                                             const tpi_class_counters *k)
{
    c->allocs += k->allocs + k->fast_allocs;
    /* A run class counts its live runs; a slab class reads its pages. */
    if (cls >= TPI_SLAB_CLASSES) {
        c->live_blocks += k->allocs - k->run_frees;
        c->live_bytes += k->run_bytes;
    }
    requested[0] += k->requested;
    requested[1] += k->allocs;
    c->refills += k->refills;
    c->flushes += k->flushes;
    c->remote_frees += k->remote_frees;
}

/* Pool lock held. Adds the pool's figures into *out (several pools add up
 * into one struct for the process). requested[2 * class] collects sampled
 * requested bytes, requested[2 * class + 1] the sample's size. */
TPI_RACY_READER static void tpi_stats_gather(tp_pool *pool, tp_stats *out, uint64_t *requested)
{
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        tpi_add_counters(&out->classes[cls], cls, &requested[2 * cls], &pool->retired[cls]);
        if (tpi_stats_exact) out->classes[cls].live_requested_bytes += tpi_exact_requested(pool, cls);
    }
    for (const tpi_tcache *tc = pool->live_tcaches; tc; tc = tc->live_next) {
        for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
            tpi_add_counters(&out->classes[cls], cls, &requested[2 * cls], &tc->counters[cls]);
            if (tc->adapt[cls].keep > out->classes[cls].cache_keep) out->classes[cls].cache_keep = tc->adapt[cls].keep;
        }
        for (unsigned slot = 0; slot < TPI_SMALL_SLOTS; slot++)
            out->classes[tpi_small_class[slot]].allocs += tc->slot_allocs[slot];
    }
    size_t dirty = 0;
    for (const tpi_chunk *c = pool->chunks; c; c = c->next) {
        for (unsigned i = 1; i < TPI_SLICES_PER_CHUNK; i++) {
            const tpi_page *page = &c->pages[i];
            if (!page->slice_count) continue;
            tp_class_stats *cs = &out->classes[page->class_index];
            cs->pages++;
            cs->page_bytes += (size_t)page->slice_count << TPI_SLICE_SHIFT;
            uint32_t used = tpi_page_used(page);
            if (page->queue == TPI_QUEUE_ABANDONED) {
                /* Blocks other threads freed since its thread exited wait on
                 * its remote list, which a read counts but leaves there (the
                 * queue says abandoned only under the pool lock, held here). */
                uint32_t pending = tpi_page_remote_count(page);
                used -= pending;
                cs->remote_frees += pending;
            }
            cs->live_blocks += used;
            if (used) out->occupied_page_bytes += (size_t)page->slice_count << TPI_SLICE_SHIFT;
        }
        dirty += (size_t)__builtin_popcountll(c->dirty_slices & c->free_slices) << TPI_SLICE_SHIFT;
        out->resident_bytes += tpi_resident(c, TPI_CHUNK_SIZE);
    }
    for (const tpi_huge *h = pool->huge; h; h = h->next) {
        out->huge_blocks++;
        out->huge_bytes += h->map_size;
        out->live_bytes += h->size; /* the classes' live bytes join in tpi_stats_finish */
        out->live_requested_bytes += h->requested;
        out->resident_bytes += tpi_resident(h, h->map_size);
    }
    for (const tpi_huge *h = pool->huge_cache; h; h = h->next) out->resident_bytes += tpi_resident(h, h->map_size);
    tpi_run_heap *runs = &pool->runs;
    tpi_lock_take(&runs->lock);
    for (unsigned cls = TPI_SLAB_CLASSES; cls < TPI_CLASS_COUNT; cls++) {
        out->classes[cls].live_blocks -= runs->frees[cls];
        out->classes[cls].live_bytes -= runs->freed_bytes[cls];
    }
    out->committed_bytes += runs->used_bytes + runs->dirty_bytes;
    out->resident_bytes += tpi_run_heap_resident(runs, tpi_resident);
    out->peak_page_bytes += runs->peak_used_bytes;
    out->purges += runs->purges;
    out->purged_bytes += runs->purged_bytes;
    if (runs->decay.delay_ms > out->purge_delay_ms) out->purge_delay_ms = runs->decay.delay_ms;
    tpi_lock_give(&runs->lock);
    out->allocs += pool->huge_allocs;
    out->huge_cached_bytes += pool->huge_cache_bytes;
    out->committed_bytes += pool->page_bytes + dirty + pool->huge_live_bytes + pool->huge_cache_bytes;
    out->mapped_bytes += pool->mapped;
    out->memory_limit_bytes += pool->memory_limit;
    out->peak_page_bytes += pool->peak_page_bytes;
    out->purges += pool->purges;
    out->purged_bytes += pool->purged_bytes;
    if (pool->decay.delay_ms > out->purge_delay_ms) out->purge_delay_ms = pool->decay.delay_ms;
}

/* Derives the totals and the waste figures from the per-class ones; pool is
 * NULL for the process. */
static void tpi_stats_finish(tp_pool *pool, tp_stats *out, const uint64_t *requested)
{
    for (unsigned cls = 0; cls < TPI_CLASS_COUNT; cls++) {
        tp_class_stats *c = &out->classes[cls];
        c->block_size = tpi_classes[cls].block_size;
        /* Blocks freed by another thread and not yet collected still count
         * in page->used, so live can lead allocs by a hair while busy. */
        if (c->live_blocks > c->allocs) c->live_blocks = c->allocs;
        c->frees = c->allocs - c->live_blocks;
        if (cls < TPI_SLAB_CLASSES) {
            c->live_bytes = c->live_blocks * c->block_size;
        } else { /* a run is its own page, of the OS pages its size needs */
            c->pages = c->live_blocks;
            c->page_bytes = c->live_bytes;
        }
        uint64_t sampled = requested[2 * cls + 1];
        if (!tpi_stats_exact) /* exact ones were gathered */
            c->live_requested_bytes = sampled
                ? (uint64_t)((double)requested[2 * cls] / (double)sampled * (double)c->live_blocks)
                : c->live_bytes;
        out->allocs += c->allocs;
        out->frees += c->frees;
        out->live_blocks += c->live_blocks;
        out->live_bytes += c->live_bytes;
        out->live_requested_bytes += c->live_requested_bytes;
        out->pages += c->pages;
        out->page_bytes += c->page_bytes;
        out->refills += c->refills;
        out->flushes += c->flushes;
        out->remote_frees += c->remote_frees;
    }
    out->live_blocks += out->huge_blocks;
    out->frees = out->allocs - out->live_blocks;
    /* The limits are the process's: every pool shows the same. */
    tpi_limit_view lim;
    tpi_limit_get(&lim);
    out->process_limit_bytes = lim.limit;
    out->process_limit_source = lim.source;
    out->process_committed_bytes = lim.committed;
    out->process_other_bytes = lim.other;
    out->pressure_percent = lim.pressure;
    out->psi_some = lim.psi_some;
    out->limit_refusals = lim.refusals;
    out->oom_handler_calls = lim.handler_calls;
    tpi_exact_fill_peaks(pool, out);
    if (out->live_requested_bytes > out->live_bytes) out->live_requested_bytes = out->live_bytes; /* busy */
    out->internal_waste_bytes = out->live_bytes - out->live_requested_bytes;
    out->external_waste_bytes = out->committed_bytes > out->live_bytes ? out->committed_bytes - out->live_bytes : 0;
    /* Waste between and inside live blocks, over the memory holding them:
     * empty pages and unpurged free slices are memory kept for reuse, which
     * external_waste_bytes shows, so an idle pool reads 0. */
    uint64_t holding = out->occupied_page_bytes + out->huge_bytes;
    for (unsigned cls = TPI_SLAB_CLASSES; cls < TPI_CLASS_COUNT; cls++)
        holding += out->classes[cls].live_bytes; /* a large block's run is its own */
    out->fragmentation = holding && out->live_blocks
        ? 1.0 - (double)out->live_requested_bytes / (double)holding
        : 0.0;
    if (out->fragmentation < 0.0) out->fragmentation = 0.0;
    if (out->fragmentation > 1.0) out->fragmentation = 1.0;
}

static void tpi_stats_begin(tp_stats *out, const char *name, uint32_t id)
{
    memset(out, 0, sizeof *out);
    out->version = TP_STATS_VERSION;
    out->size = sizeof *out;
    snprintf(out->pool, sizeof out->pool, "%s", name);
    out->pool_id = id;
}

static void tpi_stats_of_pool(tp_pool *pool, tp_stats *out)
{
    uint64_t requested[2 * TPI_CLASS_COUNT] = {0};
    pthread_mutex_lock(&pool->lock);
    tpi_stats_begin(out, pool->name, pool->id);
    tpi_stats_gather(pool, out, requested);
    pthread_mutex_unlock(&pool->lock);
    tpi_stats_finish(pool, out, requested);
}

typedef struct tpi_process_sum {
    tp_stats *out;
    uint64_t *requested;
} tpi_process_sum;

static void tpi_stats_add_pool(tp_pool *pool, void *arg)
{
    tpi_process_sum *sum = arg;
    pthread_mutex_lock(&pool->lock);
    tpi_stats_gather(pool, sum->out, sum->requested);
    pthread_mutex_unlock(&pool->lock);
}

int tp_stats_get(tp_pool *pool, tp_stats *out)
{
    tpi_services_init();
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    if (pool) {
        tpi_stats_of_pool(pool, out);
        return 0;
    }
    uint64_t requested[2 * TPI_CLASS_COUNT] = {0};
    tpi_stats_begin(out, "process", UINT32_MAX);
    tpi_process_sum sum = {out, requested};
    tpi_pools_each(tpi_stats_add_pool, &sum);
    tpi_stats_finish(NULL, out, requested);
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct tpi_emitter {
    void (*write)(void *arg, const char *text);
    void *arg;
} tpi_emitter;

__attribute__((format(printf, 2, 3))) static void tpi_emit(tpi_emitter *e, const char *fmt, ...)
{
    char line[TPI_PROM_LABELS_CAP + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    e->write(e->arg, line);
}

#define TPI_IS_COUNTER_counter 1
#define TPI_IS_COUNTER_gauge 0
#define TPI_IS_COUNTER(kind) TPI_IS_COUNTER_##kind

/* Pool names as each format needs them (escape.c): 6 bytes an input byte. */
#define TPI_NAME_CAP (6 * sizeof(((tp_stats *)0)->pool) + 1)

static bool tpi_class_used(const tp_class_stats *c)
{
    return c->allocs || c->pages;
}

/* ---- text ---- */

static void tpi_write_text(tpi_emitter *e, const tp_stats *s)
{
    char name[TPI_NAME_CAP];
    tpi_escape(name, sizeof name, s->pool, sizeof s->pool, TPI_ESCAPE_TEXT);
    if (s->pool_id == UINT32_MAX) tpi_emit(e, "tierpool statistics: pool \"%s\"\n", name);
    else tpi_emit(e, "tierpool statistics: pool \"%s\" (id %u)\n", name, s->pool_id);
#define TPI_TEXT_FIELD(name, kind, unit, help) \
    tpi_emit(e, "  %-22s %16llu %-7s %s\n", #name, (unsigned long long)s->name, #unit, help);
    TP_STATS_POOL_FIELDS(TPI_TEXT_FIELD)
#undef TPI_TEXT_FIELD
    tpi_emit(e, "  %-22s %15.2f%% %-7s %s\n", "fragmentation", 100.0 * s->fragmentation, "",
             "waste in the memory holding live blocks (0 if none)");
    tpi_emit(e, "\n  %10s %12s %12s %10s %12s %7s %12s %9s %9s %9s %4s\n", "class", "allocs", "frees", "live",
             "live bytes", "pages", "page bytes", "refills", "flushes", "remote", "keep");
    for (unsigned i = 0; i < TP_STATS_CLASSES; i++) {
        const tp_class_stats *c = &s->classes[i];
        if (!tpi_class_used(c)) continue;
        tpi_emit(e, "  %10llu %12llu %12llu %10llu %12llu %7llu %12llu %9llu %9llu %9llu %4llu\n",
                 (unsigned long long)c->block_size, (unsigned long long)c->allocs, (unsigned long long)c->frees,
                 (unsigned long long)c->live_blocks, (unsigned long long)c->live_bytes,
                 (unsigned long long)c->pages, (unsigned long long)c->page_bytes, (unsigned long long)c->refills,
                 (unsigned long long)c->flushes, (unsigned long long)c->remote_frees,
                 (unsigned long long)c->cache_keep);
    }
}

/* ---- JSON ---- */

static void tpi_write_json_pool(tpi_emitter *e, const tp_stats *s, const char *key)
{
    char name[TPI_NAME_CAP];
    tpi_escape(name, sizeof name, s->pool, sizeof s->pool, TPI_ESCAPE_JSON);
    tpi_emit(e, "%s{\"pool\": \"%s\"", key, name);
    if (s->pool_id != UINT32_MAX) tpi_emit(e, ", \"pool_id\": %u", s->pool_id);
#define TPI_JSON_FIELD(name, kind, unit, help) tpi_emit(e, ", \"" #name "\": %llu", (unsigned long long)s->name);
    TP_STATS_POOL_FIELDS(TPI_JSON_FIELD)
#undef TPI_JSON_FIELD
    tpi_emit(e, ", \"fragmentation\": %.6f, \"classes\": [", s->fragmentation);
    const char *sep = "";
    for (unsigned i = 0; i < TP_STATS_CLASSES; i++) {
        const tp_class_stats *c = &s->classes[i];
        if (!tpi_class_used(c)) continue;
        tpi_emit(e, "%s{", sep);
        const char *field_sep = "";
#define TPI_JSON_CLASS_FIELD(name, kind, unit, help)                                        \
    tpi_emit(e, "%s\"" #name "\": %llu", field_sep, (unsigned long long)c->name); \
    field_sep = ", ";
        TP_STATS_CLASS_FIELDS(TPI_JSON_CLASS_FIELD)
#undef TPI_JSON_CLASS_FIELD
        tpi_emit(e, "}");
        sep = ", ";
    }
    tpi_emit(e, "]}");
}

/* ---- Prometheus ---- */

/* Prometheus wants base units: milliseconds become seconds (the name's _ms
 * becomes _seconds); bytes fields already end in _bytes. */
#define TPI_PROM_NAME_bytes(field) #field
#define TPI_PROM_NAME_(field) #field
#define TPI_PROM_NAME_ms(field) #field "_as_seconds"
#define TPI_PROM_NAME(field, unit) TPI_PROM_NAME_##unit(field)
#define TPI_PROM_SCALE_bytes 1.0
#define TPI_PROM_SCALE_ 1.0
#define TPI_PROM_SCALE_ms 0.001
#define TPI_PROM_SCALE(unit) TPI_PROM_SCALE_##unit

/* A metric name from a field name: "purge_delay_ms_as_seconds" reads as
 * "purge_delay_seconds". */
static void tpi_prom_name(char *dst, size_t cap, const char *prefix, const char *field, const char *total)
{
    char base[64];
    snprintf(base, sizeof base, "%s", field);
    char *ms = strstr(base, "_ms_as_seconds");
    if (ms) strcpy(ms, "_seconds");
    snprintf(dst, cap, "tierpool_%s%s%s", prefix, base, total);
}

static void tpi_prom_value(tpi_emitter *e, const char *metric, const char *labels, uint64_t value, double scale)
{
    if (scale == 1.0) tpi_emit(e, "%s{%s} %llu\n", metric, labels, (unsigned long long)value);
    else tpi_emit(e, "%s{%s} %.3f\n", metric, labels, (double)value * scale);
}

/* The labels of pool i: its prefix, then pool and pool_id. */
static void tpi_prom_labels(char *dst, size_t cap, const tp_stats *pools, const char *const *prefix, size_t i)
{
    char name[TPI_NAME_CAP];
    tpi_escape(name, sizeof name, pools[i].pool, sizeof pools[i].pool, TPI_ESCAPE_PROMETHEUS);
    snprintf(dst, cap, "%spool=\"%s\",pool_id=\"%u\"", prefix ? prefix[i] : "", name, pools[i].pool_id);
}

void tpi_stats_prometheus(const tp_stats *pools, size_t count, const char *const *prefix, bool classes,
                          void (*write)(void *arg, const char *text), void *arg)
{
    tpi_emitter emitter = {write, arg}, *e = &emitter;
    char metric[96], labels[TPI_PROM_LABELS_CAP], class_labels[TPI_PROM_LABELS_CAP + 32];
#define TPI_PROM_FIELD(field, kind, unit, help)                                                      \
    tpi_prom_name(metric, sizeof metric, "", TPI_PROM_NAME(field, unit), TPI_IS_COUNTER(kind) ? "_total" : ""); \
    tpi_emit(e, "# HELP %s %s.\n# TYPE %s %s\n", metric, help, metric, #kind);                      \
    for (size_t i = 0; i < count; i++) {                                                              \
        tpi_prom_labels(labels, sizeof labels, pools, prefix, i);                                     \
        tpi_prom_value(e, metric, labels, pools[i].field, TPI_PROM_SCALE(unit));                      \
    }
    TP_STATS_POOL_FIELDS(TPI_PROM_FIELD)
#undef TPI_PROM_FIELD
    tpi_emit(e, "# HELP tierpool_fragmentation_ratio Waste over the memory holding live blocks.\n");
    tpi_emit(e, "# TYPE tierpool_fragmentation_ratio gauge\n");
    for (size_t i = 0; i < count; i++) {
        tpi_prom_labels(labels, sizeof labels, pools, prefix, i);
        tpi_emit(e, "tierpool_fragmentation_ratio{%s} %.6f\n", labels, pools[i].fragmentation);
    }
    if (!classes) return;
#define TPI_PROM_CLASS_FIELD(field, kind, unit, help)                                                 \
    if (strcmp(#field, "block_size") != 0) {                                                          \
        tpi_prom_name(metric, sizeof metric, "class_", TPI_PROM_NAME(field, unit),                    \
                      TPI_IS_COUNTER(kind) ? "_total" : "");                                          \
        tpi_emit(e, "# HELP %s Per size class: %s.\n# TYPE %s %s\n", metric, help, metric, #kind);    \
        for (size_t i = 0; i < count; i++) {                                                          \
            tpi_prom_labels(labels, sizeof labels, pools, prefix, i);                                 \
            for (unsigned k = 0; k < TP_STATS_CLASSES; k++) {                                         \
                const tp_class_stats *c = &pools[i].classes[k];                                       \
                if (!tpi_class_used(c)) continue;                                                     \
                snprintf(class_labels, sizeof class_labels, "%s,size_class=\"%llu\"", labels,         \
                         (unsigned long long)c->block_size);                                          \
                tpi_prom_value(e, metric, class_labels, c->field, TPI_PROM_SCALE(unit));              \
            }                                                                                         \
        }                                                                                             \
    }
    TP_STATS_CLASS_FIELDS(TPI_PROM_CLASS_FIELD)
#undef TPI_PROM_CLASS_FIELD
}

/* ---- entry points ---- */

/* Statistics of every live pool, gathered into `out` (up to `cap`). */
typedef struct tpi_pool_list {
    tp_pool *pools[64];
    size_t count;
} tpi_pool_list;

static void tpi_list_pool(tp_pool *pool, void *arg)
{
    tpi_pool_list *list = arg;
    if (list->count < sizeof list->pools / sizeof list->pools[0]) list->pools[list->count++] = pool;
}

void tpi_stats_format(const tp_stats *pools, size_t count, const tp_stats *process, int format,
                      void (*write)(void *arg, const char *text), void *arg)
{
    tpi_emitter e = {write, arg};
    if (format == TP_STATS_PROMETHEUS) {
        tpi_stats_prometheus(pools, count, NULL, true, write, arg);
        return;
    }
    if (format == TP_STATS_JSON) tpi_emit(&e, "{\"version\": %d, \"pools\": [", TP_STATS_VERSION);
    for (size_t i = 0; i < count; i++) {
        if (format == TP_STATS_JSON) {
            tpi_write_json_pool(&e, &pools[i], i ? ", " : "");
        } else {
            tpi_write_text(&e, &pools[i]);
            tpi_emit(&e, "\n");
        }
    }
    if (process) {
        if (format == TP_STATS_JSON) tpi_write_json_pool(&e, process, "], \"process\": ");
        else tpi_write_text(&e, process);
    } else if (format == TP_STATS_JSON) {
        tpi_emit(&e, "]");
    }
    if (format == TP_STATS_JSON) tpi_emit(&e, "}\n");
}

int tp_stats_write(tp_pool *pool, int format, void (*write)(void *arg, const char *text), void *arg)
{
    if (!write || format < TP_STATS_TEXT || format > TP_STATS_PROMETHEUS) {
        errno = EINVAL;
        return -1;
    }
    tpi_pool_list list = {.count = 0};
    if (pool) {
        list.pools[0] = pool;
        list.count = 1;
    } else {
        tpi_pools_each(tpi_list_pool, &list);
    }
    /* Every pool's figures at once (Prometheus groups by metric), plus the
     * process total: about 5 KiB each, mapped for the call, since nothing
     * here may allocate. */
    size_t structs = list.count + (pool ? 0 : 1);
    size_t bytes = (structs * sizeof(tp_stats) + TPI_OS_PAGE - 1) & ~(size_t)(TPI_OS_PAGE - 1);
    tp_stats *stats = tpi_os_map_aligned(bytes, TPI_OS_PAGE, 0);
    if (!stats) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < list.count; i++) tpi_stats_of_pool(list.pools[i], &stats[i]);
    if (!pool) tp_stats_get(NULL, &stats[list.count]);
    tpi_stats_format(stats, list.count, pool ? NULL : &stats[list.count], format, write, arg);
    tpi_os_unmap(stats, bytes);
    return 0;
}

static void tpi_write_file(void *arg, const char *text)
{
    fputs(text, (FILE *)arg);
}

int tp_stats_print(tp_pool *pool, int format, FILE *out)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    return tp_stats_write(pool, format, tpi_write_file, out);
}

/* ---- at exit ----------------------------------------------------------------------------- */

/* A copy of stderr taken at start: many programs close stderr in their own
 * exit handlers, which run before this one (registered at the first malloc). */
static int tpi_stats_fd = -1;

static void tpi_write_stderr(void *arg, const char *text)
{
    (void)arg;
    size_t n = strlen(text);
    while (n) {
        ssize_t w = write(tpi_stats_fd, text, n);
        if (w <= 0) return;
        text += w;
        n -= (size_t)w;
    }
}

static void tpi_stats_at_exit(void)
{
    tp_stats_write(NULL, TPI_OPTION(show_stats) == 2 ? TP_STATS_JSON : TP_STATS_TEXT, tpi_write_stderr, NULL);
}

void tpi_stats_init(void)
{
    if (!TPI_OPTION(show_stats)) return;
    tpi_stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (tpi_stats_fd < 0) tpi_stats_fd = STDERR_FILENO;
    atexit(tpi_stats_at_exit);
}
