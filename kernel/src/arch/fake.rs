//! A host fake of one physical CPU, for `cargo test`.
//!
//! It keeps the state real hardware would keep (the vCPU context in the CPU,
//! list registers, timers, pending physical interrupts) and records what the
//! core did to it, so tests can check sequences: which vCPU state was loaded
//! when, which SGIs went where, what RAM was cleared. Guests are scripts: a
//! closure decides each exit from the registers it is entered with.
//!
//! Time advances only when a test says so ([`FakeCpu::advance`]) or by a
//! fixed cost per guest entry, so runs are deterministic.
#![allow(missing_docs)] // a test double: fields are self-describing

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use super::{Console, Cpu, Gic, Ram};
use crate::vcpu::exit::{ExitSnapshot, ExitVector};
use crate::vcpu::inject::{El1Exception, take_exception};
use crate::vcpu::regs::{GuestRegs, TimerRegs, VcpuContext, VgicCpuRegs};
use core::marker::PhantomData;

use crate::vgic::lr::{IchLr, LrFormat};
use crate::vm::console::Terminal;
use crate::vm::txring::{Owner, TANDEM, TxRing};

/// INTID of the EL1 virtual timer PPI.
const VTIMER: u32 = 27;
/// INTID of the EL2 physical timer PPI.
const HYP_TIMER: u32 = 26;
/// The emulator tick's timer (EL1 physical).
const TICK: u32 = 30;

/// What a scripted guest sees when it runs: the CPU's VM registers and its own.
pub struct GuestView<'a> {
    /// VTTBR_EL2 (the VM: VMID in bits 63:48).
    pub vttbr: u64,
    /// VMPIDR_EL2 (the vCPU).
    pub vmpidr: u64,
    /// The vCPU's registers; the script may change them (as guest code would).
    pub regs: &'a mut GuestRegs,
    /// The state in the CPU (EL1 registers, timer...); the script may change it.
    pub context: &'a mut VcpuContext,
    /// The list registers as the guest's virtual CPU interface sees them.
    pub lrs: &'a mut [u64],
    /// Counter now.
    pub now: u64,
    /// Set by the script: the guest left an asynchronous SError pending (say,
    /// an external abort on a buffered write) that the CPU has yet to take.
    pub serror: &'a mut bool,
}

/// A guest script: one exit per call.
pub type Script = Box<dyn FnMut(&mut GuestView<'_>) -> ExitSnapshot>;

/// Recorded operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Enter { vttbr: u64, vmpidr: u64, pc: u64 },
    LoadStage2 { vttbr: u64 },
    SaveContext,
    LoadContext { sctlr: u64 },
    Clear { pa: u64, len: u64 },
    CopyIn { pa: u64, len: u64 },
    CleanToPoc { pa: u64, len: u64 },
    IsolateBranchPredictor,
    FlushTlb { vttbr: u64 },
    Sgi { sgi: u8, mpidr: u64 },
    EnableSpi { intid: u32, mpidr: u64 },
    DisableSpi { intid: u32 },
    DeactivateSpi { intid: u32 },
    End { intid: u32 },
    PriorityDrop { intid: u32 },
    InjectSync { esr: u64 },
    PowerOff,
    Wfi,
}

