//! Host tests of the run loop: real sequences through [`Pcpu::step`] on fake
//! CPUs ([`crate::arch::fake`]), several vCPUs and VMs per CPU, kicks
//! between CPUs, restarts, resets and slices.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::sync::atomic::Ordering;

use super::passthrough::SpiOwners;
use super::pcpu::{Pcpu, Vcpu};
use super::vm::{Vm, VmState};
use super::{Hypervisor, INTID_HYP_TIMER, INTID_TICK, KICK_SGI};
use crate::arch::fake::{Event, FakeCpu, GuestView, hvc_exit, wfi_exit};
use crate::hypercall::PowerState;
use crate::vcpu::exit::ExitSnapshot;
use crate::vgic::lr::{GichLr, IchLr, LrFormat};
use crate::vm::package::{self, Package, VmSpec};

/// The review's findings on guest-reachable code, each with its regression test.
mod hardening;
/// The virtual PL011 of a transparent VM, end to end through the run loop.
mod uart;

/// Channels and forwarded virtio-mmio between VMs.
mod channels;

const RAM_IPA: u64 = 0x4000_0000;
const ENTRY: u64 = 0x4008_0000;
const HZ: u64 = 62_500_000;
const PSCI_CPU_ON: u64 = 0xC400_0003;
const PSCI_CPU_OFF: u64 = 0x8400_0002;
const PSCI_SYSTEM_RESET: u64 = 0x8400_0009;
const SMCCC_VERSION: u64 = 0x8000_0000;
const YIELD: u64 = 0xC600_0004;

/// A VM for the fake machine: `pcpus[i]` is vCPU `i`'s CPU.
fn spec(name: &str, pcpus: &[u8]) -> VmSpec {
    VmSpec {
        name: name.into(),
        ram_ipa: RAM_IPA,
        ram_size: 4 << 20,
        entry: ENTRY,
        x0: RAM_IPA,
        pcpus: pcpus.to_vec(),
        flags: 0,
        console_intid: 32,
        blobs: vec![(vec![0xaa; 8192], ENTRY)],
        ..Default::default()
    }
}

/// Several fake CPUs sharing one hypervisor; SGIs are routed between them.
/// Their list registers hold format `L`: GICv3 by default, GICv2 with
/// [`Machine::gicv2`].
struct Machine<L = IchLr> {
    hv: &'static Hypervisor,
    pcpus: Vec<Pcpu>,
    hws: Vec<FakeCpu<L>>,
}

impl Machine<GichLr> {
    /// A GICv2 machine: its VMs get the GICv2 vGIC, its CPUs GICH list registers.
    fn gicv2(cpus: usize, specs: &[VmSpec]) -> Self {
        Self::assemble(cpus, specs, None, 0, &[], 2)
    }
}

impl Machine {
    fn new(cpus: usize, specs: &[VmSpec]) -> Self {
        Self::with_tick(cpus, specs, None)
    }

    /// A machine whose CPU 0 runs the emulator tick every `tick` counter ticks.
    fn with_tick(cpus: usize, specs: &[VmSpec], tick: Option<u64>) -> Self {
        Self::build(cpus, specs, tick, 0)
    }

    /// A machine as [`Machine::with_tick`] makes, whose VMs have virtual
    /// counter offset `cntvoff`.
    fn build(cpus: usize, specs: &[VmSpec], tick: Option<u64>, cntvoff: u64) -> Self {
        Self::with_channels(cpus, specs, tick, cntvoff, &[])
    }

    /// A machine as [`Machine::build`] makes, with `channels` between its VMs.
    fn with_channels(
        cpus: usize,
        specs: &[VmSpec],
        tick: Option<u64>,
        cntvoff: u64,
        channels: &[package::ChannelDesc],
    ) -> Self {
        Self::assemble(cpus, specs, tick, cntvoff, channels, 3)
    }

    /// A machine as [`Machine::new`] makes whose CPU 0 takes the physical
    /// UART's interrupt `uart` (console output then waits for it).
    fn with_uart(cpus: usize, specs: &[VmSpec], uart: u32) -> Self {
        let mut m = Self::configured(cpus, specs, None, 0, &[], 3, |hv| hv.uart_intid = uart);
        m.hws[0].uart_line = Some(uart);
        m.hws[0].console_stalled = true;
        m
    }
}

impl<L: LrFormat> Machine<L> {
    /// The machine of [`Machine::with_channels`], for guests of GIC version `gic`.
    fn assemble(
        cpus: usize,
        specs: &[VmSpec],
        tick: Option<u64>,
        cntvoff: u64,
        channels: &[package::ChannelDesc],
        gic: u8,
    ) -> Self {
        Self::configured(cpus, specs, tick, cntvoff, channels, gic, |_| {})
    }

    /// The machine of [`Machine::assemble`], its hypervisor adjusted by `configure`.
    fn configured(
        cpus: usize,
        specs: &[VmSpec],
        tick: Option<u64>,
        cntvoff: u64,
        channels: &[package::ChannelDesc],
        gic: u8,
        configure: impl FnOnce(&mut Hypervisor),
    ) -> Self {
        let bytes: &'static [u8] =
            Box::leak(package::encode_with_channels(specs, channels, gic).into_boxed_slice());
        let pkg = Package::parse(bytes).expect("package");
        let vms: Vec<Vm> = (0..pkg.vm_count())
            .map(|i| {
                let desc = pkg.vm(i).expect("VM record");
                let id = i as u64 + 1;
                Vm::new(i, desc, pkg, id << 32, (id << 48) | (id << 12), cntvoff)
            })
            .collect();
        let mut hv = Hypervisor::new(vms, SpiOwners::default(), HZ);
        hv.emulator_tick = tick;
        hv.channels = (0..pkg.channel_count())
            .map(|i| {
                let desc = pkg.channel(i).expect("channel record");
                crate::channel::Channel::new(desc, 0xC000_0000 + ((i as u64) << 24))
            })
            .collect();
        configure(&mut hv);
        let hv: &'static Hypervisor = Box::leak(Box::new(hv));
        let mut hws: Vec<FakeCpu<L>> = (0..cpus).map(|i| FakeCpu::with_lr_format(i, 4)).collect();
        for (i, p) in hv.pcpus.iter().enumerate().take(cpus) {
            p.mpidr.store(i as u64, Ordering::Relaxed);
        }
        for vm in &hv.vms {
            hv.load_images(vm, &mut hws[0]);
        }
        hws[0].events.clear();
        let pcpus = (0..cpus)
            .map(|c| {
                let vcpus = hv
                    .vms
                    .iter()
                    .flat_map(|vm| {
                        (0..vm.vcpus.len())
                            .filter(move |&i| vm.vcpus[i].pcpu == c)
                            .map(move |i| Vcpu::new(vm.index, i))
                    })
                    .collect();
                Pcpu::new(c, vcpus, 4, hv)
            })
            .collect();
        Self { hv, pcpus, hws }
    }

    fn vm(&self, name: &str) -> &'static Vm {
        self.hv.vm_by_name(name).expect("VM")
    }

    /// One step of CPU `c`, then delivery of the SGIs it sent.
    fn step(&mut self, c: usize) {
        self.pcpus[c].step(self.hv, &mut self.hws[c]);
        for (sgi, mpidr) in self.hws[c].take_sgis() {
            let target = &mut self.hws[mpidr as usize];
            if !target.pending.contains(&u32::from(sgi)) {
                target.pending.push_back(u32::from(sgi));
            }
        }
    }

    /// `rounds` steps of every CPU in turn.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            for c in 0..self.pcpus.len() {
                self.step(c);
            }
        }
    }

    /// Guest entries on CPU `c` for VM `id`.
    fn entries(&self, c: usize, id: u32) -> usize {
        self.hws[c]
            .count(|e| matches!(e, Event::Enter { vttbr, .. } if vttbr >> 48 == u64::from(id)))
    }
}

/// A guest that makes the SMCCC call in `x` at every exit.
fn calls(x: [u64; 4]) -> impl FnMut(&mut GuestView<'_>) -> ExitSnapshot {
    move |g| {
        g.regs.args.x[..4].copy_from_slice(&x);
        hvc_exit()
    }
}

