//! Just enough of the flattened device tree format (DTSpec 0.4, chapter 5) to read a property
//! of the root node, such as the `model` Tandem writes into each VM's tree
//! (`"Tandem VM <name>"`, scripts/xtask/src/guest_dt.rs), and the `reg` and `interrupts` of
//! a node by its `compatible`. Pure code, host-tested.

/// `magic` of an FDT header.
pub const MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
/// Bytes of the header fields this reader uses (magic .. off_dt_strings).
const HEADER_LEN: usize = 16;

fn be32(blob: &[u8], offset: usize) -> Option<u32> {
    let bytes = blob.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The blob's `totalsize` if `header` (at least its first 8 bytes) starts a device tree.
pub fn total_size(header: &[u8]) -> Option<usize> {
    (be32(header, 0)? == MAGIC).then_some(be32(header, 4)? as usize)
}

/// The value of the root node's property `name`, or `None` if the blob is no device tree, is
/// malformed where it was read, or the root has no such property. Child nodes are not
/// searched: a node's properties precede its subnodes, so the walk stops at the first one.
pub fn root_property<'a>(blob: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let total = total_size(blob)?;
    let blob = blob.get(..total)?;
    if total < HEADER_LEN {
        return None;
    }
    let structs = be32(blob, 8)? as usize;
    let strings = be32(blob, 12)? as usize;
    let mut p = structs;
    while be32(blob, p)? == FDT_NOP {
        p += 4;
    }
    if be32(blob, p)? != FDT_BEGIN_NODE {
        return None;
    }
    p += 4;
    // The root's name is empty: one NUL, padded.
    let name_len = blob.get(p..)?.iter().position(|&b| b == 0)?;
    p = align4(p + name_len + 1)?;
    loop {
        match be32(blob, p)? {
            FDT_NOP => p += 4,
            FDT_PROP => {
                let len = be32(blob, p + 4)? as usize;
                let name_off = be32(blob, p + 8)? as usize;
                let value_at = p + 12;
                let value = blob.get(value_at..value_at.checked_add(len)?)?;
                let names = blob.get(strings.checked_add(name_off)?..)?;
                let end = names.iter().position(|&b| b == 0)?;
                if &names[..end] == name.as_bytes() {
                    return Some(value);
                }
                p = align4(value_at + len)?;
            }
            // A subnode, the root's end or garbage: no such root property.
            _ => return None,
        }
    }
}

/// A node found by [`find_compatible`]: its first `reg` entry (2 address and 2 size cells,
/// as Tandem's trees have) and its first interrupt's INTID (3 cells: type, number, flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    /// `reg` base.
    pub base: u64,
    /// `reg` size.
    pub size: u64,
    /// The interrupt as a GIC INTID (SPI n = 32 + n, PPI n = 16 + n), if any.
    pub intid: Option<u32>,
    /// Its `tandem,channel` cell (a Tandem channel's id), if any.
    pub channel: Option<u32>,
}

