//! A translation-table tree (4 KiB granule, levels 1–3) built with the
//! largest blocks that alignment allows.
//!
//! Used for Tandem's EL2 stage-1 map and for every VM's stage 2. Tables live
//! in memory the caller provides through [`TableMemory`], so the same code runs
//! on the host against a fake and at EL2 against real frames.

use crate::aarch64::pte::{self, LeafAttrs, level_size};

/// Entries per table.
pub const ENTRIES: usize = 512;
/// The granule.
const PAGE: u64 = 4096;

/// Where translation tables live: allocation and word access by physical address.
pub trait TableMemory {
    /// Allocates one zeroed, 4 KiB-aligned table; `None` when out of memory.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Reads entry `idx` of the table at `table_pa`.
    fn read(&self, table_pa: u64, idx: usize) -> u64;
    /// Writes entry `idx` of the table at `table_pa`.
    fn write(&mut self, table_pa: u64, idx: usize, desc: u64);
}

/// Why a mapping request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// An address or size is not 4 KiB aligned.
    Unaligned,
    /// The range goes beyond the tree's input address size, or the output
    /// beyond the 48 bits a descriptor holds.
    OutOfRange,
    /// No memory for another table.
    NoMemory,
}

/// A tree rooted at a level-`start_level` table covering `ia_bits` of input address.
#[derive(Debug)]
pub struct PageTable {
    root: u64,
    start_level: usize,
    ia_bits: u32,
}

impl PageTable {
    /// Creates an empty tree. `ia_bits` must fit the start level (≤ 39 for level 1).
    pub fn new(
        mem: &mut impl TableMemory,
        start_level: usize,
        ia_bits: u32,
    ) -> Result<Self, MapError> {
        debug_assert!((1..=2).contains(&start_level));
        let root = mem.alloc_table().ok_or(MapError::NoMemory)?;
        Ok(Self {
            root,
            start_level,
            ia_bits,
        })
    }

    /// The tree whose root table is at `root` (one [`PageTable::new`] made).
    pub fn from_root(root: u64, start_level: usize, ia_bits: u32) -> Self {
        Self {
            root,
            start_level,
            ia_bits,
        }
    }

    /// Physical address of the root table (for TTBR0_EL2 / VTTBR_EL2).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The start level of the walk.
    pub fn start_level(&self) -> usize {
        self.start_level
    }

    fn index(va: u64, level: usize) -> usize {
        ((va >> (12 + 9 * (3 - level))) & 0x1ff) as usize
    }

    fn check(&self, va: u64, pa: u64, size: u64) -> Result<(), MapError> {
        if !va.is_multiple_of(4096) || !pa.is_multiple_of(4096) || !size.is_multiple_of(4096) {
            return Err(MapError::Unaligned);
        }
        let end = va.checked_add(size).ok_or(MapError::OutOfRange)?;
        if end > 1u64 << self.ia_bits {
            return Err(MapError::OutOfRange);
        }
        // A descriptor keeps output address bits [47:12] only: a larger one
        // would be cut to another address, not refused.
        let out_end = pa.checked_add(size).ok_or(MapError::OutOfRange)?;
        if out_end > pte::OA_MASK + PAGE {
            return Err(MapError::OutOfRange);
        }
        Ok(())
    }

    /// Maps `[va, va+size)` to `[pa, pa+size)`, replacing what was there.
    ///
    /// Existing blocks that the range cuts through are split into the next
    /// level, keeping their attributes outside the range. The caller does the
    /// TLB maintenance the change needs.
    pub fn map(
        &mut self,
        mem: &mut impl TableMemory,
        va: u64,
        pa: u64,
        size: u64,
        attrs: LeafAttrs,
    ) -> Result<(), MapError> {
        self.check(va, pa, size)?;
        self.update(mem, va, size, &mut |ia| Some((pa + (ia - va), attrs)))
    }

    /// Removes the mappings of `[va, va+size)`.
    pub fn unmap(
        &mut self,
        mem: &mut impl TableMemory,
        va: u64,
        size: u64,
    ) -> Result<(), MapError> {
        self.check(va, 0, size)?;
        self.update(mem, va, size, &mut |_| None)
    }

    /// Applies `leaf(ia)` to every granule of the range, using blocks where the
    /// range and the output allow it.
    fn update(
        &mut self,
        mem: &mut impl TableMemory,
        va: u64,
        size: u64,
        leaf: &mut dyn FnMut(u64) -> Option<(u64, LeafAttrs)>,
    ) -> Result<(), MapError> {
        let mut ia = va;
        let end = va + size;
        while ia < end {
            ia = self.update_one(mem, self.root, self.start_level, ia, end, leaf)?;
        }
        Ok(())
    }

