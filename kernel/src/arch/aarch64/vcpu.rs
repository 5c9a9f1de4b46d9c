//! Loading and saving vCPU state on a physical CPU, entering the guest, and
//! the EL2 configuration every guest runs under.

use crate::vcpu::exit::{ExitSnapshot, ExitVector};
use crate::vcpu::inject::El1Exception;
use crate::vcpu::regs::{El1Regs, FpRegs, GuestRegs, TimerRegs};
use crate::vcpu::sysreg::FeatureTraps;

unsafe extern "C" {
    fn guest_enter(regs: *mut GuestRegs) -> u64;
    fn take_pending_serror() -> u64;
    fn fp_save(regs: *mut FpRegs);
    fn fp_restore(regs: *const FpRegs);
}

/// HCR_EL2 while guests run. Each bit, in order:
/// VM (stage 2), SWIO, PTW, FMO/IMO/AMO (physical interrupts and SError to EL2, virtual
/// ones to the guest), FB + BSU=inner shareable (broadcast TLB/cache maintenance), TWI/TWE
/// (WFI/WFE trap), TSC (SMC traps), TID3 (ID registers trap), TACR (ACTLR trap), TSW (set/way
/// trap), TIDCP (implementation-defined registers trap), RW (EL1 is AArch64).
pub const HCR_GUEST: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 9)
    | (1 << 10)
    | (1 << 13)
    | (1 << 14)
    | (1 << 19)
    | (1 << 18)
    | (1 << 21)
    | (1 << 22)
    | (1 << 20)
    | (1 << 31);

/// Programs the EL2 controls shared by every guest on this CPU.
pub fn init_cpu(vtcr: u64) {
    // Trace, AMU, RAS error records and LORegions, which the ID registers hide, trap
    // (to UNDEFINED) where the CPU has them; elsewhere their trap bits are RES0.
    let traps = FeatureTraps::for_cpu(
        read_sysreg!("id_aa64pfr0_el1"),
        read_sysreg!("id_aa64dfr0_el1"),
        read_sysreg!("id_aa64mmfr1_el1"),
    );
    write_sysreg!("vtcr_el2", vtcr);
    write_sysreg!("hcr_el2", HCR_GUEST | traps.hcr);
    // CNTHCTL_EL2: EL1PCTEN (guests may read the physical counter), EL1PCEN = 0 (the EL1
    // physical timer traps: guests use the virtual timer).
    write_sysreg!("cnthctl_el2", 1);
    // MDCR_EL2: TPM + TPMCR (PMU traps), TDA + TDOSA + TDRA (debug registers trap), HPMN = 0.
    write_sysreg!(
        "mdcr_el2",
        (1 << 6) | (1 << 5) | (1 << 9) | (1 << 10) | (1 << 11) | traps.mdcr
    );
    // CPTR_EL2: TZ (SVE traps); FP/SIMD do not trap (switched with the vCPU).
    write_sysreg!("cptr_el2", 0x33ff | traps.cptr);
    write_sysreg!("vpidr_el2", read_sysreg!("midr_el1"));
    isb();
}

fn isb() {
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("isb", options(nomem, nostack, preserves_flags)) };
}

/// Makes `vttbr` (stage-2 root | VMID << 48) current and sets the VM's counter offset.
pub fn load_vm(vttbr: u64, cntvoff: u64) {
    write_sysreg!("vttbr_el2", vttbr);
    write_sysreg!("cntvoff_el2", cntvoff);
    isb();
}

