/* SPDX-License-Identifier: MIT */
/*
 * test_env.c: options from the environment, each case in a child process
 * whose tierpool starts with the environment the case gives it (the parent
 * makes no tierpool call, so its options are never read):
 *
 *   unknown   every TIERPOOL_ variable that names no option gets one warning,
 *             once (a misspelt TIERPOOL_SECURE went unnoticed), and the
 *             valid ones none;
 *   setgid    a set-group-ID copy of this program ignores the options that
 *             write or publish statistics (PUBLISH, SHOW_STATS, VERBOSE:
 *             secure_getenv), while the others still apply. The copy is made
 *             in the working directory and owned by another group (nogroup
 *             for root, else a supplementary group of the user); the case
 *             is skipped (exit 77) where that cannot be, or where the kernel
 *             does not run the copy in secure-execution mode (a nosuid mount).
 *
 * Links the static library, so the set-group-ID copy needs no library path.
 */
#define _GNU_SOURCE
#include "tierpool.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#define SKIP 77
static bool skipped;

/* Occurrences of `needle` in `text`. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* ---- unknown names ------------------------------------------------------------ */

static void *allocate_some(void *arg)
{
    (void)arg;
    tp_free(tp_malloc(100));
    return NULL;
}

static void unknown_child(void *arg)
{
    (void)arg;
    setenv("TIERPOOL_SECUER", "1", 1);        /* the misspelling of the issue */
    setenv("TIERPOOL_PURGE_DELAYY", "5", 1);
    setenv("TIERPOOL_purge_delay", "7", 1);   /* the environment's names are exact */
    setenv("TIERPOOL_", "x", 1);
    setenv("TIERPOOL_PURGE_DELAY", "300ms", 1); /* valid: no warning */
    setenv("TIERPOOL_CHECK", "0", 1);
    setenv("TIERPOOLX", "1", 1);              /* not a TIERPOOL_ variable */
    setenv("MY_TIERPOOL_SECURE", "1", 1);
    allocate_some(NULL);
    pthread_t t; /* another thread, another pool, an option set: no second warning */
    pthread_create(&t, NULL, allocate_some, NULL);
    pthread_join(t, NULL);
    tp_pool *pool = tp_pool_create("env", NULL);
    tp_free(tp_pool_malloc(pool, 100));
    tp_pool_destroy(pool);
    tp_option_set("PURGE_DELAY", "200");
    fprintf(stderr, "purge delay read: %lld\n", tp_option_get("PURGE_DELAY") == 200 ? 300LL : -1LL);
    _exit(0);
}

static void test_unknown(void)
{
    char err[4096];
    int status = util_run_child(unknown_child, NULL, err, sizeof err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(count_of(err, "TIERPOOL_SECUER is not an option"), 1);
    CHECK_EQ(count_of(err, "TIERPOOL_PURGE_DELAYY is not an option"), 1);
    CHECK_EQ(count_of(err, "TIERPOOL_purge_delay is not an option"), 1);
    CHECK_EQ(count_of(err, "TIERPOOL_ is not an option"), 1);
    CHECK_EQ(count_of(err, "tierpool: warning"), 4); /* none for the others */
    CHECK_EQ(count_of(err, "purge delay read: 300"), 1);
    printf("unknown: %s", err);
}

/* ---- set-group-ID programs ------------------------------------------------------- */

/* Runs in the set-group-ID copy: exits 0 if the output options were ignored
 * and the others read, 1 if not, SKIP outside secure-execution mode. */
static int setgid_child(void)
{
    if (getauxval(AT_SECURE) == 0) return SKIP;
    fprintf(stderr, "secure-child started\n");
    allocate_some(NULL);
    int bad = 0;
    bad |= !CHECK_EQ(tp_option_get("PUBLISH"), 0);
    bad |= !CHECK_EQ(tp_option_get("SHOW_STATS"), 0);
    bad |= !CHECK_EQ(tp_option_get("VERBOSE"), 0);
    bad |= !CHECK_EQ(tp_option_get("PURGE_DELAY"), 250); /* not an output option */
    bad |= !CHECK_EQ(tp_option_get("CHECK"), 1);
    return bad;
}

/* A group the caller may give a file it owns, other than its own: nogroup
 * for root, else a supplementary group; -1 if none. */
static gid_t other_group(void)
{
    if (getuid() == 0) {
        struct group *g = getgrnam("nogroup");
        return g ? g->gr_gid : 65534;
    }
    gid_t groups[64];
    int n = getgroups(64, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] != getegid()) return groups[i];
    return (gid_t)-1;
}

/* Copies this program to `path` (mode 0755). */
static bool copy_self(const char *path)
{
    int in = open("/proc/self/exe", O_RDONLY);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    bool ok = in >= 0 && out >= 0;
    char buf[65536];
    ssize_t n;
    while (ok && (n = read(in, buf, sizeof buf)) > 0) ok = write(out, buf, (size_t)n) == n;
    if (in >= 0) close(in);
    if (out >= 0) ok = close(out) == 0 && ok;
    return ok;
}

/* In the child of util_run_child: runs the copy at `arg` with the output
 * options set (and two others), its stdout on the captured stderr. */
static void exec_setgid_copy(void *arg)
{
    char *path = arg;
    dup2(STDERR_FILENO, STDOUT_FILENO);
    char *args[] = {path, "secure-child", NULL};
    char *env[] = {"TIERPOOL_SHOW_STATS=1", "TIERPOOL_VERBOSE=1", "TIERPOOL_PUBLISH=1",
                   "TIERPOOL_PURGE_DELAY=250ms", "TIERPOOL_CHECK=1", NULL};
    execve(path, args, env);
    _exit(127);
}

static void test_setgid(void)
{
    gid_t gid = other_group();
    if (gid == (gid_t)-1) {
        printf("setgid: skipped: no group to give the copy\n");
        skipped = true;
        return;
    }
    char path[64];
    snprintf(path, sizeof path, "./test_env-setgid-%ld", (long)getpid());
    /* chown before chmod: chown clears the set-group-ID bit */
    if (!CHECK(copy_self(path)) || !CHECK_EQ(chown(path, (uid_t)-1, gid), 0) ||
        !CHECK_EQ(chmod(path, 02755), 0)) {
        unlink(path);
        return;
    }
    char out[8192];
    int status = util_run_child(exec_setgid_copy, path, out, sizeof out);
    unlink(path);
    printf("setgid: the child said: %s\n", out[0] ? out : "(nothing)");
    if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP) {
        printf("setgid: skipped: the copy did not run in secure-execution mode (nosuid mount?)\n");
        skipped = true;
        return;
    }
#if defined(TP_SANITIZE_ADDRESS) || defined(TP_SANITIZE_THREAD)
    /* A sanitizer runtime may refuse to start set-group-ID (the kernel
     * turns address randomisation back on for it, which TSan cannot map). */
    if (!strstr(out, "secure-child started")) {
        printf("setgid: skipped: the sanitizer runtime did not start the copy\n");
        skipped = true;
        return;
    }
#endif
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(out, "tierpool: option") == NULL); /* VERBOSE's listing */
    CHECK(strstr(out, "process") == NULL && strstr(out, "pool") == NULL); /* SHOW_STATS's report */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "secure-child") == 0) {
        int rc = setgid_child();
        return rc == SKIP ? SKIP : test_report() || rc;
    }
    static const test_case cases[] = {CASE(unknown), BY_NAME(setgid)};
    int rc = test_run(argc, argv, cases);
    return rc == 0 && skipped ? SKIP : rc;
}