/// The first node (depth-first) whose `compatible` list contains `compatible` and that has a
/// `reg`, or `None` (also for a malformed blob).
pub fn find_compatible(blob: &[u8], compatible: &str) -> Option<Node> {
    let total = total_size(blob)?;
    let blob = blob.get(..total)?;
    if total < HEADER_LEN {
        return None;
    }
    let strings = be32(blob, 12)? as usize;
    let mut p = be32(blob, 8)? as usize;
    let (mut matches, mut reg, mut intid, mut channel) = (false, None, None, None);
    loop {
        let token = be32(blob, p)?;
        if matches!(token, FDT_BEGIN_NODE | FDT_END_NODE) {
            // A node's properties come before its subnodes and its end: it is complete.
            if let (true, Some((base, size))) = (matches, reg) {
                return Some(Node {
                    base,
                    size,
                    intid,
                    channel,
                });
            }
            (matches, reg, intid, channel) = (false, None, None, None);
        }
        match token {
            FDT_NOP | FDT_END_NODE => p += 4,
            FDT_BEGIN_NODE => {
                let len = blob.get(p + 4..)?.iter().position(|&b| b == 0)?;
                p = align4(p + 4 + len + 1)?;
            }
            FDT_PROP => {
                let len = be32(blob, p + 4)? as usize;
                let name_off = be32(blob, p + 8)? as usize;
                let value = blob.get(p + 12..(p + 12).checked_add(len)?)?;
                let names = blob.get(strings.checked_add(name_off)?..)?;
                let name = &names[..names.iter().position(|&b| b == 0)?];
                match name {
                    b"compatible" => {
                        matches = value.split(|&b| b == 0).any(|c| c == compatible.as_bytes())
                    }
                    b"reg" if len >= 16 => {
                        let cell = |i: usize| be32(value, 4 * i).map(u64::from);
                        reg = Some((cell(0)? << 32 | cell(1)?, cell(2)? << 32 | cell(3)?));
                    }
                    b"tandem,channel" if len == 4 => channel = be32(value, 0),
                    b"interrupts" if len >= 12 => {
                        let (kind, n) = (be32(value, 0)?, be32(value, 4)?);
                        intid = Some(if kind == 0 { 32 + n } else { 16 + n });
                    }
                    _ => {}
                }
                p = align4(p + 12 + len)?;
            }
            _ => return None,
        }
    }
}

/// The value of property `name` of the root's child node `node` (e.g. `/chosen`), matched
/// by its whole name (unit address included), or `None` (also for a malformed blob).
pub fn child_property<'a>(blob: &'a [u8], node: &str, name: &str) -> Option<&'a [u8]> {
    let total = total_size(blob)?;
    let blob = blob.get(..total)?;
    if total < HEADER_LEN {
        return None;
    }
    let strings = be32(blob, 12)? as usize;
    let mut p = be32(blob, 8)? as usize;
    // Depth of the node being walked (the root is 1) and whether it is the wanted child.
    let (mut depth, mut inside) = (0usize, false);
    loop {
        match be32(blob, p)? {
            FDT_NOP => p += 4,
            FDT_BEGIN_NODE => {
                let len = blob.get(p + 4..)?.iter().position(|&b| b == 0)?;
                depth += 1;
                inside = depth == 2 && blob.get(p + 4..p + 4 + len)? == node.as_bytes();
                p = align4(p + 4 + len + 1)?;
            }
            FDT_END_NODE => {
                if inside || depth <= 1 {
                    // The wanted node ended without the property, or the root did.
                    return None;
                }
                depth -= 1;
                p += 4;
            }
            FDT_PROP => {
                let len = be32(blob, p + 4)? as usize;
                let name_off = be32(blob, p + 8)? as usize;
                let value = blob.get(p + 12..(p + 12).checked_add(len)?)?;
                if inside {
                    let names = blob.get(strings.checked_add(name_off)?..)?;
                    let end = names.iter().position(|&b| b == 0)?;
                    if &names[..end] == name.as_bytes() {
                        return Some(value);
                    }
                }
                p = align4(p + 12 + len)?;
            }
            _ => return None,
        }
    }
}

/// A property of one or two 32-bit big-endian cells as a number.
pub fn as_u64(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => be32(value, 0).map(u64::from),
        8 => Some(u64::from(be32(value, 0)?) << 32 | u64::from(be32(value, 4)?)),
        _ => None,
    }
}

