/* SPDX-License-Identifier: MIT */
/*
 * fuzz_options.c: a libFuzzer harness for the option parser (src/options.c):
 * names and values from the input go through tp_option_set, tp_option_get
 * and tp_option_at, and through the environment (TIERPOOL_<NAME> set, then
 * tpi_options_init, which the first allocation calls, reads it again).
 *
 * The harness keeps the value it expects for every option. A value is
 * judged by a reference reading of the contract in tierpool.h, written
 * apart from the parser: booleans 0/1/true/false/on/off/yes/no, formats
 * those and text/json, integers in decimal, sizes with K/M/G (then an
 * optional i and b), durations with ms or s, paths any text (empty or "0"
 * unsets one), any letter case, and a result inside the option's range. Checked: a good value is taken exactly and
 * prints nothing; a bad one returns -1 with EINVAL, prints one warning
 * line and leaves the old value; an unknown name does the same and changes
 * nothing; an option read at start only (SECURE) refuses tp_option_set;
 * every option reads back its expected value after every operation; and
 * tp_option_at describes the table. Text that strtoll might read either way
 * (leading blanks or a sign) may be taken or refused, but never outside the
 * range.
 *
 * Options read at start only are never put in the environment (reading
 * them again would change the running process). Every option goes back to
 * its default at the end of an input.
 */
#include "internal.h"
#include "tierpool.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef TPI_OPT_AT_START
#define OPT_KIND(type) TPI_OPT_TYPE(type)
#define OPT_AT_START(type) (((type) & TPI_OPT_AT_START) != 0)
#else
#define OPT_KIND(type) (type)
#define OPT_AT_START(type) false
#endif

typedef struct option_row {
    const char *name;
    int kind; /* TPI_OPT_* */
    bool at_start;
    long long def, min, max;
} option_row;

static const option_row rows[] = {
#define ROW(NAME, field, type, def, min, max, desc) {#NAME, OPT_KIND(type), OPT_AT_START(type), def, min, max},
    TPI_OPTIONS(ROW)
#undef ROW
};
#define ROWS ((int)(sizeof rows / sizeof rows[0]))

static long long expected[ROWS];
/* From the sanitizer runtime, when there is one. */
extern void __sanitizer_set_report_fd(void *fd) __attribute__((weak));
static int report_fd = STDERR_FILENO; /* the real stderr while ours is captured */

static _Noreturn __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...)
{
    va_list ap;
    dprintf(report_fd, "fuzz_options: ");
    va_start(ap, fmt);
    vdprintf(report_fd, fmt, ap);
    va_end(ap);
    dprintf(report_fd, "\n");
    abort();
}
#define REQUIRE(cond, ...)             \
    do {                               \
        if (!(cond)) fail(__VA_ARGS__); \
    } while (0)

/* ---- input ------------------------------------------------------------------------- */

typedef struct input {
    const uint8_t *data;
    size_t size, pos;
} input;

static unsigned u8(input *in)
{
    return in->pos < in->size ? in->data[in->pos++] : 0u;
}

static unsigned long long number(input *in, unsigned bytes)
{
    unsigned long long v = 0;
    while (bytes--) v = v << 8 | u8(in);
    return v;
}

/* Up to `max` bytes from the input, none of them NUL, nor a colon (so that
 * a name or value cannot pass for the start of a message). */
static void bytes_text(input *in, char *out, unsigned max)
{
    unsigned len = u8(in) % (max + 1);
    for (unsigned i = 0; i < len; i++) {
        unsigned c = u8(in);
        out[i] = (char)(c == 0 ? ' ' : c == ':' ? ';' : c);
    }
    out[len] = 0;
}

/* Flips the letter case of out's characters where the mask's bits say. */
static void mix_case(char *s, unsigned mask)
{
    for (unsigned i = 0; s[i]; i++)
        if ((mask >> (i % 8)) & 1) {
            char c = s[i];
            if (c >= 'a' && c <= 'z') s[i] = (char)(c - 32);
            else if (c >= 'A' && c <= 'Z') s[i] = (char)(c + 32);
        }
}

/* ---- the reference reading of names and values ------------------------------------------- */

static bool same_letters(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z') x = (char)(x - 32);
        if (y >= 'a' && y <= 'z') y = (char)(y - 32);
        if (x != y) return false;
        if (!x) return true;
    }
    return true;
}

