#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profile_test.py CASE: heap profiles of profile_prog, read by the real
google-pprof (Debian's google-perftools; tools/install-deps.sh installs it,
and CI requires it). Exit 77 (skipped) without google-pprof outside CI.

The program keeps live (bytes asked for):
  site_small  280000 x 240 B   = 67.2 MB  (slab blocks, the malloc fast path)
  site_large    2400 x 20000 B = 48.0 MB  (runs)
  site_pool   100000 x 300 B   = 30.0 MB  (tp_pool_malloc, pool "profiled")
At TIERPOOL_PROFILE_SAMPLE=8K an allocation of s bytes is a sample with
chance 1 - exp(-s/8192): about 8,100 + 2,190 + 3,600 = 13,900 samples, at
least 3,500 per site, so one site's estimate has a relative standard error
below 2%; 10% is five of them.

Cases:
  outside    `tierpool profile PID` on the running program, then
             `google-pprof --text`: the three functions first, in order,
             each within 10% of the truth
  pool       the same with --pool profiled: site_pool alone; an unknown
             pool is an error
  fork       the program forks children that sample while its threads do
             and another writes profiles; the parent's profile is still right
  threads    threads sample and exit while the sites allocate
  unwinder   (profile_prog_unwinder) the program's own _Unwind_Backtrace
             allocates before unwinding (as the unwinder may on first use):
             no recursion, no deadlock
  at_exit    TIERPOOL_PROFILE_AT_EXIT=FILE-%p.heap: the file is written at
             exit (after the frees) and its allocations since start name the
             three sites
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

TRUTH = {"site_small": 280000 * 240, "site_large": 2400 * 20000, "site_pool": 100000 * 300}
ORDER = ["site_small", "site_large", "site_pool"]
SAMPLE = "8K"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def pprof_lines(pprof, prog, heap, extra=()):
    """[(name, flat bytes)] from google-pprof --text, top first."""
    out = subprocess.run([pprof, "--text", "--show_bytes", *extra, prog, heap], capture_output=True, text=True,
                         timeout=120)
    print(out.stdout)
    if out.returncode != 0:
        print(out.stderr)
        fail(f"google-pprof exited {out.returncode}")
    rows = []
    for line in out.stdout.splitlines():
        m = re.match(r"^\s*(\d+)\s+[\d.]+%\s+[\d.]+%\s+(\d+)\s+[\d.]+%\s+(\S.*)$", line)
        if m:
            rows.append((m.group(3).strip(), int(m.group(1))))
    return rows


def check_sites(rows, sites):
    names = [name for name, _ in rows]
    if names[:len(sites)] != sites:
        fail(f"google-pprof's top functions are {names[:len(sites)]}, expected {sites}")
    for name, flat in rows[:len(sites)]:
        truth = TRUTH[name]
        error = (flat - truth) / truth
        print(f"{name}: estimated {flat} bytes, truth {truth}, error {100 * error:+.2f}%")
        if abs(error) > 0.10:
            fail(f"{name}: estimate {flat} is more than 10% from {truth}")


class Program:
    """profile_prog running until stop()."""

    def __init__(self, prog, mode, env):
        self.proc = subprocess.Popen([prog, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"ready (\d+)", line)
        if not m:
            self.proc.kill()
            fail(f"the program did not start (printed {line!r}, exit {self.proc.wait()})")
        self.pid = int(m.group(1))

    def stop(self):
        self.proc.stdin.close()
        rc = self.proc.wait(timeout=120)
        if rc != 0:
            fail(f"the program exited {rc}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("--prog", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()

    pprof = shutil.which("google-pprof")
    if not pprof:
        if os.environ.get("CI") == "true":
            fail("google-pprof is missing (tools/install-deps.sh installs google-perftools)")
        print("skipped: needs google-pprof (apt-get install google-perftools)")
        sys.exit(77)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    env = dict(os.environ, TIERPOOL_PROFILE="1", TIERPOOL_PROFILE_SAMPLE=SAMPLE, TIERPOOL_PUBLISH="1")
    heap = os.path.join(args.work, "out.heap")
    case = args.case

    if case == "at_exit":
        env.pop("TIERPOOL_PROFILE")  # the option turns sampling on by itself
        env.pop("TIERPOOL_PUBLISH")
        env["TIERPOOL_PROFILE_AT_EXIT"] = os.path.join(args.work, "exit-%p.heap")
        p = Program(args.prog, "", env)
        p.stop()
        heap = os.path.join(args.work, f"exit-{p.pid}.heap")
        if not os.path.exists(heap):
            fail(f"no profile at exit: {os.listdir(args.work)}")
        check_sites(pprof_lines(pprof, args.prog, heap, ["--alloc_space"]), ORDER)
        live = pprof_lines(pprof, args.prog, heap, ["--inuse_space"])
        if any(name in TRUTH and flat > 0 for name, flat in live):
            fail("blocks freed before exit are still live in the profile")
        return

    mode = {"outside": "", "pool": "", "fork": "fork", "threads": "threads", "unwinder": ""}[case]
    if case == "fork":
        # A child forked while threads run: ThreadSanitizer counts the
        # parent's threads, absent in the child, as leaked at its exit, and
        # refuses the child's monitor thread unless told otherwise.
        env["TSAN_OPTIONS"] = env.get("TSAN_OPTIONS", "") + ":report_thread_leaks=0:die_after_fork=0"
    p = Program(args.prog, mode, env)
    try:
        tool = [args.tool, "profile", str(p.pid), "-o", heap]
        if case == "pool":
            bad = subprocess.run(tool + ["--pool", "no such pool"], capture_output=True, text=True, timeout=60)
            if bad.returncode != 1 or "no pool named" not in bad.stderr:
                fail(f"--pool of an unknown pool: exit {bad.returncode}, {bad.stderr!r}")
            tool += ["--pool", "profiled"]
        out = subprocess.run(tool, capture_output=True, text=True, timeout=60)
        print(out.stdout, out.stderr)
        if out.returncode != 0:
            fail(f"tierpool profile exited {out.returncode}")
    finally:
        p.stop()
    with open(heap) as f:
        first = f.readline()
    if not first.startswith("heap profile:"):
        fail(f"the profile starts {first!r}")
    rows = pprof_lines(pprof, args.prog, heap)
    if case == "pool":
        check_sites(rows, ["site_pool"])
        if any(name in ("site_small", "site_large") for name, _ in rows):
            fail("the pool's profile shows the default pool's sites")
    else:
        check_sites(rows, ORDER)


if __name__ == "__main__":
    main()
