/* SPDX-License-Identifier: MIT */
/*
 * test.h: the test harness. Every check counts as passed or failed; a failed
 * one prints its file:line and, for comparisons, both values. A test's main
 * ends with `return test_report();`, which prints
 *     test_name: N passed, M failed
 * (test_name is the source file's name) and gives the exit status.
 *
 * TEST_SCALE(n): iteration counts shrink under the sanitizer builds.
 */
#ifndef TP_TEST_H
#define TP_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static unsigned long test_passed, test_failed;

static __attribute__((unused)) int test_check(int ok, const char *expr, const char *file, int line)
{
    if (ok) {
        test_passed++;
    } else {
        test_failed++;
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, expr);
    }
    return ok;
}

static __attribute__((unused)) int test_check_op(int ok, const char *expr, uintmax_t a, uintmax_t b,
                                                 const char *file, int line)
{
    if (!test_check(ok, expr, file, line))
        fprintf(stderr, "    left:  %" PRIuMAX " (0x%" PRIxMAX ")\n    right: %" PRIuMAX " (0x%" PRIxMAX ")\n",
                a, a, b, b);
    return ok;
}

/* Each returns whether the check held, so a test can stop early. */
#define CHECK(cond) test_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_OP(a, op, b)                                                                   \
    __extension__({                                                                          \
        uintmax_t test_a_ = (uintmax_t)(a), test_b_ = (uintmax_t)(b);                        \
        test_check_op(test_a_ op test_b_, #a " " #op " " #b, test_a_, test_b_, __FILE__, __LINE__); \
    })
#define CHECK_EQ(a, b) CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) CHECK_OP(a, <, b)
#define CHECK_LE(a, b) CHECK_OP(a, <=, b)
#define CHECK_GE(a, b) CHECK_OP(a, >=, b)
#define CHECK_PTR_EQ(a, b) CHECK_EQ((uintptr_t)(const void *)(a), (uintptr_t)(const void *)(b))

#if defined(TP_SANITIZE_THREAD)
#define TEST_SCALE(n) ((n) / 10 ? (n) / 10 : 1)
#elif defined(TP_SANITIZE_ADDRESS)
#define TEST_SCALE(n) ((n) / 5 ? (n) / 5 : 1)
#else
#define TEST_SCALE(n) (n)
#endif

/* Named cases: test_run runs those named on the command line, or with no
 * names every case but the `by_name` ones: cases that expose a known engine
 * bug (registered as their own ctest, disabled until fixed) or that need a
 * special environment (their own ctest sets it). */
typedef struct test_case {
    const char *name;
    void (*fn)(void);
    int by_name;
} test_case;

/* CASE(x) is the case "x" running test_x; BY_NAME(x) the same, run only
 * when named. TEST_MAIN(case, ...) is main running the cases. */
#define CASE(x) {#x, test_##x, 0}
#define BY_NAME(x) {#x, test_##x, 1}
#define TEST_MAIN(...)                                   \
    static const test_case test_cases_[] = {__VA_ARGS__}; \
    int main(int argc, char **argv)                      \
    {                                                    \
        return test_run(argc, argv, test_cases_);        \
    }

#define test_run(argc, argv, cases) \
    test_run_cases(argc, argv, cases, sizeof(cases) / sizeof(cases)[0], __FILE__)
static int test_report_file(const char *file);
static __attribute__((unused)) int test_run_cases(int argc, char **argv, const test_case *cases, size_t n,
                                                  const char *file)
{
    for (size_t i = 0; i < n; i++) {
        int run = argc < 2 && !cases[i].by_name;
        for (int a = 1; a < argc; a++) run |= strcmp(argv[a], cases[i].name) == 0;
        if (run) cases[i].fn();
    }
    return test_report_file(file);
}

#define test_report() test_report_file(__FILE__)
static __attribute__((unused)) int test_report_file(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int len = (int)strcspn(base, ".");
    fflush(stdout);
    printf("%.*s: %lu passed, %lu failed\n", len, base, test_passed, test_failed);
    return test_failed == 0 && test_passed > 0 ? 0 : 1;
}

#endif /* TP_TEST_H */
