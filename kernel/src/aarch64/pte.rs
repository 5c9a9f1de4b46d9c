//! VMSAv8-64 translation-table descriptors, 4 KiB granule (Arm ARM D8.3).
//!
//! Two formats share the layout of output address and type bits and differ in
//! their attribute fields: the EL2 stage-1 regime (Tandem's own mappings) and
//! stage 2 (guest IPA → PA). Pure and host-tested; the table walker in
//! `mm::pagetable` builds trees of these.

use tock_registers::{LocalRegisterCopy, fields::FieldValue, register_bitfields};

register_bitfields! {u64,
    /// Block and page descriptor fields, stage 1 at EL2 (no VHE).
    pub S1 [
        /// Execute-never.
        XN OFFSET(54) NUMBITS(1) [],
        /// Access flag: must be set or the first access faults.
        AF OFFSET(10) NUMBITS(1) [],
        /// Shareability.
        SH OFFSET(8) NUMBITS(2) [NonShareable = 0, OuterShareable = 2, InnerShareable = 3],
        /// AP[2]: read-only.
        RO OFFSET(7) NUMBITS(1) [],
        /// AP[1]: RES1 in the EL2 regime.
        AP1 OFFSET(6) NUMBITS(1) [],
        /// Index into MAIR_EL2.
        ATTRINDX OFFSET(2) NUMBITS(3) []
    ],
    /// Block and page descriptor fields, stage 2.
    pub S2 [
        /// Execute-never for EL1 and EL0.
        XN OFFSET(54) NUMBITS(1) [],
        /// Access flag.
        AF OFFSET(10) NUMBITS(1) [],
        /// Shareability.
        SH OFFSET(8) NUMBITS(2) [NonShareable = 0, OuterShareable = 2, InnerShareable = 3],
        /// Stage-2 access permissions.
        S2AP OFFSET(6) NUMBITS(2) [None = 0, ReadOnly = 1, WriteOnly = 2, ReadWrite = 3],
        /// Memory attributes (stage-2 encoding, no MAIR).
        MEMATTR OFFSET(2) NUMBITS(4) [DeviceNGnRE = 0b0001, NormalWriteBack = 0b1111, NormalNonCacheable = 0b0101]
    ]
}

/// Output-address mask of a descriptor (bits 47:12).
pub const OA_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Descriptor type: valid.
pub const VALID: u64 = 0b01;
/// Descriptor type bit 1: table (levels 0-2) or page (level 3).
pub const TABLE_OR_PAGE: u64 = 0b10;

/// MAIR_EL2 attribute index of Device-nGnRE memory.
pub const MAIR_IDX_DEVICE: u64 = 0;
/// MAIR_EL2 attribute index of Normal write-back cacheable memory.
pub const MAIR_IDX_NORMAL: u64 = 1;
/// The MAIR_EL2 value matching the indices above.
pub const MAIR_EL2_VALUE: u64 = 0x04 | (0xff << 8);

/// Bytes mapped by one entry at `level` (1: 1 GiB, 2: 2 MiB, 3: 4 KiB).
pub const fn level_size(level: usize) -> u64 {
    1 << (12 + 9 * (3 - level))
}

/// Attribute bits of a leaf descriptor, independent of its type and address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafAttrs(pub u64);

/// What a mapping may do, in either regime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// Readable (every valid mapping is readable at stage 1).
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

impl Perms {
    /// Read, write and execute.
    pub const RWX: Self = Self { read: true, write: true, exec: true };
    /// Read and write.
    pub const RW: Self = Self { read: true, write: true, exec: false };
    /// Read and execute.
    pub const RX: Self = Self { read: true, write: false, exec: true };
    /// Read only.
    pub const R: Self = Self { read: true, write: false, exec: false };
}

/// The memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Normal, write-back cacheable, inner shareable.
    Normal,
    /// Device-nGnRE (MMIO).
    Device,
}

/// Stage-1 (EL2) leaf attributes. Writable mappings are never executable (W^X).
pub fn stage1_attrs(perms: Perms, mem: MemType) -> LeafAttrs {
    let exec = perms.exec && !perms.write && mem == MemType::Normal;
    let attr: FieldValue<u64, S1::Register> = S1::AF::SET
        + S1::AP1::SET
        + S1::SH::InnerShareable
        + S1::RO.val(u64::from(!perms.write))
        + S1::XN.val(u64::from(!exec))
        + S1::ATTRINDX.val(match mem {
            MemType::Normal => MAIR_IDX_NORMAL,
            MemType::Device => MAIR_IDX_DEVICE,
        });
    LeafAttrs(attr.value)
}

