/* SPDX-License-Identifier: MIT */
/*
 * options.c: every run-time option of tierpool, in one table.
 *
 * Each option is one row of TPI_OPTIONS (internal.h): name, type, default,
 * range and a one-line description. From the row come the field in
 * tpi_options, the environment variable TIERPOOL_<NAME>, the parser, and
 * the entries tp_option_at lists (for `tierpool options` and the docs).
 *
 * The environment is read once, at the first allocation, without allocating
 * (getenv and a hand-written parser); a bad value prints one warning naming
 * the option and keeps the default, never more, and so does a TIERPOOL_
 * variable that names no option (a misspelt TIERPOOL_SECURE would
 * otherwise leave hardening off without a word). Options that write or
 * publish statistics (TPI_OPT_OUTPUT) are read with secure_getenv.
 */
#define _GNU_SOURCE /* secure_getenv */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

tpi_options_t tpi_options = {
#define TPI_OPTION_DEFAULT(NAME, field, type, def, min, max, desc) .field = (def),
    TPI_OPTIONS(TPI_OPTION_DEFAULT)
#undef TPI_OPTION_DEFAULT
};

typedef struct tpi_option_row {
    const char *name;        /* upper case, as in TIERPOOL_<NAME> */
    int type;                /* TPI_OPT_* */
    long long def, min, max;
    const char *description;
    long long *value;
} tpi_option_row;

static const tpi_option_row tpi_option_rows[] = {
#define TPI_OPTION_ROW(NAME, field, type, def, min, max, desc) {#NAME, type, def, min, max, desc, &tpi_options.field},
    TPI_OPTIONS(TPI_OPTION_ROW)
#undef TPI_OPTION_ROW
};

#define TPI_OPTION_COUNT (sizeof tpi_option_rows / sizeof tpi_option_rows[0])

static const char *const tpi_type_names[] = {
    [TPI_OPT_BOOL] = "bool", [TPI_OPT_INT] = "int", [TPI_OPT_SIZE] = "size",
    [TPI_OPT_MS] = "milliseconds", [TPI_OPT_FORMAT] = "format", [TPI_OPT_PATH] = "path",
};

/* The names the TPI_OPT_PATH options hold, by row; written before the
 * field turns 1. */
#define TPI_OPTION_TEXT_MAX 1024
static char tpi_option_texts[TPI_OPTION_COUNT][TPI_OPTION_TEXT_MAX];

/* Writes a line snprintf made into msg[size] (n bytes, or truncated) to
 * stderr, without stdio (which may allocate). */
static void tpi_option_say(const char *msg, int n, size_t size)
{
    if (n <= 0) return;
    ssize_t w = write(STDERR_FILENO, msg, (size_t)n < size ? (size_t)n : size - 1);
    (void)w;
}

static void tpi_option_warn(const char *name, const char *value, const char *why)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "tierpool: warning: option %s: %s '%s'; keeping the default\n", name,
                     why, value ? value : "");
    tpi_option_say(msg, n, sizeof msg);
}

/* Parses `text` as an option of `type`; false if it is not one. */
static bool tpi_option_parse(int type, const char *text, long long *out)
{
    if (!text || !*text) return false;
    if (type == TPI_OPT_BOOL || type == TPI_OPT_FORMAT) {
        /* format_only: a format's name, not a boolean */
        static const struct { const char *word; long long value; bool format_only; } words[] = {
            {"0", 0, false}, {"1", 1, false}, {"false", 0, false}, {"true", 1, false}, {"off", 0, false},
            {"on", 1, false}, {"no", 0, false}, {"yes", 1, false}, {"text", 1, true}, {"json", 2, true},
        };
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
            if (strcasecmp(text, words[i].word) != 0) continue;
            if (type == TPI_OPT_BOOL && words[i].format_only) return false;
            *out = words[i].value;
            return true;
        }
        return false;
    }
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || errno == ERANGE || v < 0) return false;
    long long unit = 1;
    if (type == TPI_OPT_SIZE && *end) {
        switch (*end | 0x20) {
        case 'k': unit = 1LL << 10; break;
        case 'm': unit = 1LL << 20; break;
        case 'g': unit = 1LL << 30; break;
        default: return false;
        }
        end++;
        if ((*end | 0x20) == 'i') end++;
        if ((*end | 0x20) == 'b') end++;
    } else if (type == TPI_OPT_MS && *end) {
        if (strcasecmp(end, "ms") == 0) end += 2;
        else if (strcasecmp(end, "s") == 0) { unit = 1000; end++; }
    }
    if (*end) return false;
    if (v > __LONG_LONG_MAX__ / unit) return false;
    *out = v * unit;
    return true;
}

static const tpi_option_row *tpi_option_find(const char *name)
{
    if (!name) return NULL;
    if (strncasecmp(name, "TIERPOOL_", 9) == 0) name += 9;
    for (size_t i = 0; i < TPI_OPTION_COUNT; i++)
        if (strcasecmp(name, tpi_option_rows[i].name) == 0) return &tpi_option_rows[i];
    return NULL;
}