/// Invalidates all stage-1 and stage-2 TLB entries of the current VMID on every CPU.
pub fn flush_vm_tlb() {
    // SAFETY: TLB maintenance for the VMID in VTTBR_EL2; no memory is written.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// The smallest data-cache line (CTR_EL0.DminLine, log2 of words).
fn dcache_line() -> u64 {
    4 << ((read_sysreg!("ctr_el0") >> 16) & 0xf)
}

/// Cleans and invalidates the data cache for `start..start + len` to the point of
/// coherency (DC CIVAC), then waits for it to complete.
pub fn clean_to_poc(start: u64, len: u64) {
    let line = dcache_line();
    let mut a = start & !(line - 1);
    while a < start + len {
        // SAFETY: cleans and invalidates a data-cache line of guest RAM Tandem owns;
        // its contents stay as they are in memory.
        unsafe { core::arch::asm!("dc civac, {0}", in(reg) a, options(nostack)) };
        a += line;
    }
    // SAFETY: a barrier; completes the maintenance above.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Makes instruction fetches see code Tandem just copied into guest memory.
pub fn sync_icache(start: u64, len: u64) {
    let line = 64;
    let mut a = start & !(line - 1);
    while a < start + len {
        // SAFETY: cleans data-cache lines of mapped guest RAM to the point of unification.
        unsafe { core::arch::asm!("dc cvau, {0}", in(reg) a, options(nostack)) };
        a += line;
    }
    // SAFETY: completes the cleans, then invalidates all instruction caches.
    unsafe { core::arch::asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Waits for the memory accesses of the guest that ran last and takes an SError it
/// left pending (at EL2, where the SError vector recognises it); true if there was one.
pub fn take_serror() -> bool {
    // SAFETY: uses only x0/x1 and PSTATE.A, which it masks again; the SError vector
    // returns into it.
    unsafe { take_pending_serror() != 0 }
}

/// Sets the vCPU's MPIDR as the guest reads it.
pub fn set_vmpidr(mpidr: u64) {
    write_sysreg!("vmpidr_el2", mpidr);
}

/// Enters the guest; returns the exit snapshot when it traps back.
pub fn run(regs: &mut GuestRegs) -> ExitSnapshot {
    // SAFETY: `regs` is a valid GuestRegs for the duration of the call; guest_enter saves and
    // restores every callee-saved register and SP_EL0, and EL2 state is what init_cpu set up.
    let kind = unsafe { guest_enter(regs) };
    ExitSnapshot {
        vector: match kind {
            0 => ExitVector::Sync,
            1 => ExitVector::Irq,
            2 => ExitVector::Fiq,
            _ => ExitVector::SError,
        },
        esr: read_sysreg!("esr_el2"),
        far: read_sysreg!("far_el2"),
        hpfar: read_sysreg!("hpfar_el2"),
    }
}

/// Saves the EL1 system registers of the vCPU leaving this CPU.
pub fn save_el1(r: &mut El1Regs) {
    r.sctlr = read_sysreg!("sctlr_el1");
    r.ttbr0 = read_sysreg!("ttbr0_el1");
    r.ttbr1 = read_sysreg!("ttbr1_el1");
    r.tcr = read_sysreg!("tcr_el1");
    r.mair = read_sysreg!("mair_el1");
    r.amair = read_sysreg!("amair_el1");
    r.vbar = read_sysreg!("vbar_el1");
    r.contextidr = read_sysreg!("contextidr_el1");
    r.tpidr_el0 = read_sysreg!("tpidr_el0");
    r.tpidrro_el0 = read_sysreg!("tpidrro_el0");
    r.tpidr_el1 = read_sysreg!("tpidr_el1");
    r.sp_el1 = read_sysreg!("sp_el1");
    r.elr = read_sysreg!("elr_el1");
    r.spsr = read_sysreg!("spsr_el1");
    r.esr = read_sysreg!("esr_el1");
    r.far = read_sysreg!("far_el1");
    r.afsr0 = read_sysreg!("afsr0_el1");
    r.afsr1 = read_sysreg!("afsr1_el1");
    r.par = read_sysreg!("par_el1");
    r.cpacr = read_sysreg!("cpacr_el1");
    r.cntkctl = read_sysreg!("cntkctl_el1");
    r.csselr = read_sysreg!("csselr_el1");
    r.mdscr = read_sysreg!("mdscr_el1");
}

/// Loads the EL1 system registers of the vCPU about to run.
pub fn restore_el1(r: &El1Regs) {
    write_sysreg!("sctlr_el1", r.sctlr);
    write_sysreg!("ttbr0_el1", r.ttbr0);
    write_sysreg!("ttbr1_el1", r.ttbr1);
    write_sysreg!("tcr_el1", r.tcr);
    write_sysreg!("mair_el1", r.mair);
    write_sysreg!("amair_el1", r.amair);
    write_sysreg!("vbar_el1", r.vbar);
    write_sysreg!("contextidr_el1", r.contextidr);
    write_sysreg!("tpidr_el0", r.tpidr_el0);
    write_sysreg!("tpidrro_el0", r.tpidrro_el0);
    write_sysreg!("tpidr_el1", r.tpidr_el1);
    write_sysreg!("sp_el1", r.sp_el1);
    write_sysreg!("elr_el1", r.elr);
    write_sysreg!("spsr_el1", r.spsr);
    write_sysreg!("esr_el1", r.esr);
    write_sysreg!("far_el1", r.far);
    write_sysreg!("afsr0_el1", r.afsr0);
    write_sysreg!("afsr1_el1", r.afsr1);
    write_sysreg!("par_el1", r.par);
    write_sysreg!("cpacr_el1", r.cpacr);
    write_sysreg!("cntkctl_el1", r.cntkctl);
    write_sysreg!("csselr_el1", r.csselr);
    write_sysreg!("mdscr_el1", r.mdscr);
    isb();
}

/// Saves FP/SIMD registers.
pub fn save_fp(r: &mut FpRegs) {
    // SAFETY: writes 528 bytes into `r`, which is that large and 16-byte aligned.
    unsafe { fp_save(r) };
}

/// Restores FP/SIMD registers.
pub fn restore_fp(r: &FpRegs) {
    // SAFETY: reads 528 bytes from `r`.
    unsafe { fp_restore(r) };
}

/// Saves the virtual timer.
pub fn save_timer() -> TimerRegs {
    TimerRegs {
        ctl: read_sysreg!("cntv_ctl_el0"),
        cval: read_sysreg!("cntv_cval_el0"),
    }
}

/// Turns the virtual timer off (a saved vCPU's timer must not fire for the
/// next one). One write, the enable bit first: setting CVAL before it would
/// assert the interrupt for a moment, and under `-icount` end this CPU's turn.
pub fn disable_timer() {
    write_sysreg!("cntv_ctl_el0", 0);
}

/// Loads the virtual timer.
pub fn restore_timer(t: &TimerRegs) {
    write_sysreg!("cntv_cval_el0", t.cval);
    write_sysreg!("cntv_ctl_el0", t.ctl);
}

/// Masks the running vCPU's virtual timer output (after its interrupt fired).
pub fn mask_vtimer() -> TimerRegs {
    let t = save_timer();
    write_sysreg!("cntv_ctl_el0", t.ctl | 0b10);
    isb();
    TimerRegs {
        ctl: t.ctl | 0b10,
        cval: t.cval,
    }
}

/// Arms the EL2 physical timer for counter value `cval`, or disarms it.
pub fn set_hyp_timer(cval: Option<u64>) {
    match cval {
        Some(c) => {
            write_sysreg!("cnthp_cval_el2", c);
            write_sysreg!("cnthp_ctl_el2", 1);
        }
        None => write_sysreg!("cnthp_ctl_el2", 0b10),
    }
    isb();
}

/// Arms the EL1 physical timer, Tandem's emulator tick (guests cannot reach
/// it: CNTHCTL_EL2.EL1PCEN = 0), for counter value `cval`, or disarms it.
pub fn set_tick_timer(cval: Option<u64>) {
    match cval {
        Some(c) => {
            write_sysreg!("cntp_cval_el0", c);
            write_sysreg!("cntp_ctl_el0", 1);
        }
        None => write_sysreg!("cntp_ctl_el0", 0),
    }
    isb();
}

/// The counter frequency in Hz.
pub fn counter_frequency() -> u64 {
    read_sysreg!("cntfrq_el0").max(1)
}

/// The physical counter.
pub fn counter() -> u64 {
    isb();
    read_sysreg!("cntpct_el0")
}

/// Reads ID register (3, 0, 0, crm, op2) — every encoding in that space is readable (RAZ if unallocated).
pub fn read_id_register(crm: u8, op2: u8) -> u64 {
    macro_rules! ids {
        ($($crm:literal: $($op2:literal)*;)*) => {
            match (crm, op2) {
                $($(($crm, $op2) => read_sysreg!(concat!("s3_0_c0_c", $crm, "_", $op2)),)*)*
                _ => 0,
            }
        };
    }
    ids! {
        1: 0 1 2 3 4 5 6 7;
        2: 0 1 2 3 4 5 6 7;
        3: 0 1 2 3 4 5 6 7;
        4: 0 1 2 3 4 5 6 7;
        5: 0 1 2 3 4 5 6 7;
        6: 0 1 2 3 4 5 6 7;
        7: 0 1 2 3 4 5 6 7;
    }
}

/// Injects a synchronous exception into the loaded vCPU, as if the CPU took it at EL1.
pub fn inject_sync(regs: &mut GuestRegs, e: &El1Exception) {
    write_sysreg!("esr_el1", e.esr);
    if let Some(far) = e.far {
        write_sysreg!("far_el1", far);
    }
    let (elr, spsr) = crate::vcpu::inject::take_exception(
        regs,
        read_sysreg!("vbar_el1"),
        read_sysreg!("sctlr_el1"),
    );
    write_sysreg!("elr_el1", elr);
    write_sysreg!("spsr_el1", spsr);
}