/// Stage-2 leaf attributes.
pub fn stage2_attrs(perms: Perms, mem: MemType) -> LeafAttrs {
    let ap = match (perms.read, perms.write) {
        (true, true) => S2::S2AP::ReadWrite,
        (true, false) => S2::S2AP::ReadOnly,
        (false, true) => S2::S2AP::WriteOnly,
        (false, false) => S2::S2AP::None,
    };
    let attr: FieldValue<u64, S2::Register> = S2::AF::SET
        + S2::SH::InnerShareable
        + ap
        + S2::XN.val(u64::from(!perms.exec || mem == MemType::Device))
        + match mem {
            MemType::Normal => S2::MEMATTR::NormalWriteBack,
            MemType::Device => S2::MEMATTR::DeviceNGnRE,
        };
    LeafAttrs(attr.value)
}

/// Decodes stage-2 leaf attributes back into permissions and memory type.
pub fn stage2_decode(desc: u64) -> (Perms, MemType) {
    let d: LocalRegisterCopy<u64, S2::Register> = LocalRegisterCopy::new(desc);
    let ap = d.read(S2::S2AP);
    let perms = Perms { read: ap & 1 != 0, write: ap & 2 != 0, exec: !d.is_set(S2::XN) };
    let mem = if d.read(S2::MEMATTR) == 0b0001 { MemType::Device } else { MemType::Normal };
    (perms, mem)
}

/// Decodes stage-1 leaf attributes back into permissions and memory type.
pub fn stage1_decode(desc: u64) -> (Perms, MemType) {
    let d: LocalRegisterCopy<u64, S1::Register> = LocalRegisterCopy::new(desc);
    let perms = Perms { read: true, write: !d.is_set(S1::RO), exec: !d.is_set(S1::XN) };
    let mem = if d.read(S1::ATTRINDX) == MAIR_IDX_DEVICE { MemType::Device } else { MemType::Normal };
    (perms, mem)
}

/// A table descriptor pointing at the next-level table at `pa`.
pub const fn table_desc(pa: u64) -> u64 {
    (pa & OA_MASK) | VALID | TABLE_OR_PAGE
}

/// A leaf (block, or page at level 3) mapping `pa`.
pub const fn leaf_desc(pa: u64, level: usize, attrs: LeafAttrs) -> u64 {
    let kind = if level == 3 { VALID | TABLE_OR_PAGE } else { VALID };
    (pa & OA_MASK) | attrs.0 | kind
}

/// Whether a valid descriptor at `level` points to a next-level table.
pub const fn is_table(desc: u64, level: usize) -> bool {
    level < 3 && desc & 0b11 == 0b11
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stage-2 RW normal block the probe used (0x7fd with type bits) comes out bit-exact.
    #[test]
    fn stage2_normal_rw_block_matches_probe() {
        let d = leaf_desc(0x4000_0000, 2, stage2_attrs(Perms::RWX, MemType::Normal));
        assert_eq!(d, 0x4000_0000 | 0x7fd);
    }

    /// Stage-2 attributes decode back to what was encoded.
    #[test]
    fn stage2_round_trip() {
        for perms in [Perms::RWX, Perms::RW, Perms::RX, Perms::R] {
            for mem in [MemType::Normal, MemType::Device] {
                let (p, m) = stage2_decode(stage2_attrs(perms, mem).0);
                assert_eq!(m, mem);
                assert_eq!((p.read, p.write), (perms.read, perms.write));
                assert_eq!(p.exec, perms.exec && mem == MemType::Normal);
            }
        }
    }

    /// Stage 1 never produces a writable and executable mapping.
    #[test]
    fn stage1_is_w_xor_x() {
        let (p, _) = stage1_decode(stage1_attrs(Perms::RWX, MemType::Normal).0);
        assert!(p.write && !p.exec);
        let (p, _) = stage1_decode(stage1_attrs(Perms::RX, MemType::Normal).0);
        assert!(!p.write && p.exec);
        let (p, m) = stage1_decode(stage1_attrs(Perms::RX, MemType::Device).0);
        assert!(!p.exec && m == MemType::Device);
    }

    /// Level-3 leaves are pages (type 0b11); higher levels are blocks (0b01).
    #[test]
    fn leaf_types() {
        let a = stage1_attrs(Perms::R, MemType::Normal);
        assert_eq!(leaf_desc(0x1000, 3, a) & 0b11, 0b11);
        assert_eq!(leaf_desc(0x20_0000, 2, a) & 0b11, 0b01);
        assert!(!is_table(leaf_desc(0x1000, 3, a), 3));
        assert!(is_table(table_desc(0x1000), 1));
    }
}
