//! Tandem's own address space (EL2 stage 1) as a plan, pure and host-tested: what
//! `arch::aarch64::mmu` maps (identity, W^X, stack guard pages unmapped), where the per-CPU
//! stacks and their guard pages are, and the W^X summary of a built map, which the boot logs
//! for the live tables.
#![forbid(unsafe_code)]

use core::fmt;

use crate::aarch64::pte::{self, MemType, Perms, stage1_attrs};
use crate::mm::pagetable::{MapError, PageTable, TableMemory};
use crate::platform::fdt::Region;

const PAGE: u64 = 4096;

/// Addresses of the image's sections (linker symbols).
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    /// First byte of the image (the Image header).
    pub start: u64,
    /// End of executable text.
    pub text_end: u64,
    /// End of read-only data.
    pub rodata_end: u64,
    /// Start of the per-CPU stack area.
    pub stacks_start: u64,
    /// End of the image in memory (BSS and stacks included).
    pub end: u64,
    /// Bytes per CPU in the stack area.
    pub stack_stride: u64,
    /// Emergency stack bytes per CPU.
    pub emergency_size: u64,
    /// CPUs the stack area has room for.
    pub max_cpus: usize,
}

/// Which stack a guard page protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The CPU's main stack (SP_EL2).
    Main,
    /// Its emergency stack (SP_EL0), where EL2 faults are reported.
    Emergency,
}

impl ImageLayout {
    /// CPU `cpu`'s guard pages, as (address, the stack it protects). Per CPU the stack area
    /// is `[guard][emergency stack][guard][main stack]` (boot.S `stack_for_cpu`).
    pub fn guards(&self, cpu: usize) -> [(u64, Guard); 2] {
        let block = self.stacks_start + cpu as u64 * self.stack_stride;
        [
            (block, Guard::Emergency),
            (block + PAGE + self.emergency_size, Guard::Main),
        ]
    }

    /// The guard page `addr` falls in: (its CPU, the stack it protects).
    pub fn guard_at(&self, addr: u64) -> Option<(usize, Guard)> {
        (0..self.max_cpus).find_map(|cpu| {
            self.guards(cpu)
                .into_iter()
                .find(|&(page, _)| (page..page + PAGE).contains(&addr))
                .map(|(_, guard)| (cpu, guard))
        })
    }
}

/// Maps Tandem's address space into `pt`: the board's device windows (Device, RW, XN), RAM
/// (RW, XN), the image's text (RX: the only executable memory), its rodata (R, XN), the rest
/// of the image (RW, XN), and unmaps every stack guard page. RAM above `1 << ia_bits` is left
/// out.
pub fn build(
    pt: &mut PageTable,
    mem: &mut impl TableMemory,
    ia_bits: u32,
    mmio: &[Region],
    ram: &[Region],
    l: &ImageLayout,
) -> Result<(), MapError> {
    let device = stage1_attrs(Perms::RW, MemType::Device);
    for w in mmio {
        pt.map(mem, w.base, w.base, w.size, device)?;
    }
    let rw = stage1_attrs(Perms::RW, MemType::Normal);
    for r in ram {
        let base = r.base & !(PAGE - 1);
        let end = (r.end() + PAGE - 1) & !(PAGE - 1);
        if end <= 1 << ia_bits {
            pt.map(mem, base, base, end - base, rw)?;
        }
    }
    let rx = stage1_attrs(Perms::RX, MemType::Normal);
    pt.map(mem, l.start, l.start, l.text_end - l.start, rx)?;
    let ro = stage1_attrs(Perms::R, MemType::Normal);
    pt.map(mem, l.text_end, l.text_end, l.rodata_end - l.text_end, ro)?;
    pt.map(mem, l.rodata_end, l.rodata_end, l.end - l.rodata_end, rw)?;
    for cpu in 0..l.max_cpus {
        for (page, _) in l.guards(cpu) {
            pt.unmap(mem, page, PAGE)?;
        }
    }
    Ok(())
}

/// What a built EL2 map maps, in 4 KiB pages, by permission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Read-only and executable (the text).
    pub rx: u64,
    /// Read-only, execute-never (rodata).
    pub r: u64,
    /// Writable, execute-never (data, RAM, devices).
    pub rw: u64,
    /// Writable and executable: must be 0.
    pub wx: u64,
    /// Stack guard pages checked unmapped.
    pub guards_unmapped: u64,
    /// Stack guard pages found mapped: must be 0.
    pub guards_mapped: u64,
}

