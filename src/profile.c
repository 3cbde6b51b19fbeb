/* SPDX-License-Identifier: MIT */
/*
 * profile.c: heap profiles written out, from the samples of sample.c, in
 * gperftools' heap profile text format, which google-pprof (Debian's
 * google-perftools) and Go's pprof read:
 *
 *   heap profile:   <live objects>: <live bytes> [<allocated objects>: <allocated bytes>] @ heapprofile
 *   <live objects>: <live bytes> [<allocated objects>: <allocated bytes>] @ 0x<return address> ...
 *   ...
 *
 *   MAPPED_LIBRARIES:
 *   <the process's /proc/self/maps>
 *
 * one line per stack (and pool), the allocating function's address first.
 * Figures are estimates already scaled by each sample's chance, so the
 * header names no sampling rate and pprof takes them as they are. The
 * mappings let pprof find the object and symbol of every address.
 *
 * Three ways to a profile: tp_profile_write from code, TIERPOOL_PROFILE_AT_EXIT
 * at exit, and `tierpool profile PID` through the published segment, whose
 * request the monitor thread answers with the writer registered here.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct tpi_profile_out {
    FILE *out;
    double objects, bytes, alloc_objects, alloc_bytes;
} tpi_profile_out;

static long long tpi_round(double x)
{
    return (long long)(x + 0.5);
}

static void tpi_profile_sum(void *arg, const tpi_sample_totals *t)
{
    tpi_profile_out *o = arg;
    o->objects += t->live_objects;
    o->bytes += t->live_bytes;
    o->alloc_objects += t->alloc_objects;
    o->alloc_bytes += t->alloc_bytes;
}

static void tpi_profile_line(void *arg, const tpi_sample_totals *t)
{
    tpi_profile_out *o = arg;
    fprintf(o->out, "%6lld: %8lld [%6lld: %8lld] @", tpi_round(t->live_objects), tpi_round(t->live_bytes),
            tpi_round(t->alloc_objects), tpi_round(t->alloc_bytes));
    for (unsigned i = 0; i < t->depth; i++) fprintf(o->out, " 0x%016" PRIxPTR, t->frames[i]);
    fputc('\n', o->out);
}

/* The mappings, copied from /proc/self/maps. */
static void tpi_profile_maps(FILE *out)
{
    fputs("\nMAPPED_LIBRARIES:\n", out);
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, out);
    close(fd);
}

int tp_profile_write(FILE *out, tp_pool *pool)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    tpi_services_init();
    tpi_profile_out o = {out, 0, 0, 0, 0};
    tpi_sample_each(pool, tpi_profile_sum, &o);
    fprintf(out, "heap profile: %6lld: %8lld [%6lld: %8lld] @ heapprofile\n", tpi_round(o.objects),
            tpi_round(o.bytes), tpi_round(o.alloc_objects), tpi_round(o.alloc_bytes));
    tpi_sample_each(pool, tpi_profile_line, &o);
    tpi_profile_maps(out);
    if (fflush(out) != 0 || ferror(out)) {
        errno = EIO;
        return -1;
    }
    return 0;
}

void tp_profile_mark(void)
{
    tpi_sample_mark();
}

/* ---- to a file: at exit, and for `tierpool profile` ---------------------------------- */

/* The live pool named `name` (NULL or empty: every pool, NULL returned). */
static int tpi_profile_pool(const char *name, tp_pool **out)
{
    *out = NULL;
    if (!name || !*name) return 0;
    tp_pool *pools[256];
    size_t n = tpi_pools_list(pools, sizeof pools / sizeof pools[0]);
    for (size_t i = 0; i < n; i++)
        if (strncmp(pools[i]->name, name, TPI_POOL_NAME_MAX) == 0) {
            *out = pools[i];
            return 0;
        }
    return ENOENT;
}

/* Writes the profile of the pool named `pool` (every pool if empty) to a
 * new or truncated file `path` (never through a symbolic link); 0 or an
 * errno. */
static int tpi_profile_to_file(const char *path, const char *pool_name)
{
    tp_pool *pool;
    int err = tpi_profile_pool(pool_name, &pool);
    if (err) return err;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    FILE *out = fdopen(fd, "w");
    if (!out) {
        err = errno;
        close(fd);
        return err;
    }
    err = tp_profile_write(out, pool) == 0 ? 0 : errno;
    if (fclose(out) != 0 && !err) err = errno;
    return err;
}

/* TIERPOOL_PROFILE_AT_EXIT=FILE: "%p" in FILE stands for the process id, so
 * a forked child writes a file of its own. */
static void tpi_profile_at_exit(void)
{
    const char *path = tpi_option_text(&tpi_options.profile_at_exit);
    if (!path) return;
    char name[1200];
    const char *mark = strstr(path, "%p");
    if (mark)
        snprintf(name, sizeof name, "%.*s%ld%s", (int)(mark - path), path, (long)getpid(), mark + 2);
    else
        snprintf(name, sizeof name, "%s", path);
    int err = tpi_profile_to_file(name, NULL);
    if (err) {
        char msg[1400];
        int n = snprintf(msg, sizeof msg, "tierpool: cannot write the heap profile to %s: %s\n", name, strerror(err));
        if (n > 0 && write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0) return;
    }
}

void tpi_profile_init(void)
{
    atexit(tpi_profile_at_exit);
    tpi_monitor_set_profile_writer(tpi_profile_to_file);
}
