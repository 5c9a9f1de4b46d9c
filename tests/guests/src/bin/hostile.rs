//! `hostile`: a one-vCPU guest that does everything a guest must not, and checks that each
//! act has its defined outcome.
//!
//! 1. `hostile::write_*`: stores outside its RAM (past RAM, far above it, the physical UART,
//!    the PL031 RTC that only the probe VM is given, the GICv2-style GICH frame, just past
//!    the GICD frame, a redistributor of a vCPU it does not have) → Tandem injects a
//!    synchronous external abort (EC 0x25, DFSC 0x10).
//! 2. `hostile::el2_*`: GIC hypervisor-control and stage-2 registers (`ICH_HCR_EL2`,
//!    `ICH_LR0_EL2`, `ICH_VTR_EL2`, `VTTBR_EL2`) at EL1 → UNDEFINED at EL1 (EC 0x00).
//! 3. `hostile::hvc_*`: unknown and malformed hypercalls → their SMCCC or PSCI error codes;
//!    a 32-bit ID with garbage in the upper half of x0 is the call in w0 (SMCCC).
//! 4. `hostile::smc_*`: `smc #0` is answered like `hvc #0` and execution continues after it.
//! 5. `hostile::udf`: `udf #0` → the guest's own UNDEFINED handler (EC 0x00).
//! 6. `hostile::id_*`/`hostile::pmu_*`: ID_AA64PFR0_EL1.SVE reads 0; PMCR_EL0 → UNDEFINED.
//!
//! Then `N passed, N failed`, and finally `hostile::fatal`: a load pair from the vGIC
//! distributor, which has no instruction syndrome, so Tandem cannot emulate it and stops
//! the VM with a report naming it. Nothing after it may run.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "hostile: a Tandem test guest; it runs only on aarch64-unknown-none (cargo xtask build --vms hostile)"
    );
}

#[cfg(target_os = "none")]
mod guest {
    use aarch64_cpu::registers::{ID_AA64PFR0_EL1, Readable};
    use pv_abi::psci::{CPU_ON, PSCI_VERSION};
    use pv_abi::{HypercallId, Status};
    use test_guests::esr::EC_UNKNOWN;
    use test_guests::gic::GICD_BASE;
    use test_guests::harness::Harness;
    use test_guests::rt::{self, Fault};
    use test_guests::smccc::{hvc, regs, smc, w0};
    use test_guests::{PHYS_RTC, PHYS_UART, RAM_END, check, println};

    test_guests::entry!(main);

    fn main(_dtb: u64) -> ! {
        let mut h = Harness::new();
        let info = pv_abi::guest::vm_info();
        println!("hostile: test guest starting ({info:?})");
        writes_outside_ram(&mut h);
        el2_registers(&mut h);
        hypercalls(&mut h);
        smc_calls(&mut h);
        undefined(&mut h);
        id_registers(&mut h);
        h.summary();
        fatal()
    }

