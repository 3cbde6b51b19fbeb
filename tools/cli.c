/* SPDX-License-Identifier: MIT */
/*
 * cli.c: what the subcommands share: walking the arguments, parsing
 * durations and pids, printing bytes and counts with units, clocks and
 * signals, and writers to a stream or a growing buffer.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cli_print_help(const command *cmd, FILE *out)
{
    fprintf(out, "usage: tierpool %s%s%s\n\n%s\n", cmd->name, *cmd->usage ? " " : "", cmd->usage, cmd->summary);
    if (*cmd->help) fprintf(out, "\n%s", cmd->help);
}

/* ---- arguments -------------------------------------------------------------------- */

cli_parser cli_parser_init(const command *cmd, int argc, char **argv, const char *short_options,
                           const struct option *options)
{
    static char shorts[64];
    bool stop_at_argument = short_options[0] == '+';
    snprintf(shorts, sizeof shorts, "%s:h%s", stop_at_argument ? "+" : "", short_options + stop_at_argument);
    cli_parser p = {.cmd = cmd, .argc = argc, .argv = argv, .short_options = shorts, .options = options};
    size_t n = 0;
    for (; options && options[n].name && n < sizeof p.all / sizeof p.all[0] - 2; n++) p.all[n] = options[n];
    p.all[n++] = (struct option){"help", no_argument, NULL, 'h'};
    p.all[n] = (struct option){0};
    optind = 0; /* a fresh scan (GNU: also resets getopt's state) */
    opterr = 0;
    return p;
}

int cli_usage_error(cli_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tierpool %s: ", p->cmd->name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: tierpool %s %s (see tierpool %s --help)\n", p->cmd->name, p->cmd->usage,
            p->cmd->name);
    p->failed = true;
    return EXIT_USAGE;
}

int cli_stop_status(const cli_parser *p)
{
    return p->failed ? EXIT_USAGE : 0;
}

const char *cli_option_name(const cli_parser *p)
{
    /* getopt has moved optind past the option (and its value): find it back */
    const char *arg = p->argv[optind - 1];
    if (optarg && arg == optarg && optind >= 2) arg = p->argv[optind - 2]; /* "-n 1" */
    return arg;
}

int cli_getopt(cli_parser *p)
{
    if (p->failed || p->help) return -1;
    int opt = getopt_long(p->argc, p->argv, p->short_options, p->all, NULL);
    if (opt == 'h') {
        cli_print_help(p->cmd, stdout);
        p->help = true;
        return -1;
    }
    if (opt == '?') {
        if (optopt && optopt < 256) cli_usage_error(p, "unknown option -%c", optopt);
        else cli_usage_error(p, "unknown option %s", p->argv[optind - 1]);
        return -1;
    }
    if (opt == ':') {
        cli_usage_error(p, "%s needs a value", p->argv[optind - 1]);
        return -1;
    }
    return opt;
}

const char *cli_next_argument(cli_parser *p)
{
    if (p->failed || p->help || optind >= p->argc) return NULL;
    return p->argv[optind++];
}

void cli_pid_argument(cli_parser *p, const char *arg, pid_t *pid)
{
    if (*pid) cli_usage_error(p, "unexpected argument '%s'", arg);
    else if (!cli_parse_pid(arg, pid)) cli_usage_error(p, "'%s' is not a process id", arg);
}

bool cli_finish(cli_parser *p, const char *missing)
{
    const char *extra;
    if (!p->help && !p->failed && (extra = cli_next_argument(p))) cli_usage_error(p, "unexpected argument '%s'", extra);
    if (p->help || p->failed) return false;
    if (missing) cli_usage_error(p, "%s", missing);
    return !missing;
}

int cli_no_arguments(const command *cmd, int argc, char **argv)
{
    cli_parser p = cli_parser_init(cmd, argc, argv, "", NULL);
    while (cli_getopt(&p) != -1) {
    }
    return cli_finish(&p, NULL) ? -1 : cli_stop_status(&p);
}

bool cli_duration_value(cli_parser *p, uint64_t min_ms, uint64_t *ms)
{
    const char *name = cli_option_name(p);
    if (!cli_parse_duration(optarg, ms) || *ms == 0) {
        cli_usage_error(p, "%s: '%s' is not a duration (250ms, 1s, 1.5s, 2m; a bare number is milliseconds)", name,
                        optarg);
        return false;
    }
    if (*ms < min_ms) {
        cli_usage_error(p, "%s: %s is %llu ms, below %llu ms (a bare number is milliseconds: 1s, 250ms)", name,
                        optarg, (unsigned long long)*ms, (unsigned long long)min_ms);
        return false;
    }
    return true;
}

bool cli_count_value(cli_parser *p, long *count)
{
    char *end;
    errno = 0;
    long n = strtol(optarg, &end, 10);
    if (end == optarg || *end || errno || n <= 0) {
        cli_usage_error(p, "%s: '%s' is not a positive number", cli_option_name(p), optarg);
        return false;
    }
    *count = n;
    return true;
}

/* ---- values --------------------------------------------------------------------------- */

bool cli_parse_pid(const char *text, pid_t *pid)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (end == text || *end || errno || n <= 0 || n > 0x7fffffffL) return false;
    *pid = (pid_t)n;
    return true;
}

bool cli_parse_duration(const char *text, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || !(v >= 0) || !isfinite(v)) return false;
    double scale;
    if (strcmp(end, "s") == 0) scale = 1000.0;
    else if (*end == '\0' || strcmp(end, "ms") == 0) scale = 1.0;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0) scale = 60000.0;
    else if (strcmp(end, "h") == 0) scale = 3600000.0;
    else return false;
    double r = v * scale;
    if (r > 1e15) return false;
    *ms = (uint64_t)(r + 0.5);
    return true;
}

/* value with a unit out of `units`, each `base` times the one before. */
static void format_scaled(char *buf, size_t cap, double value, double base, const char *units)
{
    size_t u = 0;
    while (value >= base * 0.9995 && units[u + 1]) {
        value /= base;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%.0f", value);
    else snprintf(buf, cap, "%.*f%c", value < 9.995 ? 2 : value < 99.95 ? 1 : 0, value, units[u]);
}

void cli_format_bytes(char *buf, size_t cap, double bytes)
{
    format_scaled(buf, cap, bytes, 1024.0, " KMGTP");
}

void cli_format_count(char *buf, size_t cap, double count)
{
    format_scaled(buf, cap, count, 1000.0, " KMGT");
}

uint64_t cli_clock_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

void cli_sleep_ms(uint64_t ms, volatile int *stop)
{
    struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR && !(stop && *stop)) {
    }
}

static volatile int *stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (stop_flag) *stop_flag = 1;
}

void cli_stop_on_signals(volatile int *flag)
{
    stop_flag = flag;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- output ------------------------------------------------------------------------------ */

void cli_printf(cli_writer *w, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    w->write(w->arg, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void write_file(void *arg, const char *text, size_t len)
{
    fwrite(text, 1, len, (FILE *)arg);
}

cli_writer cli_file_writer(FILE *out)
{
    return (cli_writer){write_file, out};
}

static void write_buffer(void *arg, const char *text, size_t len)
{
    cli_buffer *b = arg;
    if (b->failed) return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1) cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
}

cli_writer cli_buffer_writer(cli_buffer *b)
{
    return (cli_writer){write_buffer, b};
}

void cli_buffer_free(cli_buffer *b)
{
    free(b->data);
    *b = (cli_buffer){0};
}
