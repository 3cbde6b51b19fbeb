#!/usr/bin/env bash
# install-deps.sh: checks for (and, as root on Debian, installs) what tierpool's
# build, tests and benchmarks need. `make test` and `make bench` run it first.
#
#   tools/install-deps.sh test    the build and test tools; missing ones are an error
#   tools/install-deps.sh bench   the allocators the benchmark compares against;
#                                 missing ones are skipped by the benchmark
#   tools/install-deps.sh all     both
#
# Installed packages are checked with dpkg-query. As root on a system with
# apt-get the missing ones are installed with `apt-get install -y` (after one
# `apt-get update`, and only if something is missing); otherwise the script
# prints the command to run. TP_NO_INSTALL=1 checks only, even as root.
set -euo pipefail

# package:command pairs; the command (if any) also satisfies the check, so that
# e.g. pkgconf's pkg-config counts where the pkg-config package is absent.
# clang and libclang-rt-14-dev (libFuzzer and clang's sanitizer runtimes, which
# Debian 12 only recommends with clang) are for make test-fuzz;
# python3-prometheus-client parses the exporter's output in the cli tests.
# prometheus (for promtool, which checks contrib/'s alert rules) is optional.
TEST_DEPS="cmake:cmake gcc:gcc g++:g++ make:make pkg-config:pkg-config valgrind:valgrind python3:python3 binutils:nm sqlite3:sqlite3 lua5.4:lua5.4 clang:clang libclang-rt-14-dev: python3-prometheus-client:"
TEST_OPTIONAL="prometheus:promtool"
BENCH_DEPS="libjemalloc2: libmimalloc2.0: libtcmalloc-minimal4:"

say() { printf 'deps: %s\n' "$*"; }

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
        if pkg_installed "$pkg"; then continue; fi
        if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
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

# check LIST REQUIRED(1|0) WHAT [WHAT-HAPPENS-WITHOUT]
check() {
    local list=$1 required=$2 what=$3 without=${4:-the benchmark skips absent allocators}
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
    say "install them with: sudo apt-get install -y $missing"
    if [ "$required" = 1 ]; then
        say "$what: cannot continue without them"
        return 1
    fi
    say "$what: continuing without them ($without)"
    return 0
}

case "${1:-all}" in
    test)
        check "$TEST_DEPS" 1 "test tools"
        check "$TEST_OPTIONAL" 0 "optional test tools" "contrib_check skips promtool"
        ;;
    bench) check "$BENCH_DEPS" 0 "benchmark peers" ;;
    all)
        check "$TEST_DEPS" 1 "test tools"
        check "$TEST_OPTIONAL" 0 "optional test tools" "contrib_check skips promtool"
        check "$BENCH_DEPS" 0 "benchmark peers"
        ;;
    *)
        echo "usage: $0 [test|bench|all]" >&2
        exit 2
        ;;
esac
