//! Puts `guest.ld` where the linker finds it: a guest binary that depends on this crate links
//! with `-Tguest.ld` (one line in its own build script; see the crate documentation).
use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = dir.join("guest.ld");
    fs::copy(&script, out.join("guest.ld")).expect("copy guest.ld to OUT_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-search={}", out.display());
}
