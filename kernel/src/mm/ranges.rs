//! Physical address ranges: usable RAM is the DT memory minus reserved ranges.
#![forbid(unsafe_code)]

use crate::platform::fdt::{List, Region};

/// Up to this many usable ranges are tracked.
pub const MAX_RANGES: usize = 32;

/// A list of usable ranges.
pub type Ranges = List<Region, MAX_RANGES>;

/// `memory` minus every range in `reserved`, with the pieces aligned inward to `align`.
pub fn subtract(memory: &[Region], reserved: &[Region], align: u64) -> Ranges {
    let mut out: Ranges = List::default();
    for m in memory {
        let mut pieces: List<Region, MAX_RANGES> = List::default();
        pieces.push(*m);
        for r in reserved {
            let mut next: List<Region, MAX_RANGES> = List::default();
            for p in pieces.as_slice() {
                if r.end() <= p.base || r.base >= p.end() {
                    next.push(*p);
                    continue;
                }
                if r.base > p.base {
                    next.push(Region {
                        base: p.base,
                        size: r.base - p.base,
                    });
                }
                if r.end() < p.end() {
                    next.push(Region {
                        base: r.end(),
                        size: p.end() - r.end(),
                    });
                }
            }
            pieces = next;
        }
        for p in pieces.as_slice() {
            // A piece at the top of the address space may have no aligned start.
            let Some(base) = p.base.checked_next_multiple_of(align) else {
                continue;
            };
            let end = p.end() & !(align - 1);
            if end > base {
                out.push(Region {
                    base,
                    size: end - base,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(base: u64, size: u64) -> Region {
        Region { base, size }
    }

    /// A bank at the very top of the address space (a hostile device tree's)
    /// has no aligned start: it yields nothing instead of overflowing (found by
    /// the `dtb` fuzz target).
    #[test]
    fn bank_at_the_top_of_the_address_space_yields_nothing() {
        let out = subtract(&[r(u64::MAX - 0x10, 0x10)], &[], 0x1000);
        assert!(out.as_slice().is_empty());
    }

    /// Reserving the middle of a bank leaves the two sides.
    #[test]
    fn hole_in_the_middle() {
        let out = subtract(
            &[r(0x4000_0000, 0x4000_0000)],
            &[r(0x4800_0000, 0x10_0000)],
            0x1000,
        );
        assert_eq!(
            out.as_slice(),
            &[r(0x4000_0000, 0x800_0000), r(0x4810_0000, 0x37f0_0000)]
        );
    }

    /// Overlapping and out-of-bank reservations, and inward alignment.
    #[test]
    fn overlaps_and_alignment() {
        let out = subtract(
            &[r(0x1000, 0x10_0000)],
            &[r(0, 0x2800), r(0x2000, 0x1000), r(0x9000_0000, 0x1000)],
            0x1000,
        );
        assert_eq!(out.as_slice(), &[r(0x3000, 0xfe000)]);
    }

    /// A reservation covering a whole bank removes it.
    #[test]
    fn fully_reserved() {
        assert!(subtract(&[r(0x1000, 0x1000)], &[r(0, 0x10_0000)], 0x1000).is_empty());
    }
}
