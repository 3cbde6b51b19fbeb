# SPDX-License-Identifier: MIT
"""The suite's report for bench/run.py: bench/results/report.md (tables of
medians, ratios and geometric means) and two self-contained SVG bar charts,
time.svg and memory.svg, written without any plotting library.

A figure is the median over the runs that succeeded; a workload with a
failed run shows FAILED for that allocator and leaves the geometric means
(taken over the workloads where every allocator succeeded, so that all
columns average the same workloads). "Best peer" is the best of the other
allocators, glibc included; tierpool-secure (tierpool with TIERPOOL_SECURE=1,
shown for its cost) is no peer.
"""
import math
import statistics

# Bar colours per allocator, in the report's column order.
COLOURS = {"tierpool": "#d62728", "tierpool-secure": "#e377c2", "glibc": "#7f7f7f", "mimalloc": "#1f77b4",
           "tcmalloc": "#2ca02c", "jemalloc": "#ff7f0e"}
ORDER = ["tierpool", "tierpool-secure", "glibc", "mimalloc", "tcmalloc", "jemalloc"]


def ordered(allocs):
    return sorted(allocs, key=lambda a: (ORDER.index(a) if a in ORDER else len(ORDER), a))


def fmt(x):
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def ratio_text(r):
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"


class Figures:
    """Medians, spreads and failures of one measure ("wall", "cpu", "rss")
    of the suite's samples."""

    def __init__(self, samples, measure, workloads, allocs):
        self.workloads, self.allocs = workloads, allocs
        self.median, self.spread, self.failed = {}, {}, {}
        for (w, a), runs in samples.items():
            bad = [s["status"] for s in runs if s["status"] != "ok"]
            if bad:
                self.failed[(w, a)] = bad[0]
                continue
            vals = [s[measure] for s in runs]
            self.median[(w, a)] = statistics.median(vals)
            self.spread[(w, a)] = (min(vals), max(vals))

    def ratio(self, w, a):
        """a's median over glibc's for workload w, or None."""
        m, base = self.median.get((w, a)), self.median.get((w, "glibc"))
        return m / base if m is not None and base else None

    def complete(self):
        """The workloads every allocator ran without failing; if there are
        none (an allocator failed everywhere), those the others ran."""
        def done(allocs):
            return [w for w in self.workloads if all((w, a) in self.median for a in allocs)]
        return done(self.allocs) or done([a for a in self.allocs if any((w, a) in self.median
                                                                         for w in self.workloads)])

    def failures(self, a):
        """How many workloads failed under a."""
        return sum((w, a) in self.failed for w in self.workloads)

    def geomean(self, a):
        """Geometric mean of a's ratio to glibc over complete(), or None."""
        rs = [self.ratio(w, a) for w in self.complete()]
        rs = [r for r in rs if r]
        return math.exp(sum(math.log(r) for r in rs) / len(rs)) if rs else None

    def best_peer(self, values, target="tierpool"):
        """(value of target / best other value, name of that other), or None;
        values: {allocator: number}, lower is better."""
        if values.get(target) is None:
            return None
        peers = [(v, a) for a, v in values.items() if not a.startswith("tierpool") and v]
        if not peers:
            return None
        v, a = min(peers)
        return values[target] / v, a


def table(fig, unit, decimals_note=""):
    """A markdown table: median (ratio to glibc) per allocator, tierpool's
    ratio to the best peer, and a geometric-mean row."""
    allocs = fig.allocs
    head = "| workload | " + " | ".join(allocs) + " | tierpool / best peer |"
    out = [head, "|---|" + "---:|" * (len(allocs) + 1)]
    for w in fig.workloads:
        cells, values = [], {}
        for a in allocs:
            if (w, a) in fig.failed:
                cells.append(f"FAILED ({fig.failed[(w, a)]})")
                continue
            m = fig.median.get((w, a))
            if m is None:
                cells.append("-")
                continue
            values[a] = m
            r = fig.ratio(w, a)
            cells.append(fmt(m) + ("" if r is None else f" ({ratio_text(r)})"))
        bp = fig.best_peer(values) if "tierpool" in allocs else None
        cells.append("-" if bp is None else f"{ratio_text(bp[0])} ({bp[1]})")
        out.append(f"| {w} | " + " | ".join(cells) + " |")
    gm = {a: fig.geomean(a) for a in allocs}
    bp = fig.best_peer(gm) if "tierpool" in allocs else None
    def gm_cell(a):
        failed = fig.failures(a)
        return (("-" if gm[a] is None else f"**{ratio_text(gm[a])}**")
                + (f" ({failed} failed)" if failed else ""))

    out.append("| **geometric mean, ratio to glibc** | " + " | ".join(gm_cell(a) for a in allocs)
               + " | " + ("-" if bp is None else f"**{ratio_text(bp[0])}** ({bp[1]})") + " |")
    n = len(fig.complete())
    note = (f"Median {unit} over the runs (in brackets, the ratio to glibc's median){decimals_note}. "
            f"The geometric mean is over the {n} of {len(fig.workloads)} workloads that every allocator "
            "ran without failing (an allocator that failed them all left aside); a column with failures "
            "says how many.")
    return note, "\n".join(out)


