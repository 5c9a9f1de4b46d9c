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

/// The conduit of the firmware call that isolates the branch predictor between VMs
/// (0: none needed or none offered, 1: SMC, 2: HVC).
static BP_HARDENING: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// Asks the firmware whether this CPU needs `SMCCC_ARCH_WORKAROUND_1` against Spectre-v2
/// between VMs, as Linux does: PSCI 1.0 for PSCI_FEATURES, which must offer SMCCC_VERSION,
/// which must say 1.1 for SMCCC_ARCH_FEATURES. (An unknown call could be UNDEFINED at
/// EL2 under QEMU's built-in PSCI, so nothing is called that was not offered.)
/// Returns whether Tandem will make the call on each VM switch.
pub fn probe_bp_hardening(conduit: PsciConduit) -> bool {
    use pv_abi::{psci, smccc};
    // SMC32 calls: the result is w0.
    let call32 = |f, a1| call(conduit, f, a1, 0, 0) as i32;
    let answer = (call32(psci::PSCI_VERSION, 0) >= psci::version(1, 0) as i32
        && call32(psci::PSCI_FEATURES, smccc::SMCCC_VERSION.to_reg()) >= 0
        && call32(smccc::SMCCC_VERSION, 0) >= smccc::SMCCC_VERSION_1_1 as i32)
        .then(|| {
            call(
                conduit,
                smccc::SMCCC_ARCH_FEATURES,
                smccc::SMCCC_ARCH_WORKAROUND_1.to_reg(),
                0,
                0,
            ) as i32
        });
    let pfr0 = read_sysreg!("id_aa64pfr0_el1");
    let needed = crate::vcpu::sysreg::needs_bp_hardening(pfr0, answer.map(i64::from));
    let value = match (needed, conduit) {
        (false, _) => 0,
        (true, PsciConduit::Smc) => 1,
        (true, PsciConduit::Hvc) => 2,
    };
    BP_HARDENING.store(value, core::sync::atomic::Ordering::Relaxed);
    needed
}

/// Invalidates the branch predictor through firmware, if [`probe_bp_hardening`] found it
/// needed.
pub fn isolate_branch_predictor() {
    let conduit = match BP_HARDENING.load(core::sync::atomic::Ordering::Relaxed) {
        1 => PsciConduit::Smc,
        2 => PsciConduit::Hvc,
        _ => return,
    };
    call(conduit, pv_abi::smccc::SMCCC_ARCH_WORKAROUND_1, 0, 0, 0);
}
