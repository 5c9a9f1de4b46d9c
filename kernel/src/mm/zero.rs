//! Clearing memory by blocks: how a range splits into an unaligned head, a
//! body of whole `DC ZVA` blocks and a tail, and what `DCZID_EL0` says.
//!
//! `arch::aarch64::mem::zero_range` executes the plan; the arithmetic lives
//! here so that it runs under `cargo test`.
#![forbid(unsafe_code)]

/// `DCZID_EL0.DZP`: `DC ZVA` is prohibited.
const DCZID_DZP: u64 = 1 << 4;
/// `DCZID_EL0.BS`: log2 of the block size in 4-byte words.
const DCZID_BS_MASK: u64 = 0xf;

/// The `DC ZVA` block size in bytes that `dczid` (a `DCZID_EL0` value)
/// announces, or `None` when `DC ZVA` is prohibited (`DZP` set) or the size
/// is not one the architecture defines (BS ≤ 9, i.e. at most 2 KiB).
pub fn dc_zva_block(dczid: u64) -> Option<u64> {
    let bs = dczid & DCZID_BS_MASK;
    (dczid & DCZID_DZP == 0 && bs <= 9).then(|| 4 << bs)
}

/// A range of addresses: `len` bytes from `start`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u64,
    /// Length in bytes (may be 0).
    pub len: u64,
}

impl Span {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// How to clear a range with blocks of `block` bytes, processed `group`
/// blocks at a time by the fast loop. The four spans are adjacent, in this
/// order, and together cover the range exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Below the first block boundary (or the whole range when no block fits):
    /// cleared with ordinary stores.
    pub head: Span,
    /// Whole groups of `group` blocks, block-aligned: the unrolled loop.
    pub groups: Span,
    /// The whole blocks after the last group (fewer than `group`).
    pub blocks: Span,
    /// After the last block boundary: ordinary stores.
    pub tail: Span,
}

/// Splits `[start, start + len)` for clearing by `block`-byte blocks (a power
/// of two), `group` blocks per iteration of the fast loop (at least 1).
///
/// A range that holds no whole block is all head. `start + len` must not
/// overflow (physical addresses never come near it).
pub fn plan(start: u64, len: u64, block: u64, group: u64) -> Plan {
    assert!(block.is_power_of_two() && group > 0);
    let end = start
        .checked_add(len)
        .expect("range wraps the address space");
    let first = start.next_multiple_of(block);
    let last = end & !(block - 1);
    if first >= last {
        let none = Span { start: end, len: 0 };
        return Plan {
            head: Span { start, len },
            groups: none,
            blocks: none,
            tail: none,
        };
    }
    let whole = (last - first) / block;
    let grouped = whole - whole % group;
    let groups_end = first + grouped * block;
    Plan {
        head: Span {
            start,
            len: first - start,
        },
        groups: Span {
            start: first,
            len: grouped * block,
        },
        blocks: Span {
            start: groups_end,
            len: last - groups_end,
        },
        tail: Span {
            start: last,
            len: end - last,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, len: u64) -> Span {
        Span { start, len }
    }

    /// The spans are adjacent, cover the range, and have the promised shapes.
    fn check(start: u64, len: u64, block: u64, group: u64) -> Plan {
        let p = plan(start, len, block, group);
        assert_eq!(p.head.start, start);
        assert_eq!(p.head.end(), p.groups.start);
        assert_eq!(p.groups.end(), p.blocks.start);
        assert_eq!(p.blocks.end(), p.tail.start);
        assert_eq!(p.tail.end(), start + len);
        if p.groups.len + p.blocks.len > 0 {
            assert!(p.head.len < block && p.tail.len < block);
            assert_eq!(p.groups.start % block, 0);
            assert_eq!(p.groups.len % (block * group), 0);
            assert_eq!(p.blocks.len % block, 0);
            assert!(p.blocks.len < block * group);
        } else {
            assert_eq!(p.head.len, len);
        }
        p
    }

    #[test]
    fn dczid_decoding() {
        // BS = 4: 16 words = 64 bytes (Cortex-A53/A72); BS = 7: 512 bytes (QEMU's `max`).
        assert_eq!(dc_zva_block(4), Some(64));
        assert_eq!(dc_zva_block(7), Some(512));
        assert_eq!(dc_zva_block(0), Some(4));
        assert_eq!(dc_zva_block(9), Some(2048));
        // DZP set: prohibited, whatever BS says.
        assert_eq!(dc_zva_block(DCZID_DZP | 4), None);
        // Reserved sizes and RES0 bits above DZP.
        assert_eq!(dc_zva_block(10), None);
        assert_eq!(dc_zva_block(0xf), None);
        assert_eq!(dc_zva_block((1 << 5) | 4), Some(64));
    }

    #[test]
    fn aligned_range_is_all_groups() {
        let p = check(0x5000_0000, 256 << 20, 64, 8);
        assert_eq!(p.head, span(0x5000_0000, 0));
        assert_eq!(p.groups, span(0x5000_0000, 256 << 20));
        assert_eq!(p.blocks.len, 0);
        assert_eq!(p.tail, span(0x6000_0000, 0));
    }

    #[test]
    fn unaligned_ends_become_head_and_tail() {
        // 3 bytes before the first boundary, 10 whole blocks, 5 bytes after.
        let p = check(0x1000 - 3, 3 + 10 * 64 + 5, 64, 8);
        assert_eq!(p.head, span(0x1000 - 3, 3));
        assert_eq!(p.groups, span(0x1000, 8 * 64));
        assert_eq!(p.blocks, span(0x1000 + 8 * 64, 2 * 64));
        assert_eq!(p.tail, span(0x1000 + 10 * 64, 5));
    }

    #[test]
    fn no_whole_block_is_all_head() {
        // Inside one block, and straddling a boundary without a whole block.
        assert_eq!(check(0x1008, 40, 64, 8).head, span(0x1008, 40));
        assert_eq!(check(0x1030, 64, 64, 8).head, span(0x1030, 64));
        let empty = span(0x1000, 0);
        assert_eq!(
            check(0x1000, 0, 64, 8),
            Plan {
                head: empty,
                groups: empty,
                blocks: empty,
                tail: empty,
            }
        );
        assert_eq!(check(0x1000, 63, 64, 8).head, span(0x1000, 63));
    }

    #[test]
    fn exactly_one_block() {
        let p = check(0x1000, 64, 64, 8);
        assert_eq!(p.head, span(0x1000, 0));
        assert_eq!(p.groups, span(0x1000, 0));
        assert_eq!(p.blocks, span(0x1000, 64));
    }

    #[test]
    fn word_plan_for_the_store_fallback() {
        // Blocks of 8 bytes, one per iteration: the 64-bit store loop.
        let p = check(0x1001, 30, 8, 1);
        assert_eq!(p.head, span(0x1001, 7));
        assert_eq!(p.groups, span(0x1008, 16));
        assert_eq!(p.blocks.len, 0);
        assert_eq!(p.tail, span(0x1018, 7));
    }

    #[test]
    fn exhaustive_small_ranges() {
        for block in [8, 16, 64] {
            for group in [1, 3, 8] {
                for start in 0..2 * block {
                    for len in 0..20 * block {
                        check(0x4000 + start, len, block, group);
                    }
                }
            }
        }
    }

    #[test]
    fn near_the_top_of_the_address_space() {
        let start = u64::MAX - 255;
        let p = check(start, 128 + 3, 64, 8);
        assert_eq!(p.blocks, span(start, 128));
        assert_eq!(p.tail, span(start + 128, 3));
    }
}
