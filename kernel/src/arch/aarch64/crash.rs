//! Deliberate EL2 faults, requested with the boot argument `tandem.crash=KIND`.
//!
//! For bringing up a board: it proves that the console, the vectors and the
//! fault reports work before anything depends on them. Kinds: `data-abort`
//! (load from an unmapped address), `undef` (an undefined instruction),
//! `stack-overflow` (recursion into the guard page), `panic`.

use log::{error, warn};

/// Triggers the fault named `kind`; returns only for an unknown kind.
pub fn trigger(kind: &str) {
    warn!("tandem.crash={kind}: triggering a deliberate EL2 fault");
    match kind {
        "data-abort" => {
            // Below RAM and above the device window on virt: unmapped at EL2.
            // SAFETY: deliberately faults; the read never completes.
            let v = unsafe { core::ptr::read_volatile(0x7f_0000_0000 as *const u64) };
            error!("read of unmapped memory returned {v:#x}");
        }
        // SAFETY: `udf` raises an undefined-instruction exception and never returns.
        "undef" => unsafe { core::arch::asm!("udf #0x7a", options(nostack, noreturn)) },
        "stack-overflow" => {
            error!("recursion returned {}", recurse(0));
        }
        "panic" => panic!("tandem.crash=panic requested on the command line"),
        other => {
            error!("unknown tandem.crash kind '{other}' (data-abort, undef, stack-overflow, panic)")
        }
    }
}

#[inline(never)]
#[allow(unconditional_recursion)] // the point: run into the guard page
fn recurse(depth: u64) -> u64 {
    let mut frame = [depth; 64];
    // Keep the frame alive so each level really uses 512 bytes of stack.
    let frame = core::hint::black_box(&mut frame);
    recurse(frame[7] + 1) + frame[3]
}
