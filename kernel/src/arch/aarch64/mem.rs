//! Clearing and filling memory fast, for guest RAM.
//!
//! - [`zero_range`]: `DC ZVA` zeroes a whole block (64 bytes on Cortex-A53/A72)
//!   per instruction, without reading the memory first. The split of a range
//!   into an unaligned head, whole blocks and a tail is
//!   [`crate::mm::zero::plan`] (host-tested); this file only executes it.
//! - [`copy_range`]: load/store pairs of general registers, 256 bytes per
//!   iteration (Tandem runs without FP/SIMD at EL2).
//!
//! Both loops are unrolled (`.rept`) so that the loop's own compare and branch
//! cost little: under QEMU `-icount` every instruction is a nanosecond, and
//! on hardware the loops are bound by memory anyway.

use crate::mm::zero::{self, Span};

/// Blocks cleared per iteration of the `DC ZVA` loop (the `.rept` count in
/// [`dc_zva_groups`]).
const GROUP: u64 = 64;

/// Zeroes `[pa, pa + len)`: `DC ZVA` for the whole blocks (block size from
/// `DCZID_EL0`), 64-bit stores for the rest; only stores when `DCZID_EL0.DZP`
/// prohibits `DC ZVA`. Ends with a `DSB ISH`: the stores and `DC ZVA`s are
/// complete, for every CPU of the inner shareable domain, when it returns.
/// (`DC ZVA` writes through the cache like a store, so cache maintenance
/// needs are those of an ordinary memset.)
///
/// # Safety
/// `[pa, pa + len)` must be RAM that the EL2 map holds as writable Normal
/// memory (`DC ZVA` faults on Device memory, so not before the MMU is on),
/// owned by the caller and not aliased by any live reference.
pub unsafe fn zero_range(pa: u64, len: u64) {
    match zero::dc_zva_block(read_sysreg!("dczid_el0")) {
        Some(block) => {
            let p = zero::plan(pa, len, block, GROUP);
            // SAFETY: part of the caller's range.
            unsafe { store_zeroes(p.head) };
            // SAFETY: block-aligned whole groups of the caller's Normal memory range.
            unsafe { dc_zva_groups(p.groups, block) };
            // SAFETY: block-aligned whole blocks of the caller's Normal memory range.
            unsafe { dc_zva_blocks(p.blocks, block) };
            // SAFETY: part of the caller's range.
            unsafe { store_zeroes(p.tail) };
        }
        // SAFETY: the caller's range.
        None => unsafe { store_zeroes(Span { start: pa, len }) },
    }
    // SAFETY: a barrier; completes the stores and DC ZVAs above before anything that follows.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
}

/// Zeroes `span` with byte stores up to 8-byte alignment, then 64-bit stores.
///
/// # Safety
/// As for [`zero_range`] (any memory type).
unsafe fn store_zeroes(span: Span) {
    let p = zero::plan(span.start, span.len, 8, 1);
    for a in (p.head.start..p.head.end()).chain(p.tail.start..p.tail.end()) {
        // SAFETY: a byte of the caller's range.
        unsafe { (a as *mut u8).write_volatile(0) };
    }
    for a in (p.groups.start..p.groups.end()).step_by(8) {
        // SAFETY: an 8-byte aligned word of the caller's range.
        unsafe { (a as *mut u64).write_volatile(0) };
    }
}

/// `DC ZVA` over `span`, [`GROUP`] blocks per iteration: `DC ZVA` and an add
/// per block, then a compare-and-branch: 2.03 instructions per block. (`DC
/// ZVA` takes its address from a register, with no offset or writeback form,
/// so one add per block is the floor.)
///
/// # Safety
/// `span` is block-aligned, a whole number of groups long, and Normal memory
/// the caller owns.
unsafe fn dc_zva_groups(span: Span, block: u64) {
    if span.len == 0 {
        return;
    }
    // SAFETY: each DC ZVA zeroes the block at `p`, which advances one block at a time from the
    // start of `span` to its end (a whole number of groups); no other memory is touched.
    unsafe {
        core::arch::asm!(
            "2:",
            ".rept 64",
            "dc zva, {p}",
            "add {p}, {p}, {bs}",
            ".endr",
            "cmp {p}, {end}",
            "b.ne 2b",
            p = inout(reg) span.start => _,
            end = in(reg) span.end(),
            bs = in(reg) block,
            options(nostack)
        )
    };
}

/// `DC ZVA` over `span`, one block per iteration.
///
/// # Safety
/// `span` is block-aligned, a whole number of blocks long, and Normal memory
/// the caller owns.
unsafe fn dc_zva_blocks(span: Span, block: u64) {
    for a in (span.start..span.end()).step_by(block as usize) {
        // SAFETY: zeroes the block at `a`, inside `span`.
        unsafe { core::arch::asm!("dc zva, {0}", in(reg) a, options(nostack, preserves_flags)) };
    }
}

/// Bytes moved per iteration of the [`copy_range`] loop (4 × 64 in its `.rept`).
const COPY_CHUNK: usize = 256;

/// Copies `len` bytes from `src` to `dst` (the ranges must not overlap):
/// whole 256-byte chunks with `LDP`/`STP` of general registers, 8.5
/// instructions per 64 bytes (any alignment: EL2 runs with alignment checks
/// off and the memory is Normal), then the rest bytewise.
///
/// # Safety
/// `[src, src + len)` must be readable and `[dst, dst + len)` writable Normal
/// memory the caller owns, the two disjoint, neither aliased by a live `&mut`.
pub unsafe fn copy_range(dst: u64, src: *const u8, len: usize) {
    let bulk = len - len % COPY_CHUNK;
    if bulk > 0 {
        // SAFETY: reads `[src, src + bulk)` and writes `[dst, dst + bulk)`, 64 bytes at a time,
        // both within the caller's ranges; the registers named are clobbered.
        unsafe {
            core::arch::asm!(
                "2:",
                ".rept 4",
                "ldp {c}, {d}, [{src}, #16]",
                "ldp {e}, {f}, [{src}, #32]",
                "ldp {g}, {h}, [{src}, #48]",
                "ldp {a}, {b}, [{src}], #64",
                "stp {c}, {d}, [{dst}, #16]",
                "stp {e}, {f}, [{dst}, #32]",
                "stp {g}, {h}, [{dst}, #48]",
                "stp {a}, {b}, [{dst}], #64",
                ".endr",
                "cmp {dst}, {end}",
                "b.ne 2b",
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                end = in(reg) dst + bulk as u64,
                a = out(reg) _,
                b = out(reg) _,
                c = out(reg) _,
                d = out(reg) _,
                e = out(reg) _,
                f = out(reg) _,
                g = out(reg) _,
                h = out(reg) _,
                options(nostack)
            )
        };
    }
    for i in bulk..len {
        // SAFETY: byte `i` of both caller ranges.
        let byte = unsafe { src.wrapping_add(i).read() };
        // SAFETY: as above.
        unsafe { ((dst + i as u64) as *mut u8).write(byte) };
    }
}
