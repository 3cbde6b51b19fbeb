/* SPDX-License-Identifier: MIT */
/*
 * test_rss.c: the first allocation of a fresh process is cheap in resident
 * memory. This binary is its own process (ctest runs it alone) and makes no
 * tierpool call before the measured one: one tp_malloc(16) grows RSS
 * (/proc/self/statm) by less than 1 MiB, though it maps a 4 MiB chunk and
 * touches the 32 MiB registry. The case "pool" (run as a second ctest, so
 * a fresh process too) checks the same for a first allocation in an
 * explicit pool and a first huge block.
 */
#include "tierpool.h"
#include "test.h"
#include "util.h"

#include <stdlib.h>

/* TSan maps shadow and metadata for what is touched and for every mutex
 * (about 900 KiB here): it gets more room. */
#if defined(TP_SANITIZE_THREAD)
#define RSS_LIMIT (4 * MiB)
#else
#define RSS_LIMIT (1 * MiB)
#endif

static size_t measure(const char *what, void *(*fn)(void))
{
    size_t before = util_rss();
    void *p = fn();
    size_t after = util_rss();
    size_t grown = after > before ? after - before : 0;
    printf("%s: rss %zu -> %zu KiB (+%zu KiB)\n", what, before / 1024, after / 1024, grown / 1024);
    CHECK(p != NULL);
    return grown;
}

static void *first_malloc(void)
{
    return tp_malloc(16);
}

static void *pool_malloc(void)
{
    return tp_pool_malloc(tp_pool_create("rss", NULL), 16);
}

static void *huge_malloc(void)
{
    return tp_malloc(64 * MiB);
}

/* Before measuring: stdio's buffer (the first printf) and the like. */
static void warm_up(void)
{
    printf("rss limit %zu KiB\n", RSS_LIMIT / 1024);
    util_rss();
}

static void test_first(void)
{
    warm_up();
    CHECK_LT(measure("first tp_malloc(16)", first_malloc), RSS_LIMIT);
    CHECK_LT(measure("second tp_malloc(16)", first_malloc), 64 * KiB);
}

static void test_pool(void)
{
    warm_up();
    CHECK_LT(measure("first tp_pool_malloc(16)", pool_malloc), RSS_LIMIT);
    CHECK_LT(measure("first tp_malloc(64 MiB)", huge_malloc), RSS_LIMIT);
}

TEST_MAIN(
    CASE(first),
    CASE(pool))
