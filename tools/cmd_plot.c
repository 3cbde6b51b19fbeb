/* SPDX-License-Identifier: MIT */
/*
 * cmd_plot.c: `tierpool plot FILE.csv -o FILE.svg`, a self-contained SVG of
 * a `tierpool record` file: live, committed and resident bytes (MiB) over
 * time in one panel, allocations and frees per second in a second, each
 * with axes, ticks, grid lines and a legend, under a title.
 *
 * The columns are found by name in the header, so a file with more or
 * fewer columns than record writes today still plots what it has. A ring
 * file (`tierpool record --ring`) is read from its oldest slot. Rows that
 * are not numbers (the header of a second recording appended to the file,
 * blank ring slots, or nan, inf or a value past PLOT_MAX in a column drawn)
 * are skipped; where time goes back (a second recording) the lines start
 * anew.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { COL_TIME, COL_LIVE, COL_COMMITTED, COL_RESIDENT, COL_ALLOC_RATE, COL_FREE_RATE, COLS };
static const char *const column_names[COLS] = {"time_s", "live_bytes", "committed_bytes", "resident_bytes",
                                               "alloc_rate", "free_rate"};

typedef struct series {
    double (*rows)[COLS];
    size_t count, cap;
    bool has[COLS];
} series;

/* ---- reading the CSV ------------------------------------------------------------------- */

/* Splits a line at commas into fields (in place); returns the count. */
static int split(char *line, char **fields, int cap)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *f = line; n < cap; f++) {
        fields[n++] = f;
        f = strchr(f, ',');
        if (!f) break;
        *f = '\0';
    }
    return n;
}

/* Values beyond this (and nan, inf) are not drawn: their row is skipped,
 * so every coordinate written is a finite number. */
#define PLOT_MAX 1e15

static bool read_csv(FILE *in, series *s, const char *path)
{
    char line[4096], *fields[64];
    int index[COLS];
    bool header = false;
    long ring_rows = 0, ring_next = 0, slot = -1; /* a ring file (tierpool record --ring) */
    size_t first_new = 0;                        /* rows before it are newer than the ones after */
    while (fgets(line, sizeof line, in)) {
        if (!header && s->count == 0 && slot < 0 &&
            sscanf(line, "# tierpool ring rows=%ld next=%ld", &ring_rows, &ring_next) == 2)
            continue;
        if (line[0] == '#') continue;
        if (header && ring_rows && ++slot == ring_next) first_new = s->count;
        int n = split(line, fields, 64);
        if (!header) {
            if (n == 1 && !*fields[0]) continue;
            for (int c = 0; c < COLS; c++) {
                index[c] = -1;
                for (int i = 0; i < n; i++)
                    if (strcmp(fields[i], column_names[c]) == 0) index[c] = i;
                s->has[c] = index[c] >= 0;
            }
            if (!s->has[COL_TIME]) {
                fprintf(stderr, "tierpool plot: %s has no time_s column (is it from tierpool record?)\n", path);
                return false;
            }
            header = true;
            continue;
        }
        double row[COLS] = {0};
        bool ok = true;
        for (int c = 0; c < COLS && ok; c++) {
            if (index[c] < 0) continue;
            char *end;
            ok = index[c] < n && (row[c] = strtod(fields[index[c]], &end), end != fields[index[c]] && !*end) &&
                 fabs(row[c]) <= PLOT_MAX;
        }
        if (!ok) continue;
        if (s->count == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 1024;
            void *rows = realloc(s->rows, cap * sizeof *s->rows);
            if (!rows) {
                fprintf(stderr, "tierpool plot: out of memory\n");
                return false;
            }
            s->rows = rows;
            s->cap = cap;
        }
        memcpy(s->rows[s->count++], row, sizeof row);
    }
    /* A ring's rows from the oldest: the slots from `next` on, then those before. */
    if (ring_rows && first_new > 0 && first_new < s->count) {
        size_t older = s->count - first_new;
        double(*rotated)[COLS] = malloc(s->count * sizeof *rotated);
        if (!rotated) {
            fprintf(stderr, "tierpool plot: out of memory\n");
            return false;
        }
        memcpy(rotated, s->rows + first_new, older * sizeof *rotated);
        memcpy(rotated + older, s->rows, first_new * sizeof *rotated);
        memcpy(s->rows, rotated, s->count * sizeof *rotated);
        free(rotated);
    }
    if (!s->count) fprintf(stderr, "tierpool plot: %s has no rows to plot\n", path);
    return s->count > 0;
}

