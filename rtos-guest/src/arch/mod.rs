//! Everything that executes privileged instructions or touches MMIO (bare-metal target only).
//!
//! - `guest_rt` (the shared guest runtime, its `entry.S` and `guest.ld`): Image header, boot of
//!   CPU 0 and CPU 1 on their stacks, exception vectors, frame save/restore.
//! - [`frame`]: a task's first frame, in guest-rt's [`guest_rt::Frame`] layout.
//! - [`cpu`]: system-register accessors, the counter, IRQ masking, [`cpu::IrqLock`].
//! - [`mmu`]: turns on the EL1 identity map of [`crate::mmu`].
//! - [`gic`]: GICv3 distributor/redistributor setup and the `ICC_*` CPU interface.
//! - [`timer`]: the tickless EL1 virtual timer and its interrupt-latency histogram.
//! - [`console`]: the console (PL011 natively, pv-abi on Tandem) and `println!`.
//! - [`kernel`]: the exception handler, context switch, and the task-facing RTOS API.
//! - [`smp`]: PSCI CPU_ON of CPU 1 and the SGI ping-pong between the CPUs.
//! - [`fault`]: fault reports and the panic handler.
//! - [`dtb`]: the boot device tree, bounds-checked.
//! - [`channel`]: shared pools and doorbells of inter-VM channels.

pub mod channel;
pub mod console;
pub mod cpu;
pub mod dtb;
pub mod fault;
pub mod frame;
pub mod gic;
pub mod kernel;
pub mod mmu;
pub mod smp;
pub mod timer;
