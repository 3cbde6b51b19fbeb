#!/bin/sh
# SPDX-License-Identifier: MIT
# track_check.sh TOOL PROGRAM CASE [TEXT...]: runs tests/track_bugs.c's
# PROGRAM CASE under TOOL (valgrind: Memcheck; asan: the program itself, an
# ASan build) and checks the report. CASE "clean" must pass with no error at
# all; any other case must fail and its report must hold every TEXT (what
# the bug is, and the seeded function's name: the user's stack).
tool=$1 program=$2 case=$3
shift 3
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ "$tool" = valgrind ]; then
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --num-callers=30 "$program" "$case" >"$log" 2>&1
else
    "$program" "$case" >"$log" 2>&1
fi
status=$?
fail() {
    cat "$log"
    echo "track_check: $tool $case: $*"
    exit 1
}
if [ "$case" = clean ]; then
    [ $status -eq 0 ] || fail "a clean run exited with $status (a false report?)"
    if [ "$tool" = valgrind ]; then
        grep -q "ERROR SUMMARY: 0 errors" "$log" || fail "Memcheck reported errors on a clean run"
    fi
else
    [ $status -ne 0 ] || fail "the seeded bug went unreported (exit 0)"
    [ "$tool" != valgrind ] || [ $status -eq 99 ] || fail "exit $status, not Memcheck's 99"
    for text in "$@"; do
        grep -qF -- "$text" "$log" || fail "the report lacks \"$text\""
    done
fi
grep -E "ERROR SUMMARY|definitely lost:|AddressSanitizer" "$log"
echo "track_check: $tool $case: ok"