/* ---- drawing ------------------------------------------------------------------------------ */

enum { WIDTH = 900, HEIGHT = 640, LEFT = 90, RIGHT = 870 };

typedef struct axis {
    double min, max, step; /* data range, rounded out to whole ticks */
} axis;

typedef struct panel {
    int top, bottom;
    axis x, y;
} panel;

/* Ticks at 1, 2, 2.5 or 5 times a power of ten, about `ticks` of them. */
static axis nice_axis(double min, double max, int ticks)
{
    if (!(max > min)) max = min + 1.0;
    double raw = (max - min) / ticks;
    double mag = pow(10.0, floor(log10(raw)));
    static const double steps[] = {1.0, 2.0, 2.5, 5.0, 10.0};
    double step = mag * 10.0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (mag * steps[i] >= raw) {
            step = mag * steps[i];
            break;
        }
    }
    return (axis){floor(min / step + 1e-9) * step, ceil(max / step - 1e-9) * step, step};
}

static double px_x(const panel *p, double x)
{
    return LEFT + (x - p->x.min) / (p->x.max - p->x.min) * (RIGHT - LEFT);
}

static double px_y(const panel *p, double y)
{
    return p->bottom - (y - p->y.min) / (p->y.max - p->y.min) * (p->bottom - p->top);
}

/* A tick label: as many decimals as the step needs, or a K/M unit. */
static void tick_label(char *buf, size_t cap, double value, double step, bool counts)
{
    if (counts && fabs(value) >= 1000.0) {
        cli_format_count(buf, cap, value);
        return;
    }
    int decimals = 0;
    while (decimals < 6 && fabs(step * pow(10.0, decimals) - round(step * pow(10.0, decimals))) > 1e-6) decimals++;
    snprintf(buf, cap, "%.*f", decimals, fabs(value) < step * 1e-9 ? 0.0 : value);
}

static void xml_text(FILE *out, const char *text)
{
    for (; *text; text++) {
        switch (*text) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default:
            if ((unsigned char)*text >= 0x20) fputc(*text, out);
        }
    }
}

static void draw_axes(FILE *out, const panel *p, const char *y_label, bool counts, bool x_labels)
{
    char label[32];
    fprintf(out, "<g class=\"grid\" stroke=\"#dddddd\" stroke-width=\"1\">\n");
    for (double y = p->y.min; y <= p->y.max + p->y.step * 1e-6; y += p->y.step)
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", LEFT, px_y(p, y), RIGHT, px_y(p, y));
    for (double x = p->x.min; x <= p->x.max + p->x.step * 1e-6; x += p->x.step)
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", px_x(p, x), p->top, px_x(p, x),
                p->bottom);
    fprintf(out, "</g>\n<g class=\"axes\" stroke=\"#333333\" stroke-width=\"1\">\n");
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", LEFT, p->bottom, RIGHT, p->bottom);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", LEFT, p->top, LEFT, p->bottom);
    for (double y = p->y.min; y <= p->y.max + p->y.step * 1e-6; y += p->y.step)
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", LEFT - 5, px_y(p, y), LEFT, px_y(p, y));
    for (double x = p->x.min; x <= p->x.max + p->x.step * 1e-6; x += p->x.step)
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", px_x(p, x), p->bottom, px_x(p, x),
                p->bottom + 5);
    fprintf(out, "</g>\n<g class=\"ticks\" font-size=\"11\" fill=\"#333333\">\n");
    for (double y = p->y.min; y <= p->y.max + p->y.step * 1e-6; y += p->y.step) {
        tick_label(label, sizeof label, y, p->y.step, counts);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", LEFT - 8, px_y(p, y) + 4, label);
    }
    if (x_labels) {
        for (double x = p->x.min; x <= p->x.max + p->x.step * 1e-6; x += p->x.step) {
            tick_label(label, sizeof label, x, p->x.step, false);
            fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px_x(p, x), p->bottom + 18,
                    label);
        }
    }
    fprintf(out, "</g>\n");
    double mid = (p->top + p->bottom) / 2.0;
    fprintf(out,
            "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %d %.1f)\">%s</text>\n",
            22, mid, 22, mid, y_label);
}

