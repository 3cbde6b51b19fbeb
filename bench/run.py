#!/usr/bin/env python3
"""Builds and runs bench/pair.c, then writes bench/results/pair.md.

`make bench` runs this with the defaults (7 interleaved runs per figure);
`make bench-quick` with --quick (3 shorter runs). The raw measurements go to
bench/results/pair.tsv, the tables of medians to bench/results/pair.md, which
is also printed. Only one benchmark runs at a time on a machine: a second one
waits for the first (a lock file in /tmp).
"""
import argparse
import datetime
import fcntl
import os
import platform
import shlex
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = ["libjemalloc2", "libmimalloc2.0", "libtcmalloc-minimal4"]
LOCK = "/tmp/tierpool-bench.lock"


def sh(cmd, **kw):
    """Output of a command, or '' if it fails."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine():
    model = ""
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    versions = []
    for pkg in PEERS:
        v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
        versions.append(f"{pkg} {v or 'not installed'}")
    libc = sh(["getconf", "GNU_LIBC_VERSION"]) or platform.libc_ver()[1]
    commit = sh(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    cc = sh(["cc", "--version"]).splitlines()
    return {
        "cpu": model or platform.processor(),
        "nproc": str(os.cpu_count()),
        "kernel": platform.release(),
        "libc": libc,
        "peers": ", ".join(versions),
        "commit": commit,
        "compiler": cc[0] if cc else "",
    }


def build(build_dir):
    subprocess.run(["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2),
                    "--target", "tp_bench_pair"], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(build_dir, "bench", "tp_bench_pair")


def parse(text):
    """(samples, notes): samples[(pattern, size)][allocator] = [ns, ...]."""
    samples, notes, order = {}, [], []
    for line in text.splitlines():
        if line.startswith("#"):
            notes.append(line[1:].strip().split("\t"))
            continue
        f = line.split("\t")
        if len(f) != 5 or f[0] == "pattern":
            continue
        pattern, size, alloc, _, ns = f
        key = (pattern, int(size))
        if key not in samples:
            order.append(key)
        samples.setdefault(key, {}).setdefault(alloc, []).append(float(ns))
    return samples, notes, order


def fmt(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def table(samples, keys, allocs, first_col, label):
    """Two markdown tables: medians with the ratio to glibc, then min-max."""
    head = f"| {first_col} | " + " | ".join(allocs) + " |"
    sep = "|---|" + "---:|" * len(allocs)
    med, spread = [head, sep], [head, sep]
    for key in keys:
        row = samples[key]
        base = statistics.median(row["glibc"]) if "glibc" in row else None
        cells, ranges = [], []
        for a in allocs:
            if a not in row:
                cells.append("-")
                ranges.append("-")
                continue
            m = statistics.median(row[a])
            r = m / base if base else None
            ratio = "" if r is None else f" ({r:.2f}x)" if r >= 0.1 else f" ({r:.3f}x)"
            cells.append(fmt(m) + ratio)
            ranges.append(f"{fmt(min(row[a]))}-{fmt(max(row[a]))}")
        name = label(key)
        med.append(f"| {name} | " + " | ".join(cells) + " |")
        spread.append(f"| {name} | " + " | ".join(ranges) + " |")
    return "\n".join(med), "\n".join(spread)


def report(samples, notes, order, info, command, runs):
    allocs = [n[1] for n in notes if n[0] == "allocator"]
    skipped = [f"{n[1]} ({n[2]})" for n in notes if n[0] == "skip"]
    pairs = [k for k in order if k[0] == "pair"]
    batches = [k for k in order if k[0] != "pair"]
    out = [
        "# tierpool: malloc+free benchmark (bench/pair.c)",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {info['cpu']}, {info['nproc']} CPUs, Linux {info['kernel']}",
        f"- C library: {info['libc']}; peers: {info['peers']}",
        f"- compiler: {info['compiler']}; tierpool {info['commit']}",
        f"- each figure: median of {runs} interleaved runs; in brackets, the median over glibc's",
    ]
    if skipped:
        out.append(f"- skipped: {'; '.join(skipped)}")
    if pairs:
        med, spread = table(samples, pairs, allocs, "size (B)", lambda k: str(k[1]))
        out += ["", "## ns per malloc+free pair (one thread, warmed up)", "", med,
                "", "min-max over the runs:", "", spread]
    if batches:
        med, spread = table(samples, batches, allocs, "order, size (B)", lambda k: f"{k[0]} {k[1]}")
        out += ["", "## ns per operation: 1000 mallocs, then 1000 frees in the given order", "", med,
                "", "min-max over the runs:", "", spread]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 shorter runs per figure")
    ap.add_argument("--runs", type=int, help="runs per figure (default 7, quick 3)")
    ap.add_argument("--seconds", type=float, help="length of one measurement (default 0.02, quick 0.005)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    seconds = args.seconds or (0.005 if args.quick else 0.02)

    binary = build(args.build_dir)
    os.makedirs(args.out, exist_ok=True)
    cmd = [binary, "--runs", str(runs), "--seconds", str(seconds)]
    with open(LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("bench: another benchmark is running; waiting for it", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        print(f"bench: {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr)
        text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(args.out, "pair.tsv"), "w") as f:
        f.write(text)
    samples, notes, order = parse(text)
    command = "python3 bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    md = report(samples, notes, order, machine(), command.strip(), runs)
    with open(os.path.join(args.out, "pair.md"), "w") as f:
        f.write(md)
    print(md, end="")


if __name__ == "__main__":
    main()
