//! Hostile guests through the real run loop: hypercall decode and dispatch,
//! and every other kind of exit (MMIO to the vGIC, the virtual PL011 and a
//! virtio window, trapped system registers, WFI/WFE, raw syndromes), on two
//! fake CPUs ([`kernel::arch::fake`]) running two VMs joined by a virtio
//! channel and a plain one.
//!
//! The input is a sequence of steps. Each names the CPU that runs, how far
//! its clock moves, an interrupt that arrives, and the exit the guest on it
//! takes next with its registers (and, first, what it did to its list
//! registers and virtual timer). Nothing a guest does may panic Tandem.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use kernel::arch::fake::{FakeCpu, GuestView};
use kernel::channel::Channel;
use kernel::hyp::Hypervisor;
use kernel::hyp::passthrough::SpiOwners;
use kernel::hyp::pcpu::{Pcpu, Vcpu};
use kernel::hyp::vm::Vm;
use kernel::vcpu::exit::{ExitSnapshot, ExitVector};
use kernel::vgic::lr::{GichLr, IchLr, LrFormat, LrState};
use kernel::vm::package::{
    self, ChannelDesc, FLAG_RESTART_ON_CRASH, FLAG_RESTART_ON_RESET, NAME_LEN, Package, VmSpec,
};

use crate::Bytes;

const CPUS: usize = 2;
const LRS: usize = 4;
const HZ: u64 = 62_500_000;
const RAM_IPA: u64 = 0x4000_0000;
const ENTRY: u64 = 0x4008_0000;
const PL011: u64 = 0x0900_0000;
const WINDOW: u64 = 0x0a00_0000;
const POOL: u64 = 0xC000_0000;
const DOORBELL: u64 = 0xC010_0000;
const GICD: u64 = 0x0800_0000;
const GICR: u64 = 0x080a_0000;

/// Function IDs worth hitting exactly: Tandem's calls, the channel range,
/// PSCI, the SMCCC discovery calls, the vendor hyp queries.
const IDS: [u32; 32] = [
    0xC600_0000,
    0xC600_0001,
    0xC600_0002,
    0xC600_0003,
    0xC600_0004,
    0xC600_0005,
    0xC600_0006,
    0xC600_0007,
    0xC600_0008,
    0xC600_0010,
    0xC600_0011,
    0xC600_0012,
    0xC600_0013,
    0xC600_0014,
    0x8400_0000, // PSCI_VERSION
    0x8400_0001, // CPU_SUSPEND (32)
    0xC400_0001, // CPU_SUSPEND
    0x8400_0002, // CPU_OFF
    0xC400_0003, // CPU_ON
    0xC400_0004, // AFFINITY_INFO
    0x8400_0006, // MIGRATE_INFO_TYPE
    0x8400_0008, // SYSTEM_OFF
    0x8400_0009, // SYSTEM_RESET
    0x8400_000A, // PSCI_FEATURES
    0xC400_0012, // SYSTEM_RESET2
    0x8000_0000, // SMCCC_VERSION
    0x8000_0001, // SMCCC_ARCH_FEATURES
    0x8000_8000, // ARCH_WORKAROUND_1
    0x8600_FF01, // vendor hyp Call UID
    0x8600_FF03, // vendor hyp Revision
    0xC500_0000, // a standard hyp service (PV time lives here)
    0xC500_0020,
];

/// The two VMs and their channels, once per process (the package outlives
/// every machine built from it).
fn package(gic: u8) -> Package<'static> {
    static V3: OnceLock<Package<'static>> = OnceLock::new();
    static V2: OnceLock<Package<'static>> = OnceLock::new();
    let cell = if gic == 2 { &V2 } else { &V3 };
    *cell.get_or_init(|| {
        let vm = |name: &str, pcpus: &[u8], flags| VmSpec {
            name: name.into(),
            ram_ipa: RAM_IPA,
            ram_size: 4 << 20,
            entry: ENTRY,
            x0: RAM_IPA,
            pcpus: pcpus.to_vec(),
            flags,
            console_intid: 33,
            blobs: vec![(vec![0xaa; 8192], ENTRY)],
            ..Default::default()
        };
        let front = vm("front", &[0, 1], FLAG_RESTART_ON_CRASH);
        let back = VmSpec {
            pl011: Some(PL011),
            ..vm("back", &[1, 0], FLAG_RESTART_ON_RESET)
        };
        let channel = |name: &[u8], virtio, ipa, intids, window| {
            let mut n = [0u8; NAME_LEN];
            n[..name.len()].copy_from_slice(name);
            ChannelDesc {
                name: n,
                vms: [0, 1],
                virtio_device: virtio,
                ipa,
                size: 0x10_0000,
                intids,
                window,
            }
        };
        let channels = [
            channel(b"net", 1, POOL, [40, 41], WINDOW),
            channel(b"bell", 0, DOORBELL, [42, 43], 0),
        ];
        let bytes = package::encode_with_channels(&[front, back], &channels, gic);
        Package::parse(Box::leak(bytes.into_boxed_slice())).expect("the fuzz machine's package")
    })
}

