//! The second CPU: PSCI CPU_ON, its own GIC setup, and an SGI ping-pong with CPU 0.
//!
//! CPU 1 does not run a scheduler: it enables its MMU and redistributor, reports itself online
//! and then sleeps in WFI, answering every `SGI_PING` from CPU 0 with an `SGI_PONG`. CPU 0
//! measures the round trip (send → its own handler entry). Under Tandem this exercises vCPU
//! start-up and the virtual GIC's SGI path.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::registers::{VBAR_EL1, Writeable};

use super::cpu;
use super::{gic, mmu};
use crate::board::{SGI_PING, SGI_PONG};
use crate::gic::{Mpidr, PRIO_OTHER};
use crate::time::Ticks;

static CPU0: AtomicU64 = AtomicU64::new(0);
static CPU1: AtomicU64 = AtomicU64::new(u64::MAX);
static ONLINE: AtomicBool = AtomicBool::new(false);
static PINGS: AtomicU64 = AtomicU64::new(0);
static PONGS: AtomicU64 = AtomicU64::new(0);
static SENT_AT: AtomicU64 = AtomicU64::new(0);
static LAST_RTT: AtomicU64 = AtomicU64::new(0);

/// The vector table address for VBAR_EL1 (guest-rt's).
pub fn vectors() -> u64 {
    guest_rt::vectors()
}

/// Starts CPU 1 (affinity `target`) with PSCI CPU_ON.
pub fn start_cpu1(target: Mpidr) -> Result<(), pv_abi::psci::Error> {
    CPU0.store(cpu::mpidr().0, Ordering::Relaxed);
    CPU1.store(target.0, Ordering::Release);
    pv_abi::guest::cpu_on(
        pv_abi::psci::Mpidr::from_reg(target.0),
        // The MMU maps RAM 1:1, so the address is the IPA CPU 1 starts at (MMU off).
        pv_abi::psci::EntryPoint::new(guest_rt::secondary_entry()),
        1,
    )
}

/// Whether CPU 1 has reported itself online.
pub fn online() -> bool {
    ONLINE.load(Ordering::Acquire)
}

/// Sends a ping to CPU 1 (from CPU 0), stamping the send time.
pub fn ping() {
    let target = CPU1.load(Ordering::Acquire);
    if target == u64::MAX || !online() {
        return;
    }
    SENT_AT.store(cpu::now().0, Ordering::Relaxed);
    gic::send_sgi(SGI_PING, Mpidr(target));
}

/// CPU 1's ping handler: answer with a pong.
pub fn on_ping() {
    PINGS.fetch_add(1, Ordering::Relaxed);
    gic::send_sgi(SGI_PONG, Mpidr(CPU0.load(Ordering::Relaxed)));
}

/// CPU 0's pong handler: record the round trip.
pub fn on_pong(entry: Ticks) {
    let rtt = entry.since(Ticks(SENT_AT.load(Ordering::Relaxed)));
    LAST_RTT.store(cpu::clock().to_ns(rtt), Ordering::Relaxed);
    PONGS.fetch_add(1, Ordering::Release);
}

/// `(round trips completed, last round trip in ns)`.
pub fn roundtrips() -> (u64, u64) {
    (
        PONGS.load(Ordering::Acquire),
        LAST_RTT.load(Ordering::Relaxed),
    )
}

/// Pings CPU 1 received.
pub fn pings_received() -> u64 {
    PINGS.load(Ordering::Relaxed)
}

/// CPU 1's Rust entry (from guest-rt's `guest_secondary_entry`, on its own stack, MMU off;
/// `index` is the CPU_ON context id, 1).
#[unsafe(no_mangle)]
extern "C" fn guest_secondary_main(index: u64) -> ! {
    if index != 1 {
        // Only CPU 1 is ever started (and has a role).
        loop {
            cpu::wfi();
        }
    }
    mmu::enable();
    VBAR_EL1.set(vectors());
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    if let Err(e) = gic::init_cpu(&[(SGI_PING, PRIO_OTHER)]) {
        crate::println!("rtos-guest: cpu{index} GIC setup failed: {e:?}");
        loop {
            cpu::wfi();
        }
    }
    crate::println!(
        "rtos-guest: cpu{index} online (mpidr={:#x})",
        cpu::mpidr().0
    );
    ONLINE.store(true, Ordering::Release);
    cpu::irq_restore(0);
    let mut reported = false;
    loop {
        cpu::wfi();
        if !reported && PINGS.load(Ordering::Relaxed) > 0 {
            reported = true;
            crate::println!(
                "rtos-guest: cpu{index} got SGI {SGI_PING} from cpu0, answered SGI {SGI_PONG}"
            );
        }
    }
}
