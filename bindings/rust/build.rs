// SPDX-License-Identifier: MIT
//! Finds libtierpool.so to link against, in this order:
//!
//! 1. `TIERPOOL_LIB_DIR`, a folder holding libtierpool.so;
//! 2. the source tree's own build, `../../build` (after `make`);
//! 3. `pkg-config --libs-only-L tierpool` (an install under a prefix);
//! 4. the linker's default folders (the Debian packages' /usr/lib/<arch>).
//!
//! The folder found is also written as the run path of the tests and
//! examples, so that they find the library without LD_LIBRARY_PATH.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn from_pkg_config() -> Option<PathBuf> {
    let out = Command::new("pkg-config").args(["--libs-only-L", "tierpool"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().find_map(|flag| flag.strip_prefix("-L")).map(PathBuf::from)
}

fn main() {
    println!("cargo:rerun-if-env-changed=TIERPOOL_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let in_tree = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../build");
    let dir = env::var_os("TIERPOOL_LIB_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(in_tree).filter(|d| d.join("libtierpool.so").exists()))
        .or_else(from_pkg_config);
    if let Some(dir) = dir {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    println!("cargo:rustc-link-lib=dylib=tierpool");
}
