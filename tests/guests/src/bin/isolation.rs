//! `isolation`: what one VM may never see of another VM or of Tandem (issue 13, item 3).
//! Two VMs, `iso-a` and `iso-b`, run this image time-sharing one pCPU
//! (`platforms/qemu-virt/vms.toml`); each finds its name (and so its patterns) in its device
//! tree's `model`. Each boot of each VM:
//!
//! 1. `isolation::entry_registers_reset`: the registers as Tandem entered the vCPU, captured
//!    by `guest_main` (assembly) before any compiled code: x3..x8, x11..x18, x20..x29
//!    (guest-rt's `_start` uses the others), q0..q31, FPCR, FPSR, then the EL1/EL0 system
//!    registers Tandem switches, the virtual timer and the vGIC CPU interface. All read their
//!    reset values: no value from the other VM (which ran on the pCPU before) or from this
//!    VM's previous boot.
//! 2. `isolation::registers_kept`: every register it can write gets a value of its own
//!    (x0..x30, SP_EL0, SP_EL1, q0..q29 and the upper half of q30, FPCR, FPSR and the
//!    system registers of step 1), then it spins with IRQs masked through several of Tandem's
//!    10 ms slices (the other VM runs in between, writing its own values), and reads them all
//!    back: each must still hold this VM's value. It prints how long the spin took, so the
//!    system test checks that the other VM really ran during it.
//! 3. Memory canaries: it fills its free RAM with its canary word, then
//!    `isolation::reads_outside_ram` loads one word from each page it probes outside its RAM
//!    (coverage: [`probe_pages`]); only the emulated GIC window may answer, and no word read
//!    may be the other VM's canary or Tandem's (`TANDEM_CANARY`, kernel/src/mm/canary.rs).
//!    `isolation::writes_outside_ram` stores its canary to each probed page outside its RAM
//!    and the GIC window: every store must abort. After a pause (so the other VM's stores are
//!    done), `isolation::canary_intact`: its own canary is whole.
//!
//! Then `N passed, N failed` (with the boot's number of pages probed) and SYSTEM_RESET: the
//! next boot checks step 1 again, now after a run of its own (the system test
//! `tests/tests/isolation.rs` ends QEMU after each VM's second boot).
//!
//! Aborts: Tandem stops a VM that takes 10,000 aborts on unmapped IPAs within one second (a
//! fault storm), so the reads and the writes each stay under 9,000 probes, a second apart.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("isolation: a Tandem test guest; it runs only on aarch64-unknown-none");
}

#[cfg(target_os = "none")]
mod guest {
    use core::fmt;

    use test_guests::harness::Harness;
    use test_guests::{RAM_BASE, RAM_END, check, fdt, gic, println, rt, timer};

    /// The canary words Tandem keeps in a page of its own data (kernel/src/mm/canary.rs),
    /// stored inverted so that this image does not hold them.
    const TANDEM_CANARY_INV: [u64; 2] = [!0x7a4e_d3a5_ca4a_c0de, !0x0e12_5afe_c0de_7a4e];

    /// The emulated GIC window (distributor, redistributors): loads there are emulated.
    const GIC_WINDOW: core::ops::Range<u64> = 0x0800_0000..0x0900_0000;
    /// Tandem reserves the last 64 KiB of RAM for PV stolen time (not filled).
    const PV_TIME_REGION: u64 = 0x1_0000;
    /// Probes per phase: under the fault-storm limit of 10,000 aborts a second.
    const MAX_PROBES: usize = 9_000;

    // ---- step 1: the registers at entry ------------------------------------------------

    /// GPRs `guest_main` captures (guest-rt's `_start` writes x1, x2, x9, x10, x19, x30).
    const ENTRY_GPRS: [u8; 24] = [
        3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
    ];

    /// What `guest_main` stores before any compiled code: the 24 GPRs, q0..q31 (as 64
    /// words), FPCR, FPSR.
    #[repr(C, align(16))]
    struct EntryCapture {
        gprs: [u64; 24],
        q: [u64; 64],
        fpcr: u64,
        fpsr: u64,
    }

    #[unsafe(no_mangle)]
    static mut ENTRY_CAPTURE: EntryCapture = EntryCapture {
        gprs: [0; 24],
        q: [0; 64],
        fpcr: 0,
        fpsr: 0,
    };

