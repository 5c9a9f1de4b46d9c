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
//!    channel calls of a VM that is no end of the channel (`hostile::channel_*`,
//!    `hostile::virtio_*`) → INVALID_PARAMETER;
//!    a 32-bit ID with garbage in the upper half of x0 is the call in w0 (SMCCC).
//! 4. `hostile::smc_*`: `smc #0` is answered like `hvc #0` and execution continues after it.
//! 5. `hostile::udf`: `udf #0` → the guest's own UNDEFINED handler (EC 0x00).
//! 6. `hostile::id_*`/`hostile::pmu_*`: ID_AA64PFR0_EL1.SVE reads 0; PMCR_EL0 → UNDEFINED.
//! 7. `hostile::far_with_mmu_on`: with its own stage 1 on, a store through a virtual address
//!    whose IPA is nothing → the injected abort's FAR_EL1 is that virtual address.
//! 8. `hostile::aarch32_*`: AArch32 code at EL0 (where the CPU has AArch32 EL0): a CP15
//!    access Tandem traps (CNTP_CTL) → UNDEFINED at VBAR_EL1 + 0x600, not a stopped VM; a
//!    16-bit T32 load from the vGIC is emulated and the PC moves by 2.
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
    use test_guests::gic::{self, GICD_BASE, gicd2};
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
        hidden_features(&mut h);
        far_with_mmu_on(&mut h);
        aarch32_el0(&mut h);
        if gic::version() == 2 {
            sgir_foreign_targets(&mut h);
        }
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
        // Past the distributor: its 64 KiB on a GICv3, its 4 KiB on a GICv2 (whose next
        // frame, the CPU interface, this VM owns).
        let past_gicd = if gic::version() == 2 {
            GICD_BASE + 0x1000
        } else {
            0x0801_0000
        };
        let targets: [(&str, u64); 8] = [
            ("hostile::write_past_ram", RAM_END),
            ("hostile::write_high_ipa", 0x8000_0000),
            ("hostile::write_phys_uart", PHYS_UART),
            // Passed through to the probe VM on qemu-virt, but not to this one.
            ("hostile::write_rtc", PHYS_RTC),
            ("hostile::write_gich", 0x0803_0000),
            // The hardware GICV (GICv2 machines): only its mapping at the guest's GICC.
            ("hostile::write_phys_gicv", 0x0804_0000),
            ("hostile::write_past_gicd", past_gicd),
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
        let cases: [(&str, [u64; 8], u64); 8] = [
            (
                "hostile::hvc_unknown_id",
                regs(0xC600_00FF, &[]),
                not_supported,
            ),
            (
                "hostile::hvc_reserved_channel",
                regs(0xC600_0014, &[]),
                not_supported,
            ),
            // This VM has no channel: ringing or serving one is refused.
            (
                "hostile::channel_notify_not_an_end",
                regs(HypercallId::ChannelNotify.fid().to_reg(), &[0]),
                invalid,
            ),
            (
                "hostile::virtio_poll_not_a_back_end",
                regs(
                    HypercallId::VirtioPoll.fid().to_reg(),
                    &[u64::from(u32::MAX)],
                ),
                invalid,
            ),
            (
                "hostile::virtio_reply_forged",
                regs(
                    HypercallId::VirtioReply.fid().to_reg(),
                    &[0, 0x8400_0000_0001_0070, 0],
                ),
                invalid,
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

    /// Trace, activity monitor, RAS error record and LORegion registers, which the ID
    /// registers hide, are UNDEFINED: Tandem traps them where the CPU has them (on a
    /// CPU without them they are UNDEFINED anyway).
    fn hidden_features(h: &mut Harness) {
        // SAFETY: a read of a register the guest is not offered; UNDEFINED, taken at
        // EL1 and skipped by the armed handler, so nothing is read.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("mrs {}, s2_1_c0_c8_7", out(reg) _, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::trace_trcidr0_undefined", "mrs TRCIDR0", f);
        // SAFETY: as above.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("mrs {}, s3_3_c13_c2_0", out(reg) _, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::amu_amcr_undefined", "mrs AMCR_EL0", f);
        // SAFETY: as above.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("mrs {}, s3_0_c5_c3_0", out(reg) _, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::ras_erridr_undefined", "mrs ERRIDR_EL1", f);
        // SAFETY: as above.
        let f = rt::expect_fault(|| unsafe {
            core::arch::asm!("mrs {}, s3_0_c10_c4_7", out(reg) _, options(nomem, nostack));
        });
        expect_undefined(h, "hostile::lor_lorid_undefined", "mrs LORID_EL1", f);
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

    /// A stage-1 level-1 table (4 KiB granule, 39-bit VAs, 1 GiB blocks).
    #[repr(C, align(4096))]
    struct Table([u64; 512]);

    static mut STAGE1: Table = Table([0; 512]);

    /// Where the guest's stage 1 puts IPA 0x8000_0000, which is nothing at stage 2.
    const FAR_TEST_VA: u64 = 0xc000_0040;

    /// Turns the guest's MMU on for one store through a virtual address that is not its
    /// IPA, and checks that the injected abort reports the virtual address in FAR_EL1.
    fn far_with_mmu_on(h: &mut Harness) {
        // Block descriptors: valid, AF, AttrIndx (0: Device-nGnRnE, 1: Normal
        // non-cacheable, so nothing is cached that the MMU-off code would not see).
        const DEVICE: u64 = (1 << 10) | 0b01;
        const NORMAL: u64 = (1 << 10) | (0b11 << 8) | (1 << 2) | 0b01;
        let table = &raw mut STAGE1;
        let entries = [
            (0, DEVICE),               // 0..1 GiB: GIC, UART (identity)
            (1, 0x4000_0000 | NORMAL), // RAM (identity)
            (3, 0x8000_0000 | DEVICE), // VA 0xc000_0000 → IPA 0x8000_0000
        ];
        for (i, entry) in entries {
            // SAFETY: entry `i` < 512 of the table, which only this code (vCPU 0, MMU off)
            // touches, before the MMU reads it; the other entries stay 0 (invalid).
            unsafe { table.cast::<u64>().wrapping_add(i).write_volatile(entry) };
        }
        let mair: u64 = 0x44 << 8;
        // T0SZ = 25, TG0 = 4 KiB, walks non-cacheable; EPD1 (no TTBR1 walks), TG1 = 4 KiB;
        // IPS = 32 bits.
        let tcr: u64 = 25 | (1 << 23) | (0b10 << 30);
        // SAFETY: the tables map this code, its stack, its data and the vectors where they
        // are; the MMU is on only for the one store, which faults (Tandem injects an abort
        // that the armed handler skips), and off again before anything else.
        let fault = rt::expect_fault(|| unsafe {
            core::arch::asm!(
                "msr mair_el1, {mair}",
                "msr tcr_el1, {tcr}",
                "msr ttbr0_el1, {ttbr}",
                "dsb sy",
                "tlbi vmalle1",
                "dsb nsh",
                "isb",
                "mrs {old}, sctlr_el1",
                "orr {on}, {old}, #1",
                "msr sctlr_el1, {on}",
                "isb",
                "str {val}, [{va}]",
                "msr sctlr_el1, {old}",
                "isb",
                mair = in(reg) mair,
                tcr = in(reg) tcr,
                ttbr = in(reg) table as u64,
                va = in(reg) FAR_TEST_VA,
                val = in(reg) 0xdead_beef_u64,
                old = out(reg) _,
                on = out(reg) _,
                options(nostack),
            );
        });
        let ok = fault.is_some_and(|f| f.esr.is_external_abort(true) && f.far == FAR_TEST_VA);
        check!(
            h,
            "hostile::far_with_mmu_on",
            ok,
            "store to VA {FAR_TEST_VA:#x} (IPA 0x80000040): {} (want FAR = the VA)",
            describe(fault)
        );
    }

    core::arch::global_asm!(
        ".section .text.hostile_el0, \"ax\"",
        ".balign 4",
        // A32: CNTP_CTL, which EL0 may use (CNTKCTL_EL1.EL0PTEN) but Tandem traps (EL2).
        "hostile_a32_cntp_ctl:",
        ".word 0xee1e0f32", // mrc p15, 0, r0, c14, c2, 1
        ".word 0xe7f000f0", // udf #0
        // T32: a 16-bit load from the vGIC, then where the PC must go next, then where it
        // would go if Tandem counted 4 bytes.
        "hostile_t32_vgic_load:",
        ".hword 0x6808", // ldr r0, [r1]
        ".hword 0xde00", // udf #0
        ".hword 0xde01", // udf #1
        ".hword 0xde02", // udf #2
        ".text",
    );

    unsafe extern "C" {
        static hostile_a32_cntp_ctl: u8;
        static hostile_t32_vgic_load: u8;
    }

    /// EL0 in AArch32 User mode, interrupts masked: A32 or T32.
    const USER_A32: u64 = 0x1d0;
    const USER_T32: u64 = 0x1f0;

    fn aarch32_el0(h: &mut Harness) {
        let el0 = ID_AA64PFR0_EL1.get() & 0xf;
        if el0 != 2 {
            // This CPU runs EL0 in AArch64 state only: nothing to check.
            for name in [
                "hostile::aarch32_cp15_undefined",
                "hostile::aarch32_t32_length",
            ] {
                check!(h, name, true, "skipped: ID_AA64PFR0_EL1.EL0 = {el0}");
            }
            return;
        }
        let a32 = (&raw const hostile_a32_cntp_ctl) as u64;
        let t32 = (&raw const hostile_t32_vgic_load) as u64;
        let cntkctl: u64;
        // SAFETY: reads this vCPU's CNTKCTL_EL1.
        unsafe {
            core::arch::asm!("mrs {}, cntkctl_el1", out(reg) cntkctl, options(nomem, nostack))
        };
        // SAFETY: EL0PTEN only opens the physical timer to EL0 (for the one access below).
        unsafe {
            core::arch::asm!("msr cntkctl_el1, {}", "isb", in(reg) cntkctl | (1 << 9), options(nomem, nostack));
        }
        // SAFETY: two A32 instructions that end in an exception; they write only r0.
        let e = unsafe { rt::run_at_el0(a32, USER_A32, 0) };
        // SAFETY: as above: the old value back.
        unsafe {
            core::arch::asm!("msr cntkctl_el1, {}", "isb", in(reg) cntkctl, options(nomem, nostack));
        }
        check!(
            h,
            "hostile::aarch32_cp15_undefined",
            e.kind == rt::KIND_EL0_AARCH32_SYNC
                && e.esr.is_undefined()
                && e.elr == a32
                && e.spsr & 0x3f == USER_A32 & 0x3f,
            "A32 mrc CNTP_CTL at EL0: vector kind {:#x} (want 0x30: VBAR + 0x600), ESR={:#x}, \
             ELR={:#x} (want {a32:#x}), SPSR={:#x}",
            e.kind,
            e.esr.0,
            e.elr,
            e.spsr
        );
        // SAFETY: a 16-bit T32 load from the emulated distributor (GICD_CTLR: no Rust object)
        // into r0, then UNDEFINED instructions.
        let e = unsafe { rt::run_at_el0(t32, USER_T32, GICD_BASE) };
        check!(
            h,
            "hostile::aarch32_t32_length",
            e.kind == rt::KIND_EL0_AARCH32_SYNC && e.esr.ec() == EC_UNKNOWN && e.elr == t32 + 2,
            "T32 ldr r0, [r1] from GICD_CTLR at EL0: the next instruction at ELR={:#x} \
             (want {:#x}), vector kind {:#x}",
            e.elr,
            t32 + 2,
            e.kind
        );
    }

    /// GICv2: GICD_SGIR naming CPU interfaces this VM does not have, and the reserved
    /// filter, are ignored; Tandem and this vCPU carry on.
    fn sgir_foreign_targets(h: &mut Harness) {
        let d = gic::distributor();
        d.write32(gicd2::SGIR, 0xfe << 16 | 1);
        d.write32(gicd2::SGIR, 3 << 24 | 0xff << 16 | 2);
        let pending = d.read32(gicd2::ISPENDR0) & 0xffff;
        check!(
            h,
            "hostile::sgir_foreign_targets",
            pending == 0,
            "SGIs pending here after sends to other CPU interfaces: {pending:#x}"
        );
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