/// A null hypercall is answered and re-entered without re-examining the
/// scheduler, loading state or touching list registers.
#[test]
fn null_hypercall_takes_the_fast_path() {
    let mut m = Machine::new(1, &[spec("a", &[0])]);
    let replies = Rc::new(Cell::new(0u64));
    let seen = replies.clone();
    m.hws[0].script(1, move |g| {
        if g.regs.args.x[0] == 0x1_0001 {
            seen.set(seen.get() + 1);
        }
        g.regs.args.x[0] = SMCCC_VERSION;
        hvc_exit()
    });
    m.run(3);
    let loads = m.hws[0].count(|e| matches!(e, Event::LoadContext { .. }));
    m.run(100);
    assert_eq!(
        replies.get(),
        102,
        "every call after the first sees SMCCC 1.1"
    );
    assert_eq!(
        m.hws[0].count(|e| matches!(e, Event::LoadContext { .. })),
        loads,
        "no context switch"
    );
    assert_eq!(m.vm("a").stats.hypercalls.load(Ordering::Relaxed), 103);
}

/// Two VMs on one CPU: a yielding vCPU lets the other run, and each gets its
/// own EL1 state back (what one guest writes, the other never sees).
#[test]
fn two_vms_share_a_cpu_with_their_own_state() {
    let mut m = Machine::new(1, &[spec("a", &[0]), spec("b", &[0])]);
    for (id, mark) in [(1u32, 0xaaa0u64), (2, 0xbbb0)] {
        m.hws[0].script(id, move |g| {
            // Each guest checks and bumps its own TTBR0: never the other's value.
            assert!(
                g.context.el1.ttbr0 == 0 || g.context.el1.ttbr0 & !0xf == mark,
                "VM {id} sees TTBR0 {:#x}",
                g.context.el1.ttbr0
            );
            g.context.el1.ttbr0 = mark | ((g.context.el1.ttbr0 + 1) & 0xf);
            g.regs.args.x[0] = YIELD;
            hvc_exit()
        });
    }
    m.run(40);
    assert!(m.entries(0, 1) >= 15 && m.entries(0, 2) >= 15);
}

/// VM `vmid` on CPU 0 arms its virtual timer `after` ticks from its first
/// entry and then sleeps (WFI); returns the deadline and when the guest first
/// saw the timer's interrupt in its list registers (0 until then).
fn sleep_until(m: &mut Machine, vmid: u32, after: u64) -> (Rc<Cell<u64>>, Rc<Cell<u64>>) {
    sleep_until_then(m, vmid, after, || {})
}

/// [`sleep_until`], running `on_wake` when the guest sees its timer's interrupt.
fn sleep_until_then(
    m: &mut Machine,
    vmid: u32,
    after: u64,
    mut on_wake: impl FnMut() + 'static,
) -> (Rc<Cell<u64>>, Rc<Cell<u64>>) {
    let deadline = Rc::new(Cell::new(0u64));
    let woke_at = Rc::new(Cell::new(0u64));
    let (d, w) = (deadline.clone(), woke_at.clone());
    m.hws[0].script(vmid, move |g| {
        if d.get() == 0 {
            d.set(g.now + after);
            g.context.timer.cval = d.get();
            g.context.timer.ctl = 1;
        } else if w.get() == 0 && g.lrs.iter().any(|&lr| lr & 0xffff_ffff == 27) {
            w.set(g.now);
            on_wake();
        }
        wfi_exit()
    });
    (deadline, woke_at)
}

/// The RTOS saw its timer's interrupt (`woke_at`), at most `ticks` after its
/// `deadline`.
fn assert_woke_within(woke_at: &Cell<u64>, deadline: &Cell<u64>, ticks: u64) {
    assert!(woke_at.get() > 0, "the RTOS got no timer interrupt");
    let latency = woke_at.get() - deadline.get();
    assert!(
        latency <= ticks,
        "the RTOS ran {latency} ticks after its deadline (at most {ticks})"
    );
}

/// Enables vCPU 0's virtual timer PPI (INTID 27, group 1) and the
/// distributor in `vm`'s vGIC, as its guest would.
fn enable_vtimer(vm: &Vm) {
    let mut g = vm.vgic.lock();
    g.mmio_write(crate::vgic::Frame::Redist(0), 0x1_0080, 4, 1 << 27)
        .unwrap();
    g.mmio_write(crate::vgic::Frame::Redist(0), 0x1_0100, 4, 1 << 27)
        .unwrap();
    g.mmio_write(crate::vgic::Frame::Dist, 0, 4, 0x12).unwrap();
}

/// Enables SPI `intid` (group 1, to vCPU 0) in `vm`'s vGIC, as its guest would.
fn enable_spi(vm: &Vm, intid: u32) {
    let mut g = vm.vgic.lock();
    let (word, bit) = (u64::from(intid / 32) * 4, 1u64 << (intid % 32));
    g.mmio_write(crate::vgic::Frame::Dist, 0, 4, 0x12).unwrap();
    g.mmio_write(crate::vgic::Frame::Dist, 0x80 + word, 4, bit)
        .unwrap();
    g.mmio_write(crate::vgic::Frame::Dist, 0x100 + word, 4, bit)
        .unwrap();
}

/// GICv2: the guest's distributor writes go to vCPU `v`'s banked view.
fn v2_write(vm: &Vm, v: usize, offset: u64, value: u64) {
    vm.vgic
        .lock()
        .mmio_write(crate::vgic::Frame::CpuDist(v), offset, 4, value)
        .unwrap();
}

/// GICv2: the virtual timer reaches the running guest as a GICH list register
/// (group 0, as a GICv2 guest's interrupts reset), and the guest completing
/// it (the LR read back empty at its next WFI) leaves it idle in the vGIC.
#[test]
fn gicv2_vtimer_reaches_the_guest_in_a_gich_lr() {
    let mut m = Machine::gicv2(1, &[spec("a", &[0])]);
    let vm = m.vm("a");
    v2_write(vm, 0, 0x100, 1 << 27); // GICD_ISENABLER0 (banked)
    v2_write(vm, 0, 0x000, 1); // GICD_CTLR.EnableGrp0
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    m.hws[0].script(1, move |g| {
        if g.context.timer.ctl == 0 && s.get().is_none() {
            g.context.timer.cval = g.now + 100;
            g.context.timer.ctl = 1;
        }
        let pending_27 = |&lr: &u64| {
            let d = GichLr::decode(lr);
            d.vintid == 27 && d.state.pending()
        };
        if let Some(i) = g.lrs.iter().position(pending_27) {
            let lr = GichLr::decode(g.lrs[i]);
            s.set(Some(lr));
            // Acknowledge and end it: the hardware empties the LR. Then idle (WFI,
            // which reads the list registers back).
            g.lrs[i] &= !GichLr::STATE_BITS;
            g.context.timer.ctl = 0;
            return wfi_exit();
        }
        g.regs.args.x[0] = SMCCC_VERSION;
        hvc_exit()
    });
    m.run(60);
    let lr = seen.get().expect("INTID 27 in a list register");
    assert_eq!(lr.state, crate::vgic::lr::LrState::Pending);
    assert!(!lr.group1, "GICv2 guests' interrupts are group 0");
    m.run(5);
    let view = vm.vgic.lock().irq(0, 27).unwrap();
    assert!(
        !view.pending && !view.active && view.in_lr.is_none(),
        "{view:?}"
    );
}

/// GICv2: more pending interrupts than list registers fill all four in GICH
/// format and ask for the underflow maintenance interrupt; once the guest has
/// completed them, the refill places the rest.
#[test]
fn gicv2_underflow_refills_the_list_registers() {
    let mut m = Machine::gicv2(1, &[spec("a", &[0])]);
    let vm = m.vm("a");
    v2_write(vm, 0, 0x000, 1);
    v2_write(vm, 0, 0x104, 0x3f << 8); // GICD_ISENABLER1: SPIs 40..=45
    v2_write(vm, 0, 0x204, 0x3f << 8); // GICD_ISPENDR1
    let taken = Rc::new(RefCell::new(Vec::new()));
    let t = taken.clone();
    m.hws[0].script(1, move |g| {
        for lr in g.lrs.iter_mut() {
            let d = GichLr::decode(*lr);
            if d.state.pending() {
                t.borrow_mut().push(d.vintid);
                *lr &= !GichLr::STATE_BITS;
            }
        }
        g.regs.args.x[0] = SMCCC_VERSION;
        hvc_exit()
    });
    m.step(0);
    m.step(0);
    assert!(
        m.hws[0].underflow,
        "six pending, four LRs: underflow requested"
    );
    assert_eq!(taken.borrow().len(), 4);
    // The maintenance interrupt (INTID 25) brings the CPU back for the rest.
    m.hws[0].pending.push_back(super::INTID_MAINTENANCE);
    m.run(4);
    let mut all = taken.borrow().clone();
    all.sort();
    assert_eq!(all, (40..46).collect::<Vec<u32>>());
    assert!(!m.hws[0].underflow);
}

