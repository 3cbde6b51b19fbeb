#!/bin/sh
# SPDX-License-Identifier: MIT
# cli.sh CMAKE BUILD_DIR PROBE PREFIX
#
# `tierpool run` from the build tree and from an install: installs BUILD_DIR
# into PREFIX (emptied first), then has each tool run PROBE (probe.c), which
# says whether tierpool is its malloc and prints its environment. Checks
# that the installed tool preloads the installed library, before any
# LD_PRELOAD already set and keeping it; --stats; exit statuses; help and
# version; and, when python3 is installed, a python3 under `tierpool run`.
cmake=$1 build=$2 probe=$3 prefix=$4
if [ $# -ne 4 ] || [ ! -x "$probe" ]; then
    echo "usage: cli.sh CMAKE BUILD_DIR PROBE PREFIX" >&2
    exit 2
fi

failed=0
fail() {
    echo "FAILED: $*"
    failed=1
}

# expect_status STATUS COMMAND...: runs COMMAND, output in $out.
expect_status() {
    want=$1
    shift
    out=$("$@" 2>&1)
    got=$?
    [ "$got" = "$want" ] || fail "$* exited with $got, not $want: $out"
}

rm -rf "$prefix"
if ! "$cmake" --install "$build" --prefix "$prefix" >/dev/null; then
    echo "FAILED: cmake --install $build --prefix $prefix"
    exit 1
fi
prefix=$(cd "$prefix" && pwd -P)
installed=$prefix/bin/tierpool
[ -x "$installed" ] || fail "no $installed after the install"

for tool in "$build/tierpool" "$installed"; do
    expect_status 0 "$tool" run -- "$probe"
    echo "$out" | grep -qx "tierpool=yes" || fail "$tool run: the probe's malloc is not tierpool's: $out"

    # Found next to the tool: the build tree's, or the install's.
    case $tool in
    "$installed") where=$prefix/ ;;
    *) where=$(cd "$build" && pwd -P)/ ;;
    esac
    echo "$out" | grep -q "^LD_PRELOAD=$where[^:]*libtierpool-malloc\.so[^:]*$" ||
        fail "$tool run preloads something else than the library under $where: $out"

    # An LD_PRELOAD already set stays, after tierpool's; --stats is passed on.
    expect_status 0 env LD_PRELOAD=libm.so.6 "$tool" run --stats "$probe"
    echo "$out" | grep -q "^LD_PRELOAD=$where[^:]*libtierpool-malloc[^:]*:libm\.so\.6$" ||
        fail "$tool run lost the LD_PRELOAD already set: $out"
    echo "$out" | grep -qx "TIERPOOL_SHOW_STATS=1" || fail "$tool run --stats: $out"

    expect_status 0 "$tool" --help
    echo "$out" | grep -q "^  run " || fail "$tool --help does not list run: $out"
    expect_status 0 "$tool" version
    echo "$out" | grep -q "^tierpool [0-9]*\.[0-9]*\.[0-9]*$" || fail "$tool version: $out"
    expect_status 2 "$tool" no-such-command
    expect_status 2 "$tool" run
    expect_status 2 "$tool" run --no-such-option -- true
    expect_status 127 "$tool" run -- /nonexistent/program
    expect_status 3 "$tool" run -- sh -c 'exit 3'
done

# The library must be found from the tool's own path: a copy of the tool
# away from any library cannot run anything.
lonely=$prefix/lonely/bin
mkdir -p "$lonely" && cp "$installed" "$lonely/tierpool"
expect_status 125 "$lonely/tierpool" run -- true

if command -v python3 >/dev/null 2>&1; then
    expect_status 0 env PYTHONMALLOC=malloc "$installed" run -- python3 -c '
import ctypes
process = ctypes.CDLL(None)
process.tp_pool_of.restype = ctypes.c_void_p
process.tp_pool_of.argtypes = [ctypes.c_void_p]
process.malloc.restype = ctypes.c_void_p
block = process.malloc(100)
data = bytes(range(256)) * 40
assert process.tp_pool_of(block), "malloc is not tierpool"
assert process.tp_pool_of(id(data)), "Python objects are not from tierpool"
print("python3 under tierpool")
'
    [ "$out" = "python3 under tierpool" ] || fail "python3 under tierpool run: $out"
else
    echo "python3 is not installed: its part is skipped"
fi

[ "$failed" -eq 0 ] && echo "cli: tierpool run works from the build tree and from $prefix"
exit "$failed"
