#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fastpath_count.py: instructions per malloc(64) + free pair, by callgrind.

Runs tests/fastpath_count.c's program under callgrind, collecting only inside
run_pairs() (--toggle-collect), and reads the callgrind output file:

  per call      inclusive cost of run_pairs' calls to each function / their number
  per pair      all of run_pairs' calls together / pairs: what the allocator
                costs for one pair, its slow paths amortised in
  with loop     all instructions collected / pairs (the harness loop's call,
                argument and counter instructions included, and a dynamically
                linked program's jumps through its PLT; reported)

The base count is tp_malloc(64) + tp_free. Fails when that pair costs more
than --max-per-pair instructions, when run_pairs does not make two calls a
pair (the toggle or the loop went wrong), or when two runs disagree (the
count must be deterministic). With a second count, fails also when it costs
more than --max-over instructions more than the base pair:

  --pool                 tp_pool_malloc(pool, 64) + tp_free on an explicit
                         pool (PROGRAM N pool)
  --preload LIB MPROG    malloc(64) + free in MPROG (fastpath_count_malloc,
                         which links nothing of tierpool's) run with
                         LD_PRELOAD=LIB (libtierpool-malloc.so)

With --alone the program keeps no block alive, so every free empties the
page: the pinned current page must keep that on the fast path. Prints
`fastpath_count: N passed, M failed` at the end like the other tests.

usage: fastpath_count.py [--valgrind PATH] [--pairs N] [--max-per-pair X]
                         [--alone | --pool | --preload LIB MPROG] [--max-over X] PROGRAM
"""
import argparse
import os
import subprocess
import sys
import tempfile

COLLECT_FN = "run_pairs"


def parse_callgrind(path):
    """Returns (total Ir, {fn: self Ir}, {(caller, callee): [calls, inclusive Ir]})."""
    names = {}  # compressed-name id -> name ("(12) name" defines, "(12)" refers)

    def name_of(value):
        value = value.strip()
        if value.startswith("("):
            key, _, rest = value.partition(")")
            key = key[1:]
            if rest.strip():
                names[key] = rest.strip()
            return names.get(key, value)
        return value

    total = None
    self_cost = {}
    calls = {}
    fn = callee = None
    pending_calls = None  # the next cost line is a call's inclusive cost
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            head = line[0]
            if head.isdigit() or head in "+-*":
                fields = line.split()
                ir = int(fields[1]) if len(fields) > 1 else 0
                if pending_calls is not None:
                    entry = calls.setdefault((fn, callee), [0, 0])
                    entry[0] += pending_calls
                    entry[1] += ir
                    pending_calls = None
                else:
                    self_cost[fn] = self_cost.get(fn, 0) + ir
                continue
            key, _, value = line.partition("=")
            if key == "fn":
                fn = name_of(value)
            elif key == "cfn" or key == "cfunc":
                callee = name_of(value)
            elif key == "calls":
                pending_calls = int(value.split()[0])
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split(":", 1)[1].split()[0])
    return total, self_cost, calls


def run_once(valgrind, program, args, env, out_dir, index):
    out = os.path.join(out_dir, "callgrind.out.%d" % index)
    cmd = [valgrind, "--tool=callgrind", "--toggle-collect=" + COLLECT_FN, "--dump-instr=no",
           "--compress-strings=no", "--compress-pos=no", "--callgrind-out-file=" + out, program] + args
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, **env))
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("fastpath_count: callgrind run failed (exit %d)" % proc.returncode)
    return parse_callgrind(out)


def count(valgrind, program, args, env, n, check, what):
    """Counts one kind of pair twice; returns {"pair", "loop", "calls", "self"}."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_once(valgrind, program, args, env, tmp, i) for i in range(2)]
    total, self_cost, calls = runs[0]
    check(total is not None and total > 0, "%s: callgrind collected instructions in %s" % (what, COLLECT_FN))
    check(runs[1][0] == total, "%s: deterministic: two runs count %s and %s" % (what, total, runs[1][0]))
    mine = {callee: c for (caller, callee), c in calls.items() if caller == COLLECT_FN}
    made = sum(c[0] for c in mine.values())
    check(made == 2 * n, "%s: %s makes %d calls (expected %d: two a pair)" % (what, COLLECT_FN, made, 2 * n))
    pair_ir = sum(c[1] for c in mine.values())
    return {"pair": pair_ir / n, "pair_ir": pair_ir, "loop": self_cost.get(COLLECT_FN, 0) / n,
            "total": (total or 0) / n, "calls": mine, "self": self_cost}


def report(what, n, r):
    print("%s:" % what)
    for callee, (calls, inclusive) in sorted(r["calls"].items()):
        print("  per %-20s %.2f  (%d calls; self %.2f; slow path amortised in)" %
              (callee + ":", inclusive / calls, calls, r["self"].get(callee, 0) / calls))
    print("  per pair:                %.2f" % r["pair"])
    print("  loop (run_pairs):        %.2f" % r["loop"])
    print("  per pair with loop:      %.2f" % r["total"])
    others = sorted(((c, f) for f, c in r["self"].items() if f != COLLECT_FN and f not in r["calls"] and c),
                    reverse=True)
    for cost, f in others[:8]:
        print("  also ran: %-32s %.3f per pair" % (f, cost / n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--valgrind", default="valgrind")
    ap.add_argument("--pairs", type=int, default=100000)
    ap.add_argument("--max-per-pair", type=float, default=40.0)
    ap.add_argument("--max-over", type=float, default=0.0)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--alone", action="store_true")
    mode.add_argument("--pool", action="store_true")
    mode.add_argument("--preload", nargs=2, metavar=("LIB", "MPROG"))
    ap.add_argument("program")
    args = ap.parse_args()

    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAILED: " + what)

    n = args.pairs
    base_args = [str(n)] + (["alone"] if args.alone else [])
    base_what = "tp_malloc(64) + tp_free" + (" (no block kept)" if args.alone else "")
    base = count(args.valgrind, args.program, base_args, {}, n, check, base_what)
    print("pairs:                     %d" % n)
    report(base_what, n, base)
    check(base["pair"] <= args.max_per_pair,
          "a %s pair costs %.2f instructions, more than %g" % (base_what, base["pair"], args.max_per_pair))
    print("  limit:                   %g" % args.max_per_pair)

    other = None
    if args.pool:
        what = "tp_pool_malloc(pool, 64) + tp_free"
        other = count(args.valgrind, args.program, [str(n), "pool"], {}, n, check, what)
    elif args.preload:
        what = "malloc(64) + free through LD_PRELOAD"
        other = count(args.valgrind, args.preload[1], [str(n)], {"LD_PRELOAD": args.preload[0]}, n, check, what)
    if other:
        report(what, n, other)
        over = (other["pair_ir"] - base["pair_ir"]) / n  # from the integer counts: 5.00 is 5, not 5 + 1e-15
        print("  over the base pair:      %+.2f  (limit %+g; with the loops %+.2f)" %
              (over, args.max_over, other["total"] - base["total"]))
        check(over <= args.max_over, "a %s pair costs %.2f instructions more than a %s pair, more than %g" %
              (what, over, base_what, args.max_over))
    print("fastpath_count: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