/// A vCPU restarted (CPU_OFF, then CPU_ON) while its old state is still in
/// the CPU, with another vCPU switched in before it runs again, enters with
/// reset state: the old life's state is never saved over the fresh one.
#[test]
fn restarted_vcpu_gets_reset_state_on_a_shared_cpu() {
    // VM "smp": vCPU 0 on CPU 0, vCPU 1 on CPU 1; VM "other" also on CPU 1.
    let mut m = Machine::new(2, &[spec("smp", &[0, 1]), spec("other", &[1])]);
    let phase = Rc::new(Cell::new(0));
    let p0 = phase.clone();
    let slept = Rc::new(Cell::new(false));
    let other_slept = slept.clone();
    // vCPU 0: CPU_ON vCPU 1 once "other" sleeps; later (phase 3) again.
    m.hws[0].script(1, move |g| {
        match p0.get() {
            0 if other_slept.get() => {
                g.regs.args.x[..4].copy_from_slice(&[PSCI_CPU_ON, 1, ENTRY + 0x100, 7]);
                p0.set(1);
            }
            3 => {
                g.regs.args.x[..4].copy_from_slice(&[PSCI_CPU_ON, 1, ENTRY + 0x200, 9]);
                p0.set(4);
            }
            _ => g.regs.args.x[0] = SMCCC_VERSION,
        }
        hvc_exit()
    });
    let p1 = phase.clone();
    let second_life_sctlr = Rc::new(Cell::new(0u64));
    let seen = second_life_sctlr.clone();
    m.hws[1].script(1, move |g| {
        if g.regs.pc == ENTRY + 0x100 {
            // First life: dirty the EL1 state, then CPU_OFF.
            g.context.el1.sctlr = 0xdead;
            g.regs.pc += 4;
            g.regs.args.x[0] = PSCI_CPU_OFF;
            p1.set(2);
            return hvc_exit();
        }
        if g.regs.pc == ENTRY + 0x200 {
            seen.set(g.context.el1.sctlr);
            g.regs.pc += 4;
        }
        g.regs.args.x[0] = SMCCC_VERSION;
        hvc_exit()
    });
    // "other" sleeps in WFI until it gets an interrupt, then yields.
    m.hws[1].script(2, move |g| {
        if g.lrs.iter().any(|&lr| lr != 0) {
            g.regs.args.x[0] = YIELD;
            hvc_exit()
        } else {
            slept.set(true);
            wfi_exit()
        }
    });
    let other = m.vm("other");
    enable_spi(other, 40);
    m.run(20);
    assert_eq!(phase.get(), 2, "vCPU 1 ran its first life and turned off");
    assert_eq!(m.pcpus[1].loaded(), Some(0), "its state is still in CPU 1");
    // Both at once: vCPU 1 restarts, and "other" wakes (and is picked first).
    m.hv.inject(other, 40, None, &mut m.hws[1]);
    phase.set(3);
    m.run(20);
    assert_eq!(phase.get(), 4, "the second CPU_ON ran");
    assert_eq!(
        second_life_sctlr.get(),
        crate::vcpu::regs::El1Regs::reset().sctlr,
        "the second life starts from reset SCTLR_EL1, not the first life's 0xdead"
    );
}

/// SYSTEM_RESET from both vCPUs of a VM at once performs one reset, clears
/// RAM only after both CPUs left the VM, and restarts vCPU 0 alone.
#[test]
fn concurrent_resets_coalesce_and_wait_for_every_vcpu() {
    let mut m = Machine::new(2, &[spec("smp", &[0, 1])]);
    let vm = m.vm("smp");
    // Start vCPU 1 by hand, then both reset at their next exits.
    vm.vcpus[1].request_start(ENTRY, 0);
    m.hws[0].script(1, calls([PSCI_SYSTEM_RESET, 0, 0, 0]));
    m.hws[1].script(1, calls([PSCI_SYSTEM_RESET, 0, 0, 0]));
    m.hv.attention(1, &mut m.hws[0]);
    // CPU 0 takes vCPU 0 into its reset call first; CPU 1 is still inside.
    m.hv.pcpus[1].inside.store(vm.id, Ordering::SeqCst);
    m.step(0);
    m.step(0);
    assert_eq!(vm.state(), VmState::Resetting);
    m.step(0);
    assert!(
        m.hws
            .iter()
            .all(|h| h.count(|e| matches!(e, Event::Clear { .. })) == 0),
        "RAM not cleared while CPU 1 may run vCPU 1"
    );
    // CPU 1 leaves (the kick SGI reached it) and completes the reset itself,
    // piece by piece.
    for _ in 0..1000 {
        m.run(1);
        if vm.stats.resets.load(Ordering::Relaxed) == 1 {
            break;
        }
    }
    assert_eq!(vm.stats.resets.load(Ordering::Relaxed), 1);
    let cleared: u64 = m
        .hws
        .iter()
        .flat_map(|h| h.events.iter())
        .map(|e| match e {
            Event::Clear { len, .. } => *len,
            _ => 0,
        })
        .sum();
    assert_eq!(cleared, 4 << 20, "one reset cleared the 4 MiB once");
    assert!(
        m.hws.iter().flat_map(|h| h.events.iter()).all(|e| match e {
            Event::Clear { len, .. } => *len <= super::RELOAD_PIECE,
            _ => true,
        }),
        "in pieces of at most RELOAD_PIECE"
    );
    assert_eq!(
        vm.vcpus[1].power(),
        PowerState::Off,
        "vCPU 1 stays off after the reset"
    );
}

/// A CPU_ON racing a reset does not survive it.
#[test]
fn cpu_on_racing_a_reset_does_not_survive() {
    let mut m = Machine::new(2, &[spec("smp", &[0, 1])]);
    let vm = m.vm("smp");
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    m.run(2);
    // The reset is requested, then a CPU_ON lands before the reset completes.
    m.hv.request_reset(vm, "test", &mut m.hws[0]);
    m.hv.start_vcpu(vm, 1, ENTRY, 0, &mut m.hws[0]);
    for _ in 0..1000 {
        m.run(1);
        if vm.state() == VmState::Running {
            break;
        }
    }
    assert_eq!(vm.state(), VmState::Running);
    assert_eq!(vm.stats.resets.load(Ordering::Relaxed), 1);
    assert_eq!(vm.vcpus[1].power(), PowerState::Off);
    assert_eq!(m.entries(1, vm.id), 0, "vCPU 1 never ran");
}

/// A vCPU that never exits on its own (interrupts and timer masked) loses a
/// shared CPU when its slice ends: the EL2 timer is armed for the slice end.
#[test]
fn slice_end_preempts_a_guest_that_never_exits() {
    let mut m = Machine::new(1, &[spec("hog", &[0]), spec("rt", &[0])]);
    m.hws[0].entry_cost = 100_000; // 1.6 ms per entry
    // The hog "runs" until an interrupt: each entry is a physical IRQ exit when one is due,
    // otherwise a harmless trapped call.
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    m.hws[0].script(2, calls([SMCCC_VERSION, 0, 0, 0]));
    m.run(200);
    let (hog, rt) = (m.entries(0, 1), m.entries(0, 2));
    assert!(hog > 20 && rt > 20, "both ran: hog {hog}, rt {rt}");
    assert!(m.hws[0].count(|e| matches!(e, Event::End { intid } if *intid == INTID_HYP_TIMER)) > 5);
}

/// On an unshared CPU no slice clock runs: the EL2 timer stays off.
#[test]
fn lone_vcpu_runs_without_a_slice_timer() {
    let mut m = Machine::new(1, &[spec("a", &[0])]);
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    m.run(50);
    assert_eq!(m.hws[0].hyp_timer, None);
}

/// A virtual timer deadline of a vCPU that is not loaded (it waits in WFI on
/// a shared CPU) is kept on the EL2 timer and wakes it.
#[test]
fn unloaded_vtimer_deadline_wakes_its_vcpu() {
    let mut m = Machine::new(1, &[spec("sleeper", &[0]), spec("busy", &[0])]);
    m.hws[0].entry_cost = 1000;
    let woke = Rc::new(Cell::new(false));
    let w = woke.clone();
    let armed = Rc::new(Cell::new(false));
    m.hws[0].script(1, move |g| {
        if !armed.get() {
            armed.set(true);
            // Enable the vtimer PPI in the vGIC as a guest would have, arm a deadline, sleep.
            g.context.timer.cval = g.now + 50_000;
            g.context.timer.ctl = 1;
            return wfi_exit();
        }
        if g.lrs.iter().any(|&lr| lr & 0xffff_ffff == 27) {
            w.set(true);
        }
        wfi_exit()
    });
    m.hws[0].script(2, calls([YIELD, 0, 0, 0]));
    enable_vtimer(m.vm("sleeper"));
    m.run(300);
    assert!(
        woke.get(),
        "the deadline reached the sleeping vCPU through its LRs"
    );
}

