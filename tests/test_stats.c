/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c: every statistics field against a known workload: blocks of
 * known sizes and counts in two pools and several threads, some freed. Exact
 * where the figure is exact, within stated bounds where it is not (resident
 * bytes, the requested-bytes estimate). test_stats_exact.c checks the
 * requested and peak bytes of TIERPOOL_STATS_EXACT=1. Also the text, JSON and Prometheus
 * writers' shapes (the tool's tests parse them with real parsers).
 */
#include "../src/internal.h"
#include "test.h"
#include "util.h"

#include <pthread.h>

#define THREADS 4
#define PER_THREAD 1000

static tp_pool *pool_a, *pool_b;
static void *blocks[THREADS][PER_THREAD];

/* Each thread: PER_THREAD blocks of 100 B from pool A (class 112) and as
 * many of 3000 B from pool B (class 3072); frees the first half of each. */
static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    void **mine = blocks[t];
    void *b_blocks[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++) {
        mine[i] = tp_pool_malloc(pool_a, 100);
        b_blocks[i] = tp_pool_malloc(pool_b, 3000);
        memset(mine[i], 1, 100);
        memset(b_blocks[i], 2, 3000);
    }
    for (int i = 0; i < PER_THREAD / 2; i++) {
        tp_free(mine[i]);
        tp_free(b_blocks[i]);
    }
    /* The rest of B's blocks live on past the thread (its pages abandoned). */
    for (int i = PER_THREAD / 2; i < PER_THREAD; i++) blocks[t][i - PER_THREAD / 2] = b_blocks[i];
    for (int i = PER_THREAD / 2; i < PER_THREAD; i++) blocks[t][i] = mine[i];
    return NULL;
}

static const tp_class_stats *class_of_size(const tp_stats *s, size_t size)
{
    return &s->classes[tpi_class_of(size)];
}

static void check_pool(const tp_stats *s, const char *name, size_t size, uint64_t allocs, uint64_t live)
{
    const tp_class_stats *c = class_of_size(s, size);
    size_t block = tpi_classes[tpi_class_of(size)].block_size;
    CHECK_EQ(s->version, TP_STATS_VERSION);
    CHECK_EQ(s->size, sizeof *s);
    CHECK(strcmp(s->pool, name) == 0);
    CHECK_EQ(c->block_size, block);
    CHECK_EQ(c->allocs, allocs);
    CHECK_EQ(c->live_blocks, live);
    CHECK_EQ(c->frees, allocs - live);
    CHECK_EQ(c->live_bytes, live * block);
    CHECK_EQ(s->allocs, allocs);
    CHECK_EQ(s->frees, allocs - live);
    CHECK_EQ(s->live_blocks, live);
    CHECK_EQ(s->live_bytes, live * block);
    /* Requested bytes are estimated from slow-path samples of one size. */
    CHECK_EQ(s->live_requested_bytes, live * size);
    CHECK_EQ(s->internal_waste_bytes, live * (block - size));
    /* Pages: at least enough for the live blocks, at most one per thread
     * more than enough for all the blocks ever allocated. */
    uint64_t per_page = tpi_classes[tpi_class_of(size)].blocks;
    CHECK_GE(c->pages, (live + per_page - 1) / per_page);
    CHECK_LE(c->pages, allocs / per_page + THREADS + 1);
    CHECK_EQ(s->pages, c->pages);
    CHECK_EQ(c->page_bytes, c->pages * tpi_classes[tpi_class_of(size)].slices * TPI_SLICE_SIZE);
    CHECK_EQ(s->page_bytes, c->page_bytes);
    CHECK_GE(s->peak_page_bytes, s->page_bytes);
    CHECK_GE(s->committed_bytes, s->page_bytes);
    CHECK_LE(s->committed_bytes, s->mapped_bytes);
    CHECK_EQ(s->mapped_bytes % TPI_CHUNK_SIZE, 0);
    /* Resident: the live blocks' memory at least, the mappings at most. */
    CHECK_GE(s->resident_bytes, live * size / 2);
    CHECK_LE(s->resident_bytes, s->mapped_bytes);
    CHECK_GE(c->refills, c->pages);
    CHECK_EQ(s->refills, c->refills);
    CHECK_EQ(s->remote_frees, 0);
    CHECK_EQ(s->huge_blocks, 0);
    CHECK_EQ(s->purge_delay_ms, (uint64_t)tp_option_get("purge_delay"));
    CHECK_EQ(s->external_waste_bytes, s->committed_bytes - s->live_bytes);
    /* Fragmentation: the waste in the memory holding live blocks. */
    CHECK_LE(s->occupied_page_bytes, s->page_bytes);
    CHECK_GE(s->occupied_page_bytes, (live + per_page - 1) / per_page * tpi_classes[tpi_class_of(size)].slices * TPI_SLICE_SIZE);
    double frag = live ? 1.0 - (double)s->live_requested_bytes / (double)s->occupied_page_bytes : 0.0;
    CHECK(s->fragmentation > frag - 1e-9 && s->fragmentation < frag + 1e-9);
}

