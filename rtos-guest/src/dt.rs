//! The device tree Tandem gives the RTOS: which virtio back-ends it serves, and which GIC
//! the machine has ([`find_gic`]).
//!
//! A flattened device tree (devicetree spec v0.4 ch. 5) is walked token by token, keeping only
//! what a `tandem,virtio-backend` node says:
//!
//! ```text
//! channel@c0000000 {
//!     compatible = "tandem,virtio-backend";
//!     reg = <0x0 0xc0000000 0x0 0x100000>;  // the shared pool (parent's address/size cells)
//!     interrupts = <0 N 1>;                 // GIC SPI N: a notify or an access is waiting
//!     tandem,channel = <0>;                 // id for the channel calls
//!     tandem,virtio-device = <1>;           // virtio device ID
//!     label = "modem-net";
//! };
//! ```
//!
//! The walk is written for hostile input (the blob is only as good as whoever built it): every
//! offset and length is checked, the depth is bounded, and a malformed blob is an error or an
//! incomplete node that is skipped, never a panic. The `fdt` crate is not used because it
//! panics on `FDT_NOP` and cannot read 3-cell GIC interrupt specifiers (STYLE.md).
#![forbid(unsafe_code)]

/// `magic` of a flattened device tree header.
pub const FDT_MAGIC: u32 = 0xD00D_FEED;
/// Size of the header fields read here (magic .. size_dt_struct).
pub const HEADER_LEN: usize = 40;
/// Most back-ends kept.
pub const MAX_BACKENDS: usize = 4;
/// The `compatible` of a channel whose far end is a virtio front-end this VM serves.
pub const VIRTIO_BACKEND_COMPATIBLE: &[u8] = b"tandem,virtio-backend";
/// Deepest node nesting followed (the tree Tandem builds is three levels deep).
const MAX_DEPTH: usize = 16;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Why a blob is not a usable device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtError {
    /// No `0xd00dfeed` magic.
    BadMagic,
    /// A header offset or size points outside the blob, or a token runs past the structure
    /// block.
    Truncated,
    /// An unknown token, or nodes nested deeper than followed.
    Malformed,
}

/// A virtio device this VM serves as the back-end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioBackend {
    /// The channel id for `CHANNEL_NOTIFY` and the virtio calls.
    pub channel: u32,
    /// The virtio device ID (1 net, 3 console).
    pub device_id: u32,
    /// The shared pool's IPA.
    pub pool_base: u64,
    /// The shared pool's size in bytes.
    pub pool_size: u64,
    /// The doorbell's INTID (32 + the SPI number).
    pub intid: u32,
}

/// The back-ends found in a device tree (at most [`MAX_BACKENDS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backends {
    found: [Option<VirtioBackend>; MAX_BACKENDS],
}

impl Backends {
    /// No back-ends.
    pub const EMPTY: Self = Self {
        found: [None; MAX_BACKENDS],
    };

    /// The back-ends, in tree order.
    pub fn iter(&self) -> impl Iterator<Item = &VirtioBackend> {
        self.found.iter().flatten()
    }

    /// The first back-end for virtio device `device_id`.
    pub fn device(&self, device_id: u32) -> Option<VirtioBackend> {
        self.iter().find(|b| b.device_id == device_id).copied()
    }

    fn push(&mut self, b: VirtioBackend) {
        if let Some(slot) = self.found.iter_mut().find(|s| s.is_none()) {
            *slot = Some(b);
        }
    }
}

fn be32(blob: &[u8], at: usize) -> Option<u32> {
    let b = blob.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The total size a header at the start of `blob` claims (to size the slice to read), or
/// `None` if `blob` does not start with a device tree header.
pub fn total_size(header: &[u8]) -> Option<usize> {
    if be32(header, 0)? != FDT_MAGIC {
        return None;
    }
    usize::try_from(be32(header, 4)?).ok()
}

/// A cell list value: `cells` big-endian 32-bit cells starting at cell `first`.
fn cells(value: &[u8], first: usize, cells: u32) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..cells as usize {
        v = v.checked_shl(32)? | u64::from(be32(value, (first + i) * 4)?);
    }
    Some(v)
}

/// What the RTOS reads from Tandem's nodes of its device tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TandemNodes {
    /// The virtio back-ends it serves.
    pub backends: Backends,
    /// The console-input interrupt of the `tandem,hypervisor` node (INTID), if it has one.
    pub console_intid: Option<u32>,
}

