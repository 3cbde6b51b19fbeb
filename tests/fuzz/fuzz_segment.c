/* SPDX-License-Identifier: MIT */
/*
 * fuzz_segment.c: libFuzzer harness for the statistics segment reader of
 * the `tierpool` tool (tools/snapshot.c), which reads files that anyone may
 * have put in /dev/shm, and for the escaping of names (src/escape.c).
 *
 * An input is a segment file: a valid one (this process's pid, two pools)
 * rewritten by the input, then cut or grown. Its bytes:
 *
 *   byte 0       how long the file is: 0, 3 the layout's size; 1 a length
 *                from the next two bytes (so shorter); 2 longer by 4 KiB
 *   then patches until the input ends, each
 *     u16 where  below 0x8000: an offset in the first 32 KiB (the header,
 *                the process total, the first pools); else (where - 0x8000)
 *                * 8 anywhere in the layout
 *     u8 len     then len bytes written there
 *
 * The file is written to a scratch folder that the reader is pointed at
 * (snapshot_set_dir), and read as the tool reads a segment: vetted, mapped,
 * copied, checked. Checked:
 *   - a read that succeeds holds at most TPI_SHM_POOLS pools, every name
 *     NUL-terminated, fragmentation within 0..1;
 *   - what the tool prints of it (the text, JSON and Prometheus formats, the
 *     exporter's labelled Prometheus text, `tierpool list`) is well-formed
 *     UTF-8 with no control character but the newline;
 *   - the input's bytes as a name, escaped in each style, likewise; and a
 *     name cut by tpi_utf8_prefix ends on a character boundary.
 * ASan and UBSan catch any read past a name or an array.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "../../tools/cli.h"
#include "../../tools/snapshot.h"
#include "../../tools/stats_format.h"
#include "internal.h"

#define FAIL(...)                                  \
    do {                                           \
        fprintf(stderr, "fuzz_segment: " __VA_ARGS__); \
        fprintf(stderr, "\n");                     \
        abort();                                   \
    } while (0)

static char folder[64];
static char path[128];
static tpi_shm *template, *file, *snap;

static void cleanup(void)
{
    unlink(path);
    rmdir(folder);
}

static void setup(void)
{
    if (template) return;
    snprintf(folder, sizeof folder, "/tmp/tp-fuzz-segment-XXXXXX");
    if (!mkdtemp(folder)) FAIL("mkdtemp");
    atexit(cleanup);
    snprintf(path, sizeof path, "%s/" TPI_SHM_PREFIX "%ld", folder, (long)getpid());
    snapshot_set_dir(folder);
    template = calloc(1, sizeof *template);
    file = calloc(1, sizeof *file + 4096);
    snap = calloc(1, sizeof *snap);
    if (!template || !file || !snap) FAIL("out of memory");
    template->magic = TPI_SHM_MAGIC;
    template->version = TP_STATS_VERSION;
    template->stats_size = sizeof(tp_stats);
    template->pid = getpid();
    template->pid_ns = snapshot_pid_namespace();
    template->updated_ms = 1;
    template->interval_ms = 1000;
    template->pool_count = 2;
    tp_stats_get(NULL, &template->process);
    tp_stats_get(tp_pool_default(), &template->pools[0]);
    tp_stats_get(tp_pool_default(), &template->pools[1]);
    snprintf(template->pools[1].pool, sizeof template->pools[1].pool, "second");
    template->pools[1].pool_id = 1;
    template->pools[0].classes[3].allocs = 5; /* a class to print */
}

/* Well-formed UTF-8 without control characters, but newlines. */
static void check_clean(const char *what, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!n || i + n > len) FAIL("%s: byte %zu (0x%02x) is not UTF-8", what, i, c);
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80) FAIL("%s: byte %zu is not UTF-8", what, i + k);
        if ((c < 0x20 && c != '\n') || c == 0x7f) FAIL("%s: control character 0x%02x at %zu", what, c, i);
        if (c == 0xc2 && s[i + 1] < 0xa0) FAIL("%s: C1 control character at %zu", what, i);
        i += n;
    }
}