/// The hypervisor and its CPUs, as the target builds them at boot.
struct Machine<L: LrFormat> {
    hv: Hypervisor,
    pcpus: Vec<Pcpu>,
    hws: Vec<FakeCpu<L>>,
}

impl<L: LrFormat + 'static> Machine<L> {
    fn new(gic: u8) -> Self {
        let pkg = package(gic);
        let vms = (0..pkg.vm_count())
            .map(|i| {
                let desc = pkg.vm(i).expect("VM record");
                let id = i as u64 + 1;
                Vm::new(i, desc, pkg, id << 32, (id << 48) | (id << 12), 0)
            })
            .collect();
        let mut hv = Hypervisor::new(vms, SpiOwners::default(), HZ);
        hv.channels = (0..pkg.channel_count())
            .map(|i| {
                Channel::new(
                    pkg.channel(i).expect("channel"),
                    0x1_0000_0000 + (i as u64) * (1 << 24),
                )
            })
            .collect();
        let mut hws: Vec<FakeCpu<L>> = (0..CPUS).map(|i| FakeCpu::with_lr_format(i, LRS)).collect();
        for (i, p) in hv.pcpus.iter().enumerate().take(CPUS) {
            p.mpidr.store(i as u64, Ordering::Relaxed);
        }
        for vm in &hv.vms {
            hv.load_images(vm, &mut hws[0]);
        }
        hws[0].events.clear();
        let pcpus = (0..CPUS)
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
                Pcpu::new(c, vcpus, LRS, &hv)
            })
            .collect();
        Self { hv, pcpus, hws }
    }

    /// One step of CPU `c`, then delivery of the SGIs it sent.
    fn step(&mut self, c: usize) {
        self.pcpus[c].step(&self.hv, &mut self.hws[c]);
        for (sgi, mpidr) in self.hws[c].take_sgis() {
            if let Some(target) = self.hws.get_mut(mpidr as usize)
                && !target.pending.contains(&u32::from(sgi))
            {
                target.pending.push_back(u32::from(sgi));
            }
        }
        // Console output the fake UART holds would only grow.
        self.hws[c].console_out.clear();
        self.hws[c].events.clear();
    }
}

/// What the guest on a CPU does before its next exit, and that exit.
#[derive(Clone, Copy, Default)]
struct GuestMove {
    /// x0..x7.
    args: [u64; 8],
    /// x8..x30 entry written with `value` (the MMIO transfer register).
    reg: u8,
    value: u64,
    /// Per list register: 0 leave, 1 acknowledge, 2 complete.
    lr_actions: [u8; LRS],
    /// Set the virtual timer (CNTV_CTL, CNTV_CVAL relative to now).
    timer: Option<(u64, u64)>,
    /// Leave an SError pending.
    serror: bool,
    exit: Option<ExitSnapshot>,
}

/// A data abort with a valid syndrome at `ipa`.
fn mmio_exit(ipa: u64, size_log2: u8, reg: u8, write: bool, sign: bool, sf: bool) -> ExitSnapshot {
    let esr = (0x24 << 26)
        | (1 << 25)
        | (1 << 24)
        | (u64::from(size_log2 & 3) << 22)
        | (u64::from(sign) << 21)
        | (u64::from(reg & 31) << 16)
        | (u64::from(sf) << 15)
        | (u64::from(write) << 6)
        | 0x06;
    ExitSnapshot {
        vector: ExitVector::Sync,
        esr,
        far: ipa,
        hpfar: (ipa >> 12) << 4,
    }
}

fn sync_exit(esr: u64) -> ExitSnapshot {
    ExitSnapshot {
        vector: ExitVector::Sync,
        esr,
        far: 0,
        hpfar: 0,
    }
}

/// An IPA a guest is likely to touch: its vGIC, its UART, the virtio
/// window, a channel, its RAM, or anywhere.
fn ipa(b: &mut Bytes) -> u64 {
    let off = u64::from(b.u32());
    match b.below(8) {
        0 => GICD + off % 0x1_0000,
        1 => GICR + off % (0x2_0000 * 3),
        2 => PL011 + off % 0x1000,
        3 => WINDOW + off % 0x200,
        4 => POOL + off % 0x10_0000,
        5 => RAM_IPA + off % (8 << 20),
        _ => b.u64() & 0xffff_ffff_ffff,
    }
}

