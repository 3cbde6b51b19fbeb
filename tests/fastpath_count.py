#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fastpath_count.py: instructions per tp_malloc(64) + tp_free pair.

Runs tests/fastpath_count.c's program under callgrind, collecting only inside
run_pairs() (--toggle-collect), and reads the callgrind output file:

  per tp_malloc inclusive cost of run_pairs' calls to tp_malloc / their number
  per tp_free   the same for tp_free
  per pair      the two together: what the allocator costs for one pair
  with loop     all instructions collected / pairs (the harness loop's
                call, argument and counter instructions included; reported)

Fails when a pair costs more than --max-per-pair instructions, when the call
counts are not the number of pairs (the toggle or the loop went wrong), or when
two runs disagree (the count must be deterministic). Prints
`fastpath_count: N passed, M failed` at the end like the other tests.

With --alone the program keeps no block alive, so every free empties the
page: the pinned current page must keep that on the fast path.

usage: fastpath_count.py [--valgrind PATH] [--pairs N] [--max-per-pair X] [--alone] PROGRAM
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


def run_once(valgrind, program, pairs, alone, out_dir, index):
    out = os.path.join(out_dir, "callgrind.out.%d" % index)
    cmd = [valgrind, "--tool=callgrind", "--toggle-collect=" + COLLECT_FN, "--dump-instr=no",
           "--compress-strings=no", "--compress-pos=no", "--callgrind-out-file=" + out,
           program, str(pairs)] + (["alone"] if alone else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("fastpath_count: callgrind run failed (exit %d)" % proc.returncode)
    return parse_callgrind(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--valgrind", default="valgrind")
    ap.add_argument("--pairs", type=int, default=100000)
    ap.add_argument("--max-per-pair", type=float, default=40.0)
    ap.add_argument("--alone", action="store_true")
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

    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_once(args.valgrind, args.program, args.pairs, args.alone, tmp, i) for i in range(2)]
    total, self_cost, calls = runs[0]
    n = args.pairs
    check(total is not None and total > 0, "callgrind collected instructions in %s" % COLLECT_FN)
    check(runs[1][0] == total, "deterministic: two runs count %s and %s" % (total, runs[1][0]))
    total = total or 0

    per_call = {}
    for callee in ("tp_malloc", "tp_free"):
        count, inclusive = calls.get((COLLECT_FN, callee), [0, 0])
        check(count == n, "%s calls %s %d times (expected %d)" % (COLLECT_FN, callee, count, n))
        per_call[callee] = inclusive / count if count else float("nan")
    loop = self_cost.get(COLLECT_FN, 0) / n
    per_pair = per_call["tp_malloc"] + per_call["tp_free"]

    print("pairs:                %d" % n)
    print("instructions total:   %d" % total)
    print("per tp_malloc(64):    %.2f  (self %.2f; slow path amortised in)" %
          (per_call["tp_malloc"], self_cost.get("tp_malloc", 0) / n))
    print("per tp_free:          %.2f  (self %.2f)" % (per_call["tp_free"], self_cost.get("tp_free", 0) / n))
    print("per pair:             %.2f  (limit %g)" % (per_pair, args.max_per_pair))
    print("loop (run_pairs):     %.2f" % loop)
    print("per pair with loop:   %.2f" % (total / n))
    others = sorted(((c, f) for f, c in self_cost.items() if f not in (COLLECT_FN, "tp_malloc", "tp_free") and c),
                    reverse=True)
    for cost, f in others[:8]:
        print("  also ran: %-32s %.3f per pair" % (f, cost / n))
    check(per_pair <= args.max_per_pair,
          "a tp_malloc(64) + tp_free pair costs %.2f instructions, more than %g" % (per_pair, args.max_per_pair))
    print("fastpath_count: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