/// The same with the busy vCPU yielding by WFE (a trapped WFE is Tandem's yield), as a
/// guest's polling loop does: the woken vCPU gets the CPU at the busy one's next yield,
/// long before the busy one's slice (625,000 ticks) ends.
#[test]
fn unloaded_vtimer_deadline_wakes_its_vcpu_beside_a_wfe_loop() {
    let mut m = Machine::new(1, &[spec("sleeper", &[0]), spec("busy", &[0])]);
    m.hws[0].entry_cost = 1000;
    let woke_after = Rc::new(Cell::new(None));
    let w = woke_after.clone();
    let deadline = Rc::new(Cell::new(None));
    m.hws[0].script(1, move |g| {
        let Some(d) = deadline.get() else {
            deadline.set(Some(g.now + 50_000));
            g.context.timer.cval = g.now + 50_000;
            g.context.timer.ctl = 1;
            return wfi_exit();
        };
        if w.get().is_none() && g.lrs.iter().any(|&lr| lr & 0xffff_ffff == 27) {
            w.set(Some(g.now - d));
        }
        wfi_exit()
    });
    m.hws[0].script(2, |_| {
        let mut e = wfi_exit();
        e.esr |= 1; // WFE
        e
    });
    enable_vtimer(m.vm("sleeper"));
    m.run(300);
    let after = woke_after
        .get()
        .expect("the deadline reached the sleeping vCPU");
    assert!(after < 10_000, "it ran {after} ticks after its deadline");
}

/// A kick goes to another CPU only once until that CPU consumed it.
#[test]
fn kicks_coalesce() {
    let mut m = Machine::new(2, &[spec("a", &[1])]);
    let (hv, hw0) = (m.hv, &mut m.hws[0]);
    hv.attention(1, hw0);
    hv.attention(1, hw0);
    hv.attention(0, hw0);
    assert_eq!(
        hw0.take_sgis(),
        vec![(KICK_SGI, 1)],
        "one SGI to CPU 1, none to itself"
    );
    m.step(1);
    m.hv.attention(1, &mut m.hws[0]);
    assert_eq!(
        m.hws[0].take_sgis().len(),
        1,
        "after CPU 1 looked, a new kick is sent"
    );
}

/// A hostile guest's undecodable exit stops its VM; a VM on the same CPU
/// keeps running, and the machine powers off only when every VM stopped.
#[test]
fn a_failing_vm_stops_alone() {
    let mut m = Machine::new(1, &[spec("bad", &[0]), spec("good", &[0])]);
    m.hws[0].script(1, |_| ExitSnapshot {
        vector: crate::vcpu::exit::ExitVector::Sync,
        esr: 0x3f << 26,
        far: 0,
        hpfar: 0,
    });
    m.hws[0].script(2, calls([YIELD, 0, 0, 0]));
    m.run(20);
    assert_eq!(m.vm("bad").state(), VmState::Stopped);
    assert_eq!(m.vm("good").state(), VmState::Running);
    let before = m.entries(0, 2);
    m.run(20);
    assert!(m.entries(0, 2) > before);
    assert!(!m.hws[0].powered_off);
}

/// A CPU running a vCPU keeps its emulator tick armed on a timer of its own,
/// re-armed each time it fires, whatever the EL2 timer does (its deadline is
/// what QEMU's round-robin needs while the EL2 timer waits for its handler);
/// an idle CPU has no tick.
#[test]
fn emulator_tick_keeps_ticking() {
    let mut m = Machine::with_tick(2, &[spec("a", &[0]), spec("b", &[0, 1])], Some(1250));
    m.hws[0].entry_cost = 300;
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    m.hws[0].script(2, calls([SMCCC_VERSION, 0, 0, 0]));
    for _ in 0..200 {
        m.step(0);
        let hw = &m.hws[0];
        assert!(
            hw.tick_timer.is_some_and(|c| c > hw.now - 300),
            "no tick at {}: {:?}",
            hw.now,
            hw.tick_timer
        );
    }
    let ticks = m.hws[0].count(|e| matches!(e, Event::End { intid } if *intid == INTID_TICK));
    assert!(ticks >= 20, "{ticks} ticks in 200 busy steps");
    // CPU 1's vCPU is off: it idles, untouched by ticks.
    m.run(5);
    assert_eq!(m.hws[1].tick_timer, None);
}

/// The RTOS runs without its CPU's emulator tick: the tick Linux had is
/// turned off when the CPU switches to the RTOS, and is not re-armed until
/// Linux runs again. Under `-icount` a re-arm could end the CPU's turn and
/// let a busy CPU run a quarter tick (5 µs) between the RTOS and its
/// deadline, as QEMU traces of the `shared` layout showed.
#[test]
fn the_rtos_runs_without_the_tick() {
    let rtos = rtos_spec();
    let mut m = Machine::with_tick(1, &[spec("linux", &[0]), rtos], Some(1250));
    m.hws[0].entry_cost = 40;
    // It sleeps until its deadline, takes its timer's interrupt, and sleeps for good.
    let (deadline, woke_at) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
    let (d, w) = (deadline.clone(), woke_at.clone());
    m.hws[0].script(2, move |g| {
        if d.get() == 0 {
            d.set(g.now + 100_000);
            g.context.timer.cval = d.get();
            g.context.timer.ctl = 1;
        }
        for lr in g.lrs.iter_mut() {
            if IchLr::decode(*lr).vintid == 27 && w.get() == 0 {
                w.set(g.now);
            }
            *lr &= !(0b11 << 62); // ICH_LR_EL2.State: taken and completed
        }
        wfi_exit()
    });
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    enable_vtimer(m.vm("rtos"));
    m.step(0);
    assert!(deadline.get() > 0, "the RTOS set its timer");
    while m.hws[0].now + 1_000 < deadline.get() {
        m.step(0);
    }
    assert!(m.hws[0].tick_timer.is_some(), "Linux runs with the tick");
    // Due between the early switch (at the deadline less 312 ticks) and the deadline.
    m.hws[0].tick_timer = Some(deadline.get() - 50);
    let from = m.hws[0].tick_writes.len();
    m.run(50);
    assert_woke_within(&woke_at, &deadline, 40);
    let writes = &m.hws[0].tick_writes[from..];
    let to_the_rtos: Vec<Option<u64>> = writes
        .iter()
        .filter(|&&(at, _)| at < woke_at.get())
        .map(|&(_, cval)| cval)
        .collect();
    assert_eq!(
        to_the_rtos,
        [None],
        "on the way to the RTOS the tick must be turned off, and only that"
    );
    assert!(
        writes.last().is_some_and(|w| w.1.is_some()) && m.hws[0].tick_timer.is_some(),
        "Linux runs with the tick again: {writes:?}"
    );
}

/// The RTOS: priority 10, one vCPU on CPU 0.
fn rtos_spec() -> VmSpec {
    VmSpec {
        priority: 10,
        ..spec("rtos", &[0])
    }
}

/// The RTOS (priority 10) sleeping `after` ticks from its first entry
/// ([`sleep_until`]) beside a Linux busy with hypercalls, on CPU 0, whose
/// guest entries cost `entry_cost` ticks.
fn rtos_beside_busy_linux(entry_cost: u64, after: u64) -> (Machine, Rc<Cell<u64>>, Rc<Cell<u64>>) {
    let rtos = rtos_spec();
    let mut m = Machine::new(1, &[spec("linux", &[0]), rtos]);
    m.hws[0].entry_cost = entry_cost;
    let (deadline, woke_at) = sleep_until(&mut m, 2, after);
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    enable_vtimer(m.vm("rtos"));
    (m, deadline, woke_at)
}

#[test]
fn rtos_preempts_linux_on_its_timer() {
    let (mut m, deadline, woke_at) = rtos_beside_busy_linux(1000, 200_000);
    m.run(400);
    assert_woke_within(&woke_at, &deadline, 3 * 1000);
}

