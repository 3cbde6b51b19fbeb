#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh BUILD_DIR SECONDS: runs each libFuzzer harness built in BUILD_DIR
# (tests/fuzz/fuzz_*) for SECONDS over a scratch copy of its seeds, so the
# repository is never written. `make test-fuzz` calls it. Exits non-zero if
# a harness found a crash, a leak, a timeout or a failed check; the input
# that did it is left in BUILD_DIR/fuzz/artifacts/ (docs/fuzzing.md says
# how to replay it).
set -euo pipefail

build=${1:?usage: run.sh BUILD_DIR SECONDS}
seconds=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
work="$build/fuzz"
failed=0

# ASan/UBSan stop at the first report; leaks are checked (libFuzzer's -detect_leaks).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rm -rf "$work"
mkdir -p "$work/artifacts"
for seeds in "$here"/seeds/*/; do
    name=$(basename "$seeds")
    bin="$build/tests/fuzz/fuzz_$name"
    corpus="$work/corpus-$name"
    mkdir -p "$corpus"
    cp "$seeds"* "$corpus/"
    echo "fuzz_$name: ${seconds} s over $(ls "$corpus" | wc -l) seeds"
    t0=$SECONDS
    # -max_len: programs of a few hundred operations; -timeout: one input
    # taking 20 s is a hang. libFuzzer's progress goes to a log, its last
    # lines (and any report) are shown.
    if "$bin" -max_total_time="$seconds" -max_len=2048 -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$name-" "$corpus" >"$work/$name.log" 2>&1; then
        grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$name.log" || true
        echo "fuzz_$name: ok ($((SECONDS - t0)) s, corpus $(ls "$corpus" | wc -l) inputs)"
    else
        tail -n 60 "$work/$name.log"
        echo "fuzz_$name: FAILED; the input is in $work/artifacts/ (log: $work/$name.log)"
        failed=1
    fi
done
exit $failed
