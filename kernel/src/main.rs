//! The Tandem hypervisor binary: links the kernel library into a bootable image.
//!
//! All code lives in the `kernel` library; this file only provides what a
//! bare-metal binary must (no `main`, a panic handler).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate kernel;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    kernel::boot::panic(info)
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("tandem is a bare-metal image: build and boot it with `cargo xtask run`");
    std::process::exit(1);
}
