//! Regression tests of the review's findings on guest-reachable code (issue
//! 13) that show in the run loop: each drives hostile exits through
//! [`Pcpu::step`](super::Pcpu::step) on a fake CPU and checks what the guest
//! and the shared console get.

use alloc::rc::Rc;
use core::cell::Cell;

use super::{ENTRY, Machine, PSCI_SYSTEM_RESET, YIELD, calls, enable_vtimer, spec};
use crate::arch::fake::{Event, GuestView, hvc_exit, load32_exit};
use crate::hyp::vm::VmState;
use crate::vcpu::exit::{ExitSnapshot, ExitVector};

const VBAR: u64 = 0x4000_1000;
const ESR_UNDEFINED: u64 = 1 << 25;

fn sync(esr: u64) -> ExitSnapshot {
    ExitSnapshot {
        vector: ExitVector::Sync,
        esr,
        far: 0,
        hpfar: 0,
    }
}

/// A CONSOLE_WRITE of `bytes` (at most 48) into `g`'s registers.
fn console_write(g: &mut GuestView<'_>, bytes: &[u8]) -> ExitSnapshot {
    let (regs, n) = pv_abi::pack_bytes(bytes);
    g.regs.args.x[0] = pv_abi::HypercallId::ConsoleWrite.fid().to_reg();
    g.regs.args.x[1] = n as u64;
    g.regs.args.x[2..].copy_from_slice(&regs);
    hvc_exit()
}

/// Finding 2: a VM without the console focus cannot forge another VM's
/// line or a Tandem log line, nor drive the terminal: its ESC, bell,
/// backspace and C1 controls arrive as visible text. The focused VM's
/// interactive stream (a shell's line editing and colours) passes as it is.
#[test]
fn console_output_of_other_vms_is_sanitised() {
    let mut m = Machine::new(1, &[spec("shell", &[0]), spec("spoof", &[0])]);
    let forged: &[&[u8]] = &[
        b"\x1b[2K\x1b[1G linux | root# \x07\x08\x08",
        b"[    0.1] cpu0 WARN  fake\x9b31m\xc2\x9b31m\n",
    ];
    let mut n = 0;
    m.hws[0].script(2, move |g| match forged.get(n) {
        Some(chunk) => {
            n += 1;
            console_write(g, chunk)
        }
        None => {
            g.regs.args.x[0] = YIELD;
            hvc_exit()
        }
    });
    let mut said = false;
    m.hws[0].script(1, move |g| {
        if said {
            g.regs.args.x[0] = YIELD;
            return hvc_exit();
        }
        said = true;
        console_write(g, b"\x1b[1mprompt\x1b[0m$ ")
    });
    m.run(20);
    let out = m.hws[0].console_out.clone();
    let spoof = out
        .lines()
        .find(|l| l.starts_with(" spoof | "))
        .expect("the spoof VM's line");
    assert_eq!(
        spoof,
        " spoof | ^[[2K^[[1G linux | root# ^G^H^H[    0.1] cpu0 WARN  fake?31m?31m"
    );
    assert!(
        out.contains(" shell | \x1b[1mprompt\x1b[0m$ "),
        "the focused VM's stream is untouched: {out:?}"
    );
    assert_eq!(
        out.matches('\x1b').count(),
        2,
        "no ESC but the focused VM's: {out:?}"
    );
}

/// A WFIT exit (ESR_EL2 EC 0x01, TI = 2, RV, Rt = x5) with timeout `deadline`.
fn wfit(g: &mut GuestView<'_>, deadline: u64) -> ExitSnapshot {
    g.regs.set(5, deadline);
    sync((0x01 << 26) | (1 << 25) | (1 << 24) | (0xe << 20) | (5 << 5) | (1 << 2) | 0b10)
}

