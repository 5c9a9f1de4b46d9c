//! Raw SMCCC calls with arbitrary register contents, for the malformed and unusual calls the
//! typed `pv_abi` client cannot express (garbage upper halves, reserved IDs, `smc #0`).

use pv_abi::HvcArgs;

/// `hvc #0` with `x0..x7 = x`; returns `x0..x3`.
pub fn hvc(x: [u64; 8]) -> [u64; 4] {
    pv_abi::guest::hvc_call(HvcArgs { x }).x
}

/// `smc #0` with `x0..x7 = x`; returns `x0..x3`. Tandem traps guest SMCs (HCR_EL2.TSC) and
/// answers them like `hvc #0`.
pub fn smc(x: [u64; 8]) -> [u64; 4] {
    let [mut x0, mut x1, mut x2, mut x3, x4, x5, x6, x7] = x;
    // SAFETY: `smc #0` traps to Tandem, which answers in x0..x3 (declared `inout`) and may,
    // under SMCCC v1.0 rules, clobber x4..x17 (declared through `clobber_abi("C")` and the
    // discarded `inout`s). It touches no memory the compiler could be caching.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") x0,
            inout("x1") x1,
            inout("x2") x2,
            inout("x3") x3,
            inout("x4") x4 => _,
            inout("x5") x5 => _,
            inout("x6") x6 => _,
            inout("x7") x7 => _,
            clobber_abi("C"),
            options(nostack),
        );
    }
    [x0, x1, x2, x3]
}

/// `x` with `x0 = id` and `x1.. = args`, the rest zero.
pub fn regs(id: u64, args: &[u64]) -> [u64; 8] {
    let mut x = [0u64; 8];
    x[0] = id;
    x[1..=args.len()].copy_from_slice(args);
    x
}

/// The PSCI/SMC32-style result in `w0`, sign-extended.
pub fn w0(ret: [u64; 4]) -> i64 {
    i64::from(ret[0] as u32 as i32)
}
