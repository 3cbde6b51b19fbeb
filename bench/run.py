#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Builds and runs tierpool's benchmarks, then writes bench/results/*.md.

  suite    every workload (bench/suite.py: single-thread batches, threads,
           cross-thread frees, a buffer pool, false sharing, large and huge
           blocks, realloc growth, C++ containers, python3, sqlite3, lua5.4)
           under glibc, tierpool, mimalloc, tcmalloc and jemalloc through
           LD_PRELOAD of the same binary: wall time, CPU time, peak RSS
           -> report.md, time.svg, memory.svg (bench/report.py)
  pair     bench/pair.c: single-thread malloc+free pairs and batches, every
           allocator in one process -> pair.md
  threads  bench/threads.c: multi-threaded workloads, one process per
           allocator (peers and libtierpool-malloc through LD_PRELOAD, and
           tierpool's API), throughput and peak RSS -> threads.md
  memory   bench/frag.c (resident memory through grow/shed/regrow/idle
           phases) and bench/purge_cycle.c (bursts and pauses), one process
           per allocator through LD_PRELOAD -> memory.md
  note     the design note's workload (bench/note.c: a server's buffers of
           64 B .. 1 MiB, allocation cost and waste) with the note's old
           BufferPool and tierpool's API beside the allocators, a key-value
           store evicting 80% of its values (bench/kv.c) and short-lived
           threads (bench/churn.c) -> note.md