def spread_table(fig):
    allocs = fig.allocs
    out = ["| workload | " + " | ".join(allocs) + " |", "|---|" + "---:|" * len(allocs)]
    for w in fig.workloads:
        cells = []
        for a in allocs:
            s = fig.spread.get((w, a))
            cells.append("-" if s is None else f"{fmt(s[0])}-{fmt(s[1])}")
        out.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def ran(samples, suite, allocs, in_means=True):
    """Names of the workloads of `suite` with samples, those in the means
    or those apart."""
    return [w.name for w in suite if w.in_means == in_means and any((w.name, a) in samples for a in allocs)]


def markdown(header_lines, samples, suite, skipped, allocs, runs, notes):
    """report.md's text. suite: the Workload objects run (for the list of
    commands); notes: extra lines for the end (where the other reports are)."""
    names = ran(samples, suite, allocs)
    apart = ran(samples, suite, allocs, in_means=False)
    allocs = ordered(allocs)
    wall = Figures(samples, "wall", names, allocs)
    cpu = Figures(samples, "cpu", names, allocs)
    rss = Figures(samples, "rss", names, allocs)
    out = list(header_lines)
    if apart:
        start_wall = Figures(samples, "wall", apart, allocs)
        start_rss = Figures(samples, "rss", apart, allocs)
        out += ["", "## Start-up", "",
                "What loading the allocator costs a process that allocates almost nothing: median wall "
                "time in seconds and peak resident memory in MiB. Most of the peak RSS of the small "
                "workloads below is this. Not in the geometric means.", "",
                "| | " + " | ".join(allocs) + " |", "|---|" + "---:|" * len(allocs)]
        for w in apart:
            for label, fig in ((f"{w}, wall s", start_wall), (f"{w}, peak RSS MiB", start_rss)):
                cells = [f"FAILED ({fig.failed[(w, a)]})" if (w, a) in fig.failed else
                         "-" if (w, a) not in fig.median else fmt(fig.median[(w, a)]) for a in allocs]
                out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", "## Wall time, seconds (lower is better)", ""]
    note, tab = table(wall, "wall time in seconds")
    out += [note, "", tab, "", "![wall time relative to glibc](time.svg)"]
    out += ["", "## Peak resident memory, MiB (lower is better)", ""]
    note, tab = table(rss, "peak resident memory (ru_maxrss) in MiB",
                      "; the start-up row above is what a process that allocates almost nothing peaks at"
                      if apart else "")
    out += [note, "", tab, "", "![peak resident memory relative to glibc](memory.svg)"]
    out += ["", "## CPU time (user + system), seconds (lower is better)", ""]
    note, tab = table(cpu, "CPU time in seconds")
    out += [note, "", tab]
    out += ["", f"## Wall time, min-max over the {runs} runs", "", spread_table(wall)]
    failures = [(w, a, s) for (w, a), rs in samples.items() for s in rs if s["status"] != "ok"]
    if failures:
        out += ["", "## Failed runs", "", "A failed run is never counted as a time; its workload shows FAILED.", ""]
        for w, a, s in failures:
            tail = s.get("stderr", "").strip().replace("\n", " / ")[-300:]
            out.append(f"- {w}, {a}, run {s['run'] + 1}: {s['status']}" + (f": `{tail}`" if tail else ""))
    out += ["", "## Workloads", "",
            "Every workload is one program, run under each allocator with LD_PRELOAD of the same binary "
            "(glibc: no preload), started through bench/maxrss.c.", "",
            "| workload | what it does | command |", "|---|---|---|"]
    for w in suite:
        cmd = " ".join(a if " " not in a else f"'{a}'" for a in w.argv)
        env = " ".join(f"{k}={v}" for k, v in sorted(w.env.items()))
        out.append(f"| {w.name} | {w.what} | `{(env + ' ') if env else ''}{cmd}` |")
    for name, why in skipped:
        out.append(f"| {name} | skipped: {why} | |")
    out += [""] + notes
    return "\n".join(out) + "\n"