/* One line per run of rows whose time goes forward. */
static void draw_line(FILE *out, const panel *p, const series *s, int col, double scale, const char *color,
                      const char *dash)
{
    fprintf(out, "<g class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s%s%s>\n", column_names[col],
            color, *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
    for (size_t i = 0; i < s->count;) {
        fprintf(out, "<polyline points=\"");
        size_t j = i;
        do {
            fprintf(out, "%s%.1f,%.1f", j > i ? " " : "", px_x(p, s->rows[j][COL_TIME]), px_y(p, s->rows[j][col] * scale));
            j++;
        } while (j < s->count && s->rows[j][COL_TIME] >= s->rows[j - 1][COL_TIME]);
        fprintf(out, "\"/>\n");
        i = j;
    }
    fprintf(out, "</g>\n");
}

typedef struct legend_entry {
    int col;
    const char *label, *color, *dash;
} legend_entry;

/* A row of entries above the panel's right end. */
static void draw_legend(FILE *out, const panel *p, const series *s, const legend_entry *entries, int count)
{
    int x = RIGHT, y = p->top - 8;
    fprintf(out, "<g class=\"legend\" font-size=\"12\">\n");
    for (int i = count - 1; i >= 0; i--) {
        if (!s->has[entries[i].col]) continue;
        x -= 7 * (int)strlen(entries[i].label) + 14;
        fprintf(out, "<text x=\"%d\" y=\"%d\">%s</text>\n", x, y, entries[i].label);
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2.5\"%s%s%s/>\n",
                x - 30, y - 4, x - 6, y - 4, entries[i].color, *entries[i].dash ? " stroke-dasharray=\"" : "",
                entries[i].dash, *entries[i].dash ? "\"" : "");
        x -= 36;
    }
    fprintf(out, "</g>\n");
}

/* The panel's y range: 0 to the highest value of its columns. */
static panel make_panel(const series *s, int top, int bottom, const int *cols, int ncols, double scale)
{
    double tmin = s->rows[0][COL_TIME], tmax = tmin, ymax = 0;
    for (size_t i = 0; i < s->count; i++) {
        if (s->rows[i][COL_TIME] < tmin) tmin = s->rows[i][COL_TIME];
        if (s->rows[i][COL_TIME] > tmax) tmax = s->rows[i][COL_TIME];
        for (int c = 0; c < ncols; c++)
            if (s->has[cols[c]] && s->rows[i][cols[c]] * scale > ymax) ymax = s->rows[i][cols[c]] * scale;
    }
    return (panel){top, bottom, nice_axis(tmin, tmax, 10), nice_axis(0.0, ymax > 0 ? ymax : 1.0, 5)};
}

static void draw_panel(FILE *out, const series *s, int top, int bottom, const legend_entry *entries, int count,
                       double scale, const char *y_label, bool counts, bool x_labels)
{
    int cols[4];
    for (int i = 0; i < count; i++) cols[i] = entries[i].col;
    panel p = make_panel(s, top, bottom, cols, count, scale);
    draw_axes(out, &p, y_label, counts, x_labels);
    for (int i = 0; i < count; i++)
        if (s->has[entries[i].col]) draw_line(out, &p, s, entries[i].col, scale, entries[i].color, entries[i].dash);
    draw_legend(out, &p, s, entries, count);
}