/// A console backlog on the RTOS's CPU goes out a FIFO's worth per UART
/// interrupt, whose priority is below the timers': the guest runs between two
/// pieces and the RTOS still runs on time. (Sending it all from one interrupt
/// held the RTOS back by hundreds of microseconds under QEMU.)
#[test]
fn console_backlog_leaves_the_rtos_on_time() {
    use crate::arch::Console;
    use crate::arch::fake::UART_FIFO;
    const UART: u32 = 33;
    let rtos = rtos_spec();
    let mut m = Machine::with_uart(1, &[spec("linux", &[0]), rtos], UART);
    // A guest entry costs 1.6 µs, less than the console pace (4 µs).
    m.hws[0].entry_cost = 100;
    let line = "x".repeat(39);
    for _ in 0..400 {
        m.hws[0].print(format_args!("{line}\n"));
    }
    m.hws[0].pending.push_back(UART);
    let (deadline, woke_at) = sleep_until(&mut m, 2, 20_000);
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    enable_vtimer(m.vm("rtos"));
    let mut steps = 0;
    while m.hws[0].console_out.len() < 400 * 40 {
        let sent = m.hws[0].console_out.len();
        m.step(0);
        let piece = m.hws[0].console_out.len() - sent;
        assert!(piece <= UART_FIFO, "one step sent {piece} bytes");
        steps += 1;
        assert!(steps < 10_000, "the backlog never drained");
    }
    assert_woke_within(&woke_at, &deadline, 3 * 100);
    assert!(m.entries(0, 1) > 100, "Linux ran between the pieces");
}

/// The RTOS outranks Linux on their shared CPU: its CPU switches to it ahead
/// of its deadline and waits in place, so the world switch is not in its
/// latency, and its WFI still completes only with its timer's interrupt (it
/// is never entered before it).
#[test]
fn rtos_is_switched_in_before_its_deadline() {
    let rtos = rtos_spec();
    let mut m = Machine::new(1, &[spec("linux", &[0]), rtos]);
    m.hws[0].entry_cost = 40;
    let deadline = Rc::new(Cell::new(0u64));
    let (woke_at, spurious) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u32)));
    let (d, w, e) = (deadline.clone(), woke_at.clone(), spurious.clone());
    m.hws[0].script(2, move |g| {
        if d.get() == 0 {
            d.set(g.now + 100_000);
            g.context.timer.cval = d.get();
            g.context.timer.ctl = 1;
        } else if w.get() == 0 && g.lrs.iter().any(|&lr| lr & 0xffff_ffff == 27) {
            w.set(g.now);
        } else if w.get() == 0 {
            e.set(e.get() + 1);
        }
        wfi_exit()
    });
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    enable_vtimer(m.vm("rtos"));
    m.run(5000);
    // Its timer fired while it was in the CPU (the loaded vCPU's short path),
    // not as an unloaded vCPU's deadline on the EL2 timer.
    let in_place = m.hws[0].count(|e| matches!(e, Event::End { intid } if *intid == 27));
    assert!(
        in_place > 0,
        "the RTOS was not switched in before its deadline"
    );
    assert_eq!(
        spurious.get(),
        0,
        "the RTOS was entered before its interrupt"
    );
    assert_woke_within(&woke_at, &deadline, 40);
}

/// When a guest [`sleep_briefly`] scripts set its last deadline, when it went
/// to sleep briefly, and when it woke from that sleep.
struct BriefSleep {
    deadline: Rc<Cell<u64>>,
    blocked_at: Rc<Cell<u64>>,
    woke_at: Rc<Cell<u64>>,
}

impl BriefSleep {
    /// Checks that the brief sleep came and ended within 40 ticks of its
    /// deadline; returns when it began and ended.
    fn woke_on_time(&self) -> (u64, u64) {
        assert!(
            self.blocked_at.get() > 0,
            "the RTOS's first deadline never came"
        );
        assert_woke_within(&self.woke_at, &self.deadline, 40);
        (self.blocked_at.get(), self.woke_at.get())
    }
}

/// Scripts the RTOS, VM `vmid` on CPU 0: it sleeps until a deadline 100 000
/// ticks ahead, then for 8 µs (beyond the early switch's lead, within what
/// is not worth a switch), taking and completing its timer's interrupt each
/// time.
fn sleep_briefly(m: &mut Machine, vmid: u32) -> BriefSleep {
    let brief = crate::sched::ns_to_ticks(8_000, HZ);
    enable_vtimer(m.vm("rtos"));
    let (deadline, blocked_at, woke_at) = (
        Rc::new(Cell::new(0u64)),
        Rc::new(Cell::new(0u64)),
        Rc::new(Cell::new(0u64)),
    );
    let (d, b, w) = (deadline.clone(), blocked_at.clone(), woke_at.clone());
    m.hws[0].script(vmid, move |g| {
        let mut timer = false;
        for lr in g.lrs.iter_mut() {
            let l = IchLr::decode(*lr);
            if l.vintid == 27 && l.state.pending() {
                *lr &= !(0b11 << 62); // ICH_LR_EL2.State: taken and completed
                timer = true;
            }
        }
        let next = if d.get() == 0 {
            Some(100_000)
        } else if timer && b.get() == 0 {
            b.set(g.now);
            Some(brief)
        } else {
            if timer && w.get() == 0 {
                w.set(g.now);
            }
            None
        };
        if let Some(after) = next {
            d.set(g.now + after);
            g.context.timer.cval = d.get();
            g.context.timer.ctl = 1;
        }
        wfi_exit()
    });
    BriefSleep {
        deadline,
        blocked_at,
        woke_at,
    }
}

/// The RTOS blocks with its next deadline closer than two world switches
/// are worth: it keeps its CPU and waits for its timer in place. Before, the
/// CPU switched to the busy Linux beside it and back 5 µs before the
/// deadline; under `-icount` the two switches, and another CPU's turn
/// between them, put the RTOS up to 6 µs late.
#[test]
fn an_rtos_sleeping_briefly_keeps_its_cpu() {
    let rtos = rtos_spec();
    let mut m = Machine::new(1, &[spec("linux", &[0]), rtos]);
    m.hws[0].entry_cost = 40;
    let linux_entries = Rc::new(RefCell::new(Vec::new()));
    let entries = linux_entries.clone();
    m.hws[0].script(1, move |g| {
        entries.borrow_mut().push(g.now);
        g.regs.args.x[..4].copy_from_slice(&[SMCCC_VERSION, 0, 0, 0]);
        hvc_exit()
    });
    let sleep = sleep_briefly(&mut m, 2);
    m.run(20_000);
    let (blocked_at, woke_at) = sleep.woke_on_time();
    let switched = linux_entries
        .borrow()
        .iter()
        .filter(|&&t| t > blocked_at && t < woke_at)
        .count();
    assert_eq!(switched, 0, "Linux was entered while the RTOS slept 8 µs");
}

/// Alone on its CPU, the RTOS loses no switch by blocking: sleeping 8 µs, it
/// blocks and its CPU idles (the emulator tick off) until its early wake,
/// rather than holding the CPU with the tick running. (Waiting in place there
/// made the `default` layout's stressed mean latency 0.9 -> 1.5 µs.)
#[test]
fn a_lone_rtos_sleeping_briefly_idles_its_cpu() {
    let rtos = rtos_spec();
    let mut m = Machine::with_tick(1, &[rtos], Some(1250));
    m.hws[0].entry_cost = 40;
    let sleep = sleep_briefly(&mut m, 1);
    m.run(200);
    let (blocked_at, woke_at) = sleep.woke_on_time();
    let idled = m.hws[0]
        .tick_writes
        .iter()
        .any(|&(at, cval)| at >= blocked_at && at < woke_at && cval.is_none());
    assert!(
        idled,
        "the CPU kept the tick through the RTOS's brief sleep"
    );
}

/// The RTOS (priority 10) beside a Linux that sleeps in WFI, on CPU 0: it
/// sleeps until a deadline 100 000 ticks ahead, twice, taking and completing
/// its timer's interrupt each time; `on_second` runs at its second wake.
fn rtos_sleeping_twice(mut on_second: impl FnMut() + 'static) -> SleepingRtos {
    let rtos = rtos_spec();
    let mut m = Machine::new(1, &[spec("linux", &[0]), rtos]);
    m.hws[0].entry_cost = 40;
    m.hws[0].script(1, |_| wfi_exit());
    let deadline = Rc::new(Cell::new(0u64));
    let (wakes, woke_at) = (Rc::new(Cell::new(0u32)), Rc::new(Cell::new(0u64)));
    let (d, n, w) = (deadline.clone(), wakes.clone(), woke_at.clone());
    m.hws[0].script(2, move |g| {
        let mut timer = false;
        for lr in g.lrs.iter_mut() {
            let l = IchLr::decode(*lr);
            if l.vintid == 27 && l.state.pending() {
                *lr &= !(0b11 << 62); // ICH_LR_EL2.State: taken and completed
                timer = true;
            }
        }
        if d.get() == 0 || (timer && n.get() == 0) {
            n.set(n.get() + u32::from(d.get() != 0));
            d.set(g.now + 100_000);
            g.context.timer.cval = d.get();
            g.context.timer.ctl = 1;
        } else if timer && w.get() == 0 {
            w.set(g.now);
            on_second();
        }
        wfi_exit()
    });
    enable_vtimer(m.vm("rtos"));
    SleepingRtos {
        m,
        deadline,
        wakes,
        woke_at,
    }
}

