//! The `rtos` binary: boots the RTOS on CPU 0, starts CPU 1, and runs the modem workload (or,
//! with `--features selftest`, the in-guest tests).
//!
//! Boot (CPU 0, from guest-rt's `entry.S` with the MMU off): MMU on, vectors, counter frequency, then
//! discovery — `pv_abi::guest::is_tandem()` selects the pv console or the PL011 — GIC and
//! timer setup, PSCI CPU_ON of CPU 1, the tasks, and the scheduler.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", not(feature = "selftest")))]
mod backends;
#[cfg(all(target_os = "none", not(feature = "selftest")))]
mod modem;
#[cfg(all(target_os = "none", feature = "selftest"))]
mod selftest;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "rtos: this binary runs only on aarch64-unknown-none (try `cargo xtask run --native rtos`)"
    );
}

#[cfg(target_os = "none")]
mod boot {
    use aarch64_cpu::registers::{VBAR_EL1, Writeable};
    use rtos_guest::arch::console::{self, Backend};
    use rtos_guest::arch::{cpu, gic, kernel, mmu, smp, timer};
    use rtos_guest::board::{SGI_PONG, TIMER_VIRT_INTID};
    use rtos_guest::gic::{Mpidr, PRIO_OTHER, PRIO_TIMER};
    use rtos_guest::println;

    /// Brings CPU 1 up if the machine has one; returns whether it was started.
    fn start_cpu1(tandem: bool) -> bool {
        if tandem {
            match pv_abi::guest::vm_info() {
                Ok(info) if info.vcpu_count >= 2 => {}
                Ok(info) => {
                    println!(
                        "rtos-guest: {} vCPU(s): running on cpu0 only",
                        info.vcpu_count
                    );
                    return false;
                }
                Err(e) => {
                    println!("rtos-guest: VM_INFO failed ({e}): running on cpu0 only");
                    return false;
                }
            }
        }
        // CPU 1 is CPU 0's sibling: same cluster, Aff0 = 1.
        let me = cpu::mpidr().0;
        let target = Mpidr((me & !0xFF) | 1);
        match smp::start_cpu1(target) {
            Ok(()) => true,
            Err(e) => {
                println!("rtos-guest: PSCI CPU_ON(cpu1) failed: {e}: running on cpu0 only");
                false
            }
        }
    }

    /// CPU 0's Rust entry (from guest-rt's `_start`, on its own stack, MMU off, x0 = DTB,
    /// read for the GIC and the modem's virtio back-ends).
    #[unsafe(no_mangle)]
    extern "C" fn guest_main(dtb: u64) -> ! {
        mmu::enable();
        VBAR_EL1.set(smp::vectors());
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        cpu::init_clock();
        let tandem = pv_abi::guest::is_tandem();
        console::init(if tandem {
            Backend::Tandem
        } else {
            Backend::Pl011
        });
        println!(
            "rtos-guest: v{} on {} (EL1, counter {} Hz{})",
            env!("CARGO_PKG_VERSION"),
            if tandem { "tandem" } else { "native" },
            cpu::clock().hz(),
            if cfg!(feature = "selftest") {
                ", self-test"
            } else {
                ""
            }
        );
        if tandem {
            println!("rtos-guest: Tandem ABI {}", pv_abi::guest::abi_version());
        }
        timer::init();
        match gic::discover(dtb) {
            Some(rtos_guest::dt::Gic::V2 { dist, cpu }) => {
                println!("rtos-guest: GICv2 (GICD {dist:#x}, GICC {cpu:#x})")
            }
            Some(rtos_guest::dt::Gic::V3 { dist, redist }) => {
                println!("rtos-guest: GICv3 (GICD {dist:#x}, GICR {redist:#x})")
            }
            None => {
                println!("rtos-guest: no GIC in the device tree: GICv3 at the board's addresses")
            }
        }
        gic::init_distributor();
        if let Err(e) = gic::init_cpu(&[(TIMER_VIRT_INTID, PRIO_TIMER), (SGI_PONG, PRIO_OTHER)]) {
            panic!("GIC setup failed on cpu0: {e:?}");
        }
        match kernel::Mutex::new() {
            Ok(m) => console::use_task_mutex(&m),
            Err(e) => panic!("console mutex: {e:?}"),
        }
        let cpu1 = start_cpu1(tandem);
        #[cfg(feature = "selftest")]
        crate::selftest::spawn(cpu1);
        #[cfg(not(feature = "selftest"))]
        {
            let _ = cpu1;
            crate::modem::spawn(rtos_guest::arch::dtb::console_intid(dtb));
            crate::backends::spawn(dtb);
        }
        kernel::start()
    }
}