/// A string property's value without its terminating NUL.
pub fn as_str(value: &[u8]) -> Option<&str> {
    core::str::from_utf8(value.strip_suffix(&[0])?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU virt's own tree (tests/fixtures/README.md).
    const QEMU_VIRT: &[u8] = include_bytes!("../../fixtures/qemu-virt-gicv3-smp4.dtb");
    const CORRUPTED: &[u8] = include_bytes!("../../fixtures/corrupted.dtb");

    #[test]
    fn reads_root_string_properties() {
        let model = root_property(QEMU_VIRT, "model").and_then(as_str);
        assert_eq!(model, Some("linux,dummy-virt"));
        let cells = root_property(QEMU_VIRT, "#address-cells");
        assert_eq!(cells, Some(&[0u8, 0, 0, 2][..]));
        assert_eq!(total_size(QEMU_VIRT), Some(QEMU_VIRT.len()));
    }

    /// Properties only child nodes have are not the root's.
    #[test]
    fn child_properties_are_not_found() {
        assert_eq!(root_property(QEMU_VIRT, "device_type"), None);
        assert_eq!(root_property(QEMU_VIRT, "migrate"), None);
        assert_eq!(root_property(QEMU_VIRT, "no-such-property"), None);
    }

    /// Nodes are found by any entry of their `compatible` list, with `reg` and `interrupts`.
    #[test]
    fn finds_nodes_by_compatible() {
        let uart = find_compatible(QEMU_VIRT, "arm,pl011").unwrap();
        assert_eq!(
            (uart.base, uart.size, uart.intid),
            (0x0900_0000, 0x1000, Some(33))
        );
        let rtc = find_compatible(QEMU_VIRT, "arm,primecell").unwrap();
        assert!((0x0900_0000..0x0910_0000).contains(&rtc.base), "{rtc:?}");
        // QEMU virt's last virtio-mmio transport comes first in its tree.
        let virtio = find_compatible(QEMU_VIRT, "virtio,mmio").unwrap();
        assert_eq!(virtio.size, 0x200);
        assert_eq!(find_compatible(QEMU_VIRT, "tandem,channel"), None);
        let _ = find_compatible(CORRUPTED, "virtio,mmio");
        for len in 0..QEMU_VIRT.len().min(2048) {
            let _ = find_compatible(&QEMU_VIRT[..len], "virtio,mmio");
        }
    }

    /// Anything that is not a whole device tree gives `None`, never a panic.
    #[test]
    fn malformed_blobs_give_none() {
        assert_eq!(root_property(&[], "model"), None);
        assert_eq!(root_property(&[0u8; 64], "model"), None);
        let _ = root_property(CORRUPTED, "model");
        for len in 0..QEMU_VIRT.len().min(512) {
            assert_eq!(
                root_property(&QEMU_VIRT[..len], "model"),
                None,
                "{len} bytes"
            );
        }
        assert_eq!(as_str(b"no terminator"), None);
        for len in 0..QEMU_VIRT.len().min(2048) {
            let _ = child_property(&QEMU_VIRT[..len], "chosen", "stdout-path");
        }
        let _ = child_property(CORRUPTED, "chosen", "stdout-path");
        assert_eq!(as_str(b"Tandem VM probe\0"), Some("Tandem VM probe"));
    }

    /// A property of a child of the root, found by the child's whole name; a grandchild's or
    /// another child's property is not it.
    #[test]
    fn reads_child_properties() {
        let stdout = child_property(QEMU_VIRT, "chosen", "stdout-path").and_then(as_str);
        assert_eq!(stdout, Some("/pl011@9000000"));
        assert_eq!(child_property(QEMU_VIRT, "chosen", "model"), None);
        assert_eq!(child_property(QEMU_VIRT, "chose", "stdout-path"), None);
        // psci's method, not chosen's.
        assert_eq!(child_property(QEMU_VIRT, "chosen", "method"), None);
        let method = child_property(QEMU_VIRT, "psci", "method").and_then(as_str);
        assert_eq!(method, Some("smc"));
        assert_eq!(as_u64(&[0, 0, 0, 7]), Some(7));
        assert_eq!(as_u64(&[0, 0, 0, 1, 0, 0, 0, 2]), Some(1 << 32 | 2));
        assert_eq!(as_u64(&[0, 0, 7]), None);
    }
}
