//! The virtio back-ends the modem serves to Linux, one task each, below the modem's
//! priorities: virtio-net (the modem's IP address) and virtio-console (the AT port).
//!
//! A back-end exists only if the device tree has its `tandem,virtio-backend` node. Its task
//! sleeps on the channel's doorbell; when woken it runs a [`service::round`]: it collects the
//! work with `VIRTIO_POLL` (forwarded register accesses, each answered with `VIRTIO_REPLY`,
//! and the queues Linux notified), serves the queues, and raises Linux's interrupt with
//! `VIRTIO_INTERRUPT`.

use core::fmt::Write;

use pv_abi::guest;
use pv_abi::virtio::MmioAccess;
use rtos_guest::arch::channel::{Doorbell, SharedPool};
use rtos_guest::arch::cpu::{self, IrqLock};
use rtos_guest::arch::{dtb, gic, kernel};
use rtos_guest::dt::{Backends, MAX_BACKENDS, VirtioBackend};
use rtos_guest::fmt::LineBuf;
use rtos_guest::gic::PRIO_OTHER;
use rtos_guest::println;
use rtos_guest::virtio::console::{self, Console, ConsoleCounters};
use rtos_guest::virtio::mmio::Transport;
use rtos_guest::virtio::net::{self, Net, NetReport};
use rtos_guest::virtio::pool::Pool;
use rtos_guest::virtio::service::{self, Access, CallFailed, Calls, Poll};
use rtos_guest::virtio::{self, Device};

use crate::modem::Handset;

/// The modem's Ethernet address (locally administered, QEMU's OUI as Linux's own NICs use).
pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x77, 0x00, 0x01];
/// The modem's IPv4 address (link-local; Linux is 169.254.77.2/24).
pub const IP: [u8; 4] = [169, 254, 77, 1];
/// Priority of the back-end tasks: below the modem's periodic tasks and the console AT task.
const PRIO: u8 = 1;

static FOUND: IrqLock<Backends> = IrqLock::new(Backends::EMPTY);

/// What a back-end's statistics line says, with its channel and the channel calls Tandem
/// refused (nothing to retry, but worth seeing).
#[derive(Clone, Copy)]
enum Report {
    Net {
        channel: u32,
        report: NetReport,
        failed_calls: u64,
    },
    At {
        channel: u32,
        port: ConsoleCounters,
        faults: u64,
        failed_calls: u64,
    },
}

/// Each back-end's latest report, by its index in [`FOUND`].
static REPORTS: IrqLock<[Option<Report>; MAX_BACKENDS]> = IrqLock::new([None; MAX_BACKENDS]);

fn publish(index: usize, report: Report) {
    REPORTS.with(|r| r[index] = Some(report));
}

/// Finds the back-ends in the device tree at `dtb`, enables their doorbells and creates their
/// tasks. Without back-end nodes (natively, or a VM set without channels) it does nothing.
pub fn spawn(dtb: u64) {
    let found = dtb::virtio_backends(dtb);
    FOUND.with(|f| *f = found);
    for (index, b) in found.iter().enumerate() {
        let entry: fn(usize) = match b.device_id {
            net::DEVICE_ID => net_task,
            console::DEVICE_ID => at_task,
            other => {
                println!(
                    "rtos-guest: virtio device {other} on channel {}: not served",
                    b.channel
                );
                continue;
            }
        };
        if SharedPool::new(b.pool_base, b.pool_size).is_none() {
            println!(
                "rtos-guest: channel {}: pool {:#x}+{:#x} outside the channel window",
                b.channel, b.pool_base, b.pool_size
            );
            continue;
        }
        gic::enable_spi(b.intid, PRIO_OTHER, cpu::mpidr());
        let name = if b.device_id == net::DEVICE_ID {
            "vnet"
        } else {
            "vat"
        };
        kernel::spawn(name, PRIO, entry, index).expect("room for the back-end tasks");
        println!(
            "rtos-guest: virtio {} back-end on channel {} (pool {:#x}+{:#x}, INTID {})",
            if b.device_id == net::DEVICE_ID {
                "net"
            } else {
                "console (AT)"
            },
            b.channel,
            b.pool_base,
            b.pool_size,
            b.intid
        );
    }
}

