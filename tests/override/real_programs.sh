#!/bin/sh
# SPDX-License-Identifier: MIT
# real_programs.sh PROGRAM LIBRARY SOURCE_DIR WORK_DIR
#
# Runs a real program on a workload twice, as it is and with LIBRARY
# (libtierpool-malloc.so) preloaded, and fails unless both runs exit 0 with
# the same output, and tierpool served the preloaded run's allocations (with
# TIERPOOL_PASSTHROUGH=1 in the environment: served none of them).
# PROGRAM is one of: python3 sqlite3 lua5.4 sort gcc.
# Exits 77 (ctest: skipped) when PROGRAM is not installed.
prog=$1 lib=$2 src=$3 work=$4
if [ $# -ne 4 ] || [ ! -f "$lib" ]; then
    echo "usage: real_programs.sh PROGRAM LIBRARY SOURCE_DIR WORK_DIR" >&2
    exit 2
fi
if ! command -v "$prog" >/dev/null 2>&1; then
    echo "skipped: needs $prog"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work" && work=$(pwd) || exit 1
# Both runs in one locale, whatever the caller's: sort's order depends on it.
LC_ALL=C
export LC_ALL

# run_both NAME COMMAND...: runs COMMAND in plain/ as it is, then in
# tierpool/ with the library preloaded, each writing there what it writes
# and NAME.out, NAME.err and NAME.status. Each process of the preloaded run
# prints its statistics at exit on stderr, one JSON line.
run_both() {
    name=$1
    shift
    mkdir -p plain tierpool
    (cd plain && "$@" >"$name.out" 2>"$name.err"; echo $? >"$name.status")
    (cd tierpool && LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" TIERPOOL_SHOW_STATS=json "$@" >"$name.out" 2>"$name.err"
     echo $? >"$name.status")
}

failed=0
fail() {
    echo "FAILED: $*"
    failed=1
}

# compare NAME: both runs of NAME succeeded, with the same output, and in
# the preloaded run tierpool served at least $least allocations in one
# process (none with TIERPOOL_PASSTHROUGH=1).
compare() {
    for run in plain tierpool; do
        status=$(cat "$run/$1.status")
        if [ "$status" != 0 ]; then
            fail "$prog ($run) exited with status $status"
            grep -v '^{"version"' "$run/$1.err" | sed 's/^/    /' | head -20
        fi
    done
    # The loader says so on stderr when it cannot preload the library.
    if grep -q "cannot be preloaded" "tierpool/$1.err"; then
        fail "the loader did not preload $lib"
    fi
    served=$(grep -o '"pool": "process", "allocs": [0-9]*' "tierpool/$1.err" | sed 's/.* //' | sort -n | tail -n 1)
    if [ -z "$served" ]; then
        fail "no process printed tierpool's statistics: the library did not run"
    elif [ "${TIERPOOL_PASSTHROUGH:-0}" != 0 ]; then
        [ "$served" -eq 0 ] || fail "TIERPOOL_PASSTHROUGH=1, yet tierpool served $served allocations in one process"
    elif [ "$served" -lt "$least" ]; then
        fail "tierpool served $served allocations in one process, fewer than $least"
    fi
    if ! cmp -s "plain/$1.out" "tierpool/$1.out"; then
        fail "$prog printed other output with tierpool"
        diff "plain/$1.out" "tierpool/$1.out" | head -20
    fi
}

case $prog in
python3)
    # PYTHONMALLOC=malloc: every object from malloc, not from Python's arenas.
    cat >work.py <<'EOF'
import hashlib, json
d = {}
for i in range(60000):
    d["key%d" % i] = {"n": i, "s": str(i) * (i % 7), "l": list(range(i % 11))}
text = json.dumps(d, sort_keys=True)
back = json.loads(text)
assert back == d
words = " ".join(k.upper() for k in d if k.endswith("7")).split()
print(len(text), len(words), hashlib.sha256(text.encode()).hexdigest())
print(sorted(set(w[-3:] for w in words))[:20])
EOF
    PYTHONMALLOC=malloc
    export PYTHONMALLOC
    least=1000000
    run_both python "$prog" "$work/work.py"
    compare python
    ;;
sqlite3)
    cat >work.sql <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, amount REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO t SELECT i, printf('name-%06d-%s', i, hex(i * 7919)), i % 97, (i * 37 % 1000) / 10.0 FROM n;
CREATE INDEX t_grp ON t(grp);
SELECT count(*), sum(amount), min(name), max(name) FROM t;
SELECT grp, count(*), round(avg(amount), 3), group_concat(id % 10, '') FROM t GROUP BY grp ORDER BY grp LIMIT 10;
SELECT name FROM t WHERE grp = 42 ORDER BY amount DESC, id LIMIT 5;
SELECT length(group_concat(name)) FROM (SELECT name FROM t ORDER BY name DESC);
EOF
    # Each run generates its own database file in its own folder.
    least=100000
    run_both sqlite "$prog" test.db ".read $work/work.sql"
    compare sqlite
    ;;
lua5.4)
    cat >work.lua <<'EOF'
local t = {}
local x = 12345
for i = 1, 1000000 do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.format("%08x-%d", x, i % 1000)
end
table.sort(t)
local h = 0
for i = 1, #t, 997 do h = (h * 31 + #t[i] + t[i]:byte(1)) % 1000000007 end
print(#t, t[1], t[#t], t[500000], h)
EOF
    least=1000000
    run_both lua "$prog" "$work/work.lua"
    compare lua
    ;;
sort)
    # About 50 MB of lines in random order, read into a few big buffers
    # (12 allocations here: the floor only asks that tierpool served them).
    least=5
    awk 'BEGIN { x = 1; for (i = 0; i < 1300000; i++) {
        x = (x * 1103515245 + 12345) % 2147483648
        printf "%010d line %d %s\n", x, i, substr("abcdefghijklmnopqrstuvwxyz", x % 26 + 1) } }' >input.txt
    run_both sort "$prog" --parallel=2 "$work/input.txt"
    compare sort
    ;;
gcc)
    # Compiles one of tierpool's own sources (a tool's, which includes no
    # header of the tree: the engine's may be mid-edit in a working tree, and
    # tierpool.h needs the build's generated tierpool_version.h); gcc's cc1
    # and as inherit the preload. The same compiler on the same input writes
    # the same object.
    least=10000
    run_both gcc "$prog" -O2 -Wall -c "$src/tools/gen_size_classes.c" -o tierpool.o
    compare gcc
    if [ ! -s plain/tierpool.o ] || [ ! -s tierpool/tierpool.o ]; then
        fail "gcc wrote no object"
    elif ! cmp -s plain/tierpool.o tierpool/tierpool.o; then
        fail "gcc wrote another object with tierpool"
    fi
    ;;
*)
    echo "real_programs.sh: unknown program $prog" >&2
    exit 2
    ;;
esac

if [ "$failed" -eq 0 ]; then
    echo "$prog: same output with and without tierpool (which served $served allocations in one process)"
    rm -rf "$work" # the outputs are large; kept for a look when failing
fi
exit "$failed"
