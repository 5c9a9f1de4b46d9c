//! Calls into PSCI firmware (EL3, or QEMU's built-in PSCI) from EL2.

use core::arch::asm;

use crate::platform::fdt::PsciConduit;

/// Makes an SMCCC call with up to three arguments; returns x0.
pub fn call(
    conduit: PsciConduit,
    function: pv_abi::smccc::FunctionId,
    a1: u64,
    a2: u64,
    a3: u64,
) -> i64 {
    let mut x0 = u64::from(function.raw());
    match conduit {
        // SAFETY: an SMCCC call to firmware; every register the callee may clobber is declared.
        PsciConduit::Smc => unsafe {
            asm!("smc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                 out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                 out("x16") _, out("x17") _, options(nostack))
        },
        // SAFETY: as above, through the HVC conduit (only when Tandem itself runs at EL1).
        PsciConduit::Hvc => unsafe {
            asm!("hvc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                 out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                 out("x16") _, out("x17") _, options(nostack))
        },
    }
    x0 as i64
}