static void test_known_workload(void)
{
    pool_a = tp_pool_create("stats-a", NULL);
    pool_b = tp_pool_create("stats-b", NULL);
    pthread_t threads[THREADS];
    for (long t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);

    tp_stats s;
    CHECK_EQ(tp_stats_get(pool_a, &s), 0);
    check_pool(&s, "stats-a", 100, THREADS * PER_THREAD, THREADS * PER_THREAD / 2);
    /* Without STATS_EXACT the peak is the most live bytes a read has seen:
     * this first read's. */
    CHECK_EQ(s.stats_exact, 0);
    CHECK_EQ(s.peak_live_bytes, s.live_bytes);
    CHECK_LE(s.peak_live_bytes, s.peak_page_bytes);
    uint64_t seen_a = s.live_bytes;
    CHECK_EQ(tp_stats_get(pool_b, &s), 0);
    check_pool(&s, "stats-b", 3000, THREADS * PER_THREAD, THREADS * PER_THREAD / 2);

    /* A free from another thread than the allocating one is a remote free
     * once the page is collected; the live count drops at once here because
     * the allocating threads have exited (their pages are the pool's). */
    for (int t = 0; t < THREADS; t++)
        for (int i = PER_THREAD / 2; i < PER_THREAD; i++) tp_free(blocks[t][i]);
    CHECK_EQ(tp_stats_get(pool_a, &s), 0);
    CHECK_EQ(s.live_blocks, 0);
    CHECK_EQ(s.frees, THREADS * PER_THREAD);
    CHECK_EQ(s.peak_live_bytes, seen_a);
    CHECK_EQ(s.classes[tpi_class_of(100)].peak_live_bytes, seen_a);

    /* A huge block counts in its pool's totals, not in a class. */
    void *huge = tp_pool_malloc(pool_b, 3 * MiB);
    CHECK_EQ(tp_stats_get(pool_b, &s), 0);
    CHECK_EQ(s.huge_blocks, 1);
    CHECK_EQ(s.huge_bytes, 4 * MiB);
    CHECK_EQ(s.allocs, THREADS * PER_THREAD + 1);
    CHECK_EQ(s.live_blocks, THREADS * PER_THREAD / 2 + 1);
    tp_free(huge);
    CHECK_EQ(tp_stats_get(pool_b, &s), 0);
    CHECK_EQ(s.huge_blocks, 0);
    CHECK_EQ(s.huge_cached_bytes, 4 * MiB); /* kept for reuse */

    /* The process total adds the pools up. */
    tp_stats total, a, b, d;
    CHECK_EQ(tp_stats_get(NULL, &total), 0);
    tp_stats_get(pool_a, &a);
    tp_stats_get(pool_b, &b);
    tp_stats_get(tp_pool_default(), &d);
    CHECK(strcmp(total.pool, "process") == 0);
    CHECK_EQ(total.allocs, a.allocs + b.allocs + d.allocs);
    CHECK_EQ(total.mapped_bytes, a.mapped_bytes + b.mapped_bytes + d.mapped_bytes);

    /* Trim gives the pool's memory back and the figures follow. */
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD / 2; i++) tp_free(blocks[t][i]);
    tp_stats before;
    CHECK_EQ(tp_stats_get(pool_b, &before), 0);
    tp_pool_trim(pool_b);
    CHECK_EQ(tp_stats_get(pool_b, &s), 0);
    CHECK_EQ(s.live_blocks, 0);
    CHECK_EQ(s.pages, 0);
    CHECK_EQ(s.huge_cached_bytes, 0);
    CHECK_LT(before.purged_bytes, s.purged_bytes);
    CHECK_LT(s.mapped_bytes, before.mapped_bytes);
    CHECK_LE(s.committed_bytes, 64 * KiB);
    CHECK_LE(s.resident_bytes, 64 * KiB);
    tp_pool_destroy(pool_a);
    tp_pool_destroy(pool_b);
}

