//! The architecture seam: the small set of operations the hypervisor core
//! needs from the hardware, as traits passed *by value or reference*, never
//! reached through globals.
//!
//! - [`Cpu`]: the world switch, per-vCPU state in the CPU, timers, idling.
//! - [`Gic`]: the physical interrupt controller (acknowledge, end, SGIs,
//!   distributor routing) and the virtual CPU interface Tandem drives for the
//!   loaded vCPU (list registers, VMCR and APRs, the maintenance control).
//!   Nothing outside a `Gic` implementation names an `ICH_`/`ICC_` register.
//! - [`Ram`]: clearing and loading guest RAM, TLB maintenance.
//! - [`Console`]: Tandem's UART as the core sees it.
//!
//! [`Hw`] bundles them. `aarch64` implements them with privileged
//! instructions (bare-metal target only); [`fake`] implements them on the
//! host with recorded state, so the run loop, exit handling, interrupt
//! dispatch, power and reset logic run under `cargo test`.

use crate::vcpu::exit::ExitSnapshot;
use crate::vcpu::inject::El1Exception;
use crate::vcpu::regs::{GuestRegs, TimerRegs, VcpuContext, VgicCpuRegs};
use crate::vgic::lr::LrFormat;
use crate::vm::console::Terminal;
use crate::vm::txring::Owner;
#[cfg(doc)]
use crate::vm::txring::TxRing;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod aarch64;
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
pub mod fake;

/// The CPU that runs vCPUs: world switch, vCPU state, timers.
pub trait Cpu {
    /// This CPU's logical index (0 = boot CPU).
    fn index(&self) -> usize;
    /// The physical generic counter, in ticks.
    fn now(&self) -> u64;
    /// Enters the loaded vCPU with `regs`; returns when it traps back, with
    /// `regs` holding its state at the exit. An SError the guest leaves
    /// pending stays pending (Tandem masks SErrors at EL2): entering it
    /// again takes it there, as its own; before another VM is entered,
    /// [`Cpu::take_pending_serror`] must take it.
    fn enter_guest(&mut self, regs: &mut GuestRegs) -> ExitSnapshot;
    /// Whether the loop may re-enter the guest right after an exit it
    /// handled, without going back to the scheduler. Hardware always may; the
    /// fake says no, so host tests advance one exit per step.
    fn reenter(&self) -> bool {
        true
    }
    /// Makes a VM's stage 2 (`vttbr`: root | VMID << 48), counter offset and
    /// the vCPU's MPIDR current.
    fn load_stage2(&mut self, vttbr: u64, cntvoff: u64, vmpidr: u64);
    /// Waits for the memory accesses of the guest that ran last (DSB SY) and
    /// takes an SError it left pending (ISR_EL1.A), so that it is blamed on
    /// that guest; true if there was one.
    fn take_pending_serror(&mut self) -> bool;
    /// Called when a vCPU of another VM is about to run on this CPU: keeps the
    /// VM that ran before from steering its branch prediction, where the CPU
    /// needs Tandem to (see [`crate::vcpu::sysreg::needs_bp_hardening`]).
    fn isolate_branch_predictor(&mut self);
    /// Saves the state that stays in the CPU across exits (EL1 registers,
    /// FP/SIMD, virtual timer) into `ctx`, and silences the virtual timer.
    /// The GIC part (`ctx.gicv`) is the [`Gic`]'s.
    fn save_context(&mut self, ctx: &mut VcpuContext);
    /// Loads that state from `ctx` (not `ctx.gicv`).
    fn load_context(&mut self, ctx: &VcpuContext);
    /// Masks the loaded vCPU's virtual timer output after its interrupt
    /// fired; returns the timer as it now is.
    fn mask_vtimer(&mut self) -> TimerRegs;
    /// The loaded vCPU's virtual timer, as the hardware holds it.
    fn loaded_vtimer(&self) -> TimerRegs;
    /// Arms the EL2 timer for counter value `cval`, or disarms it.
    fn set_hyp_timer(&mut self, cval: Option<u64>);
    /// Arms the emulator tick's timer ([`crate::hyp::INTID_TICK`]) for
    /// counter value `cval`, or disarms it.
    fn set_tick_timer(&mut self, cval: Option<u64>);
    /// Makes the loaded vCPU take `e` at EL1 before its next instruction.
    fn inject_sync(&mut self, regs: &mut GuestRegs, e: &El1Exception);
    /// ID register (op0 3, op1 0, CRn 0, `crm`, `op2`) as the CPU reports it.
    fn id_register(&self, crm: u8, op2: u8) -> u64;
    /// Sleeps until an interrupt is pending (interrupts stay masked at EL2).
    fn wait_for_interrupt(&mut self);
    /// Powers the machine off (returns only on a fake).
    fn power_off(&mut self);
}

