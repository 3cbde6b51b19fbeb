/*
 * stats_format.c: text, JSON and Prometheus from the tp_stats structs of a
 * snapshot. The library's writers (src/stats.c) gather the calling
 * process's own figures, so the tool formats the published structs itself,
 * from the same field lists (TP_STATS_POOL_FIELDS, TP_STATS_CLASS_FIELDS),
 * to the same schema: what `tierpool stats PID` prints is what
 * tp_stats_print(NULL, format, ...) prints in process PID at the snapshot
 * (tests/cli/ compares the two). One difference: the library writes
 * Prometheus eight pools at a time, each group with its own HELP and TYPE
 * lines; the tool writes every pool under one.
 */
#define _GNU_SOURCE
#include "stats_format.h"

#include <string.h>

#define IS_COUNTER_counter 1
#define IS_COUNTER_gauge 0
#define IS_COUNTER(kind) IS_COUNTER_##kind

/* A pool name as a JSON string or label value: \, " and newline escaped,
 * other control characters dropped (as the library does). */
static void escape(char *dst, size_t cap, const char *src, size_t src_cap)
{
    size_t n = 0;
    for (size_t i = 0; i < src_cap && src[i] && n + 3 < cap; i++) {
        char c = src[i];
        if (c == '\\' || c == '"') {
            dst[n++] = '\\';
            dst[n++] = c;
        } else if (c == '\n') {
            dst[n++] = '\\';
            dst[n++] = 'n';
        } else if ((unsigned char)c >= 0x20) {
            dst[n++] = c;
        }
    }
    dst[n] = '\0';
}

#define POOL_NAME(escaped, stats) escape(escaped, sizeof escaped, (stats)->pool, sizeof (stats)->pool)

static bool class_used(const tp_class_stats *c)
{
    return c->allocs || c->pages;
}

/* ---- text ---- */

