//! Device-tree facts Tandem needs, read through the `fdt` crate.
//!
//! The crate panics on several malformed inputs (and on the FDT_NOP tokens
//! QEMU's raspi4b leaves between nodes), so [`sanitize`] first validates the
//! whole blob — header, block bounds, every token, name and string offset —
//! and compacts NOPs away. Only a blob that passed it is handed to `fdt`, and
//! only its non-panicking accessors are used. Addresses are translated through
//! parent `ranges`, and 3-cell GIC interrupt specifiers are decoded here.
#![forbid(unsafe_code)]

use core::fmt;

/// Most CPUs, memory banks and reserved regions recorded.
pub const MAX_CPUS: usize = 8;
const MAX_REGIONS: usize = 16;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_LEN: usize = 40;

/// Why a device tree was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtError {
    /// Shorter than its header or its declared total size.
    Truncated,
    /// The magic number is not 0xd00dfeed.
    BadMagic(u32),
    /// The structure or strings block lies outside the blob.
    BadLayout,
    /// An unknown or misplaced token at this offset of the structure block.
    BadToken(usize),
    /// A node or property name at this offset is not a terminated UTF-8 string.
    BadName(usize),
    /// Nodes do not nest properly (unbalanced BEGIN/END).
    Unbalanced,
    /// A required node is missing.
    Missing(&'static str),
    /// A property has the wrong size or contents.
    BadProperty(&'static str),
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "device tree is truncated (shorter than its header says)"),
            Self::BadMagic(m) => {
                write!(f, "not a device tree: magic {m:#010x}, expected 0xd00dfeed")
            }
            Self::BadLayout => write!(f, "device tree blocks lie outside the blob"),
            Self::BadToken(o) => write!(
                f,
                "device tree structure corrupt: bad token at offset {o:#x}"
            ),
            Self::BadName(o) => {
                write!(f, "device tree name at offset {o:#x} is not a valid string")
            }
            Self::Unbalanced => write!(f, "device tree nodes are not properly nested"),
            Self::Missing(what) => write!(f, "device tree has no {what}"),
            Self::BadProperty(what) => write!(f, "device tree property {what} is malformed"),
        }
    }
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn cstr_len(b: &[u8]) -> Option<usize> {
    let len = b.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&b[..len]).ok()?;
    Some(len)
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Validates a flattened device tree and removes FDT_NOP tokens in place.
///
/// Returns the blob's total size. After success the blob is safe to give to
/// the `fdt` crate: every token, name and string reference is in bounds.
pub fn sanitize(blob: &mut [u8]) -> Result<usize, DtError> {
    if blob.len() < HEADER_LEN {
        return Err(DtError::Truncated);
    }
    let magic = be32(blob, 0).ok_or(DtError::Truncated)?;
    if magic != FDT_MAGIC {
        return Err(DtError::BadMagic(magic));
    }
    let total = be32(blob, 4).ok_or(DtError::Truncated)? as usize;
    if total > blob.len() || total < HEADER_LEN {
        return Err(DtError::Truncated);
    }
    let field = |i: usize| {
        be32(blob, 4 * i)
            .map(|v| v as usize)
            .ok_or(DtError::Truncated)
    };
    let (struct_off, strings_off, rsv_off) = (field(2)?, field(3)?, field(4)?);
    let (strings_len, struct_len) = (field(8)?, field(9)?);
    let in_blob = |off: usize, len: usize| off.checked_add(len).is_some_and(|end| end <= total);
    if !in_blob(struct_off, struct_len) || !in_blob(strings_off, strings_len) || rsv_off >= total {
        return Err(DtError::BadLayout);
    }
    if struct_off % 4 != 0 || struct_len % 4 != 0 {
        return Err(DtError::BadLayout);
    }
    // The reservation map is a list of (address, size) pairs ending in (0, 0).
    let mut r = rsv_off;
    loop {
        let (a, s) = (be32(blob, r), be32(blob, r + 12));
        if a.is_none() || s.is_none() || r + 16 > total {
            return Err(DtError::BadLayout);
        }
        if blob[r..r + 16].iter().all(|&b| b == 0) {
            break;
        }
        r += 16;
    }
    let strings = strings_off..strings_off + strings_len;

    // Walk the tokens, copying every non-NOP token down to `write`.
    let (mut read, mut write, mut depth) = (0usize, 0usize, 0usize);
    let mut ended = false;
    let mut seen_root = false;
    // The last node token closed a child: the node it is in takes no more
    // properties (they precede subnodes; the crate asserts so).
    let mut after_child = false;
    while read < struct_len {
        let at = struct_off + read;
        let token = be32(blob, at).ok_or(DtError::BadToken(read))?;
        let len = match token {
            FDT_BEGIN_NODE => {
                if depth == 0 && seen_root {
                    return Err(DtError::BadToken(read));
                }
                seen_root = true;
                after_child = false;
                depth += 1;
                let name = blob
                    .get(at + 4..struct_off + struct_len)
                    .ok_or(DtError::BadName(read))?;
                4 + align4(cstr_len(name).ok_or(DtError::BadName(read))? + 1)
            }
            FDT_END_NODE => {
                depth = depth.checked_sub(1).ok_or(DtError::Unbalanced)?;
                after_child = true;
                4
            }
            FDT_PROP => {
                if depth == 0 || after_child {
                    return Err(DtError::BadToken(read));
                }
                let value_len = be32(blob, at + 4).ok_or(DtError::BadToken(read))? as usize;
                let name_off = be32(blob, at + 8).ok_or(DtError::BadToken(read))? as usize;
                let name_at = strings
                    .start
                    .checked_add(name_off)
                    .ok_or(DtError::BadName(read))?;
                let name = blob
                    .get(name_at..strings.end)
                    .ok_or(DtError::BadName(read))?;
                let name_len = cstr_len(name).ok_or(DtError::BadName(read))?;
                let len = value_len
                    .checked_add(12)
                    .map(align4)
                    .ok_or(DtError::BadToken(read))?;
                if read + len > struct_len {
                    return Err(DtError::BadToken(read));
                }
                // The crate reads cell counts as exactly one u32.
                let cells = matches!(&name[..name_len], b"#address-cells" | b"#size-cells");
                if cells && value_len != 4 {
                    return Err(DtError::BadProperty("#address-cells/#size-cells"));
                }
                len
            }
            FDT_NOP => {
                read += 4;
                continue;
            }
            FDT_END => {
                ended = true;
                4
            }
            _ => return Err(DtError::BadToken(read)),
        };
        if read + len > struct_len {
            return Err(DtError::BadToken(read));
        }
        if write != read {
            blob.copy_within(at..at + len, struct_off + write);
        }
        read += len;
        write += len;
        if ended {
            break;
        }
    }
    if !ended || depth != 0 || !seen_root {
        return Err(DtError::Unbalanced);
    }
    // Pad the freed tail with END tokens and record the compacted size.
    for pad in (write..read).step_by(4) {
        blob[struct_off + pad..struct_off + pad + 4].copy_from_slice(&FDT_END.to_be_bytes());
    }
    blob[36..40].copy_from_slice(&(write as u32).to_be_bytes());
    Ok(total)
}