/// Finding 4: a trapped WFIT, whose timeout Tandem does not keep, never
/// blocks its vCPU for good: with no interrupt to wait for, the guest runs
/// on after it (an early wake-up, which the architecture allows).
#[test]
fn wfit_never_blocks_for_good() {
    let mut m = Machine::new(1, &[spec("a", &[0])]);
    let pcs = Rc::new(Cell::new((0u64, 0u64)));
    let seen = pcs.clone();
    m.hws[0].script(1, move |g| {
        let (n, _) = seen.get();
        seen.set((n + 1, g.regs.pc));
        let deadline = g.now + 1_000_000;
        wfit(g, deadline)
    });
    m.run(50);
    let (entries, pc) = pcs.get();
    assert!(entries >= 40, "the vCPU ran {entries} times in 50 steps");
    assert_eq!(pc, ENTRY + 4 * (entries - 1), "each WFIT is skipped");
    assert_eq!(m.vm("a").state(), VmState::Running);
}

/// What a guest found after Tandem handled its exit: PC, PSTATE and the
/// EL1 exception registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Landed {
    pc: u64,
    pstate: u64,
    elr: u64,
    spsr: u64,
    esr: u64,
    far: u64,
}

/// A guest that sets itself up with `setup` at its first entry, makes the
/// exit `exit` returns once, and then records where it landed.
fn one_exit(
    m: &mut Machine,
    setup: impl Fn(&mut GuestView<'_>) + 'static,
    exit: impl Fn(&mut GuestView<'_>) -> ExitSnapshot + 'static,
) -> Rc<Cell<Option<Landed>>> {
    let landed = Rc::new(Cell::new(None));
    let record = landed.clone();
    let mut done = false;
    m.hws[0].script(1, move |g| {
        if !done {
            done = true;
            g.context.el1.vbar = VBAR;
            setup(g);
            return exit(g);
        }
        if record.get().is_none() {
            let el1 = &g.context.el1;
            record.set(Some(Landed {
                pc: g.regs.pc,
                pstate: g.regs.pstate,
                elr: el1.elr,
                spsr: el1.spsr,
                esr: el1.esr,
                far: el1.far,
            }));
        }
        g.regs.args.x[0] = YIELD;
        hvc_exit()
    });
    m.hws[0].script(2, calls([YIELD, 0, 0, 0]));
    landed
}

/// Runs a one-exit guest (VM "guest", beside an idle one) to where it landed.
fn land(
    setup: impl Fn(&mut GuestView<'_>) + 'static,
    exit: impl Fn(&mut GuestView<'_>) -> ExitSnapshot + 'static,
) -> (Landed, Machine) {
    let mut m = Machine::new(1, &[spec("guest", &[0]), spec("other", &[0])]);
    let landed = one_exit(&mut m, setup, exit);
    m.run(20);
    assert_eq!(
        m.vm("guest").state(),
        VmState::Running,
        "the VM was not stopped"
    );
    let l = landed.get().expect("the guest ran after its exit");
    (l, m)
}

/// Finding 5: pointer-authentication and SME traps are UNDEFINED at EL1,
/// not a reason to stop the VM.
#[test]
fn pauth_and_sme_traps_are_undefined() {
    for ec in [0x09u64, 0x1d] {
        let (l, _) = land(|_| {}, move |_| sync((ec << 26) | (1 << 25)));
        assert_eq!(
            (l.pc, l.elr, l.esr),
            (VBAR + 0x200, ENTRY, ESR_UNDEFINED),
            "EC {ec:#x}"
        );
    }
}

/// AArch32 User mode, A32 or T32 (PSTATE.T), with flags `nzcv` and IT state `it`.
fn aarch32(t32: bool, nzcv: u64, it: u8) -> u64 {
    let it = u64::from(it);
    0x1d0 | (u64::from(t32) << 5) | (nzcv << 28) | ((it & 0xfc) << 8) | ((it & 3) << 25)
}

/// Finding 5: a trapped AArch32 EL0 instruction (here a CP15 access) is
/// UNDEFINED, taken at VBAR_EL1 + 0x600 (lower EL, AArch32) with the
/// AArch32 state saved; one whose condition failed is skipped instead.
#[test]
fn aarch32_el0_traps_are_undefined_at_the_aarch32_vector() {
    let mcr = |cond: u64| sync((0x03 << 26) | (1 << 25) | (1 << 24) | (cond << 20));
    let (l, _) = land(
        |g| {
            g.regs.pc = 0x8000;
            g.regs.pstate = aarch32(false, 0, 0);
        },
        move |_| mcr(0xe),
    );
    assert_eq!(l.pc, VBAR + 0x600, "the lower-EL AArch32 vector");
    assert_eq!((l.elr, l.spsr, l.esr), (0x8000, 0x1d0, ESR_UNDEFINED));
    assert_eq!(l.pstate & 0x1f, 0b00101, "AArch64 EL1h");

    // `mrceq` with Z clear: not executed, so skipped.
    let (l, m) = land(
        |g| {
            g.regs.pc = 0x8000;
            g.regs.pstate = aarch32(false, 0, 0);
        },
        move |_| mcr(0x0),
    );
    assert_eq!((l.pc, l.pstate), (0x8004, aarch32(false, 0, 0)));
    assert_eq!(m.hws[0].count(|e| matches!(e, Event::InjectSync { .. })), 0);
}

/// Finding 5: a trapped 16-bit T32 instruction is 2 bytes long. A `wfi` in
/// an IT block whose condition fails is skipped (not waited on) and ends the
/// block; an emulated `ldr r0, [r1]` from the vGIC moves the PC by 2.
#[test]
fn t32_traps_move_the_pc_by_their_length() {
    // `it eq; wfieq` with Z clear: IT = 0x08 (EQ, one instruction), ESR.CV = 0.
    let (l, _) = land(
        |g| {
            g.regs.pc = 0x8002;
            g.regs.pstate = aarch32(true, 0, 0x08);
        },
        |_| sync(0x01 << 26),
    );
    assert_eq!((l.pc, l.pstate), (0x8004, aarch32(true, 0, 0)));

    let (l, m) = land(
        |g| {
            g.regs.pc = 0x8002;
            g.regs.pstate = aarch32(true, 0, 0);
            g.regs.args.x[0] = 0xdead;
        },
        |_| {
            let mut e = load32_exit(0x0800_0000); // GICD_CTLR
            e.esr &= !((1 << 25) | (0x1f << 16)); // IL = 0, SRT = 0
            e
        },
    );
    assert_eq!(l.pc, 0x8004);
    assert_eq!(
        m.vm("guest")
            .stats
            .mmio
            .load(core::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// A data abort on an IPA nothing is mapped at, through virtual address
/// `va`: with syndrome (ISV, an `ldr w2`) or without.
fn abort_at(va: u64, ipa: u64, isv: bool) -> ExitSnapshot {
    let mut e = load32_exit(ipa);
    e.far = va;
    if !isv {
        e.esr &= !(1 << 24);
    }
    e
}

/// Finding 6: an injected abort reports the faulting virtual address
/// (FAR_EL2) in FAR_EL1, not the IPA, as the guest's own MMU would; and the
/// PSTATE it is taken with follows SCTLR_EL1: PAN set (SPAN = 0), SSBS from
/// DSSBS.
#[test]
fn injected_aborts_report_the_va_and_entry_pstate() {
    const VA: u64 = 0xffff_8000_0012_3454;
    const IPA: u64 = 0x9000_0454;
    let mmu_on = |g: &mut GuestView<'_>| {
        // SCTLR_EL1: M and DSSBS set, SPAN clear. From EL1h with Z and C
        // set, PAN and SSBS clear.
        g.context.el1.sctlr = (0x30d0_0801 | (1 << 44)) & !(1 << 23);
        g.regs.pstate = 0x6000_03c5;
    };
    for isv in [true, false] {
        let (l, _) = land(mmu_on, move |_| abort_at(VA, IPA, isv));
        assert_eq!(l.far, VA, "FAR_EL1 (ISV {isv})");
        assert_eq!(l.esr, 0x9600_0010, "EC 0x25, external abort");
        assert_eq!(l.pc, VBAR + 0x200);
        assert_eq!(l.spsr, 0x6000_03c5);
        assert_eq!(
            l.pstate, 0x6040_13c5,
            "PAN (SPAN = 0), SSBS (DSSBS = 1), NZCV kept"
        );
    }
    // An instruction fetch from nothing: FAR_EL1 = the PC's virtual address.
    let (l, _) = land(mmu_on, |_| {
        let mut e = abort_at(VA, IPA, false);
        e.esr = (0x20 << 26) | (1 << 25) | 0x06;
        e
    });
    assert_eq!((l.far, l.esr), (VA, 0x8600_0010));
}

/// Finding 7: a virtual-timer compare value near 2^64 is a deadline that
/// never comes. With a counter offset, `cval + cntvoff` wrapped to the
/// past and the EL2 timer woke the sleeping vCPU with an interrupt it never
/// asked for.
#[test]
fn timer_compare_near_the_end_of_time_never_fires() {
    let mut m = Machine::build(1, &[spec("sleeper", &[0]), spec("busy", &[0])], None, 100);
    let woken = Rc::new(Cell::new(false));
    let w = woken.clone();
    let mut armed = false;
    m.hws[0].script(1, move |g| {
        if !armed {
            armed = true;
            g.context.timer.cval = u64::MAX - 10;
            g.context.timer.ctl = 1;
        } else if g.lrs.iter().any(|&lr| lr & 0xffff_ffff == 27) {
            w.set(true);
        }
        sync((0x01 << 26) | (1 << 25)) // wfi
    });
    m.hws[0].script(2, calls([YIELD, 0, 0, 0]));
    enable_vtimer(m.vm("sleeper"));
    m.run(200);
    assert!(!woken.get(), "the sleeper got a timer interrupt");
    assert_eq!(m.entries(0, 1), 1, "the sleeper slept on");
    assert!(m.entries(0, 2) > 100);
}

/// Finding 8 (PC arithmetic): a trapped SMC or system-register access in
/// the last instruction slot of the address space moves the PC on by
/// wrapping, as the CPU would, instead of overflowing.
#[test]
fn pc_at_the_end_of_the_address_space_wraps() {
    const LAST: u64 = u64::MAX - 3;
    // EC 0x17: SMC from AArch64 (answered as an HVC); EC 0x18: MRS x0,
    // ID_AA64PFR0_EL1 (Op0 3, Op1 0, CRn 0, CRm 4, Op2 0, read).
    let mrs = (0x18 << 26) | (1 << 25) | (3 << 20) | (4 << 1) | 1;
    for esr in [(0x17 << 26) | (1 << 25), mrs] {
        let (l, _) = land(
            |g| {
                g.regs.pc = LAST;
                g.regs.args.x[0] = 0x8000_0000; // SMCCC_VERSION, for the SMC
            },
            move |_| sync(esr),
        );
        assert_eq!(l.pc, 0, "ESR {esr:#x}: the PC wrapped past the end");
    }
}

/// Finding 1: a VM flooding its console never leaves another VM none of it.
/// With the UART stalled, "flood" writes until Tandem accepts no more; then
/// "quiet" writes one line, which is accepted whole and comes out when the
/// UART sends again.
#[test]
fn console_flood_leaves_the_quiet_vm_its_share() {
    let mut m = Machine::new(1, &[spec("flood", &[0]), spec("quiet", &[0])]);
    m.hws[0].console_stalled = true;
    let refused = Rc::new(Cell::new(false));
    let flood_refused = refused.clone();
    let mut n = 0;
    m.hws[0].script(1, move |g| {
        // Writes and yields in turn, so that both VMs run.
        n += 1;
        if n % 2 == 0 {
            if g.regs.args.x[1] == 0 {
                flood_refused.set(true);
            }
            g.regs.args.x[0] = YIELD;
            return hvc_exit();
        }
        console_write(g, b"flood flood flood flood flood flood flood flood\n")
    });
    let accepted = Rc::new(Cell::new(None));
    let quiet_accepted = accepted.clone();
    let mut said = false;
    m.hws[0].script(2, move |g| {
        if !refused.get() {
            g.regs.args.x[0] = YIELD;
            return hvc_exit();
        }
        if said {
            quiet_accepted
                .get()
                .is_none()
                .then(|| quiet_accepted.set(Some(g.regs.args.x[1])));
            g.regs.args.x[0] = YIELD;
            return hvc_exit();
        }
        said = true;
        console_write(g, b"quiet but heard\n")
    });
    m.run(2000);
    assert_eq!(
        accepted.get(),
        Some(16),
        "the quiet VM's write is accepted whole"
    );
    m.hws[0].uart_sends(usize::MAX);
    let out = m.hws[0].console_out.clone();
    assert!(out.contains(" quiet | quiet but heard\n"), "{out:?}");
    assert!(out.contains(" flood | flood"));
}

/// Every `Clear` and `CopyIn` in `events` is followed by a clean to the point
/// of coherency of the same range before the next guest entry.
fn written_then_cleaned_to_poc(events: &[Event]) -> Result<usize, String> {
    let mut pending = alloc::vec::Vec::new();
    let mut writes = 0;
    for e in events {
        match *e {
            Event::Clear { pa, len } | Event::CopyIn { pa, len } => {
                writes += 1;
                pending.push((pa, len));
            }
            Event::CleanToPoc { pa, len } => pending.retain(|&w| w != (pa, len)),
            Event::Enter { .. } if !pending.is_empty() => {
                return Err(alloc::format!("entered with {pending:x?} not cleaned"));
            }
            _ => {}
        }
    }
    if pending.is_empty() {
        Ok(writes)
    } else {
        Err(alloc::format!("{pending:x?} never cleaned"))
    }
}

/// Finding 8: what image loading and a reset write into a VM's RAM (the
/// images, the cleared RAM) is cleaned to the point of coherency before the
/// VM runs, as it starts with its caches off.
#[test]
fn loaded_and_cleared_ram_is_cleaned_to_poc() {
    let mut m = Machine::new(1, &[spec("a", &[0])]);
    let vm = m.vm("a");
    m.hv.load_images(vm, &mut m.hws[0]);
    let loaded = written_then_cleaned_to_poc(&m.hws[0].events);
    assert!(matches!(loaded, Ok(n) if n > 0), "load: {loaded:?}");
    m.hws[0].events.clear();
    m.hws[0].script(1, calls([PSCI_SYSTEM_RESET, 0, 0, 0]));
    for _ in 0..500 {
        m.run(1);
        if vm.stats.resets.load(core::sync::atomic::Ordering::Relaxed) == 1 {
            break;
        }
    }
    m.run(2);
    let reset = written_then_cleaned_to_poc(&m.hws[0].events);
    assert!(matches!(reset, Ok(n) if n > 2), "reset: {reset:?}");
}

/// Finding 8: when a vCPU of another VM is about to run on a CPU, Tandem
/// isolates the branch predictor (the arch layer does so where the CPU
/// needs it); between vCPUs of one VM it does not.
#[test]
fn vm_switch_isolates_the_branch_predictor() {
    let mut m = Machine::new(1, &[spec("a", &[0, 0]), spec("b", &[0])]);
    m.vm("a").vcpus[1].request_start(ENTRY, 0);
    m.hv.attention(1, &mut m.hws[0]);
    for id in 1..=2 {
        m.hws[0].script(id, calls([YIELD, 0, 0, 0]));
    }
    m.run(30);
    let mut last = None;
    let mut isolated = false;
    let (mut switches, mut checked) = (0, 0);
    for e in &m.hws[0].events {
        match *e {
            Event::IsolateBranchPredictor => isolated = true,
            Event::Enter { vttbr, .. } => {
                let vm = vttbr >> 48;
                if last.is_some_and(|l| l != vm) {
                    switches += 1;
                    assert!(isolated, "VM {vm} entered after another VM, unisolated");
                }
                last = Some(vm);
                checked += 1;
                isolated = false;
            }
            _ => {}
        }
    }
    assert!(switches > 2, "{switches} switches in {checked} entries");
    let isolations = m.hws[0].count(|e| *e == Event::IsolateBranchPredictor);
    assert_eq!(isolations, switches, "only on a switch between VMs");
}

/// Finding 3: an asynchronous SError that VM "a" leaves pending at an exit
/// stops "a", not "b", which runs next on the same CPU.
#[test]
fn serror_is_blamed_on_the_vm_that_caused_it() {
    let mut m = Machine::new(1, &[spec("a", &[0]), spec("b", &[0])]);
    let mut first = true;
    m.hws[0].script(1, move |g| {
        if core::mem::take(&mut first) {
            // A write that fails at the memory system, reported as it drains.
            *g.serror = true;
        }
        g.regs.args.x[0] = YIELD;
        hvc_exit()
    });
    m.hws[0].script(2, calls([YIELD, 0, 0, 0]));
    m.run(20);
    assert_eq!(m.vm("a").state(), VmState::Stopped, "a caused the SError");
    assert_eq!(m.vm("b").state(), VmState::Running, "b is not blamed");
}

std::thread_local! {
    /// The levels of the log lines this test thread made.
    static LOGGED: core::cell::RefCell<alloc::vec::Vec<log::Level>> =
        const { core::cell::RefCell::new(alloc::vec::Vec::new()) };
}

/// Records each line's level for the thread that logged it (tests run in parallel).
struct CountingLogger;

impl log::Log for CountingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LOGGED.with(|l| l.borrow_mut().push(record.level()));
    }
    fn flush(&self) {}
}

static COUNTING_LOGGER: CountingLogger = CountingLogger;

/// Log lines of this thread at `level` or more severe.
fn logged_lines(level: log::Level) -> usize {
    LOGGED.with(|l| l.borrow().iter().filter(|&&l| l <= level).count())
}

/// Logging policy (item 4): nothing a guest does makes Tandem log at error
/// level, or more than a bounded number of lines at info or above: a VM
/// resetting in a loop and a restarting VM crashing in a loop get a few
/// lines each, then only the monitor's counters grow.
#[test]
fn guests_cannot_flood_the_log() {
    let _ = log::set_logger(&COUNTING_LOGGER);
    log::set_max_level(log::LevelFilter::Trace);
    LOGGED.with(|l| l.borrow_mut().clear());
    let crashy = crate::vm::package::VmSpec {
        flags: crate::vm::package::FLAG_RESTART_ON_RESET,
        ..spec("crashy", &[1])
    };
    let mut m = Machine::new(2, &[spec("resets", &[0]), crashy]);
    m.hws[0].script(1, calls([PSCI_SYSTEM_RESET, 0, 0, 0]));
    // Undefined system registers, unknown calls, then an SError, every life.
    let mut n = 0u64;
    m.hws[1].script(2, move |g| {
        n += 1;
        match n % 3 {
            0 => crate::arch::fake::serror_exit(),
            1 => sync((0x18 << 26) | (1 << 25) | (3 << 20) | (4 << 17) | (12 << 10) | (9 << 1) | 1),
            _ => {
                g.regs.args.x[0] = 0xC600_ffff;
                hvc_exit()
            }
        }
    });
    for _ in 0..3000 {
        m.run(1);
        m.hws[1].now += 1_000_000_000;
    }
    let resets = m
        .vm("resets")
        .stats
        .resets
        .load(core::sync::atomic::Ordering::Relaxed);
    let crashes = m
        .vm("crashy")
        .stats
        .crashes
        .load(core::sync::atomic::Ordering::Relaxed);
    assert!(
        resets >= 20 && crashes >= 20,
        "resets {resets}, crashes {crashes}"
    );
    assert_eq!(logged_lines(log::Level::Error), 0, "no error-level line");
    let loud = logged_lines(log::Level::Info);
    assert!(
        loud <= 16,
        "{loud} lines at info or above for {resets} resets and {crashes} crashes"
    );
}