    /// Handles the largest piece starting at `ia` under `table`; returns where the next piece starts.
    fn update_one(
        &mut self,
        mem: &mut impl TableMemory,
        table: u64,
        level: usize,
        ia: u64,
        end: u64,
        leaf: &mut dyn FnMut(u64) -> Option<(u64, LeafAttrs)>,
    ) -> Result<u64, MapError> {
        let span = level_size(level);
        let idx = Self::index(ia, level);
        let entry_start = ia & !(span - 1);
        let whole_entry = ia == entry_start && end - ia >= span;
        let desc = mem.read(table, idx);
        let target = leaf(ia);
        // A block fits if the whole entry is covered and the output is aligned (levels 1-2 only
        // with a block-capable level; level 3 always maps pages).
        let block_ok = whole_entry
            && match target {
                Some((pa, _)) => level == 3 || pa % span == 0,
                None => true,
            };
        if block_ok {
            mem.write(
                table,
                idx,
                target.map_or(0, |(pa, attrs)| pte::leaf_desc(pa, level, attrs)),
            );
            return Ok(ia + span);
        }
        // Descend, splitting an existing block into a table of its own.
        let next = if pte::is_table(desc, level) {
            desc & pte::OA_MASK
        } else {
            let next = mem.alloc_table().ok_or(MapError::NoMemory)?;
            if desc & pte::VALID != 0 {
                let child = level_size(level + 1);
                for i in 0..ENTRIES {
                    let pa = (desc & pte::OA_MASK) + i as u64 * child;
                    let attrs = LeafAttrs(desc & !pte::OA_MASK & !0b11);
                    mem.write(next, i, pte::leaf_desc(pa, level + 1, attrs));
                }
            }
            mem.write(table, idx, pte::table_desc(next));
            next
        };
        let stop = end.min(entry_start + span);
        let mut cur = ia;
        while cur < stop {
            cur = self.update_one(mem, next, level + 1, cur, stop, leaf)?;
        }
        Ok(cur)
    }

    /// Calls `f(va, size, desc)` for every valid leaf (block or page), in address order.
    pub fn for_each_leaf(&self, mem: &impl TableMemory, f: &mut dyn FnMut(u64, u64, u64)) {
        self.walk(mem, self.root, self.start_level, 0, f);
    }

    fn walk(
        &self,
        mem: &impl TableMemory,
        table: u64,
        level: usize,
        base: u64,
        f: &mut dyn FnMut(u64, u64, u64),
    ) {
        let span = level_size(level);
        for idx in 0..ENTRIES {
            let va = base + idx as u64 * span;
            if va >= 1u64 << self.ia_bits {
                return;
            }
            let desc = mem.read(table, idx);
            if desc & pte::VALID == 0 {
                continue;
            }
            if pte::is_table(desc, level) {
                self.walk(mem, desc & pte::OA_MASK, level + 1, va, f);
            } else {
                f(va, span, desc);
            }
        }
    }