/// A physical address range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// A fixed-capacity list (the heap does not exist yet when the DT is read).
#[derive(Clone, Copy, Debug)]
pub struct List<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }
}

impl<T: Copy + Default, const N: usize> List<T, N> {
    /// Appends, dropping the item when full; returns whether it was kept.
    pub fn push(&mut self, item: T) -> bool {
        if self.len == N {
            return false;
        }
        self.items[self.len] = item;
        self.len += 1;
        true
    }
    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// How a CPU is started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnableMethod {
    /// PSCI CPU_ON.
    #[default]
    Psci,
    /// Spin table: write the entry point to this address and `sev`.
    SpinTable(u64),
}

/// One CPU node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFact {
    /// MPIDR affinity bits (the `reg` property).
    pub mpidr: u64,
    /// How to start it.
    pub enable: EnableMethod,
}

/// The GIC architecture version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (GIC-400): memory-mapped CPU interface, GICH/GICV frames.
    V2,
    /// GICv3: system-register CPU interface, redistributors.
    V3,
}

/// The interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicFacts {
    /// Architecture version.
    pub version: GicVersion,
    /// Distributor (GICD).
    pub dist: Region,
    /// v3: redistributor region (GICR). v2: CPU interface (GICC).
    pub cpu: Region,
    /// v2: hypervisor control interface (GICH), if described.
    pub hyp: Option<Region>,
    /// v2: virtual CPU interface (GICV), if described.
    pub vcpu: Option<Region>,
    /// INTID of the maintenance interrupt.
    pub maintenance_intid: Option<u32>,
}