# ---- SVG ------------------------------------------------------------------------

def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_chart(fig, title):
    """A grouped bar chart of every allocator's ratio to glibc per workload
    (glibc is the 1x line), on a log scale, with a geometric-mean group at
    the end. Self-contained SVG text."""
    bars = [a for a in fig.allocs if a != "glibc"]
    groups = [(w, {a: fig.ratio(w, a) for a in bars}, {a: (w, a) in fig.failed for a in bars})
              for w in fig.workloads]
    groups.append(("geometric mean", {a: fig.geomean(a) for a in bars}, {a: False for a in bars}))
    ratios = [r for _, rs, _ in groups for r in rs.values() if r]
    lo_exp = max(-5, min([0] + [math.floor(math.log2(r)) for r in ratios]))
    hi_exp = min(5, max([0] + [math.ceil(math.log2(r)) for r in ratios]))
    if hi_exp - lo_exp < 2:
        lo_exp, hi_exp = lo_exp - 1, hi_exp + 1
    bar_w, gap = 9, 16
    group_w = bar_w * len(bars) + gap
    left, top, plot_h, bottom = 60, 56, 300, 120
    width = max(left + group_w * len(groups) + 20, 720)
    height = top + plot_h + bottom

    def y(r):
        e = min(max(math.log2(r), lo_exp), hi_exp)
        return top + (hi_exp - e) / (hi_exp - lo_exp) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">{esc(title)}</text>']
    # legend
    x = left
    for a in bars:
        out.append(f'<rect x="{x}" y="32" width="10" height="10" fill="{COLOURS.get(a, "#9467bd")}"/>')
        out.append(f'<text x="{x + 14}" y="41">{esc(a)}</text>')
        x += 14 + 7 * len(a) + 18
    out.append(f'<text x="{x}" y="41" fill="#555">glibc = 1x (log scale; lower is better)</text>')
    # grid
    for e in range(lo_exp, hi_exp + 1):
        gy = y(2.0 ** e)
        label = f"{2.0 ** e:g}x"
        stroke = "#000" if e == 0 else "#ddd"
        out.append(f'<line x1="{left}" y1="{gy:.1f}" x2="{width - 10}" y2="{gy:.1f}" stroke="{stroke}"/>')
        out.append(f'<text x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end">{label}</text>')
    base = y(1.0)
    for g, (name, rs, failed) in enumerate(groups):
        gx = left + g * group_w + gap / 2
        if name == "geometric mean":
            out.append(f'<line x1="{gx - gap / 2:.1f}" y1="{top}" x2="{gx - gap / 2:.1f}" '
                       f'y2="{top + plot_h}" stroke="#999" stroke-dasharray="3,3"/>')
        for i, a in enumerate(bars):
            bx = gx + i * bar_w
            r = rs.get(a)
            if failed.get(a):
                out.append(f'<text x="{bx + bar_w / 2:.1f}" y="{base - 3:.1f}" text-anchor="middle" '
                           f'fill="#d00" font-weight="bold">x<title>{esc(a)}: {esc(name)} failed</title></text>')
                continue
            if not r:
                continue
            ry = y(r)
            y0, h = min(ry, base), max(abs(ry - base), 1)
            out.append(f'<rect x="{bx:.1f}" y="{y0:.1f}" width="{bar_w - 1}" height="{h:.1f}" '
                       f'fill="{COLOURS.get(a, "#9467bd")}"><title>{esc(a)}, {esc(name)}: '
                       f'{ratio_text(r)} glibc</title></rect>')
        lx, ly = gx + group_w / 2 - gap / 2, top + plot_h + 10
        weight = ' font-weight="bold"' if name == "geometric mean" else ""
        out.append(f'<text x="{lx:.1f}" y="{ly}" text-anchor="end"{weight} '
                   f'transform="rotate(-45 {lx:.1f} {ly})">{esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def charts(samples, suite, allocs):
    """(time.svg text, memory.svg text)."""
    names = ran(samples, suite, allocs)
    allocs = ordered(allocs)
    wall = Figures(samples, "wall", names, allocs)
    rss = Figures(samples, "rss", names, allocs)
    return (svg_chart(wall, "Wall time relative to glibc, median per workload"),
            svg_chart(rss, "Peak resident memory relative to glibc, median per workload"))
