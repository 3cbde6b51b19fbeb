/* SPDX-License-Identifier: MIT */
/*
 * cmd_options.c: `tierpool options`, every run-time option of the library
 * (tp_option_at): its type, default, the value it has in this process (so
 * from this environment's TIERPOOL_<NAME> variables), its range and what it
 * does. A bad value in the environment draws the library's own warning.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "tierpool.h"

#include <stdlib.h>
#include <string.h>

/* A value in the option's own terms: 64M, 250ms, 1s, on, json. */
static void format_value(char *buf, size_t cap, const char *type, long long v)
{
    if (strcmp(type, "bool") == 0) {
        snprintf(buf, cap, "%s", v ? "on" : "off");
    } else if (strcmp(type, "format") == 0) {
        snprintf(buf, cap, "%s", v == 1 ? "text" : v == 2 ? "json" : "0");
    } else if (strcmp(type, "path") == 0) {
        snprintf(buf, cap, "%s", v ? "(set)" : "(none)");
    } else if (strcmp(type, "milliseconds") == 0) {
        if (v == 0) snprintf(buf, cap, "0");
        else if (v % 1000 == 0) snprintf(buf, cap, "%llds", v / 1000);
        else snprintf(buf, cap, "%lldms", v);
    } else if (strcmp(type, "size") == 0) {
        static const char units[] = "KMGT";
        int u = -1;
        while (v && v % 1024 == 0 && u < 3) {
            v /= 1024;
            u++;
        }
        if (u >= 0) snprintf(buf, cap, "%lld%c", v, units[u]);
        else snprintf(buf, cap, "%lld", v);
    } else {
        snprintf(buf, cap, "%lld", v);
    }
}

static int options(int argc, char **argv)
{
    int status = cli_no_arguments(&cmd_options, argc, argv);
    if (status >= 0) return status;
    printf("%-18s %-13s %-9s %-9s %s\n", "OPTION", "TYPE", "DEFAULT", "CURRENT", "RANGE");
    tp_option_desc d;
    for (size_t i = 0; tp_option_at(i, &d) == 0; i++) {
        char def[32], cur[32], lo[32], hi[32], range[72] = "";
        format_value(def, sizeof def, d.type, d.default_value);
        format_value(cur, sizeof cur, d.type, d.value);
        format_value(lo, sizeof lo, d.type, d.min);
        format_value(hi, sizeof hi, d.type, d.max);
        if (strcmp(d.type, "bool") != 0 && strcmp(d.type, "format") != 0 && strcmp(d.type, "path") != 0)
            snprintf(range, sizeof range, "%s..%s", lo, hi);
        printf("%-18s %-13s %-9s %-9s %s\n    %s\n", d.name, d.type, def, cur, range, d.description);
        char env[64];
        snprintf(env, sizeof env, "TIERPOOL_%s", d.name);
        const char *set = getenv(env);
        if (set) printf("    set here: %s=%s\n", env, set);
    }
    printf("\nEach is read from TIERPOOL_<OPTION> at a process's first allocation, or set\n"
           "with tp_option_set(\"OPTION\", \"value\"). Sizes take K/M/G, durations ms or s,\n"
           "booleans 0/1/true/false/on/off, paths a file name.\n");
    return 0;
}

const command cmd_options = {
    "options", "", "list the library's options with their defaults and values here",
    "For each option: its type, default, the value it takes in this environment\n"
    "(the TIERPOOL_<OPTION> variables set here), its range and a description.\n",
    options,
};