    /// Walks the tree: the output address and leaf descriptor for `va`, if mapped.
    pub fn translate(&self, mem: &impl TableMemory, va: u64) -> Option<(u64, u64)> {
        if va >= 1u64 << self.ia_bits {
            return None;
        }
        let mut table = self.root;
        for level in self.start_level..=3 {
            let desc = mem.read(table, Self::index(va, level));
            if desc & pte::VALID == 0 {
                return None;
            }
            if pte::is_table(desc, level) {
                table = desc & pte::OA_MASK;
                continue;
            }
            let span = level_size(level);
            return Some((
                (desc & pte::OA_MASK & !(span - 1)) | (va & (span - 1)),
                desc,
            ));
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aarch64::pte::{MemType, Perms, stage1_attrs, stage2_attrs, stage2_decode};
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// Tables in a map keyed by fake physical address.
    #[derive(Default)]
    pub(crate) struct FakeTables {
        pub tables: BTreeMap<u64, Vec<u64>>,
        pub next: u64,
        pub limit: Option<usize>,
    }

    impl TableMemory for FakeTables {
        fn alloc_table(&mut self) -> Option<u64> {
            if self.limit.is_some_and(|l| self.tables.len() >= l) {
                return None;
            }
            self.next += 0x1000;
            let pa = 0x10_0000_0000 + self.next;
            self.tables.insert(pa, vec![0; ENTRIES]);
            Some(pa)
        }
        fn read(&self, table_pa: u64, idx: usize) -> u64 {
            self.tables[&table_pa][idx]
        }
        fn write(&mut self, table_pa: u64, idx: usize, desc: u64) {
            self.tables.get_mut(&table_pa).unwrap()[idx] = desc;
        }
    }

    fn rw() -> LeafAttrs {
        stage2_attrs(Perms::RW, MemType::Normal)
    }

    /// A 2 MiB-aligned range becomes level-2 blocks: one table besides the root.
    #[test]
    fn aligned_range_uses_blocks() {
        let mut m = FakeTables::default();
        let mut t = PageTable::new(&mut m, 1, 32).unwrap();
        t.map(&mut m, 0x4000_0000, 0x8000_0000, 8 << 20, rw())
            .unwrap();
        assert_eq!(m.tables.len(), 2);
        let (pa, desc) = t.translate(&m, 0x4012_3456).unwrap();
        assert_eq!(pa, 0x8012_3456);
        assert_eq!(desc & 0b11, 0b01, "block descriptor");
    }

    /// An output address beyond the 48 bits a descriptor holds is refused,
    /// not cut to another address (found by fuzzing), and an output range
    /// that wraps is refused without overflowing.
    #[test]
    fn output_beyond_48_bits_is_refused() {
        let mut m = FakeTables::default();
        let mut t = PageTable::new(&mut m, 1, 32).unwrap();
        assert_eq!(
            t.map(&mut m, 0, 1 << 48, 4096, rw()),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            t.map(&mut m, 0, (1 << 48) - 4096, 8192, rw()),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            t.map(&mut m, 0, u64::MAX & !0xfff, 8192, rw()),
            Err(MapError::OutOfRange)
        );
        assert_eq!(t.translate(&m, 0), None);
        t.map(&mut m, 0, (1 << 48) - 4096, 4096, rw()).unwrap();
        assert_eq!(t.translate(&m, 0x10).unwrap().0, (1 << 48) - 4096 + 0x10);
    }

    /// A whole aligned gigabyte is one level-1 block.
    #[test]
    fn gigabyte_block() {
        let mut m = FakeTables::default();
        let mut t = PageTable::new(&mut m, 1, 39).unwrap();
        t.map(
            &mut m,
            0,
            0,
            1 << 30,
            stage1_attrs(Perms::RW, MemType::Device),
        )
        .unwrap();
        assert_eq!(m.tables.len(), 1);
        assert_eq!(t.translate(&m, 0x0900_0000).unwrap().0, 0x0900_0000);
    }

    /// Misaligned output forces pages even when the input is aligned.
    #[test]
    fn misaligned_output_uses_pages() {
        let mut m = FakeTables::default();
        let mut t = PageTable::new(&mut m, 1, 32).unwrap();
        t.map(&mut m, 0x20_0000, 0x1000, 0x20_0000, rw()).unwrap();
        let (pa, desc) = t.translate(&m, 0x20_0000 + 0x5123).unwrap();
        assert_eq!(pa, 0x6123);
        assert_eq!(desc & 0b11, 0b11, "page descriptor");
    }

    /// Remapping one page inside a block splits the block and keeps its neighbours.
    #[test]
    fn split_keeps_neighbours() {
        let mut m = FakeTables::default();
        let mut t = PageTable::new(&mut m, 1, 32).unwrap();
        t.map(&mut m, 0, 0x4000_0000, 2 << 20, rw()).unwrap();
        let ro = stage2_attrs(Perms::R, MemType::Normal);
        t.map(&mut m, 0x3000, 0x9000_0000, 0x1000, ro).unwrap();
        assert_eq!(t.translate(&m, 0x2fff).unwrap().0, 0x4000_2fff);
        assert_eq!(t.translate(&m, 0x3004).unwrap().0, 0x9000_0004);
        assert_eq!(t.translate(&m, 0x4000).unwrap().0, 0x4000_4000);
        assert!(!stage2_decode(t.translate(&m, 0x3000).unwrap().1).0.write);
        assert!(stage2_decode(t.translate(&m, 0x4000).unwrap().1).0.write);
    }

    /// Unmapped addresses, and addresses past the input size, do not translate.
    #[test]
    fn unmap_and_bounds() {
        let mut m = FakeTables::default();
        let mut t = PageTable::new(&mut m, 1, 32).unwrap();
        t.map(&mut m, 0, 0, 4 << 20, rw()).unwrap();
        t.unmap(&mut m, 0x1000, 0x1000).unwrap();
        assert!(t.translate(&m, 0x1000).is_none());
        assert!(t.translate(&m, 0x2000).is_some());
        assert!(t.translate(&m, 1 << 32).is_none());
        assert_eq!(
            t.map(&mut m, 0xffff_f000, 0, 0x2000, rw()),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            t.map(&mut m, 0x800, 0, 0x1000, rw()),
            Err(MapError::Unaligned)
        );
    }

    /// Running out of table memory is an error, not a panic.
    #[test]
    fn out_of_tables() {
        let mut m = FakeTables {
            limit: Some(2),
            ..Default::default()
        };
        let mut t = PageTable::new(&mut m, 1, 39).unwrap();
        assert_eq!(
            t.map(&mut m, 0x1000, 0x1000, 0x1000, rw()),
            Err(MapError::NoMemory)
        );
    }
}