/// The `compatible` of Tandem's own node; its interrupt says console input is waiting.
pub const HYPERVISOR_COMPATIBLE: &[u8] = b"tandem,hypervisor";

/// What one node said so far.
#[derive(Clone, Copy, Default)]
struct NodeProps {
    backend: bool,
    hypervisor: bool,
    address_cells: Option<u32>,
    size_cells: Option<u32>,
    /// `reg`'s first entry, read with the parent's cells.
    reg: Option<(u64, u64)>,
    spi: Option<u32>,
    channel: Option<u32>,
    device_id: Option<u32>,
}

impl NodeProps {
    fn backend(&self) -> Option<VirtioBackend> {
        if !self.backend {
            return None;
        }
        let (pool_base, pool_size) = self.reg?;
        Some(VirtioBackend {
            channel: self.channel?,
            device_id: self.device_id?,
            pool_base,
            pool_size,
            intid: self.spi?.checked_add(32)?,
        })
    }
}

/// Whether a `compatible` string list names `want`.
fn compatible_with(list: &[u8], want: &[u8]) -> bool {
    list.split(|&b| b == 0).any(|s| s == want)
}

/// Finds every complete `tandem,virtio-backend` node in `blob`. Nodes missing a property, or
/// with a GIC interrupt that is not an SPI, are skipped.
pub fn virtio_backends(blob: &[u8]) -> Result<Backends, DtError> {
    tandem_nodes(blob).map(|n| n.backends)
}

/// Reads Tandem's nodes in `blob`: the `tandem,virtio-backend` channels (as
/// [`virtio_backends`]) and the `tandem,hypervisor` node's SPI.
pub fn tandem_nodes(blob: &[u8]) -> Result<TandemNodes, DtError> {
    if be32(blob, 0) != Some(FDT_MAGIC) {
        return Err(DtError::BadMagic);
    }
    let header = |i: usize| {
        be32(blob, i * 4)
            .map(|v| v as usize)
            .ok_or(DtError::Truncated)
    };
    let (total, off_struct, off_strings) = (header(1)?, header(2)?, header(3)?);
    let (size_strings, size_struct) = (header(8)?, header(9)?);
    let blob = blob.get(..total).ok_or(DtError::Truncated)?;
    let end_struct = off_struct
        .checked_add(size_struct)
        .ok_or(DtError::Truncated)?;
    let structure = blob.get(off_struct..end_struct).ok_or(DtError::Truncated)?;
    let end_strings = off_strings
        .checked_add(size_strings)
        .ok_or(DtError::Truncated)?;
    let strings = blob
        .get(off_strings..end_strings)
        .ok_or(DtError::Truncated)?;

    let mut found = TandemNodes::default();
    // stack[d] = the node at depth d; its parent's cells apply to its `reg`.
    let mut stack = [NodeProps::default(); MAX_DEPTH];
    let mut depth = 0usize;
    let mut at = 0usize;
    loop {
        let token = be32(structure, at).ok_or(DtError::Truncated)?;
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                // The unit name, NUL-terminated, padded to 4 bytes.
                let rest = structure.get(at..).ok_or(DtError::Truncated)?;
                let name_len = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(DtError::Truncated)?;
                at = align4(at + name_len + 1);
                if depth == MAX_DEPTH {
                    return Err(DtError::Malformed);
                }
                stack[depth] = NodeProps::default();
                depth += 1;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(DtError::Malformed);
                }
                depth -= 1;
                let node = &stack[depth];
                if let Some(b) = node.backend() {
                    found.backends.push(b);
                }
                if node.hypervisor && found.console_intid.is_none() {
                    found.console_intid = node.spi.and_then(|spi| spi.checked_add(32));
                }
            }
            FDT_PROP => {
                let len = be32(structure, at).ok_or(DtError::Truncated)? as usize;
                let name_off = be32(structure, at + 4).ok_or(DtError::Truncated)? as usize;
                let start = at + 8;
                let value = structure
                    .get(start..start.checked_add(len).ok_or(DtError::Truncated)?)
                    .ok_or(DtError::Truncated)?;
                at = align4(start + len);
                if depth == 0 {
                    return Err(DtError::Malformed);
                }
                let name = prop_name(strings, name_off).ok_or(DtError::Truncated)?;
                // The parent's cells (devicetree spec defaults: 2 address, 1 size).
                let parent = (depth >= 2).then(|| stack[depth - 2]);
                let address_cells = parent.and_then(|p| p.address_cells).unwrap_or(2);
                let size_cells = parent.and_then(|p| p.size_cells).unwrap_or(1);
                let node = &mut stack[depth - 1];
                match name {
                    b"compatible" => {
                        node.backend = compatible_with(value, VIRTIO_BACKEND_COMPATIBLE);
                        node.hypervisor = compatible_with(value, HYPERVISOR_COMPATIBLE);
                    }
                    b"#address-cells" => node.address_cells = be32(value, 0),
                    b"#size-cells" => node.size_cells = be32(value, 0),
                    b"reg" if address_cells <= 2 && size_cells <= 2 => {
                        node.reg = cells(value, 0, address_cells).zip(cells(
                            value,
                            address_cells as usize,
                            size_cells,
                        ));
                    }
                    // GIC: <type number flags>, type 0 = SPI.
                    b"interrupts" if value.len() == 12 && be32(value, 0) == Some(0) => {
                        node.spi = be32(value, 4)
                    }
                    b"tandem,channel" => node.channel = be32(value, 0),
                    b"tandem,virtio-device" => node.device_id = be32(value, 0),
                    _ => {}
                }
            }
            FDT_NOP => {}
            FDT_END => return Ok(found),
            _ => return Err(DtError::Malformed),
        }
    }
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn prop_name(strings: &[u8], off: usize) -> Option<&[u8]> {
    let rest = strings.get(off..)?;
    Some(&rest[..rest.iter().position(|&b| b == 0)?])
}

