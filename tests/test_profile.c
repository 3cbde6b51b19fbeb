/* SPDX-License-Identifier: MIT */
/*
 * test_profile.c: the live set of heap profile samples through the public
 * API. With PROFILE_SAMPLE=1 every allocation is a sample of weight 1, so
 * a profile's figures are exact: the header of tp_profile_write (objects and
 * bytes live, then allocated) is compared with what each case holds, per
 * pool, through frees on the owning and on other threads, realloc in place
 * and moved in every tier, thread exit, pool destroy, fork and the mark.
 */
#include "test.h"

#include <sys/wait.h>

typedef struct totals {
    long long objects, bytes, alloc_objects, alloc_bytes;
} totals;

static totals profile_of(tp_pool *pool)
{
    totals t = {-1, -1, -1, -1};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!CHECK(out != NULL)) return t;
    CHECK_EQ(tp_profile_write(out, pool), 0);
    fclose(out);
    CHECK(sscanf(text, "heap profile: %lld: %lld [%lld: %lld] @ heapprofile", &t.objects, &t.bytes,
                 &t.alloc_objects, &t.alloc_bytes) == 4);
    CHECK(strstr(text, "\nMAPPED_LIBRARIES:\n") != NULL);
    free(text);
    return t;
}

static void sample_everything(void)
{
    CHECK_EQ(tp_option_set("PROFILE_SAMPLE", "1"), 0);
    CHECK_EQ(tp_option_set("PROFILE", "1"), 0);
}

/* The pool's profile says `objects` blocks of `bytes` in all are live, and
 * `allocated` blocks (-1: any number) were allocated since the mark. */
static void expect(tp_pool *pool, long long objects, long long bytes, long long allocated)
{
    totals t = profile_of(pool);
    CHECK_EQ(t.objects, objects);
    CHECK_EQ(t.bytes, bytes);
    if (allocated >= 0) CHECK_EQ(t.alloc_objects, allocated);
}

static void test_live_and_free(void)
{
    sample_everything();
    tp_pool *pool = tp_pool_create("live", NULL);
    void *p[100];
    for (int i = 0; i < 100; i++) p[i] = tp_pool_malloc(pool, 100);
    expect(pool, 100, 10000, 100);
    CHECK_EQ(profile_of(pool).alloc_bytes, 10000);
    for (int i = 0; i < 50; i++) tp_free(p[i]);
    expect(pool, 50, 5000, 100);
    tp_profile_mark();
    expect(pool, 50, 5000, 0);
    for (int i = 50; i < 100; i++) tp_free(p[i]);
    expect(pool, 0, 0, 0);
    tp_pool_destroy(pool);
}

typedef struct blocks {
    void **p;
    int count;
    tp_pool *pool;
} blocks;

static void *free_all(void *arg)
{
    blocks *b = arg;
    for (int i = 0; i < b->count; i++) tp_free(b->p[i]);
    return NULL;
}

static void *alloc_all(void *arg)
{
    blocks *b = arg;
    for (int i = 0; i < b->count; i++) b->p[i] = tp_pool_malloc(b->pool, 48);
    return NULL;
}

/* Freed by another thread: the remote free drops the samples. */
static void test_remote_free(void)
{
    sample_everything();
    tp_pool *pool = tp_pool_create("remote", NULL);
    void *p[64];
    blocks b = {p, 64, pool};
    alloc_all(&b);
    CHECK_EQ(profile_of(pool).objects, 64);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, free_all, &b), 0);
    pthread_join(t, NULL);
    CHECK_EQ(profile_of(pool).objects, 0);
    tp_pool_destroy(pool);
}

/* A thread allocates and exits; its blocks stay samples until freed. */
static void test_thread_exit(void)
{
    sample_everything();
    tp_pool *pool = tp_pool_create("exit", NULL);
    void *p[50];
    blocks b = {p, 50, pool};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, alloc_all, &b), 0);
    pthread_join(t, NULL);
    expect(pool, 50, 50 * 48, -1);
    free_all(&b);
    CHECK_EQ(profile_of(pool).objects, 0);
    tp_pool_destroy(pool);
}

/* Runs, huge blocks and slab classes above 1 KiB, realloc in place and moved. */
static void test_tiers_and_realloc(void)
{
    sample_everything();
    tp_pool *pool = tp_pool_create("tiers", NULL);
    void *slab = tp_pool_malloc(pool, 5000), *run = tp_pool_malloc(pool, 20000);
    void *huge = tp_pool_malloc(pool, 3 << 20);
    expect(pool, 3, 5000 + 20000 + (3 << 20), 3);
    run = tp_pool_realloc(pool, run, 16000);  /* in place: the run shrinks */
    huge = tp_pool_realloc(pool, huge, 6 << 20); /* grown by mremap, perhaps moved */
    slab = tp_pool_realloc(pool, slab, 4000); /* kept: it still fits */
    expect(pool, 3, 4000 + 16000 + (6 << 20), -1);
    tp_free(slab);
    tp_free(run);
    tp_free(huge);
    expect(pool, 0, 0, -1);
    tp_pool_destroy(pool);
}

/* A destroyed pool's samples go with it. */
static void test_destroy(void)
{
    sample_everything();
    tp_pool *pool = tp_pool_create("destroyed", NULL);
    for (int i = 0; i < 10; i++) CHECK(tp_pool_malloc(pool, 64) != NULL);
    CHECK(tp_pool_malloc(pool, 50000) != NULL);
    totals all = profile_of(NULL);
    CHECK_EQ(profile_of(pool).objects, 11);
    tp_pool_destroy(pool);
    totals after = profile_of(NULL);
    CHECK_EQ(after.objects, all.objects - 11);
    CHECK_EQ(after.bytes, all.bytes - 640 - 50000);
}

/* A child forked while the parent samples profiles its own heap. */
static void test_fork(void)
{
    sample_everything();
    tp_pool *pool = tp_pool_create("forked", NULL);
    void *p[20];
    for (int i = 0; i < 20; i++) p[i] = tp_pool_malloc(pool, 200);
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 10; i++) tp_free(p[i]);
        void *q = tp_pool_malloc(pool, 30000);
        totals t = profile_of(pool);
        _exit(t.objects == 11 && t.bytes == 10 * 200 + 30000 && test_failed == 0 && q ? 0 : 1);
    }
    int status = -1;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(profile_of(pool).objects, 20);
    for (int i = 0; i < 20; i++) tp_free(p[i]);
    tp_pool_destroy(pool);
}

TEST_MAIN(CASE(live_and_free), CASE(remote_free), CASE(thread_exit), CASE(tiers_and_realloc), CASE(destroy),
          CASE(fork))