/// What [`rtos_sleeping_twice`] sets up.
struct SleepingRtos {
    m: Machine,
    deadline: Rc<Cell<u64>>,
    wakes: Rc<Cell<u32>>,
    woke_at: Rc<Cell<u64>>,
}

/// A VM's vGIC, locked.
type VgicGuard = spin::mutex::TicketMutexGuard<'static, crate::vgic::Vgic, crate::sync::CpuRelax>;

/// Runs `f`, or ends the whole test binary if it has not returned within
/// `secs`: for a failure that would otherwise be a test spinning forever.
fn within<R>(secs: u64, what: &'static str, f: impl FnOnce() -> R) -> R {
    let done = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        if !flag.load(Ordering::Acquire) {
            std::eprintln!("FAILED: {what} (still running after {secs} s)");
            std::process::abort();
        }
    });
    let r = f();
    done.store(true, Ordering::Release);
    r
}

/// A lower-priority VM whose vGIC another CPU holds (a storm of its own vGIC
/// exits) does not hold back the RTOS beside it: choosing the vCPU to run
/// never waits for that lock. Before, the CPU spun on it; under QEMU's
/// round-robin `-icount` such a wait took up to 0.65 ms.
#[test]
fn a_lower_vm_holding_its_vgic_does_not_delay_the_rtos() {
    // Between the RTOS's second deadline and its interrupt, "another CPU" holds
    // Linux's vGIC.
    let held: Rc<RefCell<Option<VgicGuard>>> = Rc::new(RefCell::new(None));
    let h = held.clone();
    let SleepingRtos {
        mut m,
        deadline,
        wakes,
        woke_at,
    } = rtos_sleeping_twice(move || {
        h.borrow_mut().take();
    });
    // Until the CPU woke for the RTOS's second deadline (early, or at it).
    let lead = 5_000 * HZ / 1_000_000_000;
    for _ in 0..100 {
        m.step(0);
        if wakes.get() == 1 && m.hws[0].now + lead >= deadline.get() {
            break;
        }
    }
    assert!(wakes.get() == 1 && woke_at.get() == 0);
    assert!(
        m.hws[0].now + lead >= deadline.get(),
        "the second deadline is due"
    );
    assert_eq!(m.pcpus[0].loaded(), Some(1), "the RTOS is in the CPU");
    *held.borrow_mut() = Some(m.vm("linux").vgic.lock());
    within(20, "the CPU waited for a lower VM's vGIC lock", || {
        m.run(50)
    });
    assert_woke_within(&woke_at, &deadline, 40);
}

/// When a [`sleeper`] was entered, and when it saw its timer's interrupt.
struct Sleeper {
    entries: Rc<RefCell<Vec<u64>>>,
    woke_at: Rc<Cell<u64>>,
}

/// A guest that sets its timer for `deadline` at its first entry, records when
/// it sees the timer's interrupt, completes it, and sleeps in WFI.
fn sleeper(deadline: u64) -> (impl FnMut(&mut GuestView<'_>) -> ExitSnapshot, Sleeper) {
    let (entries, woke_at) = (Rc::new(RefCell::new(Vec::new())), Rc::new(Cell::new(0u64)));
    let (e, w) = (entries.clone(), woke_at.clone());
    let mut first = true;
    let script = move |g: &mut GuestView<'_>| {
        e.borrow_mut().push(g.now);
        if core::mem::take(&mut first) {
            g.context.timer.cval = deadline;
            g.context.timer.ctl = 1;
        }
        for lr in g.lrs.iter_mut() {
            if IchLr::decode(*lr).vintid == 27 && w.get() == 0 {
                w.set(g.now);
            }
            *lr &= !(0b11 << 62); // ICH_LR_EL2.State: taken and completed
        }
        wfi_exit()
    };
    (script, Sleeper { entries, woke_at })
}

/// On an idle CPU, Linux's deadline comes 5 µs before the RTOS's: the CPU
/// wakes early for Linux's, and goes straight to the RTOS, which waits for its
/// timer in place; Linux runs after it. Before, the CPU went to Linux, entered
/// it at its deadline, and left it for the RTOS just before the RTOS's (QEMU
/// traces of the `shared` layout: the RTOS 3.8 µs late).
#[test]
fn a_lower_deadline_just_before_the_rtos_does_not_delay_it() {
    let rtos = rtos_spec();
    let mut m = Machine::new(1, &[spec("linux", &[0]), rtos]);
    m.hws[0].entry_cost = 40;
    // The RTOS's deadline follows Linux's by just more than the early switch's lead,
    // so that Linux's timer comes before the RTOS's early switch.
    let lead = crate::sched::ns_to_ticks(5_000, HZ);
    let (linux_deadline, rtos_deadline) = (100_000, 100_000 + lead + 1);
    let (linux, linux_woke) = sleeper(linux_deadline);
    let (rtos, rtos_woke) = sleeper(rtos_deadline);
    m.hws[0].script(1, linux);
    m.hws[0].script(2, rtos);
    enable_vtimer(m.vm("linux"));
    enable_vtimer(m.vm("rtos"));
    m.run(50);
    let rtos_woke = rtos_woke.woke_at.get();
    assert_woke_within(&Cell::new(rtos_woke), &Cell::new(rtos_deadline), 40);
    let on_the_way: Vec<u64> = linux_woke
        .entries
        .borrow()
        .iter()
        .copied()
        .filter(|&t| t > linux_deadline - 1_000 && t < rtos_woke)
        .collect();
    assert_eq!(
        on_the_way,
        [],
        "Linux was entered on the way to the RTOS's deadline"
    );
    assert!(
        linux_woke.woke_at.get() > rtos_woke,
        "Linux got its timer after the RTOS"
    );
    // Switched to the RTOS when the CPU woke, ahead of Linux's deadline.
    let rtos_vttbr = m.vm("rtos").vttbr;
    let switched = m.hws[0]
        .switches
        .iter()
        .rev()
        .find(|s| s.1 == rtos_vttbr && s.0 < rtos_woke)
        .map(|s| s.0);
    assert!(
        switched.is_some_and(|t| t < linux_deadline),
        "the RTOS was switched in at {switched:?}, after Linux's deadline {linux_deadline}"
    );
}

/// The RTOS's CPU leaves a Linux vCPU with an interrupt active in its list
/// registers while another of Linux's vCPUs holds Linux's vGIC: the switch
/// does not wait for that lock. Linux's list registers are kept, and folded
/// into its vGIC when it next runs: its interrupt is still active there.
#[test]
fn leaving_a_vcpu_never_waits_for_its_vgic() {
    let rtos = rtos_spec();
    let mut m = Machine::new(1, &[spec("linux", &[0]), rtos]);
    m.hws[0].entry_cost = 40;
    let held: Rc<RefCell<Option<VgicGuard>>> = Rc::new(RefCell::new(None));
    // Linux acknowledges SPI 40 and stays in its handler, busy with hypercalls;
    // it counts the entries that find the interrupt still active.
    let active = Rc::new(Cell::new(0u32));
    let a = active.clone();
    m.hws[0].script(1, move |g| {
        for lr in g.lrs.iter_mut() {
            let l = IchLr::decode(*lr);
            if l.vintid == 40 && l.state.pending() {
                *lr = (*lr & !(0b11 << 62)) | (0b10 << 62);
            } else if l.vintid == 40 && l.state.active() {
                a.set(a.get() + 1);
            }
        }
        g.regs.args.x[..4].copy_from_slice(&[SMCCC_VERSION, 0, 0, 0]);
        hvc_exit()
    });
    let h = held.clone();
    let (deadline, woke_at) = sleep_until_then(&mut m, 2, 100_000, move || {
        h.borrow_mut().take();
    });
    let linux = m.vm("linux");
    enable_spi(linux, 40);
    enable_vtimer(m.vm("rtos"));
    m.hv.inject(linux, 40, None, &mut m.hws[0]);
    for _ in 0..100 {
        m.step(0);
        if active.get() > 0 {
            break;
        }
    }
    assert!(active.get() > 0, "Linux never took its interrupt");
    assert!(m.hws[0].now + 1_000 < deadline.get());
    *held.borrow_mut() = Some(linux.vgic.lock());
    let before = active.get();
    within(20, "leaving Linux waited for its vGIC lock", || {
        m.run(5_000)
    });
    assert_woke_within(&woke_at, &deadline, 40);
    assert!(held.borrow().is_none());
    assert!(
        active.get() > before,
        "Linux's active interrupt was lost while its LRs waited to be folded"
    );
}

