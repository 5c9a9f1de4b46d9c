//! Links the `rtos` binary with guest-rt's linker script, `guest.ld` (bare-metal target builds
//! only; guest-rt's build script puts it on the linker's search path).
use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-Tguest.ld");
    }
}
