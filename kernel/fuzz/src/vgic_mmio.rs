//! The vGIC's distributor and redistributor MMIO (GICv3 and GICv2 layouts),
//! mixed with what else drives it: interrupt sources, SGI register writes,
//! and list-register round trips with a guest that acknowledges and
//! completes what it was given.
//!
//! Checked: no panic; every access to an existing frame, of width 1/2/4/8,
//! aligned, is emulated or refused for its width only; a read returns no bits beyond its
//! width; an interrupt sits in at most one list register, of one vCPU, and
//! only the vCPU the vGIC says holds it.

use kernel::vgic::lr::{GichLr, IchLr, LrFormat, LrState};
use kernel::vgic::{Frame, MmioError, Vgic, VgicLayout};

use crate::Bytes;

const LRS: usize = 4;

/// A guest's handling of the interrupts in its list registers: per LR,
/// 0 leave, 1 acknowledge, 2 complete.
fn guest_acts<L: LrFormat>(lrs: &mut [u64], b: &mut Bytes) {
    for lr in lrs {
        let mut d = L::decode(*lr);
        d.state = match (b.below(3), d.state) {
            (1, LrState::Pending) => LrState::Active,
            (2, LrState::Active) => LrState::Invalid,
            (2, LrState::PendingActive) => LrState::Pending,
            (_, s) => s,
        };
        *lr = L::encode(&d);
    }
}

fn offset(b: &mut Bytes, frame_size: u64) -> u64 {
    match b.below(4) {
        // The register areas, dense.
        0 => u64::from(b.u16()) % 0x1000,
        1 => 0x1_0000 + u64::from(b.u16()) % 0x1000,
        2 => 0x6000 + u64::from(b.u16()) % 0x2000,
        _ => u64::from(b.u32()) % frame_size,
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let head = b.u8();
    let vcpus = usize::from(head & 3) + 1;
    let spis = 32 * u32::from(head >> 2 & 7);
    let v2 = head & 0x20 != 0;
    let layout = if v2 {
        VgicLayout::QEMU_VIRT_V2
    } else {
        VgicLayout::QEMU_VIRT
    };
    let mpidrs: Vec<u64> = (0..vcpus as u64).map(|i| (1 << 31) | i).collect();
    let Ok(vgic) = Vgic::try_new(&mpidrs, spis, layout) else {
        return;
    };
    if v2 {
        drive::<GichLr>(vgic, &mut b);
    } else {
        drive::<IchLr>(vgic, &mut b);
    }
}

/// Runs the operations of `b` on `vgic`, whose CPU interface has list
/// registers of format `L`.
fn drive<L: LrFormat>(mut vgic: Vgic, b: &mut Bytes) {
    let vcpus = vgic.vcpus();
    let v2 = matches!(vgic.layout(), VgicLayout::V2 { .. });
    // The values each vCPU's LRs hold since its last flush (None: synced).
    let mut lrs: Vec<Option<[u64; LRS]>> = vec![None; vcpus];
    for _ in 0..512 {
        if b.is_empty() {
            break;
        }
        let op = b.u8();
        let v = usize::from(op >> 4) % vcpus;
        match op & 0xf {
            0..=5 => {
                let frame = match (v2, op & 1) {
                    (true, _) => Frame::CpuDist(v),
                    (false, 0) => Frame::Dist,
                    (false, _) => Frame::Redist(v),
                };
                let size = if matches!(frame, Frame::Redist(_)) {
                    VgicLayout::REDIST_STRIDE
                } else {
                    VgicLayout::DIST_SIZE
                };
                let width = 1u8 << b.below(4);
                let off = offset(b, size) & !u64::from(width - 1);
                // Registers take some widths only (BadWidth); an aligned access to
                // an existing frame is never refused otherwise.
                if op & 0xf < 3 {
                    match vgic.mmio_read(frame, off, width) {
                        Ok(value) => assert!(
                            width == 8 || value >> (8 * width) == 0,
                            "read wider than {width}"
                        ),
                        Err(e) => assert_eq!(e, MmioError::BadWidth),
                    }
                } else if let Err(e) = vgic.mmio_write(frame, off, width, b.word()) {
                    assert_eq!(e, MmioError::BadWidth);
                }
            }
            6 => {
                // An access the guest got wrong: bad width, misaligned, no such frame.
                let frame = match b.below(3) {
                    0 => Frame::Dist,
                    1 => Frame::Redist(usize::from(b.u8())),
                    _ => Frame::CpuDist(usize::from(b.u8())),
                };
                let width = b.u8();
                let off = b.word();
                let r = if b.u8() & 1 == 0 {
                    vgic.mmio_read(frame, off, width).map(|_| 0)
                } else {
                    vgic.mmio_write(frame, off, width, b.word())
                };
                if let Err(e) = r {
                    assert!(matches!(
                        e,
                        MmioError::BadWidth | MmioError::Misaligned | MmioError::NoSuchFrame
                    ));
                }
            }
            7 => {
                vgic.inject(u32::from(b.u16()) % 1100, Some(v));
            }
            8 => {
                vgic.set_level(u32::from(b.u16()) % 1100, Some(v), b.u8() & 1 != 0);
            }
            9 => {
                vgic.inject_hw(32 + u32::from(b.u16()) % 1000, u32::from(b.u16()));
            }
            10 => {
                vgic.sgi1r_write(v, b.word());
            }
            11 => {
                if v2 {
                    vgic.sgir_write(v, b.u32());
                } else {
                    vgic.sgi0r_write(v, b.word());
                }
            }
            12 | 13 => {
                // Flush before entering vCPU v.
                let mut out = [0u64; LRS];
                vgic.flush_with::<L>(v, &mut out);
                lrs[v] = Some(out);
                check_lrs::<L>(&vgic, &lrs);
            }
            14 => {
                // The guest ran, then exited: sync.
                if let Some(mut out) = lrs[v].take() {
                    guest_acts::<L>(&mut out, b);
                    vgic.sync_with::<L>(v, &out);
                }
            }
            _ => vgic.take_released(|_| {}),
        }
    }
}

/// Each interrupt in at most one LR, and in the LRs of the vCPU the vGIC
/// says holds it.
fn check_lrs<L: LrFormat>(vgic: &Vgic, lrs: &[Option<[u64; LRS]>]) {
    let mut seen: Vec<(u32, usize)> = Vec::new();
    for (v, held) in lrs.iter().enumerate() {
        let Some(held) = held else { continue };
        for &raw in held {
            let d = L::decode(raw);
            if d.state == LrState::Invalid {
                continue;
            }
            // SGIs and PPIs are per vCPU; an SPI is one interrupt.
            let key = if d.vintid < 32 { v } else { usize::MAX };
            assert!(
                !seen.contains(&(d.vintid, key)),
                "INTID {} in two list registers",
                d.vintid
            );
            seen.push((d.vintid, key));
            let view = vgic.irq(v, d.vintid).expect("an LR holds a known INTID");
            assert_eq!(view.in_lr, Some(v), "INTID {} in vCPU {v}'s LRs", d.vintid);
        }
    }
}
