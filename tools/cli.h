/* SPDX-License-Identifier: MIT */
/*
 * cli.h: what the `tierpool` tool's files share.
 *
 *   tierpool.c        main, the table of subcommands, help, version
 *   cli.c             argument parsing, durations, byte units, clocks
 *   cmd_run.c         run: a program with libtierpool-malloc preloaded
 *   snapshot.c        reading a publishing process's segment (/tierpool.<pid>)
 *   stats_format.c    text, JSON and Prometheus from snapshot structs
 *   cmd_stats.c       stats and list
 *   cmd_top.c         top
 *   cmd_record.c      record (CSV)
 *   cmd_plot.c        plot (SVG)
 *   cmd_exporter.c    exporter (HTTP /metrics)
 *   cmd_classes.c     classes
 *   cmd_options.c     options
 *   cmd_profile.c     profile (a heap profile, through the segment)
 *
 * A subcommand is one `command` object in its own file and one row of the
 * table in tierpool.c. Exit status: 0, 1 for a failure (the process is not
 * publishing, a file cannot be written), 2 for a usage error.
 */
#ifndef TP_CLI_H
#define TP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum { EXIT_USAGE = 2 };

typedef struct command {
    const char *name;
    const char *usage;   /* the arguments, for help */
    const char *summary; /* one line */
    const char *help;    /* the options and what the command does, or "" */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
} command;

extern const command cmd_run, cmd_stats, cmd_list, cmd_top, cmd_record, cmd_plot, cmd_exporter, cmd_classes,
    cmd_options, cmd_bench, cmd_profile;

/* cmd_run.c: writes the path of the libtierpool-malloc that `run` preloads
 * into out; false (with a message) if it is not found. */
bool cli_find_library(char *out, size_t size);

/* Prints a command's usage, summary and help. */
void cli_print_help(const command *cmd, FILE *out);

/* ---- arguments ----
 * Options are parsed with getopt_long: "-n 1" and "-n1", "--iterations 1"
 * and "--iterations=1", options before or after the positional arguments,
 * "--" ends them. Each command lists its options in a struct option table
 * (each with a short letter, or a value above 255 for a long-only one) and
 * walks them with cli_getopt; -h/--help is added to every command. On a
 * usage error the parser prints a message and sets `failed`. */
#include <getopt.h>

typedef struct cli_parser {
    const command *cmd;
    int argc;
    char **argv;
    const char *short_options;     /* getopt's, ':' first */
    const struct option *options;  /* the command's, without help */
    struct option all[24];         /* the command's and help */
    bool failed;
    bool help;                     /* --help or -h was given (and printed) */
} cli_parser;

/* short_options as getopt takes them, without 'h' and without the leading
 * ':' (added here); options may be NULL. A leading '+' stops at the first
 * positional argument (for `run PROGRAM ARGS`). */
cli_parser cli_parser_init(const command *cmd, int argc, char **argv, const char *short_options,
                           const struct option *options);
/* The next option's value (its short letter or long-only value), or -1 at
 * the end of the options, after a usage error or --help. Its argument is in
 * optarg; the option as given is cli_option_name. */
int cli_getopt(cli_parser *p);
/* The option getopt just returned, as given ("-n", "--iterations"). */
const char *cli_option_name(const cli_parser *p);
/* The next positional argument (after cli_getopt returned -1), or NULL. */
const char *cli_next_argument(cli_parser *p);
/* Values of the current option's argument; false after a usage error. */
bool cli_duration_value(cli_parser *p, uint64_t min_ms, uint64_t *ms);
bool cli_count_value(cli_parser *p, long *count);
/* A positional process id into *pid: a usage error if it is not one, or if
 * *pid is already set. */
void cli_pid_argument(cli_parser *p, const char *arg, pid_t *pid);
/* After the arguments: false when the command must stop and return
 * cli_stop_status: after --help or a usage error, or when `missing` (what
 * is missing) is not NULL. */
bool cli_finish(cli_parser *p, const char *missing);
/* For a command that takes no arguments: -1 to go on, or the status to
 * return (0 after --help, EXIT_USAGE for an argument). */
int cli_no_arguments(const command *cmd, int argc, char **argv);
/* A usage error: prints "tierpool CMD: <message>" and a usage line; returns
 * EXIT_USAGE. */
int cli_usage_error(cli_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* What a command returns once parsing stopped early: 0 after --help,
 * EXIT_USAGE after an error. */
int cli_stop_status(const cli_parser *p);

/* ---- values ---- */

/* A process id: a positive decimal. */
bool cli_parse_pid(const char *text, pid_t *pid);
/* A duration: "250ms", "1s", "1.5s", "2m", "1h"; a bare number is
 * milliseconds, as in the TIERPOOL_* options (docs/tuning.md). */
bool cli_parse_duration(const char *text, uint64_t *ms);
/* Bytes with a binary unit: "512", "12.3K", "4.0M", "1.50G". */
void cli_format_bytes(char *buf, size_t cap, double bytes);
/* A count or a rate with a decimal unit: "950", "12.3K", "4.1M". */
void cli_format_count(char *buf, size_t cap, double count);
/* CLOCK_MONOTONIC in milliseconds, the clock of the segment's updated_ms. */
uint64_t cli_clock_ms(void);
/* Sleeps, waking early when a signal sets *stop (stop may be NULL). */
void cli_sleep_ms(uint64_t ms, volatile int *stop);
/* Sets *flag on SIGINT and SIGTERM (no SA_RESTART: blocking calls return). */
void cli_stop_on_signals(volatile int *flag);

/* ---- output ----
 * Formatters write a piece of text at a time through a cli_writer, so the
 * same code prints to a stream or fills a buffer (the exporter's). */
typedef struct cli_writer {
    void (*write)(void *arg, const char *text, size_t len);
    void *arg;
} cli_writer;

void cli_printf(cli_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cli_writer cli_file_writer(FILE *out);

typedef struct cli_buffer {
    char *data;
    size_t len, cap;
    bool failed; /* out of memory */
} cli_buffer;
cli_writer cli_buffer_writer(cli_buffer *b);
void cli_buffer_free(cli_buffer *b);

#endif /* TP_CLI_H */