fn backend(index: usize) -> VirtioBackend {
    FOUND
        .with(|f| f.iter().nth(index).copied())
        .expect("spawned with a found back-end")
}

fn transport<D: Device>(b: &VirtioBackend, device: D) -> Transport<D, SharedPool> {
    let shared = SharedPool::new(b.pool_base, b.pool_size).expect("checked at spawn");
    Transport::new(device, Pool::new(b.pool_base, b.pool_size, shared))
}

fn net_task(index: usize) {
    let b = backend(index);
    let mut t = transport(&b, Net::new(MAC, IP));
    serve(&b, &mut t, |t, failed_calls| {
        let report = NetReport {
            ip: t.device().counters(),
            no_rx_buffer: t.device().no_rx_buffer(),
            faults: t.faults().0,
        };
        publish(
            index,
            Report::Net {
                channel: b.channel,
                report,
                failed_calls,
            },
        );
    });
}

fn at_task(index: usize) {
    let b = backend(index);
    let mut t = transport(&b, Console::new(Handset));
    serve(&b, &mut t, |t, failed_calls| {
        let report = Report::At {
            channel: b.channel,
            port: t.device().counters(),
            faults: t.faults().0,
            failed_calls,
        };
        publish(index, report);
    });
}

/// Tandem's channel calls, for the channel in `.0`.
struct Tandem(u32);

impl Calls for Tandem {
    type Token = MmioAccess;

    fn poll(&mut self) -> Result<Poll<MmioAccess>, CallFailed> {
        let p = guest::virtio_poll(self.0).map_err(|_| CallFailed)?;
        Ok(Poll {
            queues: p.queues,
            access: p.access.map(|(a, value)| {
                let access = Access {
                    write: a.write,
                    size: a.size,
                    offset: a.offset,
                    value,
                };
                (a, access)
            }),
        })
    }

    fn reply(&mut self, token: MmioAccess, value: u64) -> Result<(), CallFailed> {
        guest::virtio_reply(self.0, token, value).map_err(|_| CallFailed)
    }

    fn interrupt(&mut self, bits: u32) -> Result<(), CallFailed> {
        guest::virtio_interrupt(self.0, bits).map_err(|_| CallFailed)
    }
}

/// The back-end loop: run a round, publish the counters, wait for the doorbell. The first
/// round comes before the first wait: a front-end that started first may have rung before
/// this task was there to take the interrupt, and its access waits to be answered.
fn serve<D: Device>(
    b: &VirtioBackend,
    t: &mut Transport<D, SharedPool>,
    publish: impl Fn(&Transport<D, SharedPool>, u64),
) -> ! {
    let doorbell = Doorbell::new(b.intid).expect("room for the doorbells");
    let mut tandem = Tandem(b.channel);
    let mut failed_calls = 0u64;
    publish(t, failed_calls);
    loop {
        loop {
            let r = service::round(t, &mut tandem);
            failed_calls += r.failed_calls;
            publish(t, failed_calls);
            if !r.more {
                break;
            }
            // Accesses still waiting: let the other back-end have a turn first.
            kernel::yield_now();
        }
        doorbell.wait();
    }
}

/// Writes the back-ends' statistics lines (`rtos-net:`, `rtos-at:`), each between `before`
/// and `after`; nothing without back-ends.
pub fn write_lines(w: &mut dyn Write, before: &str, after: &str) -> core::fmt::Result {
    let reports = REPORTS.with(|r| *r);
    for report in reports.iter().flatten() {
        let mut line = LineBuf::<256>::new();
        let failed_calls = match *report {
            Report::Net {
                channel,
                report,
                failed_calls,
            } => {
                report.write_line(channel, &mut line)?;
                failed_calls
            }
            Report::At {
                channel,
                port,
                faults,
                failed_calls,
            } => {
                port.write_line(channel, faults, &mut line)?;
                failed_calls
            }
        };
        if failed_calls != 0 {
            write!(line, " call_errors={failed_calls}")?;
        }
        write!(w, "{before}{}{after}", line.as_str())?;
    }
    Ok(())
}

const _: () = assert!(virtio::QUEUES == 2);
