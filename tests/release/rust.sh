#!/bin/sh
# SPDX-License-Identifier: MIT
# rust.sh SOURCE_DIR LIB_DIR TARGET_DIR VERSION: the Rust crate
# (bindings/rust) has CMake's version and passes `cargo test` (its unit,
# integration and README tests) against the libtierpool.so in LIB_DIR,
# offline, building in TARGET_DIR. Exits 77 ("skipped: needs cargo")
# without cargo, on PATH or from rustup in ~/.cargo/bin.
src=$1 lib=$2 target=$3 version=$4
if [ $# -ne 4 ]; then
    echo "usage: rust.sh SOURCE_DIR LIB_DIR TARGET_DIR VERSION" >&2
    exit 2
fi
PATH=$PATH:${HOME:-/root}/.cargo/bin
if ! command -v cargo >/dev/null 2>&1; then
    echo "skipped: needs cargo"
    exit 77
fi
crate=$src/bindings/rust
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$crate/Cargo.toml" | head -n 1)
if [ "$crate_version" != "$version" ]; then
    echo "FAILED: bindings/rust/Cargo.toml has version $crate_version, CMake's project(VERSION) is $version"
    exit 1
fi
echo "crate version $crate_version, as CMake's; $(cargo --version)"
TIERPOOL_LIB_DIR=$lib CARGO_TARGET_DIR=$target exec cargo test --offline --locked --manifest-path "$crate/Cargo.toml"