static int tpi_option_assign(const tpi_option_row *row, const char *text, const char *shown_name)
{
    if (TPI_OPT_TYPE(row->type) == TPI_OPT_PATH) {
        /* Any name; empty or "0" unsets the option. */
        size_t len = text ? strlen(text) : 0;
        if (!text || len >= TPI_OPTION_TEXT_MAX) {
            tpi_option_warn(shown_name, text, "not a valid value");
            return -1;
        }
        char *dst = tpi_option_texts[row - tpi_option_rows];
        __atomic_store_n(row->value, 0, __ATOMIC_RELEASE);
        memcpy(dst, text, len + 1);
        __atomic_store_n(row->value, len > 0 && strcmp(text, "0") != 0, __ATOMIC_RELEASE);
        return 0;
    }
    long long v;
    if (!tpi_option_parse(TPI_OPT_TYPE(row->type), text, &v)) {
        tpi_option_warn(shown_name, text, "not a valid value");
        return -1;
    }
    if (v < row->min || v > row->max) {
        tpi_option_warn(shown_name, text, "out of range");
        return -1;
    }
    __atomic_store_n(row->value, v, __ATOMIC_RELAXED);
    return 0;
}

/* Warns once for each TIERPOOL_<NAME> variable whose NAME is no option's
 * (exactly: the environment is case-sensitive, as getenv is). */
static void tpi_options_warn_unknown(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "TIERPOOL_", 9) != 0) continue;
        const char *name = *e + 9, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        /* Not an option: a test's directory standing in for / (limit.c). */
        bool known = len == strlen("SYSFS_ROOT") && strncmp(name, "SYSFS_ROOT", len) == 0;
        for (size_t i = 0; i < TPI_OPTION_COUNT && !known; i++)
            known = strlen(tpi_option_rows[i].name) == len && strncmp(name, tpi_option_rows[i].name, len) == 0;
        if (known) continue;
        char msg[256];
        int n = snprintf(msg, sizeof msg,
                         "tierpool: warning: TIERPOOL_%.*s is not an option; ignored (`tierpool options` lists them)\n",
                         (int)(len < 64 ? len : 64), name);
        tpi_option_say(msg, n, sizeof msg);
    }
}

void tpi_options_init(void)
{
    char env_name[64];
    for (size_t i = 0; i < TPI_OPTION_COUNT; i++) {
        tpi_concat(env_name, sizeof env_name, "TIERPOOL_", tpi_option_rows[i].name, NULL);
        const char *text =
            tpi_option_rows[i].type & TPI_OPT_OUTPUT ? secure_getenv(env_name) : getenv(env_name);
        if (text) tpi_option_assign(&tpi_option_rows[i], text, env_name);
    }
    tpi_options_warn_unknown();
}

/* The environment read once, at process start or at the first tp_option_*
 * call if earlier. */
void tpi_options_ensure_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tpi_options_init);
}

int tp_option_set(const char *name, const char *value)
{
    tpi_options_ensure_init(); /* so the environment cannot override this later */
    const tpi_option_row *row = tpi_option_find(name);
    if (!row) {
        tpi_option_warn(name ? name : "(null)", value, "unknown option, value");
        errno = EINVAL;
        return -1;
    }
    if (row->type & TPI_OPT_AT_START) {
        tpi_option_warn(row->name, value, "is read from the environment at start only; ignoring");
        errno = EPERM;
        return -1;
    }
    if (tpi_option_assign(row, value, row->name) != 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

const char *tpi_option_text(const long long *field)
{
    for (size_t i = 0; i < TPI_OPTION_COUNT; i++)
        if (tpi_option_rows[i].value == field)
            return __atomic_load_n(field, __ATOMIC_ACQUIRE) ? tpi_option_texts[i] : NULL;
    return NULL;
}

long long tp_option_get(const char *name)
{
    tpi_options_ensure_init();
    const tpi_option_row *row = tpi_option_find(name);
    if (!row) {
        errno = EINVAL;
        return -1;
    }
    return __atomic_load_n(row->value, __ATOMIC_RELAXED);
}

int tp_option_at(size_t index, tp_option_desc *out)
{
    tpi_options_ensure_init();
    if (index >= TPI_OPTION_COUNT || !out) return -1;
    const tpi_option_row *row = &tpi_option_rows[index];
    out->name = row->name;
    out->type = tpi_type_names[TPI_OPT_TYPE(row->type)];
    out->description = row->description;
    out->value = __atomic_load_n(row->value, __ATOMIC_RELAXED);
    out->default_value = row->def;
    out->min = row->min;
    out->max = row->max;
    return 0;
}

void tpi_options_print(void)
{
    char line[256];
    for (size_t i = 0; i < TPI_OPTION_COUNT; i++) {
        const tpi_option_row *row = &tpi_option_rows[i];
        int n;
        if (TPI_OPT_TYPE(row->type) == TPI_OPT_PATH)
            n = snprintf(line, sizeof line, "tierpool: option %-18s = %s\n", row->name,
                         *row->value ? tpi_option_texts[i] : "(none)");
        else
            n = snprintf(line, sizeof line, "tierpool: option %-18s = %lld%s\n", row->name, *row->value,
                         *row->value == row->def ? "" : " (set)");
        tpi_option_say(line, n, sizeof line);
    }
}
