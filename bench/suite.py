# SPDX-License-Identifier: MIT
"""The workload suite of bench/run.py: every workload under every allocator
through LD_PRELOAD of the same binary, interleaved run by run.

Each run goes through bench/maxrss.c (tp_bench_maxrss), which sets
LD_PRELOAD for the workload only and reports its wall time, CPU time
(user + sys) and peak resident memory (ru_maxrss from wait4). A run counts
as failed, never as fast, when it exits non-zero, is killed or times out,
when the loader could not preload the allocator, or when its output
differs from glibc's: the C workloads print a "check ..." line (counts and
checksums, and the blocks whose contents were found damaged), the real
programs their whole output.
"""
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Workload:
    """One program with its arguments. `compare` is "check" (the lines
    starting with "check" must equal glibc's), "stdout" (all of it) or
    "status" (the exit status only). A workload with in_means False is
    reported apart and left out of the geometric means and the charts."""

    def __init__(self, name, what, argv, compare="check", env=None, needs=None, in_means=True):
        self.name, self.what, self.argv = name, what, argv
        self.compare, self.env, self.needs = compare, env or {}, needs
        self.in_means = in_means


def python_interpreter():
    """The system's python3 (a pyenv or venv shim would run a script, and
    the preload, in front of the interpreter)."""
    for path in ("/usr/bin/python3", shutil.which("python3"), sys.executable):
        if path and os.path.exists(path):
            return os.path.realpath(path)
    return None


def workloads(build_dir, quick, threads):
    """The suite, sized for --quick (about 0.1-0.3 s a run under glibc on a
    2-CPU VM) or for the full run (about 1 s, the real programs a few)."""
    def prog(name):
        return os.path.join(build_dir, "bench", "tp_bench_" + name)

    def size(quick_value, full_value):
        return str(quick_value if quick else full_value)

    t = str(threads)
    thr = prog("threads")
    # What every process pays for loading the allocator: read with the
    # small workloads' peak RSS, most of which it is.
    true = shutil.which("true") or "/bin/true"
    w = [Workload("start-up", "`true`: a process that allocates almost nothing", [true],
                  compare="status", needs=true, in_means=False)]
    for order in ("lifo", "fifo", "random"):
        w.append(Workload(f"{order} 1t", f"1000 blocks of 16 B..1 KiB, then freed {order}, repeated",
                          [thr, "sys", order, "1", size(5000, 60000)]))
    w += [
        Workload(f"own {t}t", "each thread allocates and frees its own blocks, 16 B..1 KiB, 128 at a time",
                 [thr, "sys", "own", t, size(15000, 100000)]),
        Workload(f"larson {t}t", "threads replace random slots of rotating stripes: most frees are remote",
                 [thr, "sys", "larson", t, size(5000, 50000)]),
        Workload(f"prodcons {t}t", "one thread allocates, passes blocks through a ring, another frees them",
                 [thr, "sys", "prodcons", t, size(6000, 60000)]),
        Workload(f"xbatch {t}t", "batches of 256 blocks allocated in one thread, freed in the next",
                 [thr, "sys", "xbatch", t, size(5000, 50000)]),
        Workload(f"bufpool {t}t", "connections take and return buffers of 4 KiB..1 MiB, 1/4 freed remotely",
                 [prog("bufpool"), t, size(100, 2000), "1024"]),
        Workload(f"cache-thrash {t}t", "each thread writes its own 8-byte blocks (false sharing if adjacent)",
                 [prog("cache"), "thrash", t, size(10000, 150000)]),
        Workload(f"cache-scratch {t}t", "as cache-thrash, starting from adjacent blocks passed in and freed",
                 [prog("cache"), "scratch", t, size(10000, 150000)]),
        Workload("big-blocks", "8 live blocks of 64 KiB..16 MiB replaced at random, every page written",
                 [prog("big"), "blocks", "64", "16384", size(8, 400)]),
        Workload(f"realloc-{size('64m', '1g')}", "a vector doubling with realloc from 16 B, new half filled",
                 [prog("big"), "realloc", size(64, 1024)]),
        Workload("std::map", "map<string, string> churn: inserts, erases, lookups",
                 [prog("containers"), "map", "20000", size(3, 25)]),
        Workload("std::unordered_map", "unordered_map<uint64_t, vector> churn: inserts, erases, lookups",
                 [prog("containers"), "umap", "20000", size(10, 200)]),
        Workload("std::string", "strings built by concatenation, sorted, split and joined",
                 [prog("containers"), "string", "20000", size(2, 15)]),
    ]
    py = python_interpreter()
    w.append(Workload("python3", "dicts, strings, lists and a JSON round trip (PYTHONMALLOC=malloc)",
                      [py or "python3", os.path.join(HERE, "workloads", "alloc_heavy.py"), size(3000, 50000)],
                      compare="stdout", env={"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"},
                      needs=py or "python3"))
    w.append(Workload("sqlite3", "the sqlite3 shell builds, indexes, queries and updates an in-memory table",
                      ["sqlite3", "-batch", ":memory:", f".parameter set @rows {size(10000, 200000)}",
                       ".read " + os.path.join(HERE, "workloads", "sqlite.sql")],
                      compare="stdout", needs="sqlite3"))
    w.append(Workload("lua5.4", "lua5.4 builds and sorts strings",
                      ["lua5.4", os.path.join(HERE, "workloads", "sort_strings.lua"), size(30000, 200000)],
                      compare="stdout", needs="lua5.4"))
    return w


def available(workload):
    """None if the workload can run, else why not."""
    needs = workload.needs or workload.argv[0]
    if os.path.isabs(needs):
        return None if os.access(needs, os.X_OK) else f"{needs} not found"
    return None if shutil.which(needs) else f"{needs} not installed"


