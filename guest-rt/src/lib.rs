//! The start-up code every bare Tandem guest needs, shared by rtos-guest, the test guests and
//! the pv-abi examples (Rust and C), so a porter starts from the same tested code.
//!
//! - `entry.S` (assembled here with `global_asm!`; a C guest assembles the same file):
//!   `_start` with an arm64 Image header, FP/SIMD enabled before any compiled code, `.bss`
//!   zeroed, one stack per vCPU, the exception vectors installed; `guest_secondary_entry` for
//!   PSCI `CPU_ON`; vectors that save the whole context as a [`Frame`].
//! - `guest.ld`: the layout, linked at [`LOAD_ADDR`] = 0x4008_0000, where Tandem loads a
//!   `kind = "bare"` image.
//!
//! # Using it from Rust
//!
//! Depend on the crate, link with its script (the build script of the binary's package, for
//! `aarch64-unknown-none` only):
//!
//! ```text
//! // build.rs
//! fn main() {
//!     if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
//!         println!("cargo:rustc-link-arg-bins=-Tguest.ld"); // found through guest-rt's OUT_DIR
//!     }
//! }
//! ```
//!
//! and define the three functions `entry.S` calls, with these exact names:
//!
//! ```ignore
//! #[unsafe(no_mangle)]
//! extern "C" fn guest_main(dtb: u64) -> ! { /* vCPU 0 */ }
//! #[unsafe(no_mangle)]
//! extern "C" fn guest_secondary_main(context_id: u64) -> ! { /* a CPU_ON'd vCPU */ }
//! #[unsafe(no_mangle)]
//! extern "C" fn guest_exception(frame: *mut guest_rt::Frame, kind: u64, ticks: u64)
//!     -> *mut guest_rt::Frame { frame /* or another task's frame */ }
//! ```
//!
//! `pv-abi/examples/hello-rust` is the smallest complete example; the C example
//! (`pv-abi/examples/hello-c`) uses `entry.S` and `guest.ld` the same way.
//!
//! On any other target the crate is just the [`Frame`] layout and the constants.
#![cfg_attr(not(test), no_std)]

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
core::arch::global_asm!(include_str!("entry.S"), options(raw));

/// Where a `kind = "bare"` image is loaded and vCPU 0 starts: RAM base + 0x8_0000.
pub const LOAD_ADDR: u64 = 0x4008_0000;
/// The stack of each vCPU (`guest.ld` `STACK_SIZE`).
pub const STACK_SIZE: usize = 16 * 1024;
/// vCPUs with a stack, by MPIDR_EL1.Aff0 (`guest.ld` `MAX_CPUS`); any other vCPU parks.
pub const MAX_CPUS: usize = 8;

/// `kind` of a synchronous exception taken from EL1 on SP_EL1 (an SVC, an abort, an
/// UNDEFINED instruction).
pub const KIND_SYNC: u64 = 0;
/// `kind` of an IRQ taken from EL1 on SP_EL1.
pub const KIND_IRQ: u64 = 1;
/// `kind` of an FIQ taken from EL1 on SP_EL1 (Tandem never raises one).
pub const KIND_FIQ: u64 = 2;
/// `kind` of an SError taken from EL1 on SP_EL1.
pub const KIND_SERROR: u64 = 3;

/// The interrupted context, as the vectors save it on the stack (800 bytes, 16-aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// `x0..x30`.
    pub x: [u64; 31],
    /// ELR_EL1: where `eret` resumes.
    pub elr: u64,
    /// SPSR_EL1: the interrupted PSTATE.
    pub spsr: u64,
    /// CNTVCT_EL0 read first thing at vector entry (also passed as `ticks`).
    pub entry_ticks: u64,
    /// `q0..q31`.
    pub q: [u128; 32],
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
}

// The offsets entry.S uses (FRAME_X30, FRAME_ELR, FRAME_SPSR, FRAME_TICKS, FRAME_Q0,
// FRAME_FPCR, FRAME_SIZE); the size keeps sp 16-byte aligned.
const _: () = {
    assert!(core::mem::offset_of!(Frame, x) == 0);
    assert!(core::mem::offset_of!(Frame, elr) == 248);
    assert!(core::mem::offset_of!(Frame, spsr) == 256);
    assert!(core::mem::offset_of!(Frame, entry_ticks) == 264);
    assert!(core::mem::offset_of!(Frame, q) == 272);
    assert!(core::mem::offset_of!(Frame, fpcr) == 784);
    assert!(core::mem::offset_of!(Frame, fpsr) == 792);
    assert!(core::mem::size_of::<Frame>() == 800);
};

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
unsafe extern "C" {
    /// entry.S: where PSCI CPU_ON starts a vCPU (x0 = context id).
    fn guest_secondary_entry();
    /// entry.S: the vector table.
    static guest_vectors: u8;
    /// entry.S: restores a frame and `eret`s to it.
    fn guest_rt_resume(frame: *mut Frame) -> !;
}

/// The address to give PSCI `CPU_ON` (with the MMU off, or an identity map, it is the
/// IPA): the vCPU runs `guest_secondary_main(context_id)` on its own stack.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub fn secondary_entry() -> u64 {
    guest_secondary_entry as *const () as u64
}

/// The vector table `entry.S` installs in VBAR_EL1 (for a guest that changes VBAR_EL1 and
/// wants it back).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub fn vectors() -> u64 {
    (&raw const guest_vectors) as u64
}

/// Restores `frame` and returns from an exception into it: how a scheduler starts its
/// first task. The frame must be on top of the stack it resumes on.
///
/// # Safety
///
/// `frame` must point to a complete [`Frame`] at the top of a stack that stays valid for
/// the resumed context, with `elr` and `spsr` describing code and a state that may run
/// (EL1h). The current context is abandoned.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub unsafe fn resume(frame: *mut Frame) -> ! {
    // SAFETY: the caller vouches for the frame and its stack.
    unsafe { guest_rt_resume(frame) }
}

#[cfg(test)]
mod tests {
    /// entry.S and guest.ld agree with the Rust constants.
    #[test]
    fn assembly_and_linker_script_agree() {
        let entry = include_str!("entry.S");
        let ld = include_str!("../guest.ld");
        assert!(entry.contains(".equ MAX_CPUS,     8 "), "entry.S MAX_CPUS");
        assert!(ld.contains("MAX_CPUS = 8;"), "guest.ld MAX_CPUS");
        assert_eq!(1 << 14, super::STACK_SIZE);
        assert!(
            entry.contains(".equ STACK_SHIFT,  14 "),
            "entry.S STACK_SHIFT"
        );
        assert!(ld.contains("STACK_SIZE = 0x4000;"), "guest.ld STACK_SIZE");
        assert!(ld.contains("LOAD_ADDR = 0x40080000;"));
        assert_eq!(super::LOAD_ADDR, 0x4008_0000);
        assert!(entry.contains(".equ FRAME_SIZE,   800"));
    }
}
