#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install-deps.sh: checks for (and, as root on Debian, installs) what tierpool's
# build, tests and benchmarks need. `make test` and `make bench` run it first.
#
#   tools/install-deps.sh test    the build and test tools: the required ones
#                                 (an error when missing) and the optional ones
#                                 (tests that need them print "skipped: needs X")
#   tools/install-deps.sh bench   the allocators the benchmark compares against;
#                                 missing ones are skipped by the benchmark
#   tools/install-deps.sh fuzz    clang with libFuzzer (make test-fuzz); exits 1
#                                 when it is missing
#   tools/install-deps.sh deb     what make deb needs (dpkg-shlibdeps)
#   tools/install-deps.sh all     test and bench
#
# Each tool is checked by itself (a command on PATH, or a trial build), so the
# script works on any Linux; on Debian an installed package counts too
# (dpkg-query). As root on a system with apt-get the missing ones are
# installed with `apt-get install -y` (after one `apt-get update`, and only if
# something is missing); otherwise the script names what is missing.
# TP_NO_INSTALL=1 checks only, even as root. Under CI=true the optional tools
# are required: CI runs every test.
set -euo pipefail

# Debian-package:check pairs. The check is a command whose presence
# satisfies it (e.g. pkgconf's pkg-config where the pkg-config package is
# absent), has_<name> (a function below), or empty (the package only).
TEST_REQUIRED="cmake:cmake gcc:gcc g++:g++ make:make pkg-config:pkg-config python3:python3 binutils:nm"
# valgrind: Memcheck and callgrind tests; sqlite3, lua5.4: real programs under
# the drop-in; clang: the C++ header's second compiler; clang's libFuzzer
# (libclang-rt-14-dev, which Debian 12 only recommends with clang): make
# test-fuzz; cargo: the Rust crate (rustup's in ~/.cargo/bin counts);
# python3-prometheus-client: the cli tests parse the exporter's output with it;
# prometheus: promtool checks contrib/'s alert rules; google-perftools:
# google-pprof reads the heap profiles (tests/profile.cmake).
TEST_OPTIONAL="valgrind:valgrind sqlite3:sqlite3 lua5.4:lua5.4 clang:clang++ libclang-rt-14-dev:has_libfuzzer cargo:cargo python3-prometheus-client: prometheus:promtool google-perftools:google-pprof"
FUZZ_DEPS="clang:clang libclang-rt-14-dev:has_libfuzzer"
BENCH_DEPS="libjemalloc2: libmimalloc2.0: libtcmalloc-minimal4:"
DEB_DEPS="dpkg-dev:dpkg-shlibdeps"
PATH=$PATH:${HOME:-/root}/.cargo/bin

say() { printf 'deps: %s\n' "$*"; }

# clang links a fuzzer (libFuzzer and ASan's runtime are there).
has_libfuzzer() {
    command -v clang >/dev/null 2>&1 || return 1
    local dir rc
    dir=$(mktemp -d) || return 1
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return (int)(d && n) * 0; }\n' >"$dir/f.c"
    rc=0
    clang -fsanitize=fuzzer,address "$dir/f.c" -o "$dir/f" >/dev/null 2>&1 || rc=1
    rm -rf "$dir"
    return "$rc"
}

pkg_installed() {
    command -v dpkg-query >/dev/null 2>&1 || return 1
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Prints the packages of the list "$1" that are missing, on one line.
missing_of() {
    local entry pkg cmd out=""
    for entry in $1; do
        pkg=${entry%%:*}
        cmd=${entry#*:}
        case $cmd in
        has_*) if "$cmd"; then continue; fi ;;
        *)
            if pkg_installed "$pkg"; then continue; fi
            if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
            ;;
        esac
        out="$out${out:+ }$pkg"
    done
    printf '%s' "$out"
}

APT_UPDATED=0
# Installs the packages given; returns non-zero if it cannot or apt fails.
install_pkgs() {
    [ "$#" -gt 0 ] || return 0
    if [ "${TP_NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" = 0 ]; then
        say "apt-get update"
        apt-get update -qq || return 1
        APT_UPDATED=1
    fi
    say "apt-get install -y $*"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || return 1
}

# check LIST REQUIRED(1|0) WHAT SKIPPED: SKIPPED says what happens without
# the optional ones.
check() {
    local list=$1 required=$2 what=$3 skipped=${4:-}
    local missing
    missing=$(missing_of "$list")
    if [ -z "$missing" ]; then
        say "$what: all present"
        return 0
    fi
    say "$what: missing: $missing"
    # shellcheck disable=SC2086
    if install_pkgs $missing; then
        missing=$(missing_of "$list")
        if [ -z "$missing" ]; then
            say "$what: installed"
            return 0
        fi
    fi
    say "$what: still missing: $missing"
    if command -v apt-get >/dev/null 2>&1; then
        say "install them with: sudo apt-get install -y $missing"
    else
        say "(Debian's package names: install the same tools with this system's package manager)"
    fi
    if [ "$required" = 1 ]; then
        say "$what: cannot continue without them"
        return 1
    fi
    say "$what: continuing without them ($skipped)"
    return 0
}

# The optional test tools, required under CI.
optional() {
    if [ "${CI:-}" = true ]; then
        check "$TEST_OPTIONAL" 1 "optional test tools (required in CI)"
    else
        check "$TEST_OPTIONAL" 0 "optional test tools" 'the tests that need them print "skipped: needs X"'
    fi
}

case "${1:-all}" in
    test)
        check "$TEST_REQUIRED" 1 "test tools"
        optional
        ;;
    bench) check "$BENCH_DEPS" 0 "benchmark peers" "the benchmark skips absent allocators" ;;
    fuzz) check "$FUZZ_DEPS" 1 "libFuzzer" ;;
    deb) check "$DEB_DEPS" 1 "Debian packaging tools" ;;
    all)
        check "$TEST_REQUIRED" 1 "test tools"
        optional
        check "$BENCH_DEPS" 0 "benchmark peers" "the benchmark skips absent allocators"
        ;;
    *)
        echo "usage: $0 [test|bench|fuzz|deb|all]" >&2
        exit 2
        ;;
esac
