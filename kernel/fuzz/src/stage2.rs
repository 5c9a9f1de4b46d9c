//! Stage-2 tables ([`kernel::mm::pagetable`]): sequences of map and unmap
//! calls, each checked against a model (the list of calls; the last one that
//! covers an address decides it).
//!
//! Checked after every call: a rejected call changed nothing; a translation
//! of the edges of every range so far (and a few random addresses) gives the
//! model's output address and attributes, or nothing where the model has
//! nothing. Where a call ran out of table memory part-way, its range is
//! left unchecked (the tree may hold either state there).

use std::collections::BTreeMap;

use kernel::aarch64::pte::{self, LeafAttrs, MemType, Perms, stage2_attrs};
use kernel::mm::pagetable::{ENTRIES, MapError, PageTable, TableMemory};

use crate::Bytes;

const PAGE: u64 = 4096;

/// Tables in a map keyed by a fake physical address, with an optional limit.
struct Tables {
    tables: BTreeMap<u64, Vec<u64>>,
    limit: usize,
}

impl TableMemory for Tables {
    fn alloc_table(&mut self) -> Option<u64> {
        if self.tables.len() >= self.limit {
            return None;
        }
        let pa = 0x80_0000_0000 + (self.tables.len() as u64 + 1) * PAGE;
        self.tables.insert(pa, vec![0; ENTRIES]);
        Some(pa)
    }
    fn read(&self, table_pa: u64, idx: usize) -> u64 {
        self.tables[&table_pa][idx]
    }
    fn write(&mut self, table_pa: u64, idx: usize, desc: u64) {
        self.tables
            .get_mut(&table_pa)
            .expect("a table the tree allocated")[idx] = desc;
    }
}

/// What a call did to `[va, va + size)`.
#[derive(Clone, Copy)]
enum Effect {
    Mapped {
        pa: u64,
        attrs: LeafAttrs,
    },
    Unmapped,
    /// Out of table memory part-way: anything.
    Unknown,
}

/// The model's answer for `ia`: `Some(None)` unmapped, `None` unknown.
fn model(calls: &[(u64, u64, Effect)], ia: u64) -> Option<Option<(u64, LeafAttrs)>> {
    for &(va, size, effect) in calls.iter().rev() {
        if ia >= va && ia - va < size {
            return match effect {
                Effect::Mapped { pa, attrs } => Some(Some((pa.wrapping_add(ia - va), attrs))),
                Effect::Unmapped => Some(None),
                Effect::Unknown => None,
            };
        }
    }
    Some(None)
}

fn attrs(b: &mut Bytes) -> LeafAttrs {
    let perms = [Perms::RWX, Perms::RW, Perms::RX, Perms::R][usize::from(b.below(4))];
    let mem = if b.u8() & 1 == 0 {
        MemType::Normal
    } else {
        MemType::Device
    };
    stage2_attrs(perms, mem)
}

/// An address: a page number near interesting boundaries, or any value.
fn address(b: &mut Bytes) -> u64 {
    match b.below(4) {
        0 => u64::from(b.u16()) * PAGE,
        1 => u64::from(b.u16()) << 21,
        2 => u64::from(b.u8()) << 30,
        _ => b.word(),
    }
}

fn size(b: &mut Bytes) -> u64 {
    match b.below(4) {
        0 => u64::from(b.u8()) * PAGE,
        1 => u64::from(b.u16() % 2048) * PAGE,
        2 => u64::from(b.u8() % 8) << 21,
        _ => u64::from(b.u8() % 4) << 30,
    }
}

fn check(t: &PageTable, mem: &Tables, calls: &[(u64, u64, Effect)], extra: &[u64]) {
    let edges = calls.iter().flat_map(|&(va, size, _)| {
        [
            va,
            va.wrapping_sub(PAGE),
            va.wrapping_add(size),
            va.wrapping_add(size).wrapping_sub(PAGE),
            va.wrapping_add(size / 2),
        ]
    });
    for ia in edges.chain(extra.iter().copied()) {
        let ia = ia & !(PAGE - 1) | (ia & 0xff8);
        let Some(expected) = model(calls, ia) else {
            continue;
        };
        let got = t.translate(mem, ia).map(|(pa, desc)| {
            // The attributes, without the address and the descriptor type.
            (pa, LeafAttrs(desc & !pte::OA_MASK & !0b11))
        });
        match (expected, got) {
            (None, None) => {}
            (Some((pa, a)), Some((got_pa, got_a))) => {
                assert_eq!(
                    got_pa, pa,
                    "IPA {ia:#x} translates to {got_pa:#x}, mapped to {pa:#x}"
                );
                assert_eq!(got_a, a, "IPA {ia:#x} has other attributes than mapped");
            }
            (e, g) => panic!(
                "IPA {ia:#x}: model {e:x?}, tree {g:x?}",
                e = e.map(|x| x.0),
                g = g.map(|x| x.0)
            ),
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let head = b.u8();
    let (start_level, ia_bits) = [(1, 32), (1, 39), (2, 30)][usize::from(head % 3)];
    let mut mem = Tables {
        tables: BTreeMap::new(),
        // Tight enough sometimes to run out part-way.
        limit: if head & 0x80 != 0 {
            3 + usize::from(head >> 3 & 7)
        } else {
            4096
        },
    };
    let Ok(mut t) = PageTable::new(&mut mem, start_level, ia_bits) else {
        return;
    };
    let mut calls: Vec<(u64, u64, Effect)> = Vec::new();
    let mut extra = Vec::new();
    while !b.is_empty() && calls.len() < 32 {
        let op = b.u8();
        let mut va = address(&mut b);
        let size = size(&mut b);
        if size > 64 << 20 {
            // Large ranges at 2 MiB-aligned addresses only (below): in pages,
            // one call would fill thousands of tables.
            va &= !((2 << 20) - 1);
        }
        // Cheap enough to compare while the tree is small.
        let before = (mem.tables.len() <= 64).then(|| mem.tables.clone());
        let (result, effect) = if op & 1 == 0 {
            let mut pa = address(&mut b);
            if size > 64 << 20 {
                pa &= !((2 << 20) - 1);
            }
            let a = attrs(&mut b);
            (
                t.map(&mut mem, va, pa, size, a),
                Effect::Mapped { pa, attrs: a },
            )
        } else {
            (t.unmap(&mut mem, va, size), Effect::Unmapped)
        };
        match result {
            Ok(()) => calls.push((va, size, effect)),
            Err(MapError::NoMemory) => calls.push((va, size, Effect::Unknown)),
            Err(e) => {
                if let Some(before) = before {
                    assert_eq!(
                        mem.tables, before,
                        "a call rejected with {e:?} changed the tree"
                    );
                }
            }
        }
        extra.push(b.word());
        check(&t, &mem, &calls, &extra);
    }
}