fn decode_move(b: &mut Bytes) -> GuestMove {
    let mut m = GuestMove::default();
    let kind = b.below(10);
    if b.below(4) == 0 {
        for a in &mut m.lr_actions {
            *a = b.below(3);
        }
    }
    if b.below(8) == 0 {
        m.timer = Some((b.u64() & 0b111, u64::from(b.u16())));
    }
    m.serror = b.below(64) == 0;
    m.exit = Some(match kind {
        // HVC or SMC with a known or raw function ID.
        0..=3 => {
            let id = b.u8();
            m.args[0] = match IDS.get(usize::from(id)) {
                Some(&fid) => u64::from(fid),
                None => b.word(),
            };
            for x in &mut m.args[1..] {
                *x = b.word();
            }
            if kind == 3 {
                sync_exit((0x17 << 26) | (1 << 25) | u64::from(b.u16()))
            } else {
                sync_exit((0x16 << 26) | (1 << 25) | if kind == 2 { u64::from(b.u16()) } else { 0 })
            }
        }
        // MMIO load or store.
        4..=6 => {
            let at = ipa(b);
            let flags = b.u8();
            m.reg = b.u8() % 31;
            m.value = b.word();
            mmio_exit(
                at,
                flags & 3,
                m.reg,
                flags & 4 != 0,
                flags & 8 != 0,
                flags & 16 != 0,
            )
        }
        // A trapped system register: mostly ICC_SGI1R_EL1/ICC_SGI0R_EL1, else any.
        7 => {
            m.reg = b.u8() % 31;
            m.value = b.word();
            let iss = match b.below(3) {
                0 => (3 << 20) | (5 << 17) | (12 << 10) | (11 << 1),
                1 => (3 << 20) | (7 << 17) | (12 << 10) | (11 << 1),
                _ => u64::from(b.u32()) & 0x1ff_ffff & !(31 << 5),
            };
            sync_exit((0x18 << 26) | (1 << 25) | iss | (u64::from(m.reg) << 5))
        }
        // WFI or WFE.
        8 => sync_exit((0x01 << 26) | (1 << 25) | u64::from(b.below(4))),
        // Any syndrome through any vector.
        _ => ExitSnapshot {
            vector: [
                ExitVector::Sync,
                ExitVector::Irq,
                ExitVector::Fiq,
                ExitVector::SError,
            ][usize::from(b.below(4))],
            esr: b.u64() & 0xffff_ffff,
            far: b.word(),
            hpfar: b.word(),
        },
    });
    m
}

/// The guest's side of one exit: it applies `next` (if any) to its view.
fn guest<L: LrFormat>(next: &RefCell<Option<GuestMove>>, g: &mut GuestView<'_>) -> ExitSnapshot {
    let Some(m) = next.borrow_mut().take() else {
        return sync_exit((0x01 << 26) | (1 << 25));
    };
    for (lr, action) in g.lrs.iter_mut().zip(m.lr_actions) {
        let mut d = L::decode(*lr);
        d.state = match (action, d.state) {
            (1, LrState::Pending) => LrState::Active,
            (2, LrState::Active) => LrState::Invalid,
            (2, LrState::PendingActive) => LrState::Pending,
            (_, s) => s,
        };
        *lr = L::encode(&d);
    }
    if let Some((ctl, delta)) = m.timer {
        g.context.timer.ctl = ctl;
        g.context.timer.cval = g.now.wrapping_add(delta);
    }
    *g.serror |= m.serror;
    g.regs.args.x = m.args;
    if let Some(x) = g.regs.high.get_mut(usize::from(m.reg).wrapping_sub(8)) {
        *x = m.value;
    } else if let Some(x) = g.regs.args.x.get_mut(usize::from(m.reg)) {
        *x = m.value;
    }
    m.exit.unwrap_or_else(|| sync_exit(0x01 << 26))
}

fn run_on<L: LrFormat + 'static>(gic: u8, b: &mut Bytes) {
    let mut m = Machine::<L>::new(gic);
    let next: Rc<RefCell<Option<GuestMove>>> = Rc::new(RefCell::new(None));
    for hw in &mut m.hws {
        for vmid in 1..=2 {
            let next = next.clone();
            hw.script(vmid, move |g| guest::<L>(&next, g));
        }
    }
    // Bounded: a step is cheap, but an input must finish fast.
    for _ in 0..256 {
        if b.is_empty() {
            break;
        }
        let head = b.u8();
        let c = usize::from(head & 1);
        let hw = &mut m.hws[c];
        match head >> 1 & 7 {
            0 => hw.advance(u64::from(b.u16())),
            1 => hw.advance(u64::from(b.u32())),
            _ => hw.advance(10),
        }
        if head & 0x10 != 0 {
            // Interrupts the physical GIC can deliver here: the kick SGI,
            // maintenance, the timers, the channels' and UART's SPIs.
            let intid = [0, 25, 26, 27, 33, 40, 41, 42, 43, 1023][usize::from(b.below(10))];
            if !hw.pending.contains(&intid) {
                hw.pending.push_back(intid);
            }
        }
        if head & 0x20 != 0 {
            hw.console_in.push_back(b.u8());
        }
        *next.borrow_mut() = Some(decode_move(b));
        m.step(c);
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    if b.u8() & 1 == 0 {
        run_on::<IchLr>(3, &mut b);
    } else {
        run_on::<GichLr>(2, &mut b);
    }
}
