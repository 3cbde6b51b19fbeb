/* SPDX-License-Identifier: MIT */
/*
 * test_options.c: the option table: every option is listed, readable and
 * settable by name; each type parses its forms and rejects bad values with a
 * warning that keeps the old value; the environment is read at start.
 * Run with TIERPOOL_PURGE_DELAY=250ms TIERPOOL_HUGE_CACHE=12M
 * TIERPOOL_CACHE_KEEP_MAX=bogus (engine.cmake sets them).
 */
#include "../src/internal.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Runs set(name, value) with stderr captured; returns its result and copies
 * what it printed into msg. */
static int set_captured(const char *name, const char *value, char *msg, size_t cap)
{
    fflush(stderr);
    int pipefd[2];
    if (pipe(pipefd) != 0) return -2;
    int saved = dup(STDERR_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    int rc = tp_option_set(name, value);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], msg, cap - 1);
    close(pipefd[0]);
    msg[n > 0 ? n : 0] = 0;
    return rc;
}

static void test_environment(void)
{
    CHECK_EQ(tp_option_get("purge_delay"), 250);
    CHECK_EQ(tp_option_get("HUGE_CACHE"), 12 << 20);
    CHECK_EQ(tp_option_get("TIERPOOL_CACHE_KEEP_MAX"), 8); /* bad value: default kept */
}

static void test_listing(void)
{
    tp_option_desc d;
    size_t count = 0;
    while (tp_option_at(count, &d) == 0) {
        CHECK(d.name && d.type && d.description && *d.description);
        CHECK_EQ(tp_option_get(d.name), d.value);
        CHECK_LE(d.min, d.default_value);
        CHECK_LE(d.default_value, d.max);
        count++;
    }
    CHECK_GE(count, 10);
    CHECK_EQ(tp_option_at(count, &d), -1);
    CHECK_EQ(tp_option_at(0, NULL), -1);
}

static void test_types(void)
{
    char msg[512];
    /* bool */
    const char *truths[] = {"1", "true", "TRUE", "on", "yes"}, *falses[] = {"0", "false", "off", "no"};
    for (size_t i = 0; i < sizeof truths / sizeof *truths; i++) {
        CHECK_EQ(set_captured("verbose", truths[i], msg, sizeof msg), 0);
        CHECK_EQ(tp_option_get("verbose"), 1);
    }
    for (size_t i = 0; i < sizeof falses / sizeof *falses; i++) {
        CHECK_EQ(set_captured("verbose", falses[i], msg, sizeof msg), 0);
        CHECK_EQ(tp_option_get("verbose"), 0);
    }
    CHECK_EQ(set_captured("verbose", "maybe", msg, sizeof msg), -1);
    CHECK(strstr(msg, "option VERBOSE") && strstr(msg, "'maybe'"));
    CHECK_EQ(set_captured("verbose", "json", msg, sizeof msg), -1); /* a format, not a bool */
    /* size */
    struct { const char *text; long long value; } sizes[] = {
        {"0", 0}, {"4096", 4096}, {"64k", 64 << 10}, {"64KiB", 64 << 10}, {"3M", 3 << 20}, {"2g", 2LL << 30},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        CHECK_EQ(set_captured("huge_cache", sizes[i].text, msg, sizeof msg), 0);
        CHECK_EQ(tp_option_get("huge_cache"), sizes[i].value);
    }
    const char *bad_sizes[] = {"", "-1", "12Q", "k", "1.5M", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof *bad_sizes; i++) {
        CHECK_EQ(set_captured("huge_cache", bad_sizes[i], msg, sizeof msg), -1);
        CHECK(strstr(msg, "HUGE_CACHE") != NULL);
        CHECK_EQ(tp_option_get("huge_cache"), 2LL << 30); /* unchanged */
    }
    CHECK_EQ(set_captured("huge_cache", "2T", msg, sizeof msg), -1);
    /* durations */
    CHECK_EQ(set_captured("purge_delay", "1500", msg, sizeof msg), 0);
    CHECK_EQ(tp_option_get("purge_delay"), 1500);
    CHECK_EQ(set_captured("purge_delay", "2s", msg, sizeof msg), 0);
    CHECK_EQ(tp_option_get("purge_delay"), 2000);
    CHECK_EQ(set_captured("purge_delay", "30ms", msg, sizeof msg), 0);
    CHECK_EQ(tp_option_get("purge_delay"), 30);
    CHECK_EQ(set_captured("purge_delay", "2h", msg, sizeof msg), -1);
    CHECK_EQ(tp_option_get("purge_delay"), 30);
    /* ints and ranges */
    CHECK_EQ(set_captured("cache_keep_max", "64", msg, sizeof msg), 0);
    CHECK_EQ(set_captured("cache_keep_max", "65", msg, sizeof msg), -1);
    CHECK(strstr(msg, "out of range") != NULL);
    CHECK_EQ(tp_option_get("cache_keep_max"), 64);
    CHECK_EQ(set_captured("publish_interval", "5ms", msg, sizeof msg), -1); /* below 10 ms */
    /* formats */
    CHECK_EQ(set_captured("show_stats", "json", msg, sizeof msg), 0);
    CHECK_EQ(tp_option_get("show_stats"), 2);
    CHECK_EQ(set_captured("show_stats", "text", msg, sizeof msg), 0);
    CHECK_EQ(tp_option_get("show_stats"), 1);
    CHECK_EQ(set_captured("show_stats", "0", msg, sizeof msg), 0);
    /* unknown names and NULLs */
    errno = 0;
    CHECK_EQ(set_captured("no_such_option", "1", msg, sizeof msg), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK(strstr(msg, "no_such_option") && strstr(msg, "unknown option"));
    CHECK_EQ(tp_option_get("no_such_option"), -1);
    CHECK_EQ(set_captured(NULL, "1", msg, sizeof msg), -1);
    CHECK_EQ(set_captured("verbose", NULL, msg, sizeof msg), -1);
    CHECK_EQ(tp_option_get(NULL), -1);
    tp_option_set("cache_keep_max", "8");
    tp_option_set("huge_cache", "64M");
}

int main(void)
{
    test_environment();
    test_listing();
    test_types();
    return test_report();
}