static void write_text(cli_writer *w, const tp_stats *s)
{
    cli_printf(w, "tierpool statistics: pool \"%.*s\"\n", (int)strnlen(s->pool, sizeof s->pool), s->pool);
#define TEXT_FIELD(field, kind, unit, help) \
    cli_printf(w, "  %-22s %16llu %-7s %s\n", #field, (unsigned long long)s->field, #unit, help);
    TP_STATS_POOL_FIELDS(TEXT_FIELD)
#undef TEXT_FIELD
    cli_printf(w, "  %-22s %15.2f%% %-7s %s\n", "fragmentation", 100.0 * s->fragmentation, "",
               "internal plus external waste over committed bytes");
    cli_printf(w, "\n  %10s %12s %12s %10s %12s %7s %12s %9s %9s %9s %4s\n", "class", "allocs", "frees", "live",
               "live bytes", "pages", "page bytes", "refills", "flushes", "remote", "keep");
    for (unsigned i = 0; i < TP_STATS_CLASSES; i++) {
        const tp_class_stats *c = &s->classes[i];
        if (!class_used(c)) continue;
        cli_printf(w, "  %10llu %12llu %12llu %10llu %12llu %7llu %12llu %9llu %9llu %9llu %4llu\n",
                   (unsigned long long)c->block_size, (unsigned long long)c->allocs, (unsigned long long)c->frees,
                   (unsigned long long)c->live_blocks, (unsigned long long)c->live_bytes,
                   (unsigned long long)c->pages, (unsigned long long)c->page_bytes,
                   (unsigned long long)c->refills, (unsigned long long)c->flushes,
                   (unsigned long long)c->remote_frees, (unsigned long long)c->cache_keep);
    }
}

/* ---- JSON ---- */

static void write_json_pool(cli_writer *w, const tp_stats *s, const char *key)
{
    char name[80];
    POOL_NAME(name, s);
    cli_printf(w, "%s{\"pool\": \"%s\"", key, name);
#define JSON_FIELD(field, kind, unit, help) cli_printf(w, ", \"" #field "\": %llu", (unsigned long long)s->field);
    TP_STATS_POOL_FIELDS(JSON_FIELD)
#undef JSON_FIELD
    cli_printf(w, ", \"fragmentation\": %.6f, \"classes\": [", s->fragmentation);
    const char *sep = "";
    for (unsigned i = 0; i < TP_STATS_CLASSES; i++) {
        const tp_class_stats *c = &s->classes[i];
        if (!class_used(c)) continue;
        cli_printf(w, "%s{", sep);
        const char *field_sep = "";
#define JSON_CLASS_FIELD(field, kind, unit, help)                                   \
    cli_printf(w, "%s\"" #field "\": %llu", field_sep, (unsigned long long)c->field); \
    field_sep = ", ";
        TP_STATS_CLASS_FIELDS(JSON_CLASS_FIELD)
#undef JSON_CLASS_FIELD
        cli_printf(w, "}");
        sep = ", ";
    }
    cli_printf(w, "]}");
}

/* ---- Prometheus ---- */

/* Base units: a field in ms is exported in seconds, its name's _ms made
 * _seconds; bytes fields already end in _bytes; counters get _total. */
static void metric_name(char *dst, size_t cap, const char *prefix, const char *field, const char *unit,
                        bool counter)
{
    size_t len = strlen(field);
    bool ms = strcmp(unit, "ms") == 0;
    if (ms && len > 3 && strcmp(field + len - 3, "_ms") == 0) len -= 3;
    snprintf(dst, cap, "tierpool_%s%.*s%s%s", prefix, (int)len, field, ms ? "_seconds" : "",
             counter ? "_total" : "");
}

static void write_sample(cli_writer *w, const char *metric, const char *labels, uint64_t value, const char *unit)
{
    if (strcmp(unit, "ms") == 0) cli_printf(w, "%s{%s} %.3f\n", metric, labels, (double)value * 0.001);
    else cli_printf(w, "%s{%s} %llu\n", metric, labels, (unsigned long long)value);
}

static void write_family(cli_writer *w, const char *metric, const char *help_prefix, const char *help,
                         const char *kind)
{
    cli_printf(w, "# HELP %s %s%s.\n# TYPE %s %s\n", metric, help_prefix, help, metric, kind);
}

static void write_prometheus(cli_writer *w, const tp_stats *pools, size_t count)
{
    char name[80], metric[96], labels[160];
#define PROM_FIELD(field, kind, unit, help)                                           \
    metric_name(metric, sizeof metric, "", #field, #unit, IS_COUNTER(kind));          \
    write_family(w, metric, "", help, #kind);                                         \
    for (size_t i = 0; i < count; i++) {                                              \
        POOL_NAME(name, &pools[i]);                                                   \
        snprintf(labels, sizeof labels, "pool=\"%s\"", name);                         \
        write_sample(w, metric, labels, pools[i].field, #unit);                       \
    }
    TP_STATS_POOL_FIELDS(PROM_FIELD)
#undef PROM_FIELD
    write_family(w, "tierpool_fragmentation_ratio", "", "Internal plus external waste over committed bytes", "gauge");
    for (size_t i = 0; i < count; i++) {
        POOL_NAME(name, &pools[i]);
        cli_printf(w, "tierpool_fragmentation_ratio{pool=\"%s\"} %.6f\n", name, pools[i].fragmentation);
    }
#define PROM_CLASS_FIELD(field, kind, unit, help)                                                       \
    if (strcmp(#field, "block_size") != 0) {                                                            \
        metric_name(metric, sizeof metric, "class_", #field, #unit, IS_COUNTER(kind));                  \
        write_family(w, metric, "Per size class: ", help, #kind);                                       \
        for (size_t i = 0; i < count; i++) {                                                            \
            POOL_NAME(name, &pools[i]);                                                                 \
            for (unsigned k = 0; k < TP_STATS_CLASSES; k++) {                                           \
                const tp_class_stats *c = &pools[i].classes[k];                                         \
                if (!class_used(c)) continue;                                                           \
                snprintf(labels, sizeof labels, "pool=\"%s\",size_class=\"%llu\"", name,                \
                         (unsigned long long)c->block_size);                                            \
                write_sample(w, metric, labels, c->field, #unit);                                       \
            }                                                                                           \
        }                                                                                               \
    }
    TP_STATS_CLASS_FIELDS(PROM_CLASS_FIELD)
#undef PROM_CLASS_FIELD
}

/* ---- a snapshot ---- */

void stats_format(cli_writer *w, const tpi_shm *snap, int format)
{
    uint32_t count = snap->pool_count < TPI_SHM_POOLS ? snap->pool_count : TPI_SHM_POOLS;
    if (format == TP_STATS_PROMETHEUS) {
        write_prometheus(w, snap->pools, count);
        return;
    }
    if (format == TP_STATS_JSON) cli_printf(w, "{\"version\": %d, \"pools\": [", TP_STATS_VERSION);
    for (uint32_t i = 0; i < count; i++) {
        if (format == TP_STATS_JSON) {
            write_json_pool(w, &snap->pools[i], i ? ", " : "");
        } else {
            write_text(w, &snap->pools[i]);
            cli_printf(w, "\n");
        }
    }
    if (format == TP_STATS_JSON) {
        write_json_pool(w, &snap->process, "], \"process\": ");
        cli_printf(w, "}\n");
    } else {
        write_text(w, &snap->process);
    }
}