/* The row a name means, or -1: any case, one TIERPOOL_ prefix or none. */
static int reference_find(const char *name)
{
    if (!name) return -1;
    if (same_letters(name, "TIERPOOL_", 9)) name += 9;
    for (int i = 0; i < ROWS; i++)
        if (same_letters(name, rows[i].name, SIZE_MAX)) return i;
    return -1;
}

enum { BAD, GOOD, UNSURE };

static int reference_word(int kind, const char *text, long long *out)
{
    static const struct {
        const char *word;
        long long value;
        bool format_only;
    } words[] = {{"0", 0, 0},  {"1", 1, 0},     {"false", 0, 0}, {"true", 1, 0}, {"off", 0, 0},
                 {"on", 1, 0}, {"no", 0, 0},    {"yes", 1, 0},   {"text", 1, 1}, {"json", 2, 1}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (same_letters(text, words[i].word, SIZE_MAX)) {
            if (words[i].format_only && kind != TPI_OPT_FORMAT) return BAD;
            *out = words[i].value;
            return GOOD;
        }
    return BAD;
}

/* Reads text as a value of the kind, before the range check. */
static int reference_parse(int kind, const char *text, long long *out)
{
    if (!text) return BAD;
    if (kind == TPI_OPT_PATH) {
        /* a file name, set (1) or, empty or "0", unset (0) */
        if (strlen(text) >= 1024) return BAD;
        *out = *text && strcmp(text, "0") != 0;
        return GOOD;
    }
    if (!*text) return BAD;
    if (kind == TPI_OPT_BOOL || kind == TPI_OPT_FORMAT) return reference_word(kind, text, out);
    const char *s = text;
    if (*s == ' ' || (*s >= '\t' && *s <= '\r') || *s == '+' || *s == '-') return UNSURE; /* strtoll's leniency */
    unsigned long long v = 0;
    bool overflow = false;
    for (; *s >= '0' && *s <= '9'; s++) {
        overflow |= v > ((unsigned long long)LLONG_MAX - (unsigned)(*s - '0')) / 10;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (s == text || overflow) return BAD;
    unsigned long long unit = 1;
    if (kind == TPI_OPT_SIZE && *s) {
        const char *units = "kmg";
        const char *u = strchr(units, *s | 0x20);
        if (!u || !*u) return BAD;
        unit = 1ull << (10 * (unsigned)(u - units + 1));
        s++;
        if (*s == 'i' || *s == 'I') s++;
        if (*s == 'b' || *s == 'B') s++;
    } else if (kind == TPI_OPT_MS && *s) {
        if (same_letters(s, "ms", SIZE_MAX)) s += 2;
        else if (same_letters(s, "s", SIZE_MAX)) { unit = 1000; s++; }
    }
    if (*s) return BAD;
    if (v > (unsigned long long)LLONG_MAX / unit) return BAD;
    *out = (long long)(v * unit);
    return GOOD;
}

/* GOOD with the value, BAD, or UNSURE: what setting row to text must do. */
static int reference_value(const option_row *row, const char *text, long long *out)
{
    int verdict = reference_parse(row->kind, text, out);
    if (verdict == GOOD && (*out < row->min || *out > row->max)) return BAD;
    return verdict;
}

/* ---- stderr, captured --------------------------------------------------------------------- */

static char captured[4096];
#define WARNING "tierpool: warning: "
static int capture_pipe = -1;

static void capture_begin(void)
{
    int fds[2];
    REQUIRE(pipe(fds) == 0, "pipe failed");
    fflush(stderr);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    capture_pipe = fds[0];
}

/* Ends the capture; returns how many messages starting with `marker` were
 * written (names and values are printed as given, newlines and all, so
 * messages are counted, not lines), and checks that the output ends a line. */
static int capture_end(const char *marker)
{
    dup2(report_fd, STDERR_FILENO);
    size_t len = 0;
    ssize_t n;
    while ((n = read(capture_pipe, captured + len, sizeof captured - 1 - len)) > 0) len += (size_t)n;
    close(capture_pipe);
    captured[len] = 0;
    int count = 0;
    for (const char *at = captured; (at = strstr(at, marker)) != NULL; at++) count++;
    REQUIRE(len == 0 || captured[len - 1] == '\n', "stderr output does not end a line: \"%s\"", captured);
    return count;
}

/* ---- checks ----------------------------------------------------------------------------- */

/* Every option has the value the harness expects. */
static void check_values(const char *after)
{
    for (int i = 0; i < ROWS; i++) {
        long long v = tp_option_get(rows[i].name);
        REQUIRE(v == expected[i], "after %s: option %s is %lld, expected %lld", after, rows[i].name, v, expected[i]);
    }
}

/* The outcome of setting row r (-1: unknown name) to text, with rc and the
 * warning lines printed. */
static void check_set(const char *how, const char *name, int r, const char *text, int rc, int err, int lines)
{
    if (r < 0) {
        REQUIRE(rc == -1 && err == EINVAL && lines == 1, "%s(\"%s\"): unknown name gave rc %d, errno %d, %d lines", how,
                name, rc, err, lines);
        return;
    }
    const option_row *row = &rows[r];
    if (row->at_start && strcmp(how, "set") == 0) {
        REQUIRE(rc == -1 && err == EPERM, "set(%s, \"%s\"), read at start only, gave rc %d, errno %d", name, text, rc,
                err);
        return;
    }
    long long v = 0;
    int verdict = reference_value(row, text, &v);
    if (verdict == UNSURE) {
        if (rc == 0) {
            long long now = tp_option_get(row->name);
            REQUIRE(now >= row->min && now <= row->max && lines == 0, "%s(%s, \"%s\") took %lld, out of %lld..%lld",
                    how, name, text, now, row->min, row->max);
            expected[r] = now;
            return;
        }
        verdict = BAD;
    }
    if (verdict == GOOD) {
        REQUIRE(rc == 0 && lines == 0, "%s(%s, \"%s\"), a good value, gave rc %d, errno %d, %d warning lines:\n%s", how,
                name, text, rc, err, lines, captured);
        expected[r] = v;
        return;
    }
    REQUIRE(rc == -1 && err == EINVAL && lines == 1,
            "%s(%s, \"%s\"), a bad value, gave rc %d, errno %d, %d warning lines", how, name, text, rc, err, lines);
}

/* ---- generating names and values ------------------------------------------------------------ */

/* A name: a row's (in any case, with or without the prefix), a row's
 * spoiled, or bytes. */
static void make_name(input *in, char *out, size_t cap)
{
    unsigned kind = u8(in) % 4, r = u8(in) % ROWS, mask = u8(in);
    const char *prefix = (mask & 0x30) == 0x30 ? "TIERPOOL_" : (mask & 0x30) == 0x10 ? "tierPool_" : "";
    switch (kind) {
    case 0:
    case 1:
        snprintf(out, cap, "%s%s", prefix, rows[r].name);
        if (kind == 1) mix_case(out, mask);
        break;
    case 2: bytes_text(in, out, 24); break;
    default: {
        static const char *const spoil[] = {"TIERPOOL_TIERPOOL_", "_", " ", "TIERPOOL", "X"};
        if (mask & 1)
            snprintf(out, cap, "%s%s", spoil[mask % 5], rows[r].name);
        else
            snprintf(out, cap, "%.*s%s", (int)strlen(rows[r].name) - (int)(mask >> 7), rows[r].name, spoil[(mask >> 1) % 5]);
        break;
    }
    }
}

/* A value for an option of the kind: well-formed for it or another kind,
 * an edge of the number range, or bytes. */
static void make_value(input *in, int kind, char *out, size_t cap)
{
    static const char *const words[] = {"0", "1", "false", "true", "off", "on", "no", "yes", "text", "json", "2", ""};
    static const char *const suffixes[] = {"", "k", "K", "kb", "KiB", "m", "MiB", "g", "Gi", "ms", "s", "MS", "b", "kB!"};
    static const char *const edges[] = {"9223372036854775807", "9223372036854775808", "99999999999999999999", "-1",
                                        "-0", "+5", " 7", "8589934592G", "9007199254740992K", "3600000", "3600001",
                                        "3600s", "3601s", "0x10", "1e3", "64", "65", "1099511627776", "1T"};
    unsigned how = u8(in) % 8, sel = u8(in);
    switch (how) {
    case 0:
    case 1: {
        if (kind == TPI_OPT_BOOL || kind == TPI_OPT_FORMAT) {
            snprintf(out, cap, "%s", words[sel % 12]);
            mix_case(out, u8(in));
            break;
        }
        unsigned long long n = number(in, 1 + sel % 4);
        const char *suffix = kind == TPI_OPT_SIZE ? suffixes[sel % 9] : kind == TPI_OPT_MS ? suffixes[(sel % 3) ? 9 + sel % 2 : 0] : "";
        snprintf(out, cap, "%llu%s", n, suffix);
        break;
    }
    case 2:
        snprintf(out, cap, "%llu%s", number(in, 1 + sel % 3), suffixes[(sel >> 2) % (sizeof suffixes / sizeof suffixes[0])]);
        break;
    case 3: snprintf(out, cap, "%s", words[sel % 12]); break;
    case 4: snprintf(out, cap, "%s", edges[sel % (sizeof edges / sizeof edges[0])]); break;
    default: bytes_text(in, out, 40); break;
    }
}

/* ---- operations ------------------------------------------------------------------------------ */

static void op_set(input *in)
{
    char name[64], value[64];
    make_name(in, name, sizeof name);
    int r = reference_find(name);
    make_value(in, r >= 0 ? rows[r].kind : (int)(u8(in) % 5), value, sizeof value);
    capture_begin();
    errno = 0;
    int rc = tp_option_set(name, value);
    int err = errno;
    int lines = capture_end(WARNING);
    check_set("set", name, r, value, rc, err, lines);
    check_values("set");
}

static void op_get(input *in)
{
    char name[64];
    make_name(in, name, sizeof name);
    int r = reference_find(name);
    errno = 0;
    long long v = tp_option_get(name);
    if (r < 0)
        REQUIRE(v == -1 && errno == EINVAL, "get(\"%s\"), an unknown name, gave %lld, errno %d", name, v, errno);
    else
        REQUIRE(v == expected[r], "get(\"%s\") gave %lld, expected %lld", name, v, expected[r]);
}

static void op_at(input *in)
{
    static const char *const kinds[] = {[TPI_OPT_BOOL] = "bool", [TPI_OPT_INT] = "int", [TPI_OPT_SIZE] = "size",
                                        [TPI_OPT_MS] = "milliseconds", [TPI_OPT_FORMAT] = "format",
                                        [TPI_OPT_PATH] = "path"};
    unsigned sel = u8(in);
    size_t index = sel < 0xf0 ? sel % (ROWS + 2) : SIZE_MAX - (sel & 7);
    tp_option_desc d;
    memset(&d, 0xa5, sizeof d);
    int rc = tp_option_at(index, sel & 1 ? &d : NULL);
    if (index >= (size_t)ROWS || !(sel & 1)) {
        REQUIRE(rc == -1, "option_at(%zu, %s) gave %d", index, sel & 1 ? "desc" : "NULL", rc);
        return;
    }
    const option_row *row = &rows[index];
    REQUIRE(rc == 0 && d.name && strcmp(d.name, row->name) == 0, "option_at(%zu) is not %s", index, row->name);
    REQUIRE(d.type && strcmp(d.type, kinds[row->kind]) == 0 && d.description && *d.description,
            "option_at(%zu): type %s, description %s", index, d.type, d.description);
    REQUIRE(d.value == expected[index] && d.default_value == row->def && d.min == row->min && d.max == row->max,
            "option_at(%zu) %s: value %lld default %lld range %lld..%lld", index, d.name, d.value, d.default_value,
            d.min, d.max);
}

/* TIERPOOL_<NAME>=value for a few options (and a name in the wrong case,
 * which getenv does not match), then the parser reads the environment. */
static void op_environment(input *in)
{
    char env_name[64], value[64];
    const char *values[ROWS] = {0};
    char stored[ROWS][64];
    unsigned count = 1 + u8(in) % 4;
    for (unsigned i = 0; i < count; i++) {
        int r = (int)(u8(in) % ROWS);
        make_value(in, rows[r].kind, value, sizeof value);
        if (rows[r].at_start) continue;
        snprintf(env_name, sizeof env_name, "TIERPOOL_%s", rows[r].name);
        setenv(env_name, value, 1);
        snprintf(stored[r], sizeof stored[r], "%s", value);
        values[r] = stored[r];
    }
    unsigned decoy = u8(in) % ROWS;
    snprintf(env_name, sizeof env_name, "tierpool_%s", rows[decoy].name);
    setenv(env_name, "1", 1);

    capture_begin();
    tpi_options_init();
    int lines = capture_end(WARNING);

    int bad = 0, surely_bad = 0;
    for (int r = 0; r < ROWS; r++) {
        if (!values[r]) continue;
        long long v = 0;
        int verdict = reference_value(&rows[r], values[r], &v);
        long long now = tp_option_get(rows[r].name);
        surely_bad += verdict == BAD;
        if (verdict == UNSURE) {
            verdict = now == expected[r] ? BAD : GOOD;
            v = now;
            REQUIRE(now >= rows[r].min && now <= rows[r].max, "environment %s=\"%s\" gave %lld", rows[r].name,
                    values[r], now);
        }
        if (verdict == GOOD) {
            expected[r] = v;
        } else {
            bad++;
        }
        REQUIRE(now == expected[r], "environment TIERPOOL_%s=\"%s\": value %lld, expected %lld", rows[r].name,
                values[r], now, expected[r]);
        snprintf(env_name, sizeof env_name, "TIERPOOL_%s", rows[r].name);
        unsetenv(env_name);
    }
    snprintf(env_name, sizeof env_name, "tierpool_%s", rows[decoy].name);
    unsetenv(env_name);
    /* one warning per bad value (a doubtful one that left the value as it
     * was may have been refused or taken) */
    REQUIRE(lines >= surely_bad && lines <= bad, "environment: %d warning lines for %d bad values:\n%s", lines,
            surely_bad, captured);
    check_values("environment");
}

static void op_print(input *in)
{
    (void)in;
    capture_begin();
    tpi_options_print();
    int lines = capture_end("tierpool: option ");
    REQUIRE(lines == ROWS, "options_print wrote %d lines for %d options", lines, ROWS);
    for (int r = 0; r < ROWS; r++) {
        char needle[64];
        snprintf(needle, sizeof needle, " %s ", rows[r].name);
        REQUIRE(strstr(captured, needle), "options_print does not list %s", rows[r].name);
    }
}

static void op_nulls(input *in)
{
    int r = (int)(u8(in) % ROWS);
    capture_begin();
    errno = 0;
    int rc = tp_option_set(NULL, "1");
    int err = errno;
    int lines = capture_end(WARNING);
    check_set("set", "(null)", -1, "1", rc, err, lines);
    capture_begin();
    errno = 0;
    rc = tp_option_set(rows[r].name, NULL);
    err = errno;
    lines = capture_end(WARNING);
    check_set("set", rows[r].name, r, NULL, rc, err, lines);
    errno = 0;
    REQUIRE(tp_option_get(NULL) == -1 && errno == EINVAL, "get(NULL) did not fail with EINVAL");
    check_values("NULL arguments");
}

static void (*const ops[])(input *) = {op_set, op_set, op_get, op_at, op_environment, op_print, op_nulls};
#define OPS (sizeof ops / sizeof ops[0])

/* Puts every option that tp_option_set can change back to its default. */
static void restore_defaults(void)
{
    char text[32];
    for (int r = 0; r < ROWS; r++) {
        if (rows[r].at_start || expected[r] == rows[r].def) continue;
        snprintf(text, sizeof text, "%lld", rows[r].def);
        if (rows[r].kind == TPI_OPT_FORMAT && rows[r].def == 2) snprintf(text, sizeof text, "json");
        REQUIRE(tp_option_set(rows[r].name, text) == 0, "cannot set %s back to %s", rows[r].name, text);
        expected[r] = rows[r].def;
    }
    check_values("restoring the defaults");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        /* reports of the sanitizers go to the real stderr while ours is captured */
        report_fd = dup(STDERR_FILENO);
        if (__sanitizer_set_report_fd) __sanitizer_set_report_fd((void *)(intptr_t)report_fd);
        char env_name[64];
        for (int r = 0; r < ROWS; r++) {
            snprintf(env_name, sizeof env_name, "TIERPOOL_%s", rows[r].name);
            unsetenv(env_name); /* only what an input sets is in the environment */
            expected[r] = tp_option_get(rows[r].name);
        }
        ready = true;
    }
    input in = {data, size, 0};
    while (in.pos < in.size) ops[u8(&in) % OPS](&in);
    restore_defaults();
    return 0;
}
