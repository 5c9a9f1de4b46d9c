//! Links the guest binaries with guest-rt's linker script, `guest.ld` (at 0x4008_0000), and
//! `link.ld`, which only checks what the probe relies on (bare-metal target builds only).
use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let check = dir.join("link.ld");
    println!("cargo:rerun-if-changed={}", check.display());
    println!("cargo:rustc-link-arg-bins=-Tguest.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", check.display());
}