`make bench` runs all four with the defaults (5 interleaved runs per figure,
3 for the memory ones, which pause on purpose; BENCH_RUNS=N or --runs N
sets both); `make bench-quick` with --quick (3 runs of smaller workloads, 1
for memory, no threads.md: the suite has the same workloads). Missing peers
are reported and skipped. Raw measurements go to bench/results/*.tsv; the
tables to bench/results/*.md. The exit status is 1 if a suite workload
failed under glibc or tierpool (a peer's failure is reported, not fatal).
Every report records the build folder's type and TP_* options (an existing
folder keeps its cached ones) and the TIERPOOL_* variables every run
inherits; TIERPOOL_PASSTHROUGH is refused.
Only one benchmark runs at a time on a machine: a second one waits for the
first (a lock file in /tmp).
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
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py)
import suite  # noqa: E402  (bench/suite.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = ["libjemalloc2", "libmimalloc2.0", "libtcmalloc-minimal4"]
# name -> shared object preloaded for the threaded workloads
PRELOAD = {"mimalloc": "libmimalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4",
           "jemalloc": "libjemalloc.so.2"}
# (workload, threads) of bench/threads.c
THREAD_CONFIGS = [("own", 1), ("own", 2), ("larson", 2), ("prodcons", 2)]
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
        "commit": commit or "(not a git checkout)",
        "compiler": cc[0] if cc else "",
    }


def tierpool_environment():
    """The caller's TIERPOOL_* variables, which every run inherits, as
    "NAME=value" text for the reports ("none" without any). Refuses
    TIERPOOL_PASSTHROUGH, which would measure the C library as tierpool."""
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("TIERPOOL_"))
    passthrough = os.environ.get("TIERPOOL_PASSTHROUGH", "").strip().lower()
    if passthrough not in ("", "0", "false"):
        raise SystemExit(f"bench: TIERPOOL_PASSTHROUGH={passthrough}: tierpool would hand every call to the "
                         "C library and be measured as glibc; unset it")
    return " ".join(shlex.quote(f"{k}={v}") for k, v in env) or "none"


def build_options(build_dir):
    """The build folder's type, C flags and TP_* options from its CMake
    cache: an existing folder keeps what it was configured with."""
    cache = {}
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for line in f:
            name, sep, value = line.rstrip("\n").partition("=")
            if sep and ":" in name and not line.startswith(("#", "//")):
                key, kind = name.split(":", 1)
                cache[key] = (kind, value)
    build_type = cache.get("CMAKE_BUILD_TYPE", ("", ""))[1]
    flags = [cache.get(k, ("", ""))[1] for k in ("CMAKE_C_FLAGS", "CMAKE_C_FLAGS_" + build_type.upper())]
    options = [f"{k}={v}" for k, (kind, v) in sorted(cache.items())
               if k.startswith("TP_") and kind in ("BOOL", "STRING")]
    return f"{build_type or '(no type)'}, C flags `{' '.join(f for f in flags if f)}`, {' '.join(options)}"


def build(build_dir):
    subprocess.run(["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2), "--target",
                    "tp_bench_pair", "tp_bench_threads", "tp_bench_maxrss", "tp_bench_frag",
                    "tp_bench_purge_cycle", "tp_bench_bufpool", "tp_bench_cache", "tp_bench_big",
                    "tp_bench_note", "tp_bench_kv", "tp_bench_churn",
                    "tp_bench_containers", "tierpool-malloc"],
                   check=True, stdout=subprocess.DEVNULL)


def shared_object(name):
    """Full path of an installed shared object (ldconfig's cache), or None.
    ldconfig is in /sbin, which a user's PATH may lack."""
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        cache = sh([ldconfig, "-p"])
        if cache:
            break
    for line in cache.splitlines():
        f = line.split()
        if f and f[0] == name and "=>" in f:
            return f[-1]
    return None


def malloc_allocators(build_dir):
    """([(name, LD_PRELOAD path or None)], notes) for programs that call
    malloc/free: glibc, then each preloadable allocator that is present."""
    allocs = [("glibc", None)]
    notes = [["allocator", "glibc", "malloc/free"]]
    preloads = [("tierpool-malloc", os.path.join(build_dir, "libtierpool-malloc.so"))]
    preloads += [(name, shared_object(so) or so) for name, so in PRELOAD.items()]
    for name, path in preloads:
        if os.path.exists(path):
            allocs.append((name, path))
            notes.append(["allocator", name, "LD_PRELOAD=" + path])
        else:
            notes.append(["skip", name, path + " not found"])
    return allocs, notes


def run_with(name, preload, cmd):
    """Runs cmd with `preload` in LD_PRELOAD; the finished process."""
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = preload
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {name}: {' '.join(cmd)} failed:\n{proc.stderr}")
    return proc


def rotations(allocs, runs):
    """(run, allocators in this run's order): every run takes every
    allocator, starting one further each time."""
    for r in range(runs):
        k = r % len(allocs)
        yield r, allocs[k:] + allocs[:k]


def run_threads(build_dir, runs, scale):
    """Interleaved runs of bench/threads.c; returns (tsv text, notes)."""
    binary = os.path.join(build_dir, "bench", "tp_bench_threads")
    maxrss = os.path.join(build_dir, "bench", "tp_bench_maxrss")
    sys_allocs, sys_notes = malloc_allocators(build_dir)
    allocs = [("tierpool", "tp", None)] + [(name, "sys", path) for name, path in sys_allocs]
    notes = [["allocator", "tierpool", "tp_malloc/tp_free"]] + sys_notes
    lines = ["pattern\tthreads\tallocator\trun\tmops\tmaxrss_kb"]
    for r, order in rotations(allocs, runs):
        for workload, threads in THREAD_CONFIGS:
            for name, mode, preload in order:
                proc = run_with(name, preload, [maxrss, binary, mode, workload, str(threads), str(scale)])
                mops = proc.stdout.split()[4]
                if " bad 0" not in proc.stdout:  # threads.c's "check blocks N bad B"
                    raise SystemExit(f"bench: {name}: {workload}: damaged blocks: {proc.stdout}")
                kb = proc.stderr.split("maxrss_kb")[-1].split()[0]
                lines.append(f"{workload}\t{threads}\t{name}\t{r}\t{mops}\t{kb}")
    return "\n".join(lines) + "\n", notes


def run_memory(build_dir, runs, frag_mib, frag_pause, purge_rounds):
    """Interleaved runs of bench/frag.c and bench/purge_cycle.c under each
    allocator; returns (tsv text, notes). Values in MiB and seconds."""
    frag = os.path.join(build_dir, "bench", "tp_bench_frag")
    cycle = os.path.join(build_dir, "bench", "tp_bench_purge_cycle")
    allocs, notes = malloc_allocators(build_dir)
    mib = 1 << 20
    lines = ["pattern\tparam\tallocator\trun\tvalue\tvalue2"]
    for r, order in rotations(allocs, runs):
        for name, preload in order:
            out = run_with(name, preload, [frag, str(frag_mib), str(frag_pause)]).stdout
            for line in out.splitlines():
                f = line.split()
                if len(f) == 7 and f[1] == "live":  # PHASE live L rss R ratio X
                    lines.append(f"frag-{f[0]}\t{frag_mib}\t{name}\t{r}\t{int(f[4]) / mib:.1f}\t"
                                 f"{int(f[2]) / mib:.1f}")
                elif f and f[0] == "peak_rss":
                    lines.append(f"frag-peak\t{frag_mib}\t{name}\t{r}\t{int(f[1]) / mib:.1f}\t0")
            f = run_with(name, preload, [cycle, str(purge_rounds), "200"]).stdout.split()
            # seconds S rss_after_pause BYTES
            lines.append(f"purge_cycle\t200\t{name}\t{r}\t{float(f[1]) * 1000 / purge_rounds:.2f}\t"
                         f"{int(f[3]) / mib:.1f}")
    return "\n".join(lines) + "\n", notes


def run_note(build_dir, runs, steps, kv_values, churn_threads):
    """Interleaved runs of bench/note.c (every contender, both phases),
    bench/kv.c and bench/churn.c (the malloc allocators); returns (tsv text,
    notes). note.c's contenders: the old BufferPool (over glibc), each
    malloc allocator, and tierpool's API (tp_malloc, an explicit pool)."""
    note = os.path.join(build_dir, "bench", "tp_bench_note")
    kv = os.path.join(build_dir, "bench", "tp_bench_kv")
    churn = os.path.join(build_dir, "bench", "tp_bench_churn")
    sys_allocs, notes = malloc_allocators(build_dir)
    contenders = [("bufferpool", "bufferpool", None)] + [(n, "sys", p) for n, p in sys_allocs]
    contenders += [("tp_malloc", "tp", None), ("tp_pool", "pool", None)]
    notes = [["allocator", "bufferpool", "the note's BufferPool (64 KiB buffers, one mutex) over glibc"]] + notes
    notes += [["allocator", "tp_malloc", "tierpool's tp_malloc/tp_free"],
              ["allocator", "tp_pool", "one explicit tierpool pool (tp_pool_malloc/tp_free)"]]
    lines = ["pattern\tparam\tallocator\trun\tvalue\tvalue2"]
    for r, order in rotations(contenders, runs):
        for name, mode, preload in order:
            for phase in ("cost", "waste"):
                f = run_with(name, preload, [note, mode, phase, "2", str(steps)]).stdout.split()
                # cost MODE ns N loop_ns L | waste MODE mib W rss_mib R start_mib S requested_mib Q
                lines.append(f"note-{phase}\t{steps}\t{name}\t{r}\t{f[3]}\t{f[5]}")
            if mode != "sys":
                continue
            f = run_with(name, preload, [kv, str(kv_values)]).stdout.split()
            lines.append(f"kv\t{kv_values}\t{name}\t{r}\t{f[6]}\t{f[4]}")  # ratio, rss growth
            f = run_with(name, preload, [churn, str(churn_threads), "2", "256"]).stdout.split()
            lines.append(f"churn\t{churn_threads}\t{name}\t{r}\t{f[4]}\t0")
    return "\n".join(lines) + "\n", notes


def report_note(text, notes, info, command, runs, steps):
    value, _, order = parse(text, 4)
    allocs = [n[1] for n in notes if n[0] == "allocator"]
    out = header("the design note's workload (bench/note.c, bench/kv.c, bench/churn.c)", info, command, runs,
                 notes, "one process per contender")

    def one(pattern, title, label):
        keys = [k for k in order if k[0] == pattern]
        if not keys:
            return []
        med, spread = table(value, keys, allocs, "", label)
        return ["", title, "", med, "", "min-max over the runs:", "", spread]

    out += one("note-cost", f"## allocation cost: ns per take+return, 2 connections x {steps} steps, buffers "
               "untouched, the loop without allocator subtracted (lower is better)", lambda k: "ns")
    out += one("note-waste", "## waste: peak resident memory less the resident memory before the first buffer "
               "less the peak requested bytes, every byte written, MiB (lower is better)", lambda k: "MiB")
    out += one("kv", "## key-value store: resident memory grown over live bytes after 80% evicted and a "
               "second of light traffic (lower is better)", lambda k: f"{k[1]} values")
    out += one("churn", "## short-lived threads: resident memory grown, MiB, after their blocks "
               "(2 of 16..256 B each) are freed by the main thread (lower is better)", lambda k: f"{k[1]} threads")
    return "\n".join(out) + "\n"


def parse(text, column=4):
    """(samples, notes, order): samples[(pattern, size)][allocator] = [value
    of `column`, ...] from the tab-separated lines; '#' lines are notes."""
    samples, notes, order = {}, [], []
    for line in text.splitlines():
        if line.startswith("#"):
            notes.append(line[1:].strip().split("\t"))
            continue
        f = line.split("\t")
        if len(f) <= column or f[0] == "pattern":
            continue
        key = (f[0], int(f[1]))
        if key not in samples:
            order.append(key)
        samples.setdefault(key, {}).setdefault(f[2], []).append(float(f[column]))
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


def header(title, info, command, runs, notes, what):
    skipped = [f"{n[1]} ({n[2]})" for n in notes if n[0] == "skip"]
    out = [
        f"# tierpool: {title}",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {info['cpu']}, {info['nproc']} CPUs, Linux {info['kernel']}",
        f"- C library: {info['libc']}; peers: {info['peers']}",
        f"- compiler: {info['compiler']}; tierpool {info['commit']}",
        f"- tierpool build ({info['build_dir']}): {info['build']}",
        f"- TIERPOOL_* options in the environment of every run: {info['tierpool_env']}",
        f"- load average (1 min) before and after: {info['load']}",
        f"- each figure: median of {runs} interleaved runs of {what}; in brackets, the ratio to glibc's",
    ]
    if skipped:
        out.append(f"- skipped: {'; '.join(skipped)}")
    return out


def report_pair(text, info, command, runs):
    samples, notes, order = parse(text)
    allocs = [n[1] for n in notes if n[0] == "allocator"]
    out = header("malloc+free benchmark (bench/pair.c)", info, command, runs, notes,
                 "all allocators in one process")
    pairs = [k for k in order if k[0] == "pair"]
    batches = [k for k in order if k[0] != "pair"]
    if pairs:
        med, spread = table(samples, pairs, allocs, "size (B)", lambda k: str(k[1]))
        out += ["", "## ns per malloc+free pair (one thread, warmed up)", "", med,
                "", "min-max over the runs:", "", spread]
    if batches:
        med, spread = table(samples, batches, allocs, "order, size (B)", lambda k: f"{k[0]} {k[1]}")
        out += ["", "## ns per operation: 1000 mallocs, then 1000 frees in the given order", "", med,
                "", "min-max over the runs:", "", spread]
    return "\n".join(out) + "\n"


def report_threads(text, notes, info, command, runs, scale):
    mops, _, order = parse(text, 4)
    rss, _, _ = parse(text, 5)
    for row in rss.values():
        for a in row:
            row[a] = [kb / 1024 for kb in row[a]]
    allocs = [n[1] for n in notes if n[0] == "allocator"]
    out = header("multi-threaded workloads (bench/threads.c)", info, command, runs, notes,
                 f"one process per allocator, scale {scale}")
    label = lambda k: f"{k[0]}, {k[1]} thread{'s' if k[1] > 1 else ''}"
    med, spread = table(mops, order, allocs, "workload", label)
    out += ["", "## million operations per second (higher is better)", "", med,
            "", "min-max over the runs:", "", spread]
    med, _ = table(rss, order, allocs, "workload", label)
    out += ["", "## peak resident memory of the process, MiB (lower is better)", "", med]
    return "\n".join(out) + "\n"


def report_memory(text, notes, info, command, runs, frag_mib, purge_rounds):
    rss, _, order = parse(text, 4)
    live, _, _ = parse(text, 5)
    allocs = [n[1] for n in notes if n[0] == "allocator"]
    out = header("memory benchmarks (bench/frag.c, bench/purge_cycle.c)", info, command, runs, notes,
                 "one process per allocator (LD_PRELOAD)")
    frag = [k for k in order if k[0].startswith("frag-")]

    def phase(k):
        name = k[0][len("frag-"):]
        if name == "peak":
            return "peak"
        return f"{name} ({statistics.median(live[k]['glibc' if 'glibc' in live[k] else allocs[0]]):.0f})"

    med, spread = table(rss, frag, allocs, "phase (live MiB)", phase)
    out += ["", f"## fragmentation: resident MiB at the end of each phase, {frag_mib} MiB at the peak "
            "(lower is better)", "", med, "", "min-max over the runs:", "", spread]
    cycle = [k for k in order if k[0] == "purge_cycle"]
    ms, _ = table(rss, cycle, allocs, "", lambda k: "ms per burst")
    after, _ = table(live, cycle, allocs, "", lambda k: "resident MiB after the pause")
    out += ["", f"## purge cycle: {purge_rounds} bursts of 64 x 1 MiB filled and freed, 200 ms pauses "
            "(lower is better)", "", ms, after.split("\n", 2)[2]]
    return "\n".join(out) + "\n"


def run_suite(build_dir, args, runs, info, command, out_dir):
    """Runs bench/suite.py's workloads; writes report.md, suite.tsv and the
    charts; returns (report text, True if glibc and tierpool never failed)."""
    allocs, notes = malloc_allocators(build_dir)
    allocs = [("tierpool" if n == "tierpool-malloc" else n, p) for n, p in allocs]
    notes = [[k, "tierpool" if n == "tierpool-malloc" else n, v] for k, n, v in notes]
    # Secure mode's cost, measured beside the rest (not a peer: report.py).
    secure = [("tierpool-secure", p) for n, p in allocs if n == "tierpool"]
    allocs += secure
    notes += [["allocator", n, "LD_PRELOAD=" + p + " TIERPOOL_SECURE=1"] for n, p in secure]
    threads = args.threads or max(2, min(os.cpu_count() or 2, 8))
    timeout = args.timeout or (60 if args.quick else 300)
    workloads = suite.workloads(build_dir, args.quick, threads)
    if args.workload:
        workloads = [w for w in workloads if any(f in w.name for f in args.workload)]
    print(f"bench: suite, {len(workloads)} workloads x {len(allocs)} allocators x {runs} runs, "
          f"{threads} threads", file=sys.stderr)
    for n in notes:
        if n[0] == "skip":
            print(f"bench: skipping {n[1]}: {n[2]}", file=sys.stderr)
    samples, skipped = suite.run_suite(os.path.join(build_dir, "bench", "tp_bench_maxrss"), allocs,
                                       workloads, runs, timeout, os.path.join(build_dir, "bench", "work"))
    for name, why in skipped:
        print(f"bench: skipped workload {name}: {why}", file=sys.stderr)
    names = [a for a, _ in allocs]

    def render():
        head = header("allocator comparison (bench/suite.py)", info, command, runs, notes,
                      f"one process per allocator and workload, {threads} threads where threaded")
        head += ["- ratio to the best peer: tierpool's median over the best median of the other allocators "
                 "(glibc included), named in brackets"]
        return report.markdown(head, samples, workloads, skipped, names, runs,
                               ["The single-process malloc+free figures are in pair.md, tierpool's API "
                                "under threads in threads.md, fragmentation and purging in memory.md."])

    time_svg, memory_svg = report.charts(samples, workloads, names)
    for name, text in (("suite.tsv", suite.tsv(samples)), ("time.svg", time_svg), ("memory.svg", memory_svg)):
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)
    fatal = sorted({f"{w} under {a}" for (w, a), rs in samples.items() if a in ("glibc", "tierpool")
                    for s in rs if s["status"] != "ok"})
    if fatal:
        print("bench: FAILED: " + "; ".join(fatal), file=sys.stderr)
    return render, not fatal


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--quick", action="store_true", help="3 runs of smaller workloads (make bench-quick)")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "0")) or None,
                    help="runs per figure (default $BENCH_RUNS, else 5, quick 3)")
    ap.add_argument("--seconds", type=float, help="length of one pair measurement (default 0.02, quick 0.005)")
    ap.add_argument("--scale", type=int, help="threads.c work per run (default 20000, quick 4000)")
    ap.add_argument("--frag-mib", type=int, help="frag.c live MiB at the peak (default 128, quick 16)")
    ap.add_argument("--threads", type=int, help="threads of the suite's threaded workloads "
                    "(default: the CPUs, 2 to 8)")
    ap.add_argument("--timeout", type=int, help="seconds before a suite run is killed (default 300, quick 60)")
    ap.add_argument("--workload", action="append", metavar="TEXT",
                    help="run only the suite's workloads whose name contains TEXT (repeatable)")
    ap.add_argument("--only", choices=["suite", "pair", "threads", "memory", "note"], action="append",
                    help="run only these benchmarks (repeatable)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    runs = args.runs or (3 if args.quick else 5)
    seconds = args.seconds or (0.005 if args.quick else 0.02)
    scale = args.scale or (4000 if args.quick else 20000)
    # frag.c and purge_cycle.c take seconds a run (they pause on purpose)
    mem_runs = args.runs or (1 if args.quick else 3)
    frag_mib = args.frag_mib or (16 if args.quick else 128)
    frag_pause = 0.5 if args.quick else 2.0
    purge_rounds = 3 if args.quick else 20
    only = set(args.only or (["suite", "pair", "memory", "note"] if args.quick
                             else ["suite", "pair", "threads", "memory", "note"]))
    note_steps = 40000 if args.quick else 200000

    tierpool_env = tierpool_environment()
    started = time.monotonic()
    build(args.build_dir)
    print(f"bench: built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    info = machine()
    info.update(tierpool_env=tierpool_env, build_dir=os.path.relpath(args.build_dir, ROOT),
                build=build_options(args.build_dir))
    command = ("python3 bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])).strip()
    pair_cmd = [os.path.join(args.build_dir, "bench", "tp_bench_pair"),
                "--runs", str(runs), "--seconds", str(seconds)]
    results = []  # (name, raw text or None, function rendering the markdown)
    ok = True
    with open(LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("bench: another benchmark is running; waiting for it", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        load_before = os.getloadavg()[0]
        if "suite" in only:
            render, ok = run_suite(args.build_dir, args, runs, info, command, args.out)
            results.append(("report", None, render))
        if "pair" in only:
            print(f"bench: {' '.join(shlex.quote(c) for c in pair_cmd)}", file=sys.stderr)
            text = subprocess.run(pair_cmd, capture_output=True, text=True, check=True).stdout
            results.append(("pair", text, lambda t=text: report_pair(t, info, command, runs)))
        if "threads" in only:
            print(f"bench: bench/threads.c, {runs} runs, scale {scale}", file=sys.stderr)
            text, notes = run_threads(args.build_dir, runs, scale)
            results.append(("threads", text,
                            lambda t=text, n=notes: report_threads(t, n, info, command, runs, scale)))
        if "memory" in only:
            print(f"bench: bench/frag.c and bench/purge_cycle.c, {mem_runs} runs", file=sys.stderr)
            text, notes = run_memory(args.build_dir, mem_runs, frag_mib, frag_pause, purge_rounds)
            results.append(("memory", text, lambda t=text, n=notes: report_memory(
                t, n, info, command, mem_runs, frag_mib, purge_rounds)))
        if "note" in only:
            print(f"bench: bench/note.c, kv.c and churn.c, {runs} runs", file=sys.stderr)
            text, notes = run_note(args.build_dir, runs, note_steps, 60000 if args.quick else 300000,
                                   400 if args.quick else 2000)
            results.append(("note", text, lambda t=text, n=notes: report_note(t, n, info, command, runs, note_steps)))
    info["load"] = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    results = [(name, text, render()) for name, text, render in results]
    for name, text, md in results:
        if text is not None:
            with open(os.path.join(args.out, name + ".tsv"), "w") as f:
                f.write(text)
        with open(os.path.join(args.out, name + ".md"), "w") as f:
            f.write(md)
        print(md)
    print("bench: wrote " + ", ".join(os.path.join(os.path.relpath(args.out), n + ".md") for n, _, _ in results),
          file=sys.stderr)
    print(f"bench: {time.monotonic() - started:.0f} s in all", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