/// The PSCI firmware interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    /// `smc #0` (firmware at EL3, or QEMU with virtualization=on).
    Smc,
    /// `hvc #0` (only meaningful below a hypervisor).
    Hvc,
}

/// The architected timer's interrupts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerFacts {
    /// Non-secure EL1 physical timer INTID.
    pub phys_intid: u32,
    /// Virtual timer INTID.
    pub virt_intid: u32,
    /// EL2 physical timer INTID.
    pub hyp_intid: u32,
}

/// A PL011 UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UartFacts {
    /// Register block.
    pub regs: Region,
    /// INTID, when described.
    pub intid: Option<u32>,
}

/// Everything Tandem reads from the boot DT.
#[derive(Clone, Copy, Debug)]
pub struct MachineFacts {
    /// `/model`, truncated to 64 bytes.
    pub model: [u8; 64],
    /// RAM banks.
    pub memory: List<Region, MAX_REGIONS>,
    /// /memreserve/ entries and /reserved-memory children.
    pub reserved: List<Region, MAX_REGIONS>,
    /// CPUs in DT order.
    pub cpus: List<CpuFact, MAX_CPUS>,
    /// The GIC.
    pub gic: GicFacts,
    /// The console UART, if a PL011 is found.
    pub uart: Option<UartFacts>,
    /// Timer INTIDs.
    pub timer: TimerFacts,
    /// PSCI conduit, when a /psci node exists.
    pub psci: Option<PsciConduit>,
    /// `/chosen/bootargs`, truncated to 256 bytes.
    pub bootargs: [u8; 256],
}

impl MachineFacts {
    /// The model string.
    pub fn model(&self) -> &str {
        let len = self
            .model
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.model.len());
        core::str::from_utf8(&self.model[..len]).unwrap_or("?")
    }

    /// The boot arguments (`/chosen/bootargs`).
    pub fn bootargs(&self) -> &str {
        let len = self
            .bootargs
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.bootargs.len());
        core::str::from_utf8(&self.bootargs[..len]).unwrap_or("")
    }

    /// The value of `key=value` in the boot arguments.
    pub fn bootarg(&self, key: &str) -> Option<&str> {
        self.bootargs()
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    /// Total RAM in bytes (saturating: a hostile tree's banks may add up past 2^64).
    pub fn ram_bytes(&self) -> u64 {
        self.memory
            .as_slice()
            .iter()
            .fold(0, |sum, r| sum.saturating_add(r.size))
    }
}

/// Address translation from a node's bus to the CPU's physical space.
#[derive(Clone, Copy, Default)]
struct Translation {
    /// (child base, parent base, size) windows; empty means identity.
    windows: List<(u64, u64, u64), 8>,
    identity: bool,
}