    fn describe(fault: Option<Fault>) -> impl core::fmt::Display {
        struct D(Option<Fault>);
        impl core::fmt::Display for D {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.0 {
                    Some(x) if x.esr.ec() == EC_UNKNOWN => {
                        write!(
                            f,
                            "ESR={:#x} EC={:#04x} (UNDEFINED), ELR={:#x}",
                            x.esr.0,
                            x.esr.ec(),
                            x.elr
                        )
                    }
                    Some(x) => write!(
                        f,
                        "ESR={:#x} EC={:#04x} DFSC={:#04x} FAR={:#x}",
                        x.esr.0,
                        x.esr.ec(),
                        x.esr.dfsc(),
                        x.far
                    ),
                    None => write!(f, "no exception"),
                }
            }
        }
        D(fault)
    }

    fn writes_outside_ram(h: &mut Harness) {
        let targets: [(&str, u64); 7] = [
            ("hostile::write_past_ram", RAM_END),
            ("hostile::write_high_ipa", 0x8000_0000),
            ("hostile::write_phys_uart", PHYS_UART),
            // Passed through to the probe VM on qemu-virt, but not to this one.
            ("hostile::write_rtc", PHYS_RTC),
            ("hostile::write_gich", 0x0803_0000),
            ("hostile::write_past_gicd", 0x0801_0000),
            ("hostile::write_other_vcpu_gicr", 0x080C_0000),
        ];
        for (name, addr) in targets {
            // SAFETY: every target is outside guest RAM (no Rust object there) and expected
            // to fault, which skips the store.
            let fault = rt::expect_fault(|| unsafe { rt::store64(addr, 0xdead_beef) });
            let ok = fault.is_some_and(|f| f.esr.is_external_abort(true) && f.far == addr);
            check!(h, name, ok, "store to {addr:#x}: {}", describe(fault));
        }
        // SAFETY: as above, a load.
        let fault = rt::expect_fault(|| unsafe {
            rt::load64(PHYS_UART);
        });
        let ok = fault.is_some_and(|f| f.esr.is_external_abort(false) && f.far == PHYS_UART);
        check!(
            h,
            "hostile::read_phys_uart",
            ok,
            "load from {PHYS_UART:#x}: {}",
            describe(fault)
        );
    }

    fn expect_undefined(h: &mut Harness, name: &str, what: &str, fault: Option<Fault>) {
        let ok = fault.is_some_and(|f| f.esr.ec() == EC_UNKNOWN && f.esr.is_undefined());
        check!(h, name, ok, "{what}: {}", describe(fault));
    }

    fn el2_registers(h: &mut Harness) {
        // Each EL2 register access below is UNDEFINED at EL1, taken at EL1 and skipped by the
        // armed handler: nothing is read or written.
        // SAFETY: see above.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("mrs {}, ich_hcr_el2", out(reg) _, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::el2_read_ich_hcr", "mrs ICH_HCR_EL2", f);
        // SAFETY: see above.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("msr ich_lr0_el2, {}", in(reg) 0xffff_ffff_ffff_ffffu64, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::el2_write_ich_lr0", "msr ICH_LR0_EL2", f);
        // SAFETY: see above.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("mrs {}, ich_vtr_el2", out(reg) _, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::el2_read_ich_vtr", "mrs ICH_VTR_EL2", f);
        // SAFETY: see above.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("msr vttbr_el2, {}", in(reg) 0u64, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::el2_write_vttbr", "msr VTTBR_EL2", f);
    }

    fn hypercalls(h: &mut Harness) {
        let not_supported = Status::NotSupported.to_reg();
        let invalid = Status::InvalidParameter.to_reg();
        let cases: [(&str, [u64; 8], u64); 5] = [
            (
                "hostile::hvc_unknown_id",
                regs(0xC600_00FF, &[]),
                not_supported,
            ),
            (
                "hostile::hvc_reserved_channel",
                regs(0xC600_0010, &[]),
                not_supported,
            ),
            (
                "hostile::hvc_console_write_too_long",
                regs(
                    HypercallId::ConsoleWrite.fid().to_reg(),
                    &[49, 0x4141_4141_4141_4141],
                ),
                invalid,
            ),
            (
                "hostile::hvc_stats_bad_id",
                regs(HypercallId::Stats.fid().to_reg(), &[1 << 40]),
                invalid,
            ),
            (
                "hostile::hvc_sip_service",
                regs(0xC200_0001, &[]),
                not_supported,
            ),
        ];
        for (name, x, want) in cases {
            let r = hvc(x);
            check!(
                h,
                name,
                r[0] == want,
                "x0={:#x} -> {:#x} (want {:#x})",
                x[0],
                r[0],
                want
            );
        }
        let r = w0(hvc(regs(CPU_ON.to_reg(), &[7, rt::secondary_entry(), 0])));
        check!(
            h,
            "hostile::hvc_cpu_on_missing_vcpu",
            r == -2,
            "CPU_ON(MPIDR 7)={r} (want -2)"
        );
        let r = hvc(regs(0xdead_beef_c600_0000, &[]));
        check!(
            h,
            "hostile::hvc_garbage_upper_half",
            r[0] == 0 && r[1] == u64::from(pv_abi::ABI_VERSION_MAJOR),
            "x0=0xdeadbeefc6000000 -> x0={:#x} x1={} (VERSION: success, major 1)",
            r[0],
            r[1]
        );
        let alive = pv_abi::guest::vm_info();
        check!(
            h,
            "hostile::hvc_still_served",
            alive.is_ok(),
            "VM_INFO after the bad calls: {alive:?}"
        );
    }

    fn smc_calls(h: &mut Harness) {
        let mut r = [0u64; 4];
        let fault = rt::expect_fault(|| r = smc(regs(0xC600_00FF, &[])));
        check!(
            h,
            "hostile::smc_unknown_id",
            fault.is_none() && r[0] == Status::NotSupported.to_reg(),
            "smc #0 0xc60000ff -> x0={:#x}, {}",
            r[0],
            describe(fault)
        );
        let fault = rt::expect_fault(|| r = smc(regs(PSCI_VERSION.to_reg(), &[])));
        check!(
            h,
            "hostile::smc_psci_version",
            fault.is_none() && r[0] == 0x10001,
            "smc #0 PSCI_VERSION -> x0={:#x}, {}",
            r[0],
            describe(fault)
        );
    }

    fn undefined(h: &mut Harness) {
        // SAFETY: `udf #0` is UNDEFINED; the armed handler records and skips it.
        let f = rt::expect_fault(|| unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) });
        expect_undefined(h, "hostile::udf", "udf #0", f);
    }

    fn id_registers(h: &mut Harness) {
        let mut pfr0 = 0;
        let fault = rt::expect_fault(|| pfr0 = ID_AA64PFR0_EL1.get());
        let sve = (pfr0 >> 32) & 0xf;
        check!(
            h,
            "hostile::id_sve_hidden",
            fault.is_none() && sve == 0,
            "ID_AA64PFR0_EL1={pfr0:#x} SVE={sve}, {}",
            describe(fault)
        );
        // SAFETY: PMCR_EL0 is not offered: Tandem traps it and injects UNDEFINED, which the
        // armed handler skips; a read changes nothing.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("mrs {}, pmcr_el0", out(reg) _, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::pmu_pmcr_undefined", "mrs PMCR_EL0", f);
    }

    /// The act Tandem cannot emulate: `ldp` from the vGIC distributor has no instruction
    /// syndrome (ESR_EL2.ISV = 0), so Tandem stops the VM.
    fn fatal() -> ! {
        println!("[T] hostile::fatal about to happen");
        // SAFETY: the load pair targets the emulated distributor, which holds no Rust object;
        // Tandem stops this VM on it, so the code after it should never run.
        unsafe {
            core::arch::asm!("ldp x0, x1, [x2]", in("x2") GICD_BASE, out("x0") _, out("x1") _, options(nostack, readonly));
        }
        println!("[T] hostile::fatal FAIL (still running after ldp from the vGIC distributor)");
        rt::power_off()
    }
}
