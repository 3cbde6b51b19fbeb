#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# packages.sh DEB_DIR: the Debian packages of `make deb` on this machine, as
# root: they install together, programs built against them with pkg-config
# and with find_package(tierpool) run (the library, its static form, the
# drop-in linked, the C++ header), the Rust crate builds against them, the
# tool and the man pages work, and
# removing the packages leaves none of their files behind. .ci/run's
# "packages" step; it changes /usr, so it refuses to run but as root with dpkg.
set -euo pipefail

debs=${1:?usage: packages.sh DEB_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
packages="tierpool libtierpool-dev libtierpool0"
if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null; then
    echo "skipped: needs root and dpkg"
    exit 77
fi
shopt -s nullglob
files=("$debs"/*.deb)
[ "${#files[@]}" -eq 3 ] || { echo "expected 3 packages in $debs, found ${#files[@]}"; exit 1; }
work=$(mktemp -d /tmp/tp-packages.XXXXXX)
cleanup() {
    # shellcheck disable=SC2086
    dpkg -P $packages >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# Left over from an earlier run that stopped half way.
# shellcheck disable=SC2086
dpkg -P $packages >/dev/null 2>&1 || true
listed=$work/files
for deb in "${files[@]}"; do
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }'
done | sort >"$listed"

dpkg -i "${files[@]}"
version=$(dpkg-deb -f "$debs"/libtierpool0_*.deb Version)
version=${version%-*}
echo "installed $version: $(wc -l <"$listed") files"

# The tool, from /usr/bin, finds the drop-in in /usr/lib/<multiarch>.
[ "$(tierpool --version)" = "tierpool $version" ]
tierpool version
tierpool run -- true
if command -v man >/dev/null; then
    for page in 1 3 7; do man -w "$page" tierpool; done
fi

# pkg-config, with no PKG_CONFIG_PATH: /usr is the default search path.
app=$src/examples/install_check
# shellcheck disable=SC2046 # the flags are words
cc -Wall -Wextra -Werror -o "$work/app-pc" "$app/app.c" $(pkg-config --cflags --libs tierpool)
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -o "$work/app-malloc-pc" "$app/app_malloc.c" $(pkg-config --cflags --libs tierpool-malloc)
"$work/app-pc"
"$work/app-malloc-pc"

# find_package(tierpool), with no CMAKE_PREFIX_PATH.
cmake -S "$app" -B "$work/cmake" >/dev/null
cmake --build "$work/cmake"
for exe in app app_static app_malloc; do "$work/cmake/$exe"; done
if [ -f "$src/examples/cpp/CMakeLists.txt" ]; then
    cmake -S "$src/examples/cpp" -B "$work/cpp" >/dev/null
    cmake --build "$work/cpp"
    "$work/cpp/pool_example"
fi

# The Rust crate, copied away from the tree so that its build.rs finds the
# installed library, not the tree's build/.
PATH=$PATH:${HOME:-/root}/.cargo/bin
if command -v cargo >/dev/null; then
    cp -r "$src/bindings/rust" "$work/rust"
    rm -rf "$work/rust/target"
    (cd "$work/rust" && CARGO_TARGET_DIR="$work/rust-target" cargo test --offline --locked --test pool)
else
    echo "skipped: needs cargo (the Rust crate against the packages)"
fi

# shellcheck disable=SC2086
dpkg -r $packages
left=$(while read -r f; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done <"$listed")
if [ -n "$left" ]; then
    echo "files left after dpkg -r:"
    echo "$left"
    exit 1
fi
if ldconfig -p | grep -q libtierpool; then
    echo "the loader's cache still lists libtierpool after dpkg -r"
    exit 1
fi
# shellcheck disable=SC2086
dpkg -P $packages
for p in $packages; do
    if dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q installed; then
        echo "$p is still installed"
        exit 1
    fi
done
echo "packages: installed, used and removed cleanly"