impl Translation {
    fn apply(&self, addr: u64) -> u64 {
        if self.identity {
            return addr;
        }
        for &(child, parent, size) in self.windows.as_slice() {
            if addr >= child && addr - child < size {
                return parent + (addr - child);
            }
        }
        addr
    }
}

fn read_cells(bytes: &[u8], cells: usize) -> Option<u64> {
    match cells {
        1 => be32(bytes, 0).map(u64::from),
        2 => Some((u64::from(be32(bytes, 0)?) << 32) | u64::from(be32(bytes, 4)?)),
        _ => None,
    }
}

fn prop_u32(node: fdt::node::FdtNode<'_, '_>, name: &str) -> Option<u32> {
    node.property(name).and_then(|p| be32(p.value, 0))
}

/// `reg` entries of `node`, translated to CPU physical addresses.
fn regs(
    node: fdt::node::FdtNode<'_, '_>,
    cells: (usize, usize),
    tr: &Translation,
) -> List<Region, 8> {
    let mut out = List::default();
    let Some(reg) = node.property("reg") else {
        return out;
    };
    let stride = 4 * (cells.0 + cells.1);
    if stride == 0 {
        return out;
    }
    for chunk in reg.value.chunks_exact(stride) {
        let (Some(base), Some(size)) = (
            read_cells(chunk, cells.0),
            read_cells(&chunk[4 * cells.0..], cells.1),
        ) else {
            continue;
        };
        out.push(Region {
            base: tr.apply(base),
            size,
        });
    }
    out
}

/// The INTIDs of a node's 3-cell GIC `interrupts` property.
fn gic_intids(node: fdt::node::FdtNode<'_, '_>) -> List<u32, 8> {
    let mut out = List::default();
    if let Some(p) = node.property("interrupts") {
        for spec in p.value.chunks_exact(12) {
            let (kind, num) = (be32(spec, 0).unwrap_or(9), be32(spec, 4).unwrap_or(0));
            // SPIs are INTIDs 32..=1019, PPIs 16..=31: a number past them is no interrupt.
            let intid = match (kind, num) {
                (0, 0..=987) => 32 + num,
                (1, 0..=15) => 16 + num,
                _ => continue,
            };
            out.push(intid);
        }
    }
    out
}

fn compatible_with(node: fdt::node::FdtNode<'_, '_>, names: &[&str]) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| names.contains(&s)))
}

struct Walk {
    facts: MachineFacts,
    gic: Option<GicFacts>,
    stdout_path: [u8; 64],
}