static void write_svg(FILE *out, const series *s, const char *title)
{
    static const legend_entry memory[] = {
        {COL_COMMITTED, "committed", "#ff7f0e", ""},
        {COL_RESIDENT, "resident", "#2ca02c", ""},
        {COL_LIVE, "live", "#1f77b4", ""},
    };
    static const legend_entry activity[] = {
        {COL_ALLOC_RATE, "allocations/s", "#d62728", ""},
        {COL_FREE_RATE, "frees/s", "#9467bd", "5,3"},
    };
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\">\n",
            WIDTH, HEIGHT, WIDTH, HEIGHT);
    fprintf(out, "<title>");
    xml_text(out, title);
    fprintf(out, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", WIDTH, HEIGHT);
    fprintf(out, "<text x=\"%d\" y=\"30\" font-size=\"16\" font-weight=\"bold\" text-anchor=\"middle\">",
            (LEFT + RIGHT) / 2);
    xml_text(out, title);
    fprintf(out, "</text>\n");
    fprintf(out, "<text x=\"%d\" y=\"52\" font-size=\"12\" fill=\"#555555\">memory</text>\n", LEFT);
    draw_panel(out, s, 60, 370, memory, 3, 1.0 / (1024.0 * 1024.0), "MiB", false, true);
    fprintf(out, "<text x=\"%d\" y=\"422\" font-size=\"12\" fill=\"#555555\">allocation rate</text>\n", LEFT);
    draw_panel(out, s, 430, 580, activity, 2, 1.0, "per second", true, true);
    fprintf(out, "<text x=\"%d\" y=\"624\" font-size=\"12\" text-anchor=\"middle\">time (s)</text>\n",
            (LEFT + RIGHT) / 2);
    fprintf(out, "</svg>\n");
}

static int plot(int argc, char **argv)
{
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        {"title", required_argument, NULL, 256},
        {0},
    };
    cli_parser p = cli_parser_init(&cmd_plot, argc, argv, "o:", options);
    const char *input = NULL, *output = NULL, *title = NULL;
    int opt;
    while ((opt = cli_getopt(&p)) != -1) {
        if (opt == 'o') output = optarg;
        else title = optarg;
    }
    input = cli_next_argument(&p);
    if (!cli_finish(&p, input ? NULL : "no CSV file given")) return cli_stop_status(&p);

    FILE *in = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
    if (!in) {
        fprintf(stderr, "tierpool plot: cannot open %s: %s\n", input, strerror(errno));
        return 1;
    }
    series s = {0};
    bool ok = read_csv(in, &s, input);
    if (in != stdin) fclose(in);
    int rc = 1;
    if (ok) {
        FILE *out = !output || strcmp(output, "-") == 0 ? stdout : fopen(output, "w");
        if (out) {
            char heading[512];
            if (!title) {
                const char *base = strrchr(input, '/');
                snprintf(heading, sizeof heading, "tierpool record: %s", base ? base + 1 : input);
            }
            write_svg(out, &s, title ? title : heading);
            rc = ferror(out) ? 1 : 0;
            if (out != stdout && fclose(out) != 0) rc = 1;
        }
        if (rc) fprintf(stderr, "tierpool plot: cannot write %s: %s\n", output, strerror(errno));
    }
    free(s.rows);
    return rc;
}

const command cmd_plot = {
    "plot", "FILE.csv [-o FILE.svg] [--title TEXT]", "draw a tierpool record file as an SVG chart",
    "options:\n"
    "  -o, --output FILE   write the SVG to FILE (default: stdout)\n"
    "      --title TEXT    the chart's title (default: tierpool record: FILE.csv)\n"
    "\n"
    "Two panels over time: live, committed and resident memory in MiB, then\n"
    "allocations and frees per second. The SVG is self-contained (no scripts,\n"
    "fonts or images): open it in a browser or put it in a document.\n",
    plot,
};