# Allocators that are another one run with settings: the environment added.
ALLOCATOR_ENV = {"tierpool-secure": {"TIERPOOL_SECURE": "1"}}


def run_one(maxrss, workload, allocator, preload, timeout, cwd):
    """Runs the workload once; a sample dict (status "ok" or the reason it
    failed; `out` is what is compared with glibc's)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(workload.env)
    env.update(ALLOCATOR_ENV.get(allocator, {}))
    env["LC_ALL"] = "C"
    cmd = [maxrss, "--preload", preload or "", "--timeout", str(timeout), "--"] + workload.argv
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env, cwd=cwd,
                              timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "wall": None, "cpu": None, "rss": None, "out": ""}
    err_lines = proc.stderr.splitlines()
    stats = {}
    if err_lines and err_lines[-1].startswith("maxrss_kb "):
        f = err_lines.pop().split()
        stats = dict(zip(f[0::2], f[1::2]))
    sample = {"wall": None, "cpu": None, "rss": None, "out": "", "stderr": "\n".join(err_lines[-5:])}
    if not stats:
        sample["status"] = f"no measurement (exit {proc.returncode})"
        return sample
    sample["wall"] = float(stats["wall_s"])
    sample["cpu"] = float(stats["user_s"]) + float(stats["sys_s"])
    sample["rss"] = int(stats["maxrss_kb"]) / 1024
    if workload.compare == "check":
        sample["out"] = "\n".join(l for l in proc.stdout.splitlines() if l.startswith("check"))
    else:
        sample["out"] = proc.stdout
    code = stats.get("status", "?")
    if code == "timeout":
        sample["status"] = f"timeout ({timeout} s)"
    elif code != "0":
        n = int(code) if code.isdigit() else 0
        sample["status"] = f"killed by signal {n - 128}" if n > 128 else f"exit {code}"
    elif preload and "cannot be preloaded" in proc.stderr:
        sample["status"] = "not preloaded"
    elif not sample["out"] and workload.compare != "status":
        sample["status"] = "no output"
    else:
        sample["status"] = "ok"
    return sample


def compare_with_glibc(samples):
    """Marks every ok sample whose output differs from glibc's first ok run
    as failed. samples: {(workload, allocator): [sample, ...]}."""
    names = {w for w, _ in samples}
    for name in names:
        ref = next((s["out"] for s in samples.get((name, "glibc"), []) if s["status"] == "ok"), None)
        if ref is None:
            continue
        for (w, _), runs in samples.items():
            if w != name:
                continue
            for s in runs:
                if s["status"] == "ok" and s["out"] != ref:
                    s["status"] = "output differs from glibc's"
                    got, want = s["out"].splitlines(), ref.splitlines()
                    diff = next(((g, r) for g, r in zip(got, want) if g != r), None)
                    s["stderr"] = (f"first differing line: {diff[0]!r}, glibc's {diff[1]!r}" if diff else
                                   f"{len(got)} lines, glibc's {len(want)}")


class Progress:
    """One status line on stderr: rewritten in place on a terminal, one
    line per workload and run otherwise (CI logs)."""

    def __init__(self, total):
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.tty = sys.stderr.isatty()

    def step(self, text):
        self.done += 1
        if self.tty:
            elapsed = time.monotonic() - self.start
            line = f"[{self.done}/{self.total} {elapsed:.0f} s] {text}"
            sys.stderr.write("\r" + line[:110].ljust(110))
            sys.stderr.flush()

    def line(self, text):
        if self.tty:
            return
        elapsed = time.monotonic() - self.start
        print(f"bench: [{self.done}/{self.total} {elapsed:.0f} s] {text}", file=sys.stderr, flush=True)

    def finish(self):
        if self.tty:
            sys.stderr.write("\n")
        print(f"bench: suite done in {time.monotonic() - self.start:.0f} s", file=sys.stderr)


def run_suite(maxrss, allocs, suite, runs, timeout, workdir):
    """Runs every available workload under every allocator, `runs` times,
    the allocators in an order that rotates from run to run and workload to
    workload. Returns (samples, skipped): samples[(workload, allocator)] is
    the list of sample dicts, skipped a list of (workload, reason)."""
    todo, skipped = [], []
    for w in suite:
        why = available(w)
        if why:
            skipped.append((w.name, why))
        else:
            todo.append(w)
    samples = {}
    progress = Progress(runs * len(todo) * len(allocs))
    os.makedirs(workdir, exist_ok=True)
    for r in range(runs):
        for i, w in enumerate(todo):
            k = (r + i) % len(allocs)
            done = []
            for name, preload in allocs[k:] + allocs[:k]:
                progress.step(f"run {r + 1}/{runs}: {w.name} under {name}")
                s = run_one(maxrss, w, name, preload, timeout, workdir)
                s["run"] = r
                samples.setdefault((w.name, name), []).append(s)
                done.append(f"{name} {s['wall']:.2f}s" if s["status"] == "ok" else f"{name} {s['status']}")
            progress.line(f"run {r + 1}/{runs}: {w.name}: " + ", ".join(done))
    progress.finish()
    compare_with_glibc(samples)
    return samples, skipped


def tsv(samples):
    """The raw samples as tab-separated text."""
    lines = ["workload\tallocator\trun\twall_s\tcpu_s\tmaxrss_mib\tstatus"]
    for (w, a), runs in samples.items():
        for s in runs:
            vals = ["" if s[k] is None else f"{s[k]:.4f}" for k in ("wall", "cpu", "rss")]
            lines.append("\t".join([w, a, str(s["run"])] + vals + [s["status"]]))
    return "\n".join(lines) + "\n"