    // vCPU 0's entry from guest-rt's `_start` (x0 = the DTB): store the untouched registers,
    // then the Rust main. Only x9 and x10 (already used by `_start`) are written first.
    core::arch::global_asm!(
        ".global guest_main",
        "guest_main:",
        "adrp x9, ENTRY_CAPTURE",
        "add x9, x9, :lo12:ENTRY_CAPTURE",
        "stp x3, x4, [x9, #0]",
        "stp x5, x6, [x9, #16]",
        "stp x7, x8, [x9, #32]",
        "stp x11, x12, [x9, #48]",
        "stp x13, x14, [x9, #64]",
        "stp x15, x16, [x9, #80]",
        "stp x17, x18, [x9, #96]",
        "stp x20, x21, [x9, #112]",
        "stp x22, x23, [x9, #128]",
        "stp x24, x25, [x9, #144]",
        "stp x26, x27, [x9, #160]",
        "stp x28, x29, [x9, #176]",
        "add x9, x9, #192",
        "stp q0, q1, [x9, #0]",
        "stp q2, q3, [x9, #32]",
        "stp q4, q5, [x9, #64]",
        "stp q6, q7, [x9, #96]",
        "stp q8, q9, [x9, #128]",
        "stp q10, q11, [x9, #160]",
        "stp q12, q13, [x9, #192]",
        "stp q14, q15, [x9, #224]",
        "stp q16, q17, [x9, #256]",
        "stp q18, q19, [x9, #288]",
        "stp q20, q21, [x9, #320]",
        "stp q22, q23, [x9, #352]",
        "stp q24, q25, [x9, #384]",
        "stp q26, q27, [x9, #416]",
        "stp q28, q29, [x9, #448]",
        "stp q30, q31, [x9, #480]",
        "mrs x10, fpcr",
        "str x10, [x9, #512]",
        "mrs x10, fpsr",
        "str x10, [x9, #520]",
        "b isolation_main",
    );

    #[unsafe(no_mangle)]
    extern "C" fn guest_secondary_main(context_id: u64) -> ! {
        rt::no_secondary(context_id)
    }