/// The RTOS sleeping in WFI while its state stays in an idle CPU (nothing
/// else runs there) is woken [`WAKE_LEAD_NS`] ahead of its timer by the EL2
/// timer, and waits for its timer in place: the way from idle to its entry is
/// not in its latency.
#[test]
fn a_sleeping_rtos_still_in_its_cpu_is_woken_ahead_of_its_timer() {
    let SleepingRtos {
        mut m,
        deadline,
        wakes,
        woke_at,
    } = rtos_sleeping_twice(|| {});
    let lead = 5_000 * HZ / 1_000_000_000;
    let mut woke_early = false;
    for _ in 0..200 {
        m.step(0);
        woke_early |= wakes.get() == 1 && m.hws[0].now == deadline.get() - lead;
        if woke_at.get() != 0 {
            break;
        }
    }
    assert_eq!(m.pcpus[0].loaded(), Some(1), "the RTOS stayed in the CPU");
    assert!(woke_early, "the idle CPU woke ahead of the RTOS's deadline");
    assert_woke_within(&woke_at, &deadline, 40);
}

/// A vCPU switched in early whose timer interrupt turns out disabled in its
/// vGIC does not keep the CPU: once its timer has fired and brought nothing
/// it blocks, and the lower-priority vCPU runs on.
#[test]
fn early_switch_gives_way_when_the_timer_brings_nothing() {
    let rtos = rtos_spec();
    let mut m = Machine::new(1, &[spec("linux", &[0]), rtos]);
    m.hws[0].entry_cost = 40;
    let armed = Rc::new(Cell::new(false));
    let a = armed.clone();
    m.hws[0].script(2, move |g| {
        if !a.replace(true) {
            g.context.timer.cval = g.now + 10_000;
            g.context.timer.ctl = 1;
        }
        wfi_exit()
    });
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    // The RTOS's timer PPI stays disabled in its vGIC.
    m.run(400);
    let before = m.entries(0, 1);
    m.run(400);
    assert!(
        m.entries(0, 1) > before + 300,
        "Linux ran {} times after the RTOS's deadline",
        m.entries(0, 1) - before
    );
}

/// A vCPU with a budget gets no more than its budget per period while a
/// lower-priority vCPU waits, and the other gets the rest.
#[test]
fn budget_caps_a_high_priority_hog() {
    let hog = VmSpec {
        priority: 5,
        budget: Some((200, 1000)), // 20 % of the CPU
        ..spec("hog", &[0])
    };
    let mut m = Machine::new(1, &[hog, spec("other", &[0])]);
    m.hws[0].entry_cost = 625; // 10 µs at 62.5 MHz
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    m.hws[0].script(2, calls([SMCCC_VERSION, 0, 0, 0]));
    m.run(2000);
    let (hog, other) = (m.entries(0, 1) as f64, m.entries(0, 2) as f64);
    let share = hog / (hog + other);
    assert!(
        (0.15..0.3).contains(&share),
        "hog got {:.0} % of the entries ({hog} vs {other})",
        share * 100.0
    );
}

/// VM ids are 1-based in package order: `VM_INFO` tells the first VM it is
/// VM 1 and the second VM 2, the ids the log prints (docs/vm-config.md).
#[test]
fn vm_info_ids_start_at_one() {
    const VM_INFO: u64 = 0xC600_0001;
    let mut m = Machine::new(2, &[spec("first", &[0]), spec("second", &[1])]);
    let seen = Rc::new(Cell::new([0u64; 2]));
    for (cpu, id) in [(0usize, 1u32), (1, 2)] {
        let seen = seen.clone();
        let mut asked = false;
        m.hws[cpu].script(id, move |g| {
            if asked {
                let mut s = seen.get();
                s[cpu] = g.regs.args.x[1];
                seen.set(s);
            }
            asked = true;
            g.regs.args.x[0] = VM_INFO;
            hvc_exit()
        });
    }
    m.run(3);
    assert_eq!(seen.get(), [1, 2]);
    assert_eq!((m.vm("first").id, m.vm("second").id), (1, 2));
}

/// The entry state pv-abi documents for bare guests ("Entry state"): EL1h
/// with DAIF masked, x0 = the device tree, every other register and both
/// stack pointers 0, MMU and caches off, FP/SIMD trapped (CPACR_EL1 = 0),
/// no vectors; a CPU_ON'd vCPU gets the same with x0 = its context id.
#[test]
fn vcpus_start_in_the_documented_entry_state() {
    const SECONDARY: u64 = ENTRY + 0x1000;
    let mut m = Machine::new(2, &[spec("a", &[0, 1])]);
    let checked = Rc::new(Cell::new([false; 2]));
    for cpu in 0..2usize {
        let checked = checked.clone();
        m.hws[cpu].script(1, move |g| {
            let mut c = checked.get();
            if !c[cpu] {
                let (pc, x0) = if cpu == 0 {
                    (ENTRY, RAM_IPA)
                } else {
                    (SECONDARY, 0x77)
                };
                assert_eq!((g.regs.pc, g.regs.args.x[0]), (pc, x0), "vCPU {cpu}");
                assert_eq!(g.regs.pstate, 0x3c5, "EL1h, DAIF masked");
                assert!(g.regs.args.x[1..].iter().all(|&x| x == 0), "x1..x7 = 0");
                assert!(g.regs.high.iter().all(|&x| x == 0), "x8..x30 = 0");
                assert_eq!(g.regs.sp_el0, 0);
                let el1 = &g.context.el1;
                assert_eq!(el1.sp_el1, 0, "no stack");
                assert_eq!(el1.cpacr, 0, "FP/SIMD traps");
                assert_eq!(el1.vbar, 0, "no vectors");
                assert_eq!(el1.sctlr & 0b1_0000_0000_0101, 0, "M, C and I clear");
                assert_eq!(g.context.timer.ctl, 0, "virtual timer off");
                c[cpu] = true;
                checked.set(c);
            }
            if cpu == 0 {
                // Start vCPU 1 with a context id, then idle.
                g.regs.args.x[..4].copy_from_slice(&[PSCI_CPU_ON, 1, SECONDARY, 0x77]);
                return hvc_exit();
            }
            wfi_exit()
        });
    }
    m.run(6);
    assert_eq!(checked.get(), [true, true], "both vCPUs entered");
}

/// A guest that crashes (CRASH) restarts after a back-off that doubles, and
/// is stopped at the fifth crash within a minute; the machine keeps running.
#[test]
fn crashes_restart_with_back_off_then_stop() {
    let flaky = VmSpec {
        flags: crate::vm::package::FLAG_RESTART_ON_RESET,
        ..spec("flaky", &[0])
    };
    let mut m = Machine::new(1, &[flaky, spec("steady", &[0])]);
    m.hws[0].entry_cost = 62_500; // 1 ms
    let (regs, n) = pv_abi::pack_bytes(b"kernel panic");
    let mut crash = [0u64; 8];
    crash[0] = 0xC600_0006;
    crash[1] = n as u64;
    crash[2..].copy_from_slice(&regs);
    m.hws[0].script(1, move |g| {
        g.regs.args.x = crash;
        hvc_exit()
    });
    m.hws[0].script(2, calls([YIELD, 0, 0, 0]));
    let vm = m.vm("flaky");
    let mut restarts_at = Vec::new();
    for _ in 0..20_000 {
        m.run(1);
        let resets = vm.stats.resets.load(Ordering::Relaxed) as usize;
        if resets > restarts_at.len() {
            restarts_at.push(m.hws[0].now);
        }
        if vm.state() == VmState::Stopped {
            break;
        }
    }
    assert_eq!(vm.stats.crashes.load(Ordering::Relaxed), 5);
    assert_eq!(restarts_at.len(), 4, "restarted 4 times, then stopped");
    assert_eq!(vm.state(), VmState::Stopped);
    let gaps: Vec<u64> = restarts_at
        .windows(2)
        .map(|w| (w[1] - w[0]) / 6_250_000)
        .collect();
    assert!(
        gaps[0] >= 2 && gaps[1] >= 4 && gaps[2] >= 8,
        "back-off doubles (in 100 ms units): {gaps:?}"
    );
    assert_eq!(m.vm("steady").state(), VmState::Running);
    assert!(!m.hws[0].powered_off);
}