/// One fake physical CPU whose list registers hold format `L` (GICv3 by
/// default; [`crate::vgic::lr::GichLr`] makes it a GICv2 one).
pub struct FakeCpu<L = IchLr> {
    pub index: usize,
    pub now: u64,
    /// Counter ticks each guest entry costs (so time moves while guests run).
    pub entry_cost: u64,
    pub context: VcpuContext,
    pub vttbr: u64,
    pub vmpidr: u64,
    pub vbar_el1: u64,
    pub hyp_timer: Option<u64>,
    /// The emulator tick's timer.
    pub tick_timer: Option<u64>,
    /// Every write of the tick's timer: when, and what.
    pub tick_writes: Vec<(u64, Option<u64>)>,
    /// Every VM switch ([`Hw::load_stage2`]): when, and to which VTTBR.
    pub switches: Vec<(u64, u64)>,
    pub lrs: Vec<u64>,
    pub interface_enabled: bool,
    pub underflow: bool,
    pub interface: VgicCpuRegs,
    /// Physical interrupts waiting to be acknowledged.
    pub pending: VecDeque<u32>,
    /// Guest scripts by VMID.
    pub scripts: Vec<(u64, Script)>,
    pub events: Vec<Event>,
    pub console_out: String,
    pub console_in: VecDeque<u8>,
    /// Free bytes Tandem's console ring reports (fixed; tests lower it).
    pub console_room: usize,
    /// The UART sends nothing: console output waits in the ring (16 KiB)
    /// until [`FakeCpu::uart_sends`].
    pub console_stalled: bool,
    console_ring: Box<TxRing<16384>>,
    pub terminal: Terminal,
    pub powered_off: bool,
    /// An SError is pending at EL2 (see [`GuestView::serror`]).
    pub serror_pending: bool,
    /// An idle CPU sleeps until its EL2 timer (else time stands still while
    /// it idles, as if the other CPUs were infinitely fast).
    pub sleeps_to_timer: bool,
    /// The physical UART's interrupt, if this CPU takes it: lower priority
    /// than every other interrupt, and pending while output waits in the ring.
    pub uart_line: Option<u32>,
    /// The UART's transmit interrupt is off until `resume_output`.
    pub output_paused: bool,
    /// Interrupts acknowledged since the CPU last entered a guest or slept.
    acks_in_a_row: usize,
    format: PhantomData<L>,
}

impl FakeCpu {
    /// A GICv3 CPU with `lr_count` list registers and no guests.
    pub fn new(index: usize, lr_count: usize) -> Self {
        Self::with_lr_format(index, lr_count)
    }
}

impl<L> FakeCpu<L> {
    /// A CPU with `lr_count` list registers in format `L` and no guests.
    pub fn with_lr_format(index: usize, lr_count: usize) -> Self {
        Self {
            index,
            now: 1000,
            entry_cost: 10,
            context: VcpuContext::default(),
            vttbr: 0,
            vmpidr: 0,
            vbar_el1: 0,
            hyp_timer: None,
            tick_timer: None,
            tick_writes: Vec::new(),
            switches: Vec::new(),
            lrs: alloc::vec![0; lr_count],
            interface_enabled: false,
            underflow: false,
            interface: VgicCpuRegs::default(),
            pending: VecDeque::new(),
            scripts: Vec::new(),
            events: Vec::new(),
            console_out: String::new(),
            console_in: VecDeque::new(),
            console_room: 16384,
            console_stalled: false,
            console_ring: Box::new(TxRing::new()),
            terminal: Terminal::default(),
            powered_off: false,
            serror_pending: false,
            sleeps_to_timer: true,
            uart_line: None,
            output_paused: false,
            acks_in_a_row: 0,
            format: PhantomData,
        }
    }

    /// Runs `script` whenever a vCPU of the VM with id `vmid` is entered here.
    pub fn script(
        &mut self,
        vmid: u32,
        script: impl FnMut(&mut GuestView<'_>) -> ExitSnapshot + 'static,
    ) {
        self.scripts.push((u64::from(vmid), Box::new(script)));
    }

    /// Moves time forward, raising the timer interrupts that fall due.
    pub fn advance(&mut self, ticks: u64) {
        self.now += ticks;
        self.raise_due_timers();
    }

    /// Raises the EL2 timer's and the loaded virtual timer's interrupts if due
    /// (level-sensitive lines: raised once while pending).
    pub fn raise_due_timers(&mut self) {
        if self.hyp_timer.is_some_and(|c| c <= self.now) && !self.pending.contains(&HYP_TIMER) {
            self.pending.push_back(HYP_TIMER);
        }
        if self.tick_timer.is_some_and(|c| c <= self.now) && !self.pending.contains(&TICK) {
            self.pending.push_back(TICK);
        }
        let t = self.context.timer;
        if t.armed() && t.cval <= self.now && !self.pending.contains(&VTIMER) {
            self.pending.push_back(VTIMER);
        }
    }

    /// The SGIs sent since the last call (for routing between fake CPUs).
    pub fn take_sgis(&mut self) -> Vec<(u8, u64)> {
        let mut out = Vec::new();
        self.events.retain(|e| match *e {
            Event::Sgi { sgi, mpidr } => {
                out.push((sgi, mpidr));
                false
            }
            _ => true,
        });
        out
    }

    /// How many recorded events match `f`.
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }
}