/// Counts the pages of `pt` by permission, and checks the guard pages of `l`.
pub fn summarize(pt: &PageTable, mem: &impl TableMemory, l: &ImageLayout) -> Summary {
    let mut s = Summary::default();
    pt.for_each_leaf(mem, &mut |_, size, desc| {
        let pages = size / PAGE;
        let (perms, _) = pte::stage1_decode(desc);
        match (perms.write, perms.exec) {
            (true, true) => s.wx += pages,
            (true, false) => s.rw += pages,
            (false, true) => s.rx += pages,
            (false, false) => s.r += pages,
        }
    });
    for cpu in 0..l.max_cpus {
        for (page, _) in l.guards(cpu) {
            if pt.translate(mem, page).is_some() {
                s.guards_mapped += 1;
            } else {
                s.guards_unmapped += 1;
            }
        }
    }
    s
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EL2 map: {} pages RX (text), {} pages R XN, {} pages RW XN, {} W+X; {} stack guard pages unmapped, {} mapped",
            self.rx, self.r, self.rw, self.wx, self.guards_unmapped, self.guards_mapped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::pagetable::tests::FakeTables;

    /// An image as the linker lays it out on qemu-virt (sizes of a real build), 8 CPUs.
    fn layout() -> ImageLayout {
        let start = 0x4008_0000;
        let stacks_start = start + 0x9_6000;
        let stride = 4096 + 0x4000 + 4096 + 0x1_0000;
        ImageLayout {
            start,
            text_end: start + 0x3_7000,
            rodata_end: start + 0x4_5000,
            stacks_start,
            end: stacks_start + 8 * stride,
            stack_stride: stride,
            emergency_size: 0x4000,
            max_cpus: 8,
        }
    }

    fn built() -> (PageTable, FakeTables, ImageLayout) {
        let mut mem = FakeTables::default();
        let mut pt = PageTable::new(&mut mem, 1, 39).unwrap();
        let l = layout();
        let mmio = [
            Region {
                base: 0x0800_0000,
                size: 0x100_0000,
            },
            Region {
                base: 0x0900_0000,
                size: 0x1000,
            },
        ];
        let ram = [Region {
            base: 0x4000_0000,
            size: 1 << 30,
        }];
        build(&mut pt, &mut mem, 39, &mmio, &ram, &l).unwrap();
        (pt, mem, l)
    }

    /// Nothing is writable and executable; exactly the text is executable, read-only; every
    /// guard page is unmapped.
    #[test]
    fn the_el2_map_is_w_xor_x_with_unmapped_guards() {
        let (pt, mem, l) = built();
        let s = summarize(&pt, &mem, &l);
        assert_eq!(s.wx, 0, "{s}");
        assert_eq!(s.rx, (l.text_end - l.start) / PAGE, "{s}");
        assert_eq!(s.r, (l.rodata_end - l.text_end) / PAGE, "{s}");
        assert_eq!(s.guards_unmapped, 16, "{s}");
        assert_eq!(s.guards_mapped, 0, "{s}");
        // Everything mapped is accounted for: 1 GiB of RAM less 16 guards, 16 MiB + 4 KiB of MMIO.
        assert_eq!(s.rx + s.r + s.rw, (1 << 18) - 16 + 4096 + 1, "{s}");
        for va in [l.start, l.text_end - PAGE] {
            let (_, desc) = pt.translate(&mem, va).unwrap();
            let (p, _) = pte::stage1_decode(desc);
            assert!(!p.write && p.exec, "text at {va:#x}");
        }
        for va in [
            l.text_end,
            l.rodata_end,
            l.end - PAGE,
            0x0800_0000,
            0x7fff_f000,
        ] {
            let (_, desc) = pt.translate(&mem, va).unwrap();
            assert!(!pte::stage1_decode(desc).0.exec, "executable at {va:#x}");
        }
    }

    /// The summary sees a W+X page and a mapped guard page (the check can fail).
    #[test]
    fn the_summary_counts_wx_pages_and_mapped_guards() {
        let (mut pt, mut mem, l) = built();
        let [(guard, _), _] = l.guards(3);
        pt.map(
            &mut mem,
            guard,
            guard,
            PAGE,
            stage1_attrs(Perms::RW, MemType::Normal),
        )
        .unwrap();
        // A hand-made writable, executable leaf (stage1_attrs never makes one).
        let wx = pte::LeafAttrs(stage1_attrs(Perms::RW, MemType::Normal).0 & !(1 << 54));
        pt.map(&mut mem, 0x4100_0000, 0x4100_0000, 2 * PAGE, wx)
            .unwrap();
        let s = summarize(&pt, &mem, &l);
        assert_eq!(
            (s.wx, s.guards_mapped, s.guards_unmapped),
            (2, 1, 15),
            "{s}"
        );
        assert!(
            s.to_string()
                .contains("2 W+X; 15 stack guard pages unmapped, 1 mapped")
        );
    }

    /// A fault address names the guard page it hit: CPU and stack.
    #[test]
    fn guard_pages_are_found_by_address() {
        let l = layout();
        let [(emergency, _), (main, _)] = l.guards(2);
        assert_eq!(l.guard_at(main + 0xff8), Some((2, Guard::Main)));
        assert_eq!(l.guard_at(emergency), Some((2, Guard::Emergency)));
        assert_eq!(l.guard_at(main + PAGE), None, "the stack itself");
        assert_eq!(l.guard_at(main - 1), None, "the emergency stack's top");
        assert_eq!(l.guard_at(l.stacks_start + 8 * l.stack_stride), None);
    }
}
