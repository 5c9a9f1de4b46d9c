//! The EL1 stage-1 identity map: one level-1 table of three 1 GiB blocks.
//!
//! The MMU is needed for speed (caches) and correctness (exclusives and unaligned accesses
//! need normal memory), not for protection, so the map is as simple as the architecture
//! allows: 4 KiB granule, 39-bit VA (`T0SZ = 25`, so the walk starts at level 1), and three
//! block descriptors:
//!
//! | VA = PA                      | Attributes                                   |
//! |------------------------------|----------------------------------------------|
//! | `0x0000_0000..0x4000_0000`   | Device-nGnRnE, execute-never (GIC, UART)     |
//! | `0x4000_0000..0x8000_0000`   | Normal write-back, inner shareable (RAM)     |
//! | `0xC000_0000..0x1_0000_0000` | Normal write-back, inner shareable, execute-never (channel pools shared with another VM) |
//!
//! The table is a `const`, placed in `.rodata` by the arch layer; this module only computes
//! its bits, so they are host-tested. Spec: Arm ARM D8.3 (VMSAv8-64 descriptor formats).
#![forbid(unsafe_code)]

use crate::board::{CHANNEL_WINDOW_BASE, CHANNEL_WINDOW_END, DEVICE_END, RAM_BASE, RAM_MAP_END};
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// A level-1 block descriptor (4 KiB granule: maps 1 GiB).
    pub(crate) BLOCK [
        /// Unprivileged execute-never.
        UXN OFFSET(54) NUMBITS(1) [],
        /// Privileged execute-never.
        PXN OFFSET(53) NUMBITS(1) [],
        /// Output address bits 47:30.
        OUTPUT_1G OFFSET(30) NUMBITS(18) [],
        /// Access flag: set, so the first access does not fault.
        AF OFFSET(10) NUMBITS(1) [],
        /// Shareability.
        SH OFFSET(8) NUMBITS(2) [
            /// Not shared.
            NonShareable = 0b00,
            /// Inner shareable: coherent between the CPUs (needed for SMP).
            InnerShareable = 0b11
        ],
        /// Access permissions.
        AP OFFSET(6) NUMBITS(2) [
            /// Read/write at EL1, no access at EL0.
            RW_EL1 = 0b00
        ],
        /// Index into MAIR_EL1.
        ATTR_INDX OFFSET(2) NUMBITS(3) [],
        /// 0 = block, 1 = table (at level 1/2).
        TYPE OFFSET(1) NUMBITS(1) [
            /// A block mapping.
            Block = 0
        ],
        /// The descriptor is valid.
        VALID OFFSET(0) NUMBITS(1) []
    ]
}

/// MAIR_EL1 index of Device-nGnRnE memory.
pub const MAIR_IDX_DEVICE: u64 = 0;
/// MAIR_EL1 index of normal write-back read/write-allocate memory.
pub const MAIR_IDX_NORMAL: u64 = 1;

/// Bytes mapped by one level-1 entry.
pub const BLOCK_SIZE: u64 = 1 << 30;
/// Entries in a 4 KiB table.
pub const ENTRIES: usize = 512;
/// `TCR_EL1.T0SZ`: a 39-bit VA space, walked from level 1.
pub const T0SZ: u64 = 25;

/// A 1 GiB block descriptor for `pa` with the given attributes.
const fn block(pa: u64, attrs: u64) -> u64 {
    BLOCK::VALID.val(1).value
        | BLOCK::TYPE::Block.value
        | BLOCK::AF.val(1).value
        | BLOCK::AP::RW_EL1.value
        | BLOCK::OUTPUT_1G.val(pa >> 30).value
        | attrs
}

/// Attributes of the device gigabyte: Device-nGnRnE, never executable.
pub const DEVICE_ATTRS: u64 = BLOCK::ATTR_INDX.val(MAIR_IDX_DEVICE).value
    | BLOCK::SH::NonShareable.value
    | BLOCK::PXN.val(1).value
    | BLOCK::UXN.val(1).value;

/// Attributes of the RAM gigabyte: normal cacheable, inner shareable, executable at EL1.
pub const NORMAL_ATTRS: u64 = BLOCK::ATTR_INDX.val(MAIR_IDX_NORMAL).value
    | BLOCK::SH::InnerShareable.value
    | BLOCK::UXN.val(1).value;

/// Attributes of the channel window: normal cacheable like RAM (the peer VM maps it the same
/// way, so both see coherent data), but never executable: another VM writes it.
pub const SHARED_ATTRS: u64 = BLOCK::ATTR_INDX.val(MAIR_IDX_NORMAL).value
    | BLOCK::SH::InnerShareable.value
    | BLOCK::PXN.val(1).value
    | BLOCK::UXN.val(1).value;

/// The level-1 table of the identity map.
pub const fn identity_l1() -> [u64; ENTRIES] {
    let mut t = [0u64; ENTRIES];
    t[0] = block(0, DEVICE_ATTRS);
    t[(RAM_BASE.0 / BLOCK_SIZE) as usize] = block(RAM_BASE.0, NORMAL_ATTRS);
    t[(CHANNEL_WINDOW_BASE.0 / BLOCK_SIZE) as usize] = block(CHANNEL_WINDOW_BASE.0, SHARED_ATTRS);
    t
}

const _: () = assert!(DEVICE_END.0 == BLOCK_SIZE && RAM_MAP_END.0 == RAM_BASE.0 + BLOCK_SIZE);
const _: () = assert!(CHANNEL_WINDOW_END.0 == CHANNEL_WINDOW_BASE.0 + BLOCK_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly three entries are valid: the device, RAM and channel-window blocks.
    #[test]
    fn three_valid_blocks() {
        let t = identity_l1();
        let valid: Vec<usize> = (0..ENTRIES).filter(|&i| t[i] & 1 == 1).collect();
        assert_eq!(valid, [0, 1, 3]);
    }

    /// The descriptors have the bits Arm ARM D8.3 gives for these mappings.
    #[test]
    fn descriptor_bits() {
        let t = identity_l1();
        // Device: valid block, AttrIndx 0, AF, PXN|UXN, output 0.
        assert_eq!(t[0], (1 << 54) | (1 << 53) | (1 << 10) | 1);
        // RAM: valid block, AttrIndx 1, inner shareable, AF, UXN, output 0x4000_0000.
        assert_eq!(
            t[1],
            (1 << 54) | 0x4000_0000 | (1 << 10) | (0b11 << 8) | (1 << 2) | 1
        );
        // Channel window: as RAM, plus PXN (never executable), output 0xC000_0000.
        assert_eq!(
            t[3],
            (1 << 54) | (1 << 53) | 0xC000_0000 | (1 << 10) | (0b11 << 8) | (1 << 2) | 1
        );
    }

    /// A 39-bit VA space walked from level 1 covers the three gigabytes.
    #[test]
    fn va_space_covers_map() {
        const { assert!(CHANNEL_WINDOW_END.0 <= 1 << (64 - T0SZ)) };
        assert_eq!(64 - T0SZ, 39);
    }
}
