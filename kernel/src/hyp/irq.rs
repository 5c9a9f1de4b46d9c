//! Physical interrupts taken at EL2: Tandem's timers and kicks, the
//! maintenance interrupt, the UART, and SPIs that belong to VMs.
#![forbid(unsafe_code)]

use log::debug;

use super::pcpu::Pcpu;
use super::{
    Hypervisor, INTID_HYP_TIMER, INTID_MAINTENANCE, INTID_TICK, INTID_VTIMER, KICK_SGI, console,
    passthrough, uart,
};
use crate::arch::Hw;

/// Acknowledges and handles every pending physical interrupt on this CPU.
pub fn handle(p: &mut Pcpu, hv: &Hypervisor, hw: &mut impl Hw) {
    while let Some(intid) = hw.ack() {
        match intid {
            INTID_VTIMER => p.vtimer_fired(hv, hw),
            INTID_HYP_TIMER => p.hyp_timer_fired(hv, hw),
            INTID_TICK => p.tick_fired(hv, hw),
            INTID_MAINTENANCE => p.maintenance(hv, hw),
            // The request itself is the sender's attention flag, read before every entry.
            i if i == u32::from(KICK_SGI) => {}
            i if i == hv.uart_intid && i != 0 => {
                console::input(hv, hw);
                if hw.pump() {
                    p.pace_console(hv, hw);
                }
                uart::drain_backlogs(hv, hw);
            }
            // Forwarded to its VM, or disabled: passthrough ends the interrupt itself.
            i @ 32..=1019 => {
                passthrough::handle_spi(hv, i, hw);
                continue;
            }
            i if i < 16 => {}
            other => debug!("unexpected physical interrupt {other} on cpu{}", hw.index()),
        }
        hw.end(intid);
    }
}