static void check_buffer(const char *what, cli_buffer *b)
{
    if (b->failed) FAIL("%s: out of memory", what);
    check_clean(what, b->data ? b->data : "", b->len);
    b->len = 0;
}

static void append(void *arg, const char *text)
{
    cli_writer w = cli_buffer_writer(arg);
    w.write(w.arg, text, strlen(text));
}

static void check_snapshot(void)
{
    if (snap->pool_count > TPI_SHM_POOLS) FAIL("pool count %u", snap->pool_count);
    for (uint32_t i = 0; i <= snap->pool_count; i++) {
        const tp_stats *s = i < snap->pool_count ? &snap->pools[i] : &snap->process;
        if (!memchr(s->pool, '\0', sizeof s->pool)) FAIL("pool %u: name without NUL", i);
        if (!(s->fragmentation >= 0.0 && s->fragmentation <= 1.0)) FAIL("pool %u: fragmentation", i);
    }
    static cli_buffer out;
    cli_writer w = cli_buffer_writer(&out);
    static const char *const formats[] = {"text", "JSON", "Prometheus"};
    for (int format = TP_STATS_TEXT; format <= TP_STATS_PROMETHEUS; format++) {
        stats_format(&w, snap, format);
        check_buffer(formats[format], &out);
    }
    const char *prefix[TPI_SHM_POOLS];
    for (uint32_t i = 0; i < snap->pool_count; i++) prefix[i] = "pid=\"1\",comm=\"x\",";
    tpi_stats_prometheus(snap->pools, snap->pool_count, prefix, true, append, &out);
    check_buffer("the exporter's Prometheus", &out);
    char *listing = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&listing, &len);
    if (!f) FAIL("open_memstream");
    pid_t self = getpid();
    snapshot_print_list(f, &self, 1);
    fclose(f);
    check_clean("list", listing, len);
    free(listing);
}

static void check_names(const uint8_t *data, size_t size)
{
    char name[64];
    size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    static char escaped[6 * sizeof name + 1];
    for (int style = TPI_ESCAPE_TEXT; style <= TPI_ESCAPE_PROMETHEUS; style++) {
        size_t len = tpi_escape(escaped, sizeof escaped, name, sizeof name, (tpi_escape_style)style);
        if (len != strlen(escaped)) FAIL("tpi_escape's length");
        check_clean("an escaped name", escaped, len);
    }
    /* A cut at a boundary: whatever follows the prefix starts a character. */
    for (size_t max = 0; max < strlen(name); max++) {
        size_t cut = tpi_utf8_prefix(name, max);
        if (cut > max) FAIL("tpi_utf8_prefix(%zu) = %zu", max, cut);
        if (cut < max && ((unsigned char)name[cut] & 0xc0) != 0xc0) FAIL("tpi_utf8_prefix cut %zu early", max - cut);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    memcpy(file, template, sizeof *template);
    memset((char *)file + sizeof *file, 0, 4096);
    size_t length = sizeof *file;
    size_t at = 1;
    if (size >= 1 && data[0] % 4 == 1 && size >= 3) {
        length = ((size_t)data[1] << 8 | data[2]) * 8 % sizeof *file;
        at = 3;
    } else if (size >= 1 && data[0] % 4 == 2) {
        length += 4096;
    }
    while (at + 3 <= size) {
        size_t where = (size_t)data[at] << 8 | data[at + 1], len = data[at + 2];
        at += 3;
        where = where < 0x8000 ? where : (where - 0x8000) * 8 % sizeof *file;
        if (len > size - at) len = size - at;
        if (where + len > sizeof *file) len = sizeof *file - where;
        memcpy((char *)file + where, data + at, len);
        at += len;
    }
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) FAIL("cannot write %s", path);
    for (size_t done = 0; done < length;) {
        ssize_t n = write(fd, (char *)file + done, length - done);
        if (n <= 0) FAIL("cannot write %s", path);
        done += (size_t)n;
    }
    close(fd);
    if (snapshot_read(getpid(), snap) == SNAPSHOT_OK) check_snapshot();
    check_names(data, size);
    return 0;
}