/// The physical GIC and the virtual CPU interface of the loaded vCPU.
pub trait Gic {
    /// The list-register encoding of this GIC generation.
    type Lr: LrFormat;
    /// Acknowledges the highest-priority pending interrupt; `None` if none.
    fn ack(&mut self) -> Option<u32>;
    /// Ends `intid`: priority drop and deactivation.
    fn end(&mut self, intid: u32);
    /// Drops the running priority only: `intid` stays active until something
    /// deactivates it (a hardware-linked virtual interrupt, or [`Gic::deactivate_spi`]).
    fn priority_drop(&mut self, intid: u32);
    /// Sends SGI `sgi` to the physical CPU with affinity `mpidr`.
    fn send_sgi(&mut self, sgi: u8, mpidr: u64);
    /// Routes SPI `intid` to the CPU with affinity `mpidr` and enables it.
    fn enable_spi(&mut self, intid: u32, mpidr: u64, edge: bool);
    /// Disables SPI `intid`.
    fn disable_spi(&mut self, intid: u32);
    /// Deactivates SPI `intid` at the distributor.
    fn deactivate_spi(&mut self, intid: u32);
    /// Number of list registers.
    fn lr_count(&self) -> usize;
    /// Writes `lrs` into LR 0..`lrs.len()`.
    fn write_lrs(&mut self, lrs: &[u64]);
    /// Writes `value` into LR `n`.
    fn write_lr(&mut self, n: usize, value: u64);
    /// Reads LR 0..`lrs.len()` into `lrs`, which holds the values last
    /// written to them: an implementation may skip LRs the hardware reports
    /// empty and just clear their state there (GICv2 GICH_ELRSR).
    fn read_lrs(&mut self, lrs: &mut [u64]);
    /// Enables the virtual CPU interface; `underflow` asks for a maintenance
    /// interrupt when at most one list register holds an interrupt.
    fn set_virtual_interface(&mut self, underflow: bool);
    /// Saves the virtual CPU interface's VMCR and active priorities.
    fn save_interface(&mut self) -> VgicCpuRegs;
    /// Loads them.
    fn load_interface(&mut self, regs: &VgicCpuRegs);
}

/// Guest RAM and translation maintenance.
pub trait Ram {
    /// Zeroes `len` bytes of RAM at physical `pa`.
    fn clear(&mut self, pa: u64, len: u64);
    /// Copies `bytes` to physical `pa`.
    fn copy_in(&mut self, pa: u64, bytes: &[u8]);
    /// Makes instruction fetches see what was written to `pa..pa + len`.
    fn sync_icache(&mut self, pa: u64, len: u64);
    /// Cleans and invalidates the data cache for `pa..pa + len` to the point of
    /// coherency: a vCPU running with its caches off then reads what Tandem
    /// wrote, and no line Tandem dirtied is written back later over the
    /// guest's own (uncached) writes.
    fn clean_to_poc(&mut self, pa: u64, len: u64);
    /// Invalidates every TLB entry of VMID `vttbr >> 48` on every CPU.
    fn flush_vm_tlb(&mut self, vttbr: u64);
    /// Tandem's own heap: (bytes in use, bytes in all), if it keeps one.
    fn heap_usage(&self) -> Option<(usize, usize)> {
        None
    }
}

/// Tandem's console UART.
pub trait Console {
    /// Writes Tandem's own text, on a line of its own.
    fn print(&mut self, args: core::fmt::Arguments<'_>);
    /// Gives `f` the terminal state, a byte sink for `owner`'s output and
    /// the room `owner` has in the transmit ring, shared by Tandem and
    /// `vms` VMs ([`TxRing::room`]); returns what `f` returns. Output that
    /// does not fit is dropped, never waited for.
    fn with_terminal<R>(
        &mut self,
        owner: Owner,
        vms: usize,
        f: impl FnOnce(&mut Terminal, &mut dyn FnMut(&[u8]), usize) -> R,
    ) -> R;
    /// One byte of input, if any.
    fn read_byte(&mut self) -> Option<u8>;
    /// Continues transmission (UART interrupt) by a FIFO's worth at most.
    /// `true`: output still waits, and the UART's transmit interrupt is off
    /// until [`Console::resume_output`].
    fn pump(&mut self) -> bool;
    /// Lets the UART's transmit interrupt continue a paused transmission.
    fn resume_output(&mut self);
}

/// Everything the core needs from one physical CPU.
pub trait Hw: Cpu + Gic + Ram + Console {}

impl<T: Cpu + Gic + Ram + Console> Hw for T {}
