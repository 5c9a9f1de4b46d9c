//! Links the hypervisor binary with the board's linker script (target builds only).
use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let board = if env::var_os("CARGO_FEATURE_BOARD_RPI4").is_some() {
        "rpi4"
    } else {
        "qemu-virt"
    };
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let ld = dir.join("../platforms").join(board).join("link.ld");
    println!("cargo:rerun-if-changed={}", ld.display());
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("../platforms/common.ld").display()
    );
    println!(
        "cargo:rustc-link-arg-bins=-L{}",
        dir.join("../platforms").display()
    );
    println!("cargo:rustc-link-arg-bins=-T{}", ld.display());
}