static void test_cache_keep_visible(void)
{
    /* The adaptive cache capacity shows in the class's cache_keep. */
    unsigned cls = tpi_class_of(64);
    unsigned n = tpi_classes[cls].blocks + 1;
    void **p = malloc(n * sizeof *p);
    for (int round = 0; round < 20; round++) {
        for (unsigned i = 0; i < n; i++) p[i] = tp_malloc(64);
        for (unsigned i = 0; i < n; i++) tp_free(p[i]);
    }
    free(p);
    tp_stats s;
    tp_stats_get(tp_pool_default(), &s);
    CHECK_GE(s.classes[cls].cache_keep, 1);
}

typedef struct sink {
    char text[256 * 1024];
    size_t len;
} sink;

static void sink_write(void *arg, const char *text)
{
    sink *s = arg;
    size_t n = strlen(text);
    if (s->len + n < sizeof s->text) {
        memcpy(s->text + s->len, text, n + 1);
        s->len += n;
    }
}

static void test_writers(void)
{
    static sink out;
    tp_pool *pool = tp_pool_create("say \"hi\"\n", NULL);
    void *p = tp_pool_malloc(pool, 200);
    out.len = 0;
    CHECK_EQ(tp_stats_write(pool, TP_STATS_TEXT, sink_write, &out), 0);
    CHECK(strstr(out.text, "live_blocks") != NULL);
    out.len = 0;
    CHECK_EQ(tp_stats_write(pool, TP_STATS_JSON, sink_write, &out), 0);
    tp_stats got;
    CHECK_EQ(tp_stats_get(pool, &got), 0);
    CHECK(got.pool_id != 0 && got.pool_id != UINT32_MAX);
    char head[96], labels[96];
    snprintf(head, sizeof head, "{\"version\": %d, \"pools\": [{\"pool\": \"say \\\"hi\\\"\\n\", \"pool_id\": %u,",
             TP_STATS_VERSION, got.pool_id);
    CHECK(strncmp(out.text, head, strlen(head)) == 0);
    CHECK(strstr(out.text, "\"block_size\": 224") != NULL);
    out.len = 0;
    CHECK_EQ(tp_stats_write(NULL, TP_STATS_JSON, sink_write, &out), 0);
    CHECK(strstr(out.text, "\"process\": {\"pool\": \"process\"") != NULL);
    out.len = 0;
    CHECK_EQ(tp_stats_write(pool, TP_STATS_PROMETHEUS, sink_write, &out), 0);
    CHECK(strstr(out.text, "# TYPE tierpool_allocs_total counter\n") != NULL);
    snprintf(labels, sizeof labels, "pool=\"say \\\"hi\\\"\\n\",pool_id=\"%u\"", got.pool_id);
    char line[256];
    snprintf(line, sizeof line, "tierpool_live_blocks{%s} 1\n", labels);
    CHECK(strstr(out.text, line) != NULL);
    snprintf(line, sizeof line, "tierpool_class_allocs_total{%s,size_class=\"224\"} 1\n", labels);
    CHECK(strstr(out.text, line) != NULL);
    CHECK(strstr(out.text, "tierpool_purge_delay_seconds{") != NULL);
    CHECK_EQ(tp_stats_write(pool, 7, sink_write, &out), -1);
    /* A name cut to 31 bytes keeps whole UTF-8 characters; control
     * characters are escaped in every format, not dropped. */
    tp_pool *cut = tp_pool_create("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9", NULL);
    CHECK_EQ(strlen(tp_pool_name(cut)), 30);
    tp_pool_destroy(cut);
    tp_pool *ctl = tp_pool_create("a\x1b[2Jb\xff", NULL);
    CHECK(tp_pool_malloc(ctl, 16) != NULL);
    const char *want[] = {"pool \"a\\x1b[2Jb\\xff\"", "\"pool\": \"a\\u001b[2Jb\\\\xff\"", "{pool=\"a\\\\x1b[2Jb\\\\xff\""};
    for (int format = TP_STATS_TEXT; format <= TP_STATS_PROMETHEUS; format++) {
        out.len = 0;
        CHECK_EQ(tp_stats_write(ctl, format, sink_write, &out), 0);
        CHECK(strstr(out.text, want[format]) != NULL);
        CHECK(strchr(out.text, '\x1b') == NULL);
    }
    tp_pool_destroy(ctl);
    CHECK_EQ(tp_stats_get(pool, NULL), -1);
    tp_free(p);
    tp_pool_destroy(pool);
}

int main(void)
{
    test_known_workload();
    test_cache_keep_visible();
    test_writers();
    return test_report();
}
