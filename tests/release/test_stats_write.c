/* SPDX-License-Identifier: MIT */
/*
 * test_stats_write.c: tp_stats_write(NULL, ...) as tierpool.h documents it:
 * each live pool up to 64 (past 64 the default pool is the first left out),
 * and the process total over every pool.
 */
#include "tierpool.h"
#include "../test.h"

#include <stdlib.h>

typedef struct text {
    char *data;
    size_t len;
} text;

static void append(void *arg, const char *piece)
{
    text *t = arg;
    size_t n = strlen(piece);
    t->data = realloc(t->data, t->len + n + 1);
    memcpy(t->data + t->len, piece, n + 1);
    t->len += n;
}

static size_t count(const char *haystack, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The JSON of every pool, with the pools created so far. */
static text json_of_all(void)
{
    text t = {NULL, 0};
    CHECK_EQ(tp_stats_write(NULL, TP_STATS_JSON, append, &t), 0);
    return t;
}

static void test_cap(void)
{
    enum { POOLS = 70, BLOCKS = 3 };
    tp_pool *pools[POOLS];
    void *blocks[POOLS][BLOCKS];
    for (int i = 0; i < POOLS; i++) {
        char name[32];
        snprintf(name, sizeof name, "cap-%02d", i);
        pools[i] = tp_pool_create(name, NULL);
        CHECK(pools[i] != NULL);
        CHECK_EQ(tp_pool_malloc_bulk(pools[i], 64, BLOCKS, blocks[i]), BLOCKS);
    }

    text t = json_of_all();
    CHECK(t.data != NULL);
    /* 64 pools, plus the process total, each with its "pool" key. */
    CHECK_EQ(count(t.data, "{\"pool\": "), 64 + 1);
    CHECK(strstr(t.data, "\"default\"") == NULL); /* the first left out */
    /* The process total still counts every pool's blocks. */
    tp_stats all;
    CHECK_EQ(tp_stats_get(NULL, &all), 0);
    CHECK_GE(all.live_blocks, POOLS * BLOCKS);
    free(t.data);

    for (int i = 6; i < POOLS; i++) tp_pool_destroy(pools[i]);
    t = json_of_all(); /* now 6 pools and the default: all listed */
    CHECK_EQ(count(t.data, "{\"pool\": "), 6 + 1 + 1);
    CHECK(strstr(t.data, "\"default\"") != NULL);
    CHECK(strstr(t.data, "\"cap-05\"") != NULL);
    free(t.data);
    for (int i = 0; i < 6; i++) tp_pool_destroy(pools[i]);
}

TEST_MAIN(CASE(cap))