impl Walk {
    fn visit(
        &mut self,
        node: fdt::node::FdtNode<'_, '_>,
        parent_cells: (usize, usize),
        tr: &Translation,
        depth: usize,
    ) {
        if depth > 16 {
            return;
        }
        let name = node.name;
        if name.starts_with("memory")
            && node.property("device_type").and_then(|p| p.as_str()) == Some("memory")
        {
            for r in regs(node, parent_cells, tr).as_slice() {
                self.facts.memory.push(*r);
            }
        }
        if name.starts_with("cpu@") || (name == "cpu") {
            let reg = node
                .property("reg")
                .and_then(|p| read_cells(p.value, parent_cells.0));
            if let Some(mpidr) = reg {
                let enable = match node.property("enable-method").and_then(|p| p.as_str()) {
                    Some("spin-table") => {
                        let addr = node
                            .property("cpu-release-addr")
                            .and_then(|p| read_cells(p.value, 2));
                        EnableMethod::SpinTable(addr.unwrap_or(0))
                    }
                    _ => EnableMethod::Psci,
                };
                self.facts.cpus.push(CpuFact { mpidr, enable });
            }
        }
        if compatible_with(node, &["arm,gic-v3"]) && self.gic.is_none() {
            let r = regs(node, parent_cells, tr);
            if let [dist, redist, ..] = r.as_slice() {
                self.gic = Some(GicFacts {
                    version: GicVersion::V3,
                    dist: *dist,
                    cpu: *redist,
                    hyp: None,
                    vcpu: None,
                    maintenance_intid: gic_intids(node).as_slice().first().copied(),
                });
            }
        }
        if compatible_with(
            node,
            &["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a7-gic"],
        ) && self.gic.is_none()
        {
            let r = regs(node, parent_cells, tr);
            if let [dist, cpu, rest @ ..] = r.as_slice() {
                self.gic = Some(GicFacts {
                    version: GicVersion::V2,
                    dist: *dist,
                    cpu: *cpu,
                    hyp: rest.first().copied(),
                    vcpu: rest.get(1).copied(),
                    maintenance_intid: gic_intids(node).as_slice().first().copied(),
                });
            }
        }
        if compatible_with(node, &["arm,armv8-timer", "arm,armv7-timer"]) {
            let i = gic_intids(node);
            if let [_sec, phys, virt, hyp, ..] = i.as_slice() {
                self.facts.timer = TimerFacts {
                    phys_intid: *phys,
                    virt_intid: *virt,
                    hyp_intid: *hyp,
                };
            }
        }
        if compatible_with(node, &["arm,pl011"]) {
            let uart = regs(node, parent_cells, tr)
                .as_slice()
                .first()
                .map(|r| UartFacts {
                    regs: *r,
                    intid: gic_intids(node).as_slice().first().copied(),
                });
            // Prefer the UART /chosen/stdout-path names; else keep the first.
            let path_len = self.stdout_path.iter().position(|&c| c == 0).unwrap_or(0);
            let wanted = core::str::from_utf8(&self.stdout_path[..path_len]).unwrap_or("");
            let wanted = wanted.split(':').next().unwrap_or("");
            let chosen = !wanted.is_empty() && wanted.rsplit('/').next() == Some(name);
            if uart.is_some() && (self.facts.uart.is_none() || chosen) {
                self.facts.uart = uart;
            }
        }
        if name == "psci" || compatible_with(node, &["arm,psci", "arm,psci-0.2", "arm,psci-1.0"]) {
            self.facts.psci = match node.property("method").and_then(|p| p.as_str()) {
                Some("smc") => Some(PsciConduit::Smc),
                Some("hvc") => Some(PsciConduit::Hvc),
                _ => None,
            };
        }
        if name == "reserved-memory" {
            let cells = (
                prop_u32(node, "#address-cells").unwrap_or(2) as usize,
                prop_u32(node, "#size-cells").unwrap_or(1) as usize,
            );
            for child in node.children() {
                for r in regs(child, cells, tr).as_slice() {
                    self.facts.reserved.push(*r);
                }
            }
            return;
        }

        // Children see this node's cell sizes and, through `ranges`, its address map.
        let cells = (
            prop_u32(node, "#address-cells").unwrap_or(2) as usize,
            prop_u32(node, "#size-cells").unwrap_or(1) as usize,
        );
        let mut child_tr = *tr;
        if depth > 0 {
            match node.property("ranges") {
                Some(p) if !p.value.is_empty() => {
                    let mut windows = List::default();
                    let stride = 4 * (cells.0 + parent_cells.0 + cells.1);
                    for w in p.value.chunks_exact(stride) {
                        let child = read_cells(w, cells.0);
                        let parent = read_cells(&w[4 * cells.0..], parent_cells.0);
                        let size = read_cells(&w[4 * (cells.0 + parent_cells.0)..], cells.1);
                        if let (Some(c), Some(p), Some(s)) = (child, parent, size) {
                            windows.push((c, tr.apply(p), s));
                        }
                    }
                    child_tr = Translation {
                        windows,
                        identity: false,
                    };
                }
                _ => {}
            }
        }
        for child in node.children() {
            self.visit(child, cells, &child_tr, depth + 1);
        }
    }
}