/// An exit snapshot for an HVC (the PC is already past it).
pub fn hvc_exit() -> ExitSnapshot {
    ExitSnapshot {
        vector: ExitVector::Sync,
        esr: 0x5a00_0000,
        far: 0,
        hpfar: 0,
    }
}

/// An exit snapshot for WFI.
pub fn wfi_exit() -> ExitSnapshot {
    ExitSnapshot {
        vector: ExitVector::Sync,
        esr: (0x01 << 26) | (1 << 25),
        far: 0,
        hpfar: 0,
    }
}

/// An exit snapshot for a 32-bit load (`ldr w2, [..]`) from `ipa`.
pub fn load32_exit(ipa: u64) -> ExitSnapshot {
    ExitSnapshot {
        vector: ExitVector::Sync,
        // EC 0x24, IL, ISV, SAS = word, SRT = 2, DFSC = translation fault level 2.
        esr: (0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (2 << 16) | 0x06,
        far: ipa,
        hpfar: (ipa >> 12) << 4,
    }
}

/// An exit snapshot for a 32-bit store of `w2` to unmapped IPA `ipa`.
pub fn store32_exit(ipa: u64) -> ExitSnapshot {
    ExitSnapshot {
        // As `load32_exit`, with WnR (bit 6) set.
        esr: load32_exit(ipa).esr | (1 << 6),
        ..load32_exit(ipa)
    }
}

/// An exit snapshot for a store of `size` bytes (1, 2, 4 or 8) from x2 to `ipa`.
pub fn store_exit(ipa: u64, size: u8) -> ExitSnapshot {
    let sas = u64::from(size.trailing_zeros());
    ExitSnapshot {
        vector: ExitVector::Sync,
        // EC 0x24, IL, ISV, SAS, SRT = 2, WnR, DFSC = translation fault level 2.
        esr: (0x24 << 26) | (1 << 25) | (1 << 24) | (sas << 22) | (2 << 16) | (1 << 6) | 0x06,
        far: ipa,
        hpfar: (ipa >> 12) << 4,
    }
}

/// An exit snapshot for a physical IRQ.
pub fn irq_exit() -> ExitSnapshot {
    ExitSnapshot {
        vector: ExitVector::Irq,
        esr: 0,
        far: 0,
        hpfar: 0,
    }
}

/// An SError exit (ESR_EL2 EC 0x2F, IDS = 0: uncategorized).
pub fn serror_exit() -> ExitSnapshot {
    ExitSnapshot {
        vector: ExitVector::SError,
        esr: 0x2f << 26 | 1 << 25,
        far: 0,
        hpfar: 0,
    }
}

impl<L> Cpu for FakeCpu<L> {
    fn index(&self) -> usize {
        self.index
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn enter_guest(&mut self, regs: &mut GuestRegs) -> ExitSnapshot {
        self.events.push(Event::Enter {
            vttbr: self.vttbr,
            vmpidr: self.vmpidr,
            pc: regs.pc,
        });
        self.acks_in_a_row = 0;
        self.now += self.entry_cost;
        self.raise_due_timers();
        if core::mem::take(&mut self.serror_pending) {
            // Routed to EL2 (HCR_EL2.AMO), a pending SError is taken as soon as
            // the CPU is at EL1, whichever guest that is.
            return serror_exit();
        }
        if !self.pending.is_empty() {
            return irq_exit();
        }
        let vmid = self.vttbr >> 48;
        let now = self.now;
        let Some((_, script)) = self.scripts.iter_mut().find(|(id, _)| *id == vmid) else {
            // No script: the guest idles.
            return wfi_exit();
        };
        let mut view = GuestView {
            vttbr: self.vttbr,
            vmpidr: self.vmpidr,
            regs,
            context: &mut self.context,
            lrs: &mut self.lrs,
            now,
            serror: &mut self.serror_pending,
        };
        let exit = script(&mut view);
        self.raise_due_timers();
        exit
    }

    fn reenter(&self) -> bool {
        false
    }

    fn take_pending_serror(&mut self) -> bool {
        core::mem::take(&mut self.serror_pending)
    }

    fn isolate_branch_predictor(&mut self) {
        self.events.push(Event::IsolateBranchPredictor);
    }

    fn load_stage2(&mut self, vttbr: u64, _cntvoff: u64, vmpidr: u64) {
        self.events.push(Event::LoadStage2 { vttbr });
        self.switches.push((self.now, vttbr));
        self.vttbr = vttbr;
        self.vmpidr = vmpidr;
    }

    fn save_context(&mut self, ctx: &mut VcpuContext) {
        self.events.push(Event::SaveContext);
        let gicv = ctx.gicv;
        *ctx = self.context;
        ctx.gicv = gicv;
        self.context.timer = TimerRegs::default();
        self.pending.retain(|&i| i != VTIMER);
    }

    fn load_context(&mut self, ctx: &VcpuContext) {
        self.events.push(Event::LoadContext {
            sctlr: ctx.el1.sctlr,
        });
        self.context = *ctx;
        self.vbar_el1 = ctx.el1.vbar;
    }

    fn mask_vtimer(&mut self) -> TimerRegs {
        self.context.timer.ctl |= 0b10;
        self.pending.retain(|&i| i != VTIMER);
        self.context.timer
    }

    fn loaded_vtimer(&self) -> TimerRegs {
        self.context.timer
    }

    fn set_tick_timer(&mut self, cval: Option<u64>) {
        self.tick_timer = cval;
        self.tick_writes.push((self.now, cval));
        self.pending.retain(|&i| i != TICK);
        self.raise_due_timers();
    }

    fn set_hyp_timer(&mut self, cval: Option<u64>) {
        self.hyp_timer = cval;
        self.pending.retain(|&i| i != HYP_TIMER);
        self.raise_due_timers();
    }

    fn inject_sync(&mut self, regs: &mut GuestRegs, e: &El1Exception) {
        self.events.push(Event::InjectSync { esr: e.esr });
        let (elr, spsr) = take_exception(regs, self.context.el1.vbar, self.context.el1.sctlr);
        self.context.el1.elr = elr;
        self.context.el1.spsr = spsr;
        self.context.el1.esr = e.esr;
        if let Some(far) = e.far {
            self.context.el1.far = far;
        }
    }

    fn id_register(&self, _crm: u8, _op2: u8) -> u64 {
        0
    }

    fn wait_for_interrupt(&mut self) {
        self.acks_in_a_row = 0;
        self.events.push(Event::Wfi);
        let vtimer = Some(self.context.timer)
            .filter(|t| t.armed())
            .map(|t| t.cval);
        if self.pending.is_empty()
            && self.sleeps_to_timer
            && let Some(c) = [self.hyp_timer, vtimer].into_iter().flatten().min()
            && c > self.now
        {
            // Sleep until the EL2 timer or the loaded virtual timer (the only
            // wake-ups a lone fake CPU has).
            self.now = c;
        }
        self.raise_due_timers();
    }

    fn power_off(&mut self) {
        self.events.push(Event::PowerOff);
        self.powered_off = true;
    }
}

impl<L: LrFormat> Gic for FakeCpu<L> {
    type Lr = L;

    fn ack(&mut self) -> Option<u32> {
        self.acks_in_a_row += 1;
        assert!(
            self.acks_in_a_row < 1000,
            "interrupt storm at EL2: {:?} still pending",
            self.pending
        );
        // The UART comes last (its priority is the lowest).
        let first = self
            .pending
            .iter()
            .position(|&i| Some(i) != self.uart_line)
            .unwrap_or(0);
        self.pending.remove(first)
    }

    fn end(&mut self, intid: u32) {
        self.events.push(Event::End { intid });
        // The timers' lines are level-sensitive: still due, still pending.
        self.raise_due_timers();
        // So is the UART's, while output waits and transmission is not paused.
        if Some(intid) == self.uart_line && !self.console_ring.is_empty() && !self.output_paused {
            self.pending.push_back(intid);
        }
    }

    fn priority_drop(&mut self, intid: u32) {
        self.events.push(Event::PriorityDrop { intid });
    }

    fn send_sgi(&mut self, sgi: u8, mpidr: u64) {
        self.events.push(Event::Sgi { sgi, mpidr });
    }

    fn enable_spi(&mut self, intid: u32, mpidr: u64, _edge: bool) {
        self.events.push(Event::EnableSpi { intid, mpidr });
    }

    fn disable_spi(&mut self, intid: u32) {
        self.events.push(Event::DisableSpi { intid });
    }

    fn deactivate_spi(&mut self, intid: u32) {
        self.events.push(Event::DeactivateSpi { intid });
    }

    fn lr_count(&self) -> usize {
        self.lrs.len()
    }

    fn write_lrs(&mut self, lrs: &[u64]) {
        self.lrs[..lrs.len()].copy_from_slice(lrs);
    }

    fn write_lr(&mut self, n: usize, value: u64) {
        self.lrs[n] = value;
    }

    fn read_lrs(&mut self, lrs: &mut [u64]) {
        let n = lrs.len();
        lrs.copy_from_slice(&self.lrs[..n]);
    }

    fn set_virtual_interface(&mut self, underflow: bool) {
        self.interface_enabled = true;
        self.underflow = underflow;
    }

    fn save_interface(&mut self) -> VgicCpuRegs {
        self.interface
    }

    fn load_interface(&mut self, regs: &VgicCpuRegs) {
        self.interface = *regs;
    }
}

impl<L> Ram for FakeCpu<L> {
    fn clear(&mut self, pa: u64, len: u64) {
        self.events.push(Event::Clear { pa, len });
    }

    fn copy_in(&mut self, pa: u64, bytes: &[u8]) {
        self.events.push(Event::CopyIn {
            pa,
            len: bytes.len() as u64,
        });
    }

    fn sync_icache(&mut self, _pa: u64, _len: u64) {}

    fn clean_to_poc(&mut self, pa: u64, len: u64) {
        self.events.push(Event::CleanToPoc { pa, len });
    }

    fn flush_vm_tlb(&mut self, vttbr: u64) {
        self.events.push(Event::FlushTlb { vttbr });
    }
}

/// Bytes the fake UART takes per interrupt (a PL011 FIFO).
pub const UART_FIFO: usize = 32;

impl<L> FakeCpu<L> {
    /// The UART sends up to `n` bytes of the console ring (to `console_out`).
    pub fn uart_sends(&mut self, n: usize) {
        let bytes: Vec<u8> = (0..n).map_while(|_| self.console_ring.pop()).collect();
        self.console_out.push_str(&String::from_utf8_lossy(&bytes));
    }
}

impl<L> Console for FakeCpu<L> {
    fn print(&mut self, args: core::fmt::Arguments<'_>) {
        let text = alloc::format!("{args}");
        self.console_ring.push(TANDEM, text.as_bytes());
        if !self.console_stalled {
            self.uart_sends(usize::MAX);
        }
    }

    fn with_terminal<R>(
        &mut self,
        owner: Owner,
        vms: usize,
        f: impl FnOnce(&mut Terminal, &mut dyn FnMut(&[u8]), usize) -> R,
    ) -> R {
        let mut term = core::mem::take(&mut self.terminal);
        let ring = &mut self.console_ring;
        ring.set_writers(vms);
        let room = self.console_room.min(ring.room(owner));
        let r = f(
            &mut term,
            &mut |b| {
                ring.push(owner, b);
            },
            room,
        );
        self.terminal = term;
        if !self.console_stalled {
            self.uart_sends(usize::MAX);
        }
        r
    }

    fn read_byte(&mut self) -> Option<u8> {
        self.console_in.pop_front()
    }

    fn pump(&mut self) -> bool {
        self.uart_sends(UART_FIFO);
        self.output_paused = !self.console_ring.is_empty();
        self.output_paused
    }

    fn resume_output(&mut self) {
        self.output_paused = false;
        if let Some(uart) = self.uart_line.filter(|_| !self.console_ring.is_empty())
            && !self.pending.contains(&uart)
        {
            self.pending.push_back(uart);
        }
    }
}