/// An armed watchdog that is not petted crashes its VM; petting keeps it
/// alive; a VM without restart is then stopped.
#[test]
fn watchdog_expiry_is_a_crash() {
    let mut m = Machine::new(1, &[spec("petted", &[0]), spec("hung", &[0])]);
    m.hws[0].entry_cost = 62_500;
    // Both arm a 1 s watchdog; "petted" pets it at every exit, "hung" never again.
    m.hws[0].script(1, calls([0xC600_0007, 1000, 0, 0]));
    let armed = Rc::new(Cell::new(false));
    let a = armed.clone();
    m.hws[0].script(2, move |g| {
        if !a.get() {
            a.set(true);
            g.regs.args.x[..2].copy_from_slice(&[0xC600_0007, 1000]);
        } else {
            g.regs.args.x[0] = YIELD;
        }
        hvc_exit()
    });
    m.run(3000);
    assert_eq!(m.vm("hung").state(), VmState::Stopped);
    assert_eq!(m.vm("hung").stats.crashes.load(Ordering::Relaxed), 1);
    assert_eq!(m.vm("petted").state(), VmState::Running);
    assert!(m.hws[0].now > 62_500_000, "more than a second went by");
}

/// A reset of a VM that shares its CPU with a higher-priority vCPU is done
/// in pieces between which that vCPU runs: its timer interrupt waits at most
/// one piece, not the whole reload.
#[test]
fn reload_yields_to_a_higher_priority_vcpu() {
    let rtos = rtos_spec();
    let linux = VmSpec {
        ram_size: 32 << 20,
        ..spec("linux", &[0])
    };
    let mut m = Machine::new(1, &[linux, rtos]);
    m.hws[0].entry_cost = 100;
    // The RTOS sleeps with a periodic 20 µs deadline (1250 ticks, absolute: an
    // early wake-up keeps it) and counts wake-ups.
    let wakeups = Rc::new(Cell::new(0u32));
    let w = wakeups.clone();
    let next = Cell::new(0u64);
    m.hws[0].script(2, move |g| {
        if next.get() == 0 {
            next.set(g.now + 1250);
        }
        if g.lrs.iter().any(|&lr| lr & 0xffff_ffff == 27) {
            w.set(w.get() + 1);
            g.lrs.fill(0);
            next.set(g.now.max(next.get()) + 1250);
        }
        g.context.timer.cval = next.get();
        g.context.timer.ctl = 1;
        wfi_exit()
    });
    m.hws[0].script(1, calls([SMCCC_VERSION, 0, 0, 0]));
    enable_vtimer(m.vm("rtos"));
    m.run(50);
    let linux = m.vm("linux");
    m.hv.request_reset(linux, "test", &mut m.hws[0]);
    let before = wakeups.get();
    let mut steps = 0;
    while linux.stats.resets.load(Ordering::Relaxed) == 0 && steps < 100_000 {
        m.run(1);
        steps += 1;
    }
    assert_eq!(linux.stats.resets.load(Ordering::Relaxed), 1);
    assert!(
        wakeups.get() > before + 10,
        "the RTOS woke {} times during the reload",
        wakeups.get() - before
    );
}

/// The monitor pauses a VM (its vCPU stops entering and keeps its state),
/// resumes it where it stopped, stops and starts it afresh, and says what is
/// wrong with a bad command.
#[test]
fn monitor_pause_resume_stop_start() {
    let mut m = Machine::new(1, &[spec("a", &[0]), spec("b", &[0])]);
    let steps = Rc::new(Cell::new(0u64));
    let s = steps.clone();
    m.hws[0].script(1, move |g| {
        s.set(s.get() + 1);
        g.regs.pc += 4;
        g.regs.args.x[0] = YIELD;
        hvc_exit()
    });
    m.hws[0].script(2, calls([YIELD, 0, 0, 0]));
    let (hv, a) = (m.hv, m.vm("a"));
    m.run(10);
    super::console::run_command(hv, "pause a", &mut m.hws[0]);
    assert_eq!(a.state(), VmState::Paused);
    m.run(2);
    let (paused_at, pc) = (steps.get(), m.pcpus[0].vcpus[0].regs.pc);
    m.run(20);
    assert_eq!(steps.get(), paused_at, "a paused VM does not run");
    super::console::run_command(hv, "resume a", &mut m.hws[0]);
    m.run(10);
    assert!(steps.get() > paused_at);
    assert!(
        m.pcpus[0].vcpus[0].regs.pc > pc,
        "it went on from where it stopped"
    );

    m.hws[0].console_out.clear();
    super::console::run_command(hv, "resume a", &mut m.hws[0]);
    super::console::run_command(hv, "pause nope", &mut m.hws[0]);
    super::console::run_command(hv, "start", &mut m.hws[0]);
    let out = m.hws[0].console_out.clone();
    assert!(out.contains("VM 'a' unchanged: it is not paused"), "{out}");
    assert!(out.contains("no VM named 'nope' (VMs: a, b)"), "{out}");
    assert!(out.contains("'start' needs a VM name: start <vm>"), "{out}");

    let pc_before = m.pcpus[0].vcpus[0].regs.pc;
    super::console::run_command(hv, "stop a", &mut m.hws[0]);
    assert_eq!(a.state(), VmState::Stopped);
    super::console::run_command(hv, "start a", &mut m.hws[0]);
    for _ in 0..500 {
        m.run(1);
        if a.state() == VmState::Running {
            break;
        }
    }
    assert_eq!(a.state(), VmState::Running);
    assert_eq!(a.stats.resets.load(Ordering::Relaxed), 1, "started afresh");
    m.run(5);
    let pc_after = m.pcpus[0].vcpus[0].regs.pc;
    assert!(
        (ENTRY..pc_before).contains(&pc_after),
        "it started again from its entry point: {pc_after:#x} (was {pc_before:#x})"
    );

    m.hws[0].console_out.clear();
    super::console::run_command(hv, "vms", &mut m.hws[0]);
    let out = m.hws[0].console_out.clone();
    assert!(
        out.contains(" a ") && out.contains("running") && out.contains("resets=1"),
        "{out}"
    );
    assert!(out.contains("vcpu0 pCPU 0"), "{out}");
}

/// Arm PV stolen time: a Linux vCPU that asked for its structure
/// (PV_TIME_ST) sees the time the RTOS took from its CPU grow in it.
#[test]
fn stolen_time_counts_what_the_rtos_took() {
    let rtos = VmSpec {
        priority: 10,
        budget: Some((200, 1000)), // 20 % of the CPU
        ..spec("rtos", &[0])
    };
    let mut m = Machine::new(1, &[spec("linux", &[0]), rtos]);
    m.hws[0].entry_cost = 625; // 10 µs at 62.5 MHz
    let ipa = Rc::new(Cell::new(None));
    let got = ipa.clone();
    let mut asked = false;
    m.hws[0].script(1, move |g| {
        if !asked {
            asked = true;
            g.regs.args.x[0] = 0xC500_0021; // PV_TIME_ST
        } else {
            if got.get().is_none() {
                got.set(Some(g.regs.args.x[0]));
            }
            g.regs.args.x[0] = SMCCC_VERSION;
        }
        hvc_exit()
    });
    m.hws[0].script(2, calls([SMCCC_VERSION, 0, 0, 0]));
    m.run(2000);
    let linux = m.vm("linux");
    let expected = linux.stolen_time_ipa(0).unwrap();
    assert_eq!(
        ipa.get(),
        Some(expected),
        "PV_TIME_ST gave the structure's IPA"
    );
    // Linux waited while the RTOS used its budget: about a fifth of the time.
    let stolen = linux.vcpus[0].stolen_ns.load(Ordering::Relaxed);
    let elapsed = crate::sched::ticks_to_ns(m.hws[0].now, HZ);
    let share = stolen as f64 / elapsed as f64;
    assert!(
        (0.15..0.3).contains(&share),
        "stolen {stolen} ns of {elapsed} ns"
    );
    let pa = linux.ram_pa + (expected - RAM_IPA);
    assert!(
        m.hws[0].count(|e| matches!(e, Event::CopyIn { pa: p, len: 16 } if *p == pa)) > 2,
        "published into the guest's structure"
    );
}