/// Reads the machine facts from a blob that [`sanitize`] accepted.
pub fn parse(blob: &[u8]) -> Result<MachineFacts, DtError> {
    let dt = fdt::Fdt::new(blob).map_err(|_| DtError::Truncated)?;
    let root = dt.find_node("/").ok_or(DtError::Missing("root node"))?;
    let mut model = [0u8; 64];
    if let Some(m) = root.property("model").and_then(|p| p.as_str()) {
        let n = m.len().min(63);
        model[..n].copy_from_slice(&m.as_bytes()[..n]);
    }
    let mut bootargs = [0u8; 256];
    if let Some(p) = dt
        .find_node("/chosen")
        .and_then(|c| c.property("bootargs"))
        .and_then(|p| p.as_str())
    {
        let n = p.len().min(255);
        bootargs[..n].copy_from_slice(&p.as_bytes()[..n]);
    }
    let mut stdout_path = [0u8; 64];
    if let Some(p) = dt
        .find_node("/chosen")
        .and_then(|c| c.property("stdout-path"))
        .and_then(|p| p.as_str())
    {
        let n = p.len().min(63);
        stdout_path[..n].copy_from_slice(&p.as_bytes()[..n]);
    }
    let empty = MachineFacts {
        model,
        memory: List::default(),
        reserved: List::default(),
        cpus: List::default(),
        gic: GicFacts {
            version: GicVersion::V3,
            dist: Region::default(),
            cpu: Region::default(),
            hyp: None,
            vcpu: None,
            maintenance_intid: None,
        },
        uart: None,
        timer: TimerFacts::default(),
        psci: None,
        bootargs,
    };
    let mut walk = Walk {
        facts: empty,
        gic: None,
        stdout_path,
    };
    walk.visit(
        root,
        (2, 1),
        &Translation {
            identity: true,
            ..Default::default()
        },
        0,
    );
    for r in dt.memory_reservations() {
        walk.facts.reserved.push(Region {
            base: r.address() as u64,
            size: r.size() as u64,
        });
    }
    let mut facts = walk.facts;
    facts.gic = walk.gic.ok_or(DtError::Missing(
        "interrupt controller (arm,gic-v3 or GICv2)",
    ))?;
    if facts.memory.is_empty() {
        return Err(DtError::Missing("/memory node"));
    }
    if facts.cpus.is_empty() {
        return Err(DtError::Missing("/cpus/cpu@* nodes"));
    }
    if facts.timer.virt_intid == 0 {
        return Err(DtError::Missing("arm,armv8-timer node"));
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn facts(name: &str) -> MachineFacts {
        let mut blob = fixture(name);
        sanitize(&mut blob).unwrap();
        parse(&blob).unwrap()
    }

    /// QEMU virt with GICv3, 4 CPUs, 1 GiB: every fact Tandem boots on.
    #[test]
    fn qemu_virt_gicv3() {
        let f = facts("qemu-virt-gicv3-smp4.dtb");
        assert_eq!(f.model(), "linux,dummy-virt");
        assert_eq!(
            f.memory.as_slice(),
            &[Region {
                base: 0x4000_0000,
                size: 0x4000_0000
            }]
        );
        assert_eq!(f.cpus.len(), 4);
        assert_eq!(f.cpus.as_slice()[3].mpidr, 3);
        assert_eq!(f.gic.version, GicVersion::V3);
        assert_eq!(f.gic.dist.base, 0x0800_0000);
        assert_eq!(f.gic.cpu.base, 0x080a_0000);
        assert_eq!(f.gic.maintenance_intid, Some(25));
        assert_eq!(
            f.timer,
            TimerFacts {
                phys_intid: 30,
                virt_intid: 27,
                hyp_intid: 26
            }
        );
        assert_eq!(f.uart.unwrap().regs.base, 0x0900_0000);
        assert_eq!(f.uart.unwrap().intid, Some(33));
        assert_eq!(f.psci, Some(PsciConduit::Smc));
    }

    /// QEMU virt with GICv2 exposes GICC, GICH and GICV frames.
    #[test]
    fn qemu_virt_gicv2() {
        let f = facts("qemu-virt-gicv2-smp4.dtb");
        assert_eq!(f.gic.version, GicVersion::V2);
        assert_eq!(f.gic.cpu.base, 0x0801_0000);
        assert_eq!(f.gic.hyp.unwrap().base, 0x0803_0000);
        assert_eq!(f.gic.vcpu.unwrap().base, 0x0804_0000);
    }

    /// Every truncation of a valid blob is rejected with an error, never a panic.
    #[test]
    fn every_truncation_is_an_error() {
        let blob = fixture("qemu-virt-gicv3-smp4.dtb");
        let total = be32(&blob, 4).unwrap() as usize;
        for len in (0..total).step_by(97) {
            let mut cut = blob[..len].to_vec();
            assert!(sanitize(&mut cut).is_err(), "len {len}");
        }
    }

    /// The checked-in corrupted blob (structure bytes overwritten) is rejected cleanly.
    #[test]
    fn corrupted_fixture_rejected() {
        let mut blob = fixture("corrupted.dtb");
        let err = sanitize(&mut blob)
            .map(|_| ())
            .and_then(|_| parse(&blob).map(|_| ()));
        assert!(err.is_err());
    }

    /// Flipping any single byte of the structure block never makes the parser panic.
    #[test]
    fn single_byte_corruption_never_panics() {
        let good = fixture("qemu-virt-gicv3-smp4.dtb");
        let off = be32(&good, 8).unwrap() as usize;
        let len = be32(&good, 36).unwrap() as usize;
        for i in (off..off + len).step_by(13) {
            let mut blob = good.clone();
            blob[i] ^= 0xa5;
            if sanitize(&mut blob).is_ok() {
                let _ = parse(&blob);
            }
        }
    }

    /// NOP tokens between nodes (as QEMU raspi4b writes them) are compacted away.
    #[test]
    fn nops_are_stripped() {
        let mut blob = fixture("qemu-virt-gicv3-smp4.dtb");
        let off = be32(&blob, 8).unwrap() as usize;
        let len = be32(&blob, 36).unwrap() as usize;
        // Turn the first property of the first child node into NOPs.
        let mut p = off + 8; // root BEGIN_NODE + empty name
        while be32(&blob, p) == Some(FDT_PROP) {
            let vlen = be32(&blob, p + 4).unwrap() as usize;
            p += align4(12 + vlen);
        }
        assert_eq!(be32(&blob, p), Some(FDT_BEGIN_NODE));
        let name_len = cstr_len(&blob[p + 4..]).unwrap();
        let q = p + 4 + align4(name_len + 1);
        assert_eq!(be32(&blob, q), Some(FDT_PROP));
        let plen = align4(12 + be32(&blob, q + 4).unwrap() as usize);
        for w in (q..q + plen).step_by(4) {
            blob[w..w + 4].copy_from_slice(&FDT_NOP.to_be_bytes());
        }
        sanitize(&mut blob).unwrap();
        assert_eq!(be32(&blob, 36).unwrap() as usize, len - plen);
        assert_eq!(parse(&blob).unwrap().cpus.len(), 4);
    }

    /// A blob of `structure` tokens (big-endian words) and a strings block
    /// holding "model".
    fn blob_of(structure: &[u32]) -> Vec<u8> {
        blob_with(structure, b"model\0")
    }

    /// `bytes` as big-endian words, zero-padded.
    fn words(bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_be_bytes(w)
            })
            .collect()
    }

    /// A blob of `structure` tokens and the strings block `strings`.
    fn blob_with(structure: &[u32], strings: &[u8]) -> Vec<u8> {
        let struct_off = HEADER_LEN + 16;
        let strings_off = struct_off + 4 * structure.len();
        let total = strings_off + strings.len();
        let mut b = Vec::new();
        for w in [
            FDT_MAGIC,
            total as u32,
            struct_off as u32,
            strings_off as u32,
            HEADER_LEN as u32,
            17,
            16,
            0,
            strings.len() as u32,
            4 * structure.len() as u32,
        ] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&[0; 16]);
        for w in structure {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    /// A property after a subnode (found by fuzzing): properties precede
    /// subnodes, and the `fdt` crate panics on one that does not. Refused;
    /// the same property before the subnode is fine.
    #[test]
    fn property_after_a_subnode_is_refused() {
        let node_a = [FDT_BEGIN_NODE, u32::from_be_bytes(*b"a\0\0\0")];
        let prop = [FDT_PROP, 4, 0, 0x1234];
        let root = [FDT_BEGIN_NODE, 0];
        let mut late = root.to_vec();
        late.extend(node_a);
        late.push(FDT_END_NODE);
        late.extend(prop);
        late.extend([FDT_END_NODE, FDT_END]);
        let mut blob = blob_of(&late);
        assert_eq!(sanitize(&mut blob), Err(DtError::BadToken(20)));

        let mut early = root.to_vec();
        early.extend(prop);
        early.extend(node_a);
        early.extend([FDT_END_NODE, FDT_END_NODE, FDT_END]);
        let mut blob = blob_of(&early);
        assert!(sanitize(&mut blob).is_ok());
        let _ = parse(&blob);
    }

    /// Memory banks whose sizes add up past 2^64 (found by fuzzing) give a
    /// saturated total, not an overflow (a panic in a debug build).
    #[test]
    fn ram_total_saturates() {
        let mut f = facts("qemu-virt-gicv3-smp4.dtb");
        f.memory.push(Region {
            base: 0x1_0000_0000,
            size: u64::MAX - 0x1000,
        });
        assert_eq!(f.ram_bytes(), u64::MAX);
    }

    /// A GIC interrupt specifier whose number is past the INTID range (found
    /// by fuzzing: 32 + 0xffff_ffff overflowed) names no interrupt.
    #[test]
    fn interrupt_numbers_past_the_gic_are_no_interrupts() {
        let compatible = b"arm,armv8-timer\0";
        let mut structure = vec![FDT_BEGIN_NODE, 0, FDT_BEGIN_NODE];
        structure.extend(words(b"timer\0"));
        structure.extend([FDT_PROP, compatible.len() as u32, 0]);
        structure.extend(words(compatible));
        // Four PPIs, the last three past 31; then a valid one.
        structure.extend([FDT_PROP, 60, 11]);
        structure.extend([1, 13, 4, 1, u32::MAX, 4, 1, 16, 4, 0, 988, 4, 1, 11, 4]);
        structure.extend([FDT_END_NODE, FDT_END_NODE, FDT_END]);
        let mut blob = blob_with(&structure, b"compatible\0interrupts\0");
        sanitize(&mut blob).unwrap();
        let dt = fdt::Fdt::new(&blob).unwrap();
        let timer = dt.find_node("/timer").unwrap();
        assert_eq!(gic_intids(timer).as_slice(), &[29, 27]);
        assert!(parse(&blob).is_err(), "no GIC, no memory");
    }

    /// Boot arguments are read from /chosen and split into key=value options.
    #[test]
    fn bootargs_options() {
        let mut f = facts("qemu-virt-gicv3-smp4.dtb");
        assert_eq!(f.bootargs(), "");
        let text = b"console=x tandem.crash=panic";
        f.bootargs[..text.len()].copy_from_slice(text);
        assert_eq!(f.bootarg("tandem.crash"), Some("panic"));
        assert_eq!(f.bootarg("tandem"), None);
    }

    /// A blob that is not a DT names the magic it found.
    #[test]
    fn bad_magic() {
        let mut blob = vec![0u8; 64];
        assert_eq!(sanitize(&mut blob), Err(DtError::BadMagic(0)));
    }
}