    macro_rules! mrs {
        ($reg:literal) => {{
            let v: u64;
            // SAFETY: reading this vCPU's own EL1/EL0 register has no side effect.
            unsafe {
                core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags))
            };
            v
        }};
    }

    macro_rules! msr {
        ($reg:literal, $v:expr) => {
            // SAFETY: `registers_kept` writes only values that leave this guest running: the
            // MMU stays off, no exception is taken while VBAR_EL1 holds a marker (IRQs are
            // masked, nothing faults), and every register is put back before use.
            unsafe {
                core::arch::asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) ($v as u64), options(nomem, nostack, preserves_flags))
            }
        };
    }

    /// The system registers checked, with their reset value as Tandem enters a vCPU
    /// (`VcpuContext::reset`: SCTLR_EL1 0x30d0_0800, everything else 0; VBAR_EL1 as `_start`
    /// sets it) and each VM's marker, which the register reads back after the write.
    /// Tandem also switches AMAIR_EL1, AFSR0_EL1 and AFSR1_EL1, which QEMU's Cortex-A72
    /// implements as RAZ/WI (nothing to check), and MDSCR_EL1, which traps (MDCR_EL2.TDA).
    struct SysReg {
        name: &'static str,
        reset: u64,
        /// Markers of `iso-a` and `iso-b`.
        marker: [u64; 2],
    }

    const SCTLR_RESET: u64 = 0x30d0_0800;
    /// VBAR_EL1 as guest-rt's `_start` leaves it (`guest_vectors`, linked at 0x4008_0800).
    const VECTORS: u64 = 0x4008_0800;
    /// ICC_BPR1_EL1 of a fresh vCPU: ICH_VMCR_EL2.VBPR1 = 0 reads as the minimum, 3 (the
    /// CPU's five priority bits: IHI 0069 ICC_BPR1_EL1).
    const BPR1_RESET: u64 = 3;
    /// SCTLR_EL1 bits that matter at EL0 only: DZE, UCT (a), nTWI, UCI (b).
    const SCTLR_MARKS: [u64; 2] = [
        SCTLR_RESET | 1 << 14 | 1 << 15,
        SCTLR_RESET | 1 << 16 | 1 << 26,
    ];

    const SYSREGS: [SysReg; 23] = [
        SysReg {
            name: "SCTLR_EL1",
            reset: SCTLR_RESET,
            marker: SCTLR_MARKS,
        },
        SysReg {
            name: "TTBR0_EL1",
            reset: 0,
            marker: [0x000a_0000_4010_a000, 0x000b_0000_4010_b000],
        },
        SysReg {
            name: "TTBR1_EL1",
            reset: 0,
            marker: [0x00a1_0000_4020_a000, 0x00b1_0000_4020_b000],
        },
        SysReg {
            name: "TCR_EL1",
            reset: 0,
            marker: [0x0000_0005_b519_3519, 0x0000_0004_a518_2518],
        },
        SysReg {
            name: "MAIR_EL1",
            reset: 0,
            marker: [0x0a0a_0a0a_44ff_0400, 0x0b0b_0b0b_ff44_0004],
        },
        SysReg {
            name: "VBAR_EL1",
            reset: VECTORS,
            marker: [0x4a4a_a000, 0x4b4b_b000],
        },
        SysReg {
            name: "CONTEXTIDR_EL1",
            reset: 0,
            marker: [0xaaaa_0001, 0xbbbb_0002],
        },
        SysReg {
            name: "TPIDR_EL0",
            reset: 0,
            marker: [0x15a7_000a_0000_0e10, 0x15a7_000b_0000_0e10],
        },
        SysReg {
            name: "TPIDRRO_EL0",
            reset: 0,
            marker: [0x15a7_000a_0000_0e20, 0x15a7_000b_0000_0e20],
        },
        SysReg {
            name: "TPIDR_EL1",
            reset: 0,
            marker: [0x15a7_000a_0000_0e11, 0x15a7_000b_0000_0e11],
        },
        SysReg {
            name: "ELR_EL1",
            reset: 0,
            marker: [0x15a7_000a_0000_e1e0, 0x15a7_000b_0000_e1e0],
        },
        SysReg {
            name: "SPSR_EL1",
            reset: 0,
            marker: [0xa000_03c5, 0x5000_0345],
        },
        SysReg {
            name: "ESR_EL1",
            reset: 0,
            marker: [0x9600_00a1, 0x9200_00b2],
        },
        SysReg {
            name: "FAR_EL1",
            reset: 0,
            marker: [0x15a7_000a_0000_fa40, 0x15a7_000b_0000_fa40],
        },
        SysReg {
            name: "PAR_EL1",
            reset: 0,
            marker: [0x0000_0000_4aa0_0000, 0x0000_0000_4bb0_0000],
        },
        SysReg {
            name: "CNTKCTL_EL1",
            reset: 0,
            marker: [0x2a5, 0x15a],
        },
        SysReg {
            name: "CSSELR_EL1",
            reset: 0,
            marker: [1, 2],
        },
        SysReg {
            name: "CNTV_CTL_EL0",
            reset: 0,
            marker: [0b11, 0b10],
        },
        SysReg {
            name: "CNTV_CVAL_EL0",
            reset: 0,
            marker: [0x15a7_000a_0000_c0a1, 0x15a7_000b_0000_c0a1],
        },
        SysReg {
            name: "ICC_PMR_EL1",
            reset: 0,
            marker: [0xa0, 0x50],
        },
        SysReg {
            name: "ICC_BPR1_EL1",
            reset: BPR1_RESET,
            marker: [4, 5],
        },
        SysReg {
            name: "ICC_IGRPEN1_EL1",
            reset: 0,
            marker: [1, 1],
        },
        SysReg {
            name: "ICC_AP1R0_EL1",
            reset: 0,
            marker: [0x8000_0001, 0x0100_0010],
        },
    ];

    /// The system registers of [`SYSREGS`], read now (CNTV_CTL_EL0 without ISTATUS).
    fn read_sysregs() -> [u64; 23] {
        [
            mrs!("sctlr_el1"),
            mrs!("ttbr0_el1"),
            mrs!("ttbr1_el1"),
            mrs!("tcr_el1"),
            mrs!("mair_el1"),
            mrs!("vbar_el1"),
            mrs!("contextidr_el1"),
            mrs!("tpidr_el0"),
            mrs!("tpidrro_el0"),
            mrs!("tpidr_el1"),
            mrs!("elr_el1"),
            mrs!("spsr_el1"),
            mrs!("esr_el1"),
            mrs!("far_el1"),
            mrs!("par_el1"),
            mrs!("cntkctl_el1"),
            mrs!("csselr_el1"),
            mrs!("cntv_ctl_el0") & 0b11,
            mrs!("cntv_cval_el0"),
            mrs!("icc_pmr_el1"),
            mrs!("icc_bpr1_el1"),
            mrs!("icc_igrpen1_el1"),
            mrs!("icc_ap1r0_el1"),
        ]
    }

    /// Writes this VM's markers into the registers of [`SYSREGS`] (VBAR_EL1 too: nothing may
    /// trap until [`restore_sysregs`]).
    fn write_sysregs(vm: usize) {
        let m = |i: usize| SYSREGS[i].marker[vm];
        // Disabled and masked first: the marker deadline can never fire.
        msr!("cntv_ctl_el0", 0b10u64);
        msr!("sctlr_el1", m(0));
        msr!("ttbr0_el1", m(1));
        msr!("ttbr1_el1", m(2));
        msr!("tcr_el1", m(3));
        msr!("mair_el1", m(4));
        msr!("vbar_el1", m(5));
        msr!("contextidr_el1", m(6));
        msr!("tpidr_el0", m(7));
        msr!("tpidrro_el0", m(8));
        msr!("tpidr_el1", m(9));
        msr!("elr_el1", m(10));
        msr!("spsr_el1", m(11));
        msr!("esr_el1", m(12));
        msr!("far_el1", m(13));
        msr!("par_el1", m(14));
        msr!("cntkctl_el1", m(15));
        msr!("csselr_el1", m(16));
        msr!("cntv_cval_el0", m(18));
        msr!("cntv_ctl_el0", m(17));
        msr!("icc_sre_el1", 0b111u64);
        msr!("icc_pmr_el1", m(19));
        msr!("icc_bpr1_el1", m(20));
        msr!("icc_igrpen1_el1", m(21));
        msr!("icc_ap1r0_el1", m(22));
    }

    /// Puts back what the rest of the run relies on: the vectors, SCTLR_EL1, the timer off,
    /// no active priority, EL0 counter access off.
    fn restore_sysregs() {
        msr!("vbar_el1", guest_rt::vectors());
        msr!("sctlr_el1", SCTLR_RESET);
        msr!("cntv_ctl_el0", 0u64);
        msr!("icc_ap1r0_el1", 0u64);
        msr!("icc_igrpen1_el1", 0u64);
        msr!("cntkctl_el1", 0u64);
        msr!("fpcr", 0u64);
        msr!("fpsr", 0u64);
    }

    /// Names the registers whose value is not the expected one: `(name, index, value)`.
    struct Mismatches<'a>(&'a [(&'static str, usize, u64)]);

    impl fmt::Display for Mismatches<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, (name, n, v)) in self.0.iter().enumerate() {
                if i == 6 {
                    return write!(f, " and {} more", self.0.len() - 6);
                }
                if *n == usize::MAX {
                    write!(f, " {name}={v:#x}")?;
                } else {
                    write!(f, " {name}{n}={v:#x}")?;
                }
            }
            Ok(())
        }
    }

    /// A short list of mismatches.
    struct List {
        items: [(&'static str, usize, u64); 32],
        len: usize,
        total: usize,
    }

    impl List {
        const fn new() -> Self {
            Self {
                items: [("", 0, 0); 32],
                len: 0,
                total: 0,
            }
        }

        fn push(&mut self, name: &'static str, n: usize, v: u64) {
            if self.len < self.items.len() {
                self.items[self.len] = (name, n, v);
                self.len += 1;
            }
            self.total += 1;
        }

        fn show(&self) -> Mismatches<'_> {
            Mismatches(&self.items[..self.len])
        }
    }

    fn entry_registers(h: &mut Harness, sys: &[u64; 23]) {
        let cap = &raw const ENTRY_CAPTURE;
        // SAFETY: written once by `guest_main` before any Rust code; only read here.
        let cap = unsafe { &*cap };
        let mut bad = List::new();
        for (i, &v) in cap.gprs.iter().enumerate() {
            if v != 0 {
                bad.push("x", usize::from(ENTRY_GPRS[i]), v);
            }
        }
        for (i, q) in cap.q.chunks(2).enumerate() {
            if q != [0, 0] {
                bad.push("q", i, if q[0] != 0 { q[0] } else { q[1] });
            }
        }
        if cap.fpcr != 0 {
            bad.push("FPCR", usize::MAX, cap.fpcr);
        }
        if cap.fpsr != 0 {
            bad.push("FPSR", usize::MAX, cap.fpsr);
        }
        for (r, &v) in SYSREGS.iter().zip(sys) {
            if v != r.reset {
                bad.push(r.name, usize::MAX, v);
            }
        }
        let total = ENTRY_GPRS.len() + 32 + 2 + SYSREGS.len();
        check!(
            h,
            "isolation::entry_registers_reset",
            bad.total == 0,
            "{} of {total} registers at their reset value{}{}",
            total - bad.total,
            if bad.total > 0 { "; not:" } else { "" },
            bad.show()
        );
    }

    // ---- step 2: registers kept across the other VM's slices -------------------------------

    /// x0..x30, SP_EL0, SP_EL1 as the spin leaves them, then q0..q31 (64 words), FPCR, FPSR.
    #[repr(C, align(16))]
    struct Spin {
        x: [u64; 31],
        sp_el0: u64,
        sp_el1: u64,
        _pad: u64,
        q: [u64; 64],
        fpcr: u64,
        fpsr: u64,
    }

    /// Per VM: the values the spin loads (and must find again), and the dump the spin
    /// writes. Both VMs use the same image (the same addresses): SP_EL1 during the spin is
    /// `&SPIN_DUMP[vm] + size`, so it differs between the VMs too.
    static mut SPIN_IN: Spin = Spin::zero();
    static mut SPIN_DUMP: [Spin; 2] = [Spin::zero(), Spin::zero()];
    /// SP, x19 and x29 of the Rust code around the spin (x19 and x29 are LLVM's: they
    /// cannot be declared clobbered).
    static mut SAVED: [u64; 3] = [0; 3];

    impl Spin {
        const fn zero() -> Self {
            Self {
                x: [0; 31],
                sp_el0: 0,
                sp_el1: 0,
                _pad: 0,
                q: [0; 64],
                fpcr: 0,
                fpsr: 0,
            }
        }

        /// This VM's values: `0x15a7_00vv_xxxx_00ii` with vv = 0a or 0b.
        fn markers(vm: usize, dump_top: u64) -> Self {
            let tag = (0xa + vm as u64) << 32;
            let mut s = Self::zero();
            for i in 0..31 {
                s.x[i] = 0x15a7_0000_0000_0000 | tag | 0x1000 | i as u64;
            }
            s.sp_el0 = 0x15a7_0000_0000_5e00 | tag;
            s.sp_el1 = dump_top;
            for i in 0..64 {
                s.q[i] = 0x15a7_0000_0000_0000 | tag | 0x2000 | i as u64;
            }
            // q30's low half is the loop's step, q31 its counter (below).
            s.fpcr = if vm == 0 { 0x0340_0000 } else { 0x0380_0000 };
            s.fpsr = if vm == 0 { 0x0800_0009 } else { 0x0000_0012 };
            s
        }
    }

    /// Spins `steps` times with every register loaded from `SPIN_IN` (q31 counts down by
    /// q30's low double, the step), then dumps them all to the stack top the spin ran on
    /// (`SPIN_IN.sp_el1`, the end of this VM's `SPIN_DUMP` slot), the loop's step 1.0 in q30's
    /// low half.
    ///
    /// # Safety
    ///
    /// `SPIN_IN` holds this VM's markers, with `sp_el1` the end of its `SPIN_DUMP` slot; IRQs
    /// are masked and nothing may fault (VBAR_EL1 holds a marker).
    unsafe fn spin(steps: f64) {
        let input = &raw const SPIN_IN;
        let saved = &raw mut SAVED;
        // SAFETY: the caller's contract; every register but sp is declared clobbered, and sp
        // comes back from SAVED_SP. The dump is written below SPIN_IN.sp_el1.
        unsafe {
            core::arch::asm!(
                "mov x2, sp",
                "str x2, [x1]",
                "stp x19, x29, [x1, #8]",
                "fmov d31, x3",
                // SP_EL0, then q0..q29, q30's upper half, FPCR, FPSR from SPIN_IN.
                "ldr x2, [x0, #248]",
                "msr sp_el0, x2",
                "add x2, x0, #272",
                "ldp q0, q1, [x2, #0]",
                "ldp q2, q3, [x2, #32]",
                "ldp q4, q5, [x2, #64]",
                "ldp q6, q7, [x2, #96]",
                "ldp q8, q9, [x2, #128]",
                "ldp q10, q11, [x2, #160]",
                "ldp q12, q13, [x2, #192]",
                "ldp q14, q15, [x2, #224]",
                "ldp q16, q17, [x2, #256]",
                "ldp q18, q19, [x2, #288]",
                "ldp q20, q21, [x2, #320]",
                "ldp q22, q23, [x2, #352]",
                "ldp q24, q25, [x2, #384]",
                "ldp q26, q27, [x2, #416]",
                "ldp q28, q29, [x2, #448]",
                "ldr q30, [x2, #480]",
                "movz x3, #0x3ff0, lsl #48",  // 1.0, into q30's low half only
                "ins v30.d[0], x3",
                "ldr x3, [x2, #512]",
                "msr fpcr, x3",
                "ldr x3, [x2, #520]",
                "msr fpsr, x3",
                "ldr x2, [x0, #256]",
                "mov sp, x2",
                // x1..x30, then x0.
                "ldp x1, x2, [x0, #8]",
                "ldp x3, x4, [x0, #24]",
                "ldp x5, x6, [x0, #40]",
                "ldp x7, x8, [x0, #56]",
                "ldp x9, x10, [x0, #72]",
                "ldp x11, x12, [x0, #88]",
                "ldp x13, x14, [x0, #104]",
                "ldp x15, x16, [x0, #120]",
                "ldp x17, x18, [x0, #136]",
                "ldp x19, x20, [x0, #152]",
                "ldp x21, x22, [x0, #168]",
                "ldp x23, x24, [x0, #184]",
                "ldp x25, x26, [x0, #200]",
                "ldp x27, x28, [x0, #216]",
                "ldp x29, x30, [x0, #232]",
                "ldr x0, [x0, #0]",
                "2:",
                "fsub d31, d31, d30",
                "fcmp d31, #0.0",
                "b.gt 2b",
                // Dump: the Spin layout, below the stack top (sp).
                "sub sp, sp, #{size}",
                "stp x0, x1, [sp, #0]",
                "stp x2, x3, [sp, #16]",
                "stp x4, x5, [sp, #32]",
                "stp x6, x7, [sp, #48]",
                "stp x8, x9, [sp, #64]",
                "stp x10, x11, [sp, #80]",
                "stp x12, x13, [sp, #96]",
                "stp x14, x15, [sp, #112]",
                "stp x16, x17, [sp, #128]",
                "stp x18, x19, [sp, #144]",
                "stp x20, x21, [sp, #160]",
                "stp x22, x23, [sp, #176]",
                "stp x24, x25, [sp, #192]",
                "stp x26, x27, [sp, #208]",
                "stp x28, x29, [sp, #224]",
                "mrs x0, sp_el0",
                "stp x30, x0, [sp, #240]",
                "add x0, sp, #{size}",
                "str x0, [sp, #256]",
                "add x0, sp, #272",
                "stp q0, q1, [x0, #0]",
                "stp q2, q3, [x0, #32]",
                "stp q4, q5, [x0, #64]",
                "stp q6, q7, [x0, #96]",
                "stp q8, q9, [x0, #128]",
                "stp q10, q11, [x0, #160]",
                "stp q12, q13, [x0, #192]",
                "stp q14, q15, [x0, #224]",
                "stp q16, q17, [x0, #256]",
                "stp q18, q19, [x0, #288]",
                "stp q20, q21, [x0, #320]",
                "stp q22, q23, [x0, #352]",
                "stp q24, q25, [x0, #384]",
                "stp q26, q27, [x0, #416]",
                "stp q28, q29, [x0, #448]",
                "stp q30, q31, [x0, #480]",
                "mrs x1, fpcr",
                "str x1, [x0, #512]",
                "mrs x1, fpsr",
                "str x1, [x0, #520]",
                "adrp x1, {saved}",
                "add x1, x1, :lo12:{saved}",
                "ldp x19, x29, [x1, #8]",
                "ldr x1, [x1]",
                "mov sp, x1",
                size = const core::mem::size_of::<Spin>(),
                saved = sym SAVED,
                in("x0") input,
                in("x1") saved,
                in("x3") steps.to_bits(),
                out("x2") _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                out("x18") _, out("x20") _, out("x21") _, out("x22") _,
                out("x23") _, out("x24") _, out("x25") _, out("x26") _, out("x27") _,
                out("x28") _, out("x30") _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _,
                out("v5") _, out("v6") _, out("v7") _, out("v8") _, out("v9") _,
                out("v10") _, out("v11") _, out("v12") _, out("v13") _, out("v14") _,
                out("v15") _, out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _, out("v24") _,
                out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _,
                out("v30") _, out("v31") _,
            );
        }
    }

    fn registers_kept(h: &mut Harness, vm: usize) {
        let dump_top =
            (&raw const SPIN_DUMP) as u64 + ((vm + 1) * core::mem::size_of::<Spin>()) as u64;
        let want = Spin::markers(vm, dump_top);
        let input = &raw mut SPIN_IN;
        // SAFETY: only this function touches SPIN_IN, with no other vCPU running this code.
        unsafe { input.write(Spin::markers(vm, dump_top)) };
        // ~30 ms of the vCPU's own time: three instructions a step, 1 ns each under -icount.
        let steps = 10_000_000.0;
        let before = timer::now();
        write_sysregs(vm);
        // SAFETY: SPIN_IN holds the markers with sp_el1 = the end of this VM's dump slot;
        // IRQs are masked since boot and the spin touches no memory that can fault.
        unsafe { spin(steps) };
        let sys = read_sysregs();
        restore_sysregs();
        let elapsed = timer::now() - before;
        let dump = &raw const SPIN_DUMP;
        // SAFETY: the spin wrote this VM's slot; nothing else does.
        let got = unsafe { &(*dump)[vm] };

        let mut bad = List::new();
        let mut untested = List::new();
        for i in 0..31 {
            if got.x[i] != want.x[i] {
                bad.push("x", i, got.x[i]);
            }
        }
        if got.sp_el0 != want.sp_el0 {
            bad.push("SP_EL0", usize::MAX, got.sp_el0);
        }
        if got.sp_el1 != want.sp_el1 {
            bad.push("SP_EL1", usize::MAX, got.sp_el1);
        }
        // q0..q29 whole, q30's upper half (its lower half is the step 1.0, q31 the counter).
        for i in 0..30 {
            let (g, w) = (&got.q[2 * i..2 * i + 2], &want.q[2 * i..2 * i + 2]);
            if g != w {
                bad.push("q", i, if g[0] != w[0] { g[0] } else { g[1] });
            }
        }
        if got.q[61] != want.q[61] {
            bad.push("q30.d[1]=", 30, got.q[61]);
        }
        if got.fpcr != want.fpcr {
            bad.push("FPCR", usize::MAX, got.fpcr);
        }
        if got.fpsr != want.fpsr {
            bad.push("FPSR", usize::MAX, got.fpsr);
        }
        for (r, &v) in SYSREGS.iter().zip(&sys) {
            if v != r.marker[vm] {
                bad.push(r.name, usize::MAX, v);
            } else if v == r.reset {
                untested.push(r.name, usize::MAX, v);
            }
        }
        let total = 31 + 2 + 31 + 2 + SYSREGS.len();
        check!(
            h,
            "isolation::registers_kept",
            bad.total == 0,
            "{} of {total} registers kept this VM's values{}{}",
            total - bad.total,
            if bad.total > 0 { "; not:" } else { "" },
            bad.show()
        );
        if untested.total > 0 {
            println!(
                "isolation: markers equal to the reset value (not tested):{}",
                untested.show()
            );
        }
        // The spin is 3 instructions a step (1 ns each under -icount): the rest of the
        // elapsed time is the other VM's (the system test checks it did run in boot 1; in
        // later boots the VMs' phases drift apart).
        println!(
            "isolation: the spin took {} ms for {} ms of its own",
            elapsed / (timer::hz() / 1000),
            (steps as u64) * 3 / 1_000_000
        );
    }

    // ---- step 3: memory canaries ---------------------------------------------------------

    /// This VM's canary word.
    fn canary(vm: usize) -> u64 {
        0xc0a1_0000_0000_c0a1 | (0xa + vm as u64) << 32 | (0xa + vm as u64) << 24
    }

    /// What a probed page showed.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Seen {
        Nothing,
        OtherCanary,
        TandemCanary,
    }

    fn classify(word: u64, other: u64) -> Seen {
        let inv = core::hint::black_box(TANDEM_CANARY_INV);
        if word == other {
            Seen::OtherCanary
        } else if !word == inv[0] || !word == inv[1] {
            Seen::TandemCanary
        } else {
            Seen::Nothing
        }
    }

    /// The pages probed outside this VM's RAM, in order (at most [`MAX_PROBES`]):
    /// - 0..4 GiB, the first page of every 2 MiB block (2,048 blocks, RAM's own skipped);
    /// - every page of the 8 MiB after RAM and of the 1 MiB below it;
    /// - every page of the first MiB of the channel window (0xC000_0000);
    /// - every 64 KiB of the GIC and UART windows (0x0800_0000..0x0a00_0000);
    /// - 4 GiB..1 TiB, the first page of every GiB.
    fn probe_pages(mut f: impl FnMut(u64)) -> usize {
        let mut n = 0;
        let mut visit = |ipa: u64, f: &mut dyn FnMut(u64)| {
            if (RAM_BASE..RAM_END).contains(&ipa) || n >= MAX_PROBES {
                return;
            }
            n += 1;
            f(ipa);
        };
        let mut ipa = 0;
        while ipa < 1 << 32 {
            visit(ipa, &mut f);
            ipa += 2 << 20;
        }
        for ipa in (RAM_END + 0x1000..RAM_END + (8 << 20)).step_by(0x1000) {
            if ipa % (2 << 20) != 0 {
                visit(ipa, &mut f);
            }
        }
        for ipa in (RAM_BASE - (1 << 20)..RAM_BASE).step_by(0x1000) {
            if ipa % (2 << 20) != 0 {
                visit(ipa, &mut f);
            }
        }
        for ipa in (0xc000_1000..0xc010_0000).step_by(0x1000) {
            visit(ipa, &mut f);
        }
        for ipa in (0x0800_0000..0x0a00_0000u64).step_by(0x1_0000) {
            if ipa % (2 << 20) != 0 {
                visit(ipa, &mut f);
            }
        }
        let mut ipa = 1u64 << 32;
        while ipa < 1 << 40 {
            visit(ipa, &mut f);
            ipa += 1 << 30;
        }
        n
    }

    /// Fills `[start, end)` with `word`.
    fn fill(start: u64, end: u64, word: u64) {
        for a in (start..end).step_by(8) {
            // SAFETY: free RAM of this VM, above its image and stacks: no Rust object.
            unsafe { rt::store64(a, word) };
        }
    }

    /// Addresses in `[start, end)` that do not hold `word`: (count, first).
    fn verify(start: u64, end: u64, word: u64) -> (u64, u64) {
        let (mut count, mut first) = (0, 0);
        for a in (start..end).step_by(8) {
            // SAFETY: as in `fill`.
            if unsafe { rt::load64(a) } != word {
                if count == 0 {
                    first = a;
                }
                count += 1;
            }
        }
        (count, first)
    }

    unsafe extern "C" {
        static __image_end: u8;
    }

    fn canaries(h: &mut Harness, vm: usize) -> usize {
        let own = canary(vm);
        let other = canary(1 - vm);
        let free = ((&raw const __image_end) as u64 + 0xfff) & !0xfff;
        let free_end = RAM_END - PV_TIME_REGION;
        fill(free, free_end, own);

        // Loads: one word per page; a page that answers outside the GIC window is scanned.
        let (mut aborted, mut gic_reads, mut readable) = (0u64, 0u64, 0u64);
        let (mut others, mut tandems) = (0u64, 0u64);
        let mut first_leak = (0u64, Seen::Nothing);
        let probed = probe_pages(|ipa| {
            let fault = rt::expect_fault(|| {
                // SAFETY: outside this VM's RAM: nothing of this guest; a fault is expected.
                // 32 bits: the width every emulated GIC register accepts.
                core::hint::black_box(unsafe { rt::load32(ipa) });
            });
            if fault.is_some() {
                aborted += 1;
                return;
            }
            if GIC_WINDOW.contains(&ipa) {
                gic_reads += 1;
                return;
            }
            readable += 1;
            for a in (ipa..ipa + 0x1000).step_by(8) {
                let mut word = 0;
                let _ = rt::expect_fault(|| {
                    // SAFETY: as above.
                    word = unsafe { rt::load64(a) };
                });
                let seen = classify(word, other);
                match seen {
                    Seen::Nothing => {}
                    Seen::OtherCanary => others += 1,
                    Seen::TandemCanary => tandems += 1,
                }
                if seen != Seen::Nothing && first_leak.1 == Seen::Nothing {
                    first_leak = (a, seen);
                }
            }
        });
        check!(
            h,
            "isolation::reads_outside_ram",
            readable == 0 && others + tandems == 0,
            "{probed} pages probed: {aborted} aborted, {gic_reads} in the emulated GIC, {readable} readable elsewhere; canary words seen: {others} of the other VM's, {tandems} of Tandem's"
        );
        if first_leak.1 != Seen::Nothing {
            println!(
                "isolation: first canary word ({}) at IPA {:#x}",
                if first_leak.1 == Seen::OtherCanary {
                    "the other VM's"
                } else {
                    "Tandem's"
                },
                first_leak.0
            );
        }

        // A second later (a new fault-storm window), stores to the same pages.
        pause_ms(1100);
        let (mut store_aborted, mut landed, mut first_landed) = (0u64, 0u64, 0u64);
        let stored = probe_pages(|ipa| {
            if GIC_WINDOW.contains(&ipa) {
                return;
            }
            let fault = rt::expect_fault(|| {
                // SAFETY: outside this VM's RAM and the GIC: the store must abort.
                unsafe { rt::store64(ipa, own) };
            });
            if fault.is_some() {
                store_aborted += 1;
            } else {
                if landed == 0 {
                    first_landed = ipa;
                }
                landed += 1;
            }
        });
        let _ = stored;
        check!(
            h,
            "isolation::writes_outside_ram",
            landed == 0,
            "{} stores outside RAM and the GIC: {store_aborted} aborted, {landed} landed{}",
            store_aborted + landed,
            if landed > 0 {
                " (first at the IPA below)"
            } else {
                ""
            }
        );
        if landed > 0 {
            println!("isolation: first store that landed at IPA {first_landed:#x}");
        }

        // The other VM's stores are done within its next slices.
        pause_ms(300);
        let (wrong, first) = verify(free, free_end, own);
        check!(
            h,
            "isolation::canary_intact",
            wrong == 0,
            "{} KiB of canary at {free:#x}..{free_end:#x}: {wrong} words changed{}",
            (free_end - free) >> 10,
            if wrong > 0 { " (first below)" } else { "" }
        );
        if wrong > 0 {
            // SAFETY: this VM's own RAM.
            let v = unsafe { rt::load64(first) };
            println!("isolation: canary word at {first:#x} reads {v:#x}");
        }
        probed
    }

    /// Sleeps `ms` milliseconds in WFI on the virtual timer (the other VM runs meanwhile; with
    /// every pCPU idle, -icount skips the time).
    fn pause_ms(ms: u64) {
        let until = timer::now() + ms * (timer::hz() / 1000);
        timer::arm_at(until);
        rt::wait_for_interrupt_until(until, || timer::now() >= until);
        timer::disable();
    }

    #[unsafe(no_mangle)]
    extern "C" fn isolation_main(dtb: u64) -> ! {
        // First, before anything changes them: the system registers as Tandem entered.
        let entry_sys = read_sysregs();
        // SAFETY: the device tree Tandem placed at `dtb` (at most 64 KiB are read).
        let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, 64 << 10) };
        let model = fdt::root_property(blob, "model")
            .and_then(fdt::as_str)
            .unwrap_or("");
        let vm = if model.ends_with(" iso-a") {
            0
        } else if model.ends_with(" iso-b") {
            1
        } else {
            println!("isolation: VM name not iso-a or iso-b in the model '{model}'");
            rt::power_off();
        };
        println!(
            "isolation: VM iso-{} boots",
            if vm == 0 { 'a' } else { 'b' }
        );
        let mut h = Harness::new();
        entry_registers(&mut h, &entry_sys);
        registers_kept(&mut h, vm);
        gic::distributor_on();
        gic::wake(0);
        gic::enable_private(0, timer::VTIMER_INTID, 0x80);
        gic::cpu_interface_on();
        rt::irq_enable();
        let probed = canaries(&mut h, vm);
        println!("isolation: {probed} pages probed outside RAM");
        h.summary();
        let Err(e) = pv_abi::guest::system_reset();
        println!("[!] SYSTEM_RESET failed: {e}");
        rt::park()
    }
}