/// The GIC generation and its first two register frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    /// `arm,gic-v3`: distributor and the first redistributor.
    V3 {
        /// GICD.
        dist: u64,
        /// GICR of the first CPU.
        redist: u64,
    },
    /// `arm,gic-400`, `arm,cortex-a15-gic`, `arm,cortex-a7-gic`: distributor and CPU
    /// interface.
    V2 {
        /// GICD.
        dist: u64,
        /// GICC.
        cpu: u64,
    },
}

/// The first GIC among the root node's children, its `reg` read with the root's
/// `#address-cells` and `#size-cells` (DTSpec's defaults, 2 and 1, when absent); `None` if
/// there is none or the blob is not a well-formed tree.
pub fn find_gic(blob: &[u8]) -> Option<Gic> {
    let total = total_size(blob)?;
    let blob = blob.get(..total)?;
    let structs = be32(blob, 8)? as usize;
    let strings = blob.get(be32(blob, 12)? as usize..)?;
    let (mut addr_cells, mut size_cells) = (2u32, 1u32);
    let mut depth = 0usize;
    let mut p = structs;
    // `compatible` and `reg` of the current child of the root.
    let (mut compatible, mut reg): (&[u8], &[u8]) = (&[], &[]);
    loop {
        match be32(blob, p)? {
            FDT_NOP => p += 4,
            FDT_BEGIN_NODE => {
                let name_len = blob.get(p + 4..)?.iter().position(|&b| b == 0)?;
                p = align4(p + 4 + name_len + 1);
                depth += 1;
                if depth == 2 {
                    (compatible, reg) = (&[], &[]);
                }
            }
            FDT_END_NODE => {
                if depth == 2 {
                    let frame =
                        |i: u32| cells(reg, (i * (addr_cells + size_cells)) as usize, addr_cells);
                    if compatible_with(compatible, b"arm,gic-v3") {
                        return Some(Gic::V3 {
                            dist: frame(0)?,
                            redist: frame(1)?,
                        });
                    }
                    if [
                        &b"arm,gic-400"[..],
                        b"arm,cortex-a15-gic",
                        b"arm,cortex-a7-gic",
                    ]
                    .iter()
                    .any(|c| compatible_with(compatible, c))
                    {
                        return Some(Gic::V2 {
                            dist: frame(0)?,
                            cpu: frame(1)?,
                        });
                    }
                }
                depth = depth.checked_sub(1)?;
                p += 4;
            }
            FDT_PROP => {
                let len = be32(blob, p + 4)? as usize;
                let value_at = p + 12;
                let value = blob.get(value_at..value_at.checked_add(len)?)?;
                let name = prop_name(strings, be32(blob, p + 8)? as usize)?;
                match (depth, name) {
                    (1, b"#address-cells") => addr_cells = be32(value, 0)?,
                    (1, b"#size-cells") => size_cells = be32(value, 0)?,
                    (2, b"compatible") => compatible = value,
                    (2, b"reg") => reg = value,
                    _ => {}
                }
                if addr_cells > 2 || size_cells > 2 {
                    return None;
                }
                p = align4(value_at + len);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal FDT builder (what `dtc` emits, for the structures used here).
    #[derive(Default)]
    struct Builder {
        structure: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn token(&mut self, t: u32) -> &mut Self {
            self.structure.extend(t.to_be_bytes());
            self
        }
        fn begin(&mut self, name: &str) -> &mut Self {
            self.token(FDT_BEGIN_NODE);
            self.structure.extend(name.as_bytes());
            self.structure.push(0);
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }
        fn end(&mut self) -> &mut Self {
            self.token(FDT_END_NODE)
        }
        fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let off = self.strings.len() as u32;
            self.strings.extend(name.as_bytes());
            self.strings.push(0);
            self.token(FDT_PROP);
            self.structure.extend((value.len() as u32).to_be_bytes());
            self.structure.extend(off.to_be_bytes());
            self.structure.extend(value);
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }
        fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
            self.prop(name, &v)
        }
        fn blob(&mut self) -> Vec<u8> {
            self.token(FDT_END);
            let off_struct = HEADER_LEN as u32;
            let off_strings = off_struct + self.structure.len() as u32;
            let total = off_strings + self.strings.len() as u32;
            let mut b = Vec::new();
            for v in [
                FDT_MAGIC,
                total,
                off_struct,
                off_strings,
                0, // off_mem_rsvmap (unused here)
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structure.len() as u32,
            ] {
                b.extend(v.to_be_bytes());
            }
            b.extend(&self.structure);
            b.extend(&self.strings);
            b
        }
    }

    fn channel(b: &mut Builder, name: &str, compatible: &str, base: u32, spi: u32, id: u32) {
        b.begin(name)
            .prop("compatible", format!("{compatible}\0").as_bytes())
            .cells("reg", &[0, base, 0, 0x10_0000])
            .cells("interrupts", &[0, spi, 1])
            .cells("tandem,channel", &[id]);
        if compatible == "tandem,virtio-backend" {
            b.cells("tandem,virtio-device", &[id + 1]);
        }
        b.prop("tandem,peer", b"linux\0").end();
    }

    fn tandem_tree() -> Vec<u8> {
        let mut b = Builder::default();
        b.begin("")
            .cells("#address-cells", &[2])
            .cells("#size-cells", &[2])
            .begin("memory@40000000")
            .cells("reg", &[0, 0x4000_0000, 0, 0x100_0000])
            .end()
            .token(FDT_NOP);
        channel(
            &mut b,
            "channel@c0000000",
            "tandem,virtio-backend",
            0xC000_0000,
            5,
            0,
        );
        channel(
            &mut b,
            "channel@c0100000",
            "tandem,channel",
            0xC010_0000,
            6,
            1,
        );
        channel(
            &mut b,
            "channel@c0200000",
            "tandem,virtio-backend",
            0xC020_0000,
            7,
            2,
        );
        b.end().blob()
    }

    /// The back-end nodes are found with their pool, SPI, channel and device; a plain channel
    /// is not a back-end.
    #[test]
    fn finds_the_backends() {
        let blob = tandem_tree();
        assert_eq!(total_size(&blob), Some(blob.len()));
        let found = virtio_backends(&blob).unwrap();
        let all: Vec<_> = found.iter().copied().collect();
        assert_eq!(
            all,
            [
                VirtioBackend {
                    channel: 0,
                    device_id: 1,
                    pool_base: 0xC000_0000,
                    pool_size: 0x10_0000,
                    intid: 37
                },
                VirtioBackend {
                    channel: 2,
                    device_id: 3,
                    pool_base: 0xC020_0000,
                    pool_size: 0x10_0000,
                    intid: 39
                }
            ]
        );
        assert_eq!(found.device(3).map(|b| b.channel), Some(2));
        assert_eq!(found.device(2), None);
    }

    /// The hypervisor node's SPI is the console-input interrupt.
    #[test]
    fn console_intid() {
        let mut b = Builder::default();
        let blob = b
            .begin("")
            .begin("hypervisor")
            .prop("compatible", b"tandem,hypervisor\0")
            .cells("interrupts", &[0, 0, 1])
            .end()
            .end()
            .blob();
        assert_eq!(tandem_nodes(&blob).unwrap().console_intid, Some(32));
        assert_eq!(tandem_nodes(&tandem_tree()).unwrap().console_intid, None);
    }

    /// A tree without back-ends yields none.
    #[test]
    fn no_backends() {
        let mut b = Builder::default();
        let blob = b.begin("").cells("#address-cells", &[2]).end().blob();
        assert_eq!(virtio_backends(&blob).unwrap().iter().count(), 0);
    }

    /// A back-end missing its channel id is skipped.
    #[test]
    fn incomplete_node_skipped() {
        let mut b = Builder::default();
        let blob = b
            .begin("")
            .begin("channel@c0000000")
            .prop("compatible", b"tandem,virtio-backend\0")
            .cells("reg", &[0, 0xC000_0000, 0, 0x1000])
            .cells("interrupts", &[0, 3, 1])
            .cells("tandem,virtio-device", &[1])
            .end()
            .end()
            .blob();
        assert_eq!(virtio_backends(&blob).unwrap().iter().count(), 0);
    }

    /// Not a device tree, or a header pointing outside the blob: errors.
    #[test]
    fn bad_headers() {
        assert_eq!(virtio_backends(&[0; 64]), Err(DtError::BadMagic));
        assert_eq!(virtio_backends(&[]), Err(DtError::BadMagic));
        let mut blob = tandem_tree();
        let too_long = blob.len() as u32 + 1;
        blob[4..8].copy_from_slice(&too_long.to_be_bytes());
        assert_eq!(virtio_backends(&blob), Err(DtError::Truncated));
        let mut blob = tandem_tree();
        blob[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(virtio_backends(&blob), Err(DtError::Truncated));
    }

    /// Every truncation and every corrupted byte of a valid tree gives a result, never a panic
    /// or a hang (the walk only moves forward).
    #[test]
    fn hostile_blobs_never_panic() {
        let blob = tandem_tree();
        for len in 0..blob.len() {
            let _ = virtio_backends(&blob[..len]);
        }
        let mut seed = 0x1234_5678u32;
        for i in 0..blob.len() {
            for _ in 0..8 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let mut bad = blob.clone();
                bad[i] = (seed >> 24) as u8;
                let _ = virtio_backends(&bad);
            }
        }
    }

    /// Nesting deeper than followed is an error, not an overflow.
    #[test]
    fn deep_nesting() {
        let mut b = Builder::default();
        for _ in 0..=MAX_DEPTH {
            b.begin("n");
        }
        for _ in 0..=MAX_DEPTH {
            b.end();
        }
        assert_eq!(virtio_backends(&b.blob()), Err(DtError::Malformed));
    }

    const VIRT_V3: &[u8] = include_bytes!("../../tests/fixtures/qemu-virt-gicv3-smp4.dtb");
    const VIRT_V2: &[u8] = include_bytes!("../../tests/fixtures/qemu-virt-gicv2-smp4.dtb");
    const CORRUPTED: &[u8] = include_bytes!("../../tests/fixtures/corrupted.dtb");

    /// QEMU virt with gic-version=3: distributor and redistributors.
    #[test]
    fn finds_gicv3() {
        assert_eq!(
            find_gic(VIRT_V3),
            Some(Gic::V3 {
                dist: 0x0800_0000,
                redist: 0x080a_0000
            })
        );
    }

    /// QEMU virt with gic-version=2: distributor and CPU interface.
    #[test]
    fn finds_gicv2() {
        assert_eq!(
            find_gic(VIRT_V2),
            Some(Gic::V2 {
                dist: 0x0800_0000,
                cpu: 0x0801_0000
            })
        );
    }

    /// Truncated or corrupted blobs give no GIC, never a panic.
    #[test]
    fn hostile_blobs_give_no_gic() {
        assert_eq!(find_gic(&[]), None);
        assert_eq!(find_gic(&[0u8; 64]), None);
        let _ = find_gic(CORRUPTED);
        for len in (0..VIRT_V2.len()).step_by(97) {
            let _ = find_gic(&VIRT_V2[..len]);
        }
        let mut flipped = VIRT_V3.to_vec();
        for i in (40..flipped.len()).step_by(13) {
            flipped[i] ^= 0xff;
            let _ = find_gic(&flipped);
        }
    }
}
