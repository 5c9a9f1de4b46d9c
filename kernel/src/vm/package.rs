//! The guest package: VM descriptions and their images, appended to the boot image.
//!
//! `cargo xtask` builds it from `platforms/<board>/vms.toml` and places it at
//! the first 4 KiB boundary after the hypervisor's in-memory end
//! (`__image_end`), growing the Image header's `image_size` over it, so one
//! file carries Tandem and every guest. All integers are little-endian.
//!
//! ```text
//! offset  size  header
//!      0     8  magic "TNDMPKG1"
//!      8     4  format version (4)
//!     12     4  number of VMs
//!     16     8  total package size in bytes (header, VM records, blobs)
//!     24     4  GIC version the guests' device trees describe (2 or 3; 0 means 3)
//!     28     4  number of channels (0..=MAX_CHANNELS)
//!     32    32  reserved (zero)
//!     64   ...  VM records, VM_RECORD_SIZE bytes each, then channel
//!               records, CHANNEL_RECORD_SIZE bytes each, then blobs (4 KiB aligned)
//!
//! VM record
//!      0    16  name, NUL-padded UTF-8
//!     16     8  RAM base (IPA)
//!     24     8  RAM size in bytes (2 MiB multiple)
//!     32     8  entry point (IPA) of vCPU 0
//!     40     8  x0 at entry (the DTB's IPA, or 0)
//!     48     4  vCPU count (1..=8)
//!     52     4  flags (FLAG_*)
//!     56     8  physical CPU of each vCPU (one byte each)
//!     64     4  console interrupt INTID (0: none)
//!     68     4  number of blobs used (0..=4)
//!     72    96  4 blobs of 24 bytes: package offset u64, size u64, load IPA u64
//!    168     4  number of passthrough devices (0..=8)
//!    172     4  reserved (zero)
//!    176   192  8 devices of 24 bytes: base u64 (IPA = physical address),
//!               size u64, physical INTID u32 (0: none), flags u32 (DEVICE_*)
//!    368     4  scheduling priority of its vCPUs (0..=255, higher first)
//!    372     4  CPU budget per period in µs (0: unlimited)
//!    376     4  budget period in µs (0 when unlimited)
//!    380     4  IPA of the VM's virtual PL011 (4 KiB aligned; 0: none, the
//!               hypercall console); with one, the console INTID is its SPI
//! ```
//!
//! ```text
//! Channel record
//!      0    16  name, NUL-padded UTF-8
//!     16     1  VM a (package index): a virtio channel's front-end
//!     17     1  VM b: a virtio channel's back-end
//!     18     2  reserved (zero)
//!     20     4  virtio device ID (0: a plain channel)
//!     24     8  shared region IPA, the same in both VMs (4 KiB aligned)
//!     32     8  shared region size (a non-zero 4 KiB multiple)
//!     40     4  the channel's interrupt (INTID) in VM a
//!     44     4  the channel's interrupt (INTID) in VM b
//!     48     8  virtio: the register window's IPA in VM a (0 otherwise)
//!     56     8  reserved (zero)
//! ```
//!
//! A channel is shared memory between two VMs plus a doorbell interrupt in
//! each (`kernel::channel`); a virtio channel also forwards VM a's accesses
//! to a virtio-mmio window to VM b.
//!
//! A passthrough device is a physical MMIO window the VM owns: Tandem maps it
//! at the same IPA in the VM's stage 2 and forwards its physical interrupt to
//! the VM as the same virtual INTID (`kernel::hyp::passthrough`).
//!
//! A VM with a virtual PL011 is *transparent*: its console is that UART
//! (`kernel::vm::vpl011`, a window Tandem traps), and Tandem's vendor
//! hypervisor service is hidden from it, as on bare hardware.
//!
//! The kernel decodes with [`Package::parse`], which checks every bound and
//! never panics; xtask encodes with [`encode`] (host only). Version 1 had no
//! device table (168-byte records), version 2 no scheduling fields (368-byte
//! records), version 3 no channels; all are refused.
#![forbid(unsafe_code)]

use core::fmt;

/// Package magic.
pub const MAGIC: [u8; 8] = *b"TNDMPKG1";
/// Format version.
pub const VERSION: u32 = 4;
/// Header size.
pub const HEADER_SIZE: usize = 64;
/// Size of one VM record.
pub const VM_RECORD_SIZE: usize = 384;
/// Offset of the GIC version in the header.
const GIC_AT: usize = 24;
/// Offset of the channel count in the header.
const CHANNELS_AT: usize = 28;
/// Offset of the scheduling fields in a VM record.
const SCHED_AT: usize = 368;
/// Blobs per VM.
pub const MAX_BLOBS: usize = 4;
/// vCPUs per VM.
pub const MAX_VCPUS: usize = 8;
/// VMs per package.
pub const MAX_VMS: usize = 8;
/// Longest VM name.
pub const NAME_LEN: usize = 16;
/// Passthrough devices per VM.
pub const MAX_DEVICES: usize = 8;
/// Offset of the device table in a VM record.
const DEVICES_AT: usize = 168;
/// Size of one device entry.
const DEVICE_SIZE: usize = 24;
/// Device windows are mapped in pages of this size.
pub const DEVICE_ALIGN: u64 = 4096;
/// Stage 2 covers a 32-bit IPA space: device windows end at or below this.
pub const IPA_LIMIT: u64 = 1 << 32;

/// Size of one channel record.
pub const CHANNEL_RECORD_SIZE: usize = 64;
/// Channels per package.
pub const MAX_CHANNELS: usize = 16;
/// Shared regions lie in this IPA window (normal memory above every VM's
/// RAM: a VM with a channel has its RAM below it).
pub const CHANNEL_WINDOW: (u64, u64) = (0xC000_0000, 0x1_0000_0000);

/// Device flag: the interrupt is edge-triggered (else level-sensitive, active high).
pub const DEVICE_EDGE: u32 = 1 << 0;

/// Flag: when this VM powers off or crashes, Tandem restarts it.
pub const FLAG_RESTART_ON_RESET: u32 = 1 << 0;
/// Flag: this VM receives console input first.
pub const FLAG_CONSOLE_FOCUS: u32 = 1 << 1;
/// Flag: when this VM crashes (guest-reported, watchdog, fault storm, fatal
/// exit), Tandem restarts it with a back-off; it stops on a guest power-off.
pub const FLAG_RESTART_ON_CRASH: u32 = 1 << 2;

/// A blob to copy into guest RAM at VM start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Blob {
    /// Offset of the bytes in the package.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
    /// Where it goes in the guest (IPA).
    pub load_ipa: u64,
}

/// A physical device window and its interrupt, owned by one VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// Base address: physical, and the same IPA in the VM (4 KiB aligned).
    pub base: u64,
    /// Length in bytes (a non-zero 4 KiB multiple).
    pub size: u64,
    /// Physical SPI (32..=1019), forwarded as the same virtual INTID; 0 for none.
    pub intid: u32,
    /// DEVICE_* bits.
    pub flags: u32,
}

impl Device {
    /// One past the window's last byte (parse checked it does not overflow).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `[base, base + size)` meets this window.
    pub fn overlaps(&self, base: u64, size: u64) -> bool {
        base < self.end() && self.base < base.saturating_add(size)
    }

    /// The interrupt is edge-triggered.
    pub fn edge(&self) -> bool {
        self.flags & DEVICE_EDGE != 0
    }
}

/// A channel between two VMs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelDesc {
    /// Name (NUL-padded).
    pub name: [u8; NAME_LEN],
    /// The two VMs (package indices); for virtio, a is the front-end.
    pub vms: [u8; 2],
    /// Virtio device ID, 0 for a plain channel.
    pub virtio_device: u32,
    /// Shared region IPA (the same in both VMs).
    pub ipa: u64,
    /// Shared region size.
    pub size: u64,
    /// The channel's interrupt in each VM.
    pub intids: [u32; 2],
    /// Virtio: the register window's IPA in VM a.
    pub window: u64,
}

impl ChannelDesc {
    /// The name as text.
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    /// Whether it carries a virtio device.
    pub fn is_virtio(&self) -> bool {
        self.virtio_device != 0
    }

    /// Which end (0 or 1) VM `vm` (package index) is, if any.
    pub fn end_of(&self, vm: usize) -> Option<usize> {
        self.vms.iter().position(|&v| usize::from(v) == vm)
    }
}

/// One VM, as described by the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmDesc {
    /// Name (NUL-padded).
    pub name: [u8; NAME_LEN],
    /// RAM base IPA.
    pub ram_ipa: u64,
    /// RAM size.
    pub ram_size: u64,
    /// vCPU 0 entry IPA.
    pub entry: u64,
    /// x0 at entry.
    pub x0: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// FLAG_* bits.
    pub flags: u32,
    /// Physical CPU index of each vCPU.
    pub pcpus: [u8; MAX_VCPUS],
    /// Console interrupt (INTID), 0 for none.
    pub console_intid: u32,
    /// Blobs in use.
    pub blob_count: u32,
    /// The blobs.
    pub blobs: [Blob; MAX_BLOBS],
    /// Passthrough devices in use.
    pub device_count: u32,
    /// The passthrough devices.
    pub devices: [Device; MAX_DEVICES],
    /// Scheduling priority of its vCPUs (higher runs first).
    pub priority: u8,
    /// CPU time per period in µs (0: unlimited).
    pub budget_us: u32,
    /// The budget's period in µs.
    pub period_us: u32,
    /// IPA of its virtual PL011's 4 KiB window; 0 for none.
    pub pl011_ipa: u64,
}

impl VmDesc {
    /// The name as text.
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    /// The blobs in use.
    pub fn blobs(&self) -> &[Blob] {
        &self.blobs[..(self.blob_count as usize).min(MAX_BLOBS)]
    }

    /// The passthrough devices in use.
    pub fn devices(&self) -> &[Device] {
        &self.devices[..(self.device_count as usize).min(MAX_DEVICES)]
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Its virtual PL011's window base, if it is transparent.
    pub fn pl011(&self) -> Option<u64> {
        (self.pl011_ipa != 0).then_some(self.pl011_ipa)
    }
}

/// Why a package was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageError {
    /// No package (wrong magic): Tandem boots with no VMs.
    Missing,
    /// Unknown format version.
    Version(u32),
    /// The package or a record extends past the bytes available.
    Truncated,
    /// VM `index` is invalid: the reason.
    BadVm(usize, &'static str),
    /// The header names a GIC version other than 2 or 3.
    GicVersion(u32),
    /// Channel `index` is invalid: the reason.
    BadChannel(usize, &'static str),
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "no guest package after the image"),
            Self::Version(v) => write!(f, "guest package format {v}, this Tandem reads {VERSION}"),
            Self::Truncated => write!(f, "guest package is truncated"),
            Self::BadVm(i, why) => write!(f, "guest package VM #{i}: {why}"),
            Self::GicVersion(v) => write!(f, "guest package is for GIC version {v}, not 2 or 3"),
            Self::BadChannel(i, why) => write!(f, "guest package channel #{i}: {why}"),
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// A validated package.
#[derive(Clone, Copy, Debug)]
pub struct Package<'a> {
    bytes: &'a [u8],
    vm_count: usize,
    channel_count: usize,
}

impl<'a> Package<'a> {
    /// The package's total size, read from a header prefix (to reserve its memory early).
    pub fn peek_size(header: &[u8]) -> Result<u64, PackageError> {
        if header.get(..8) != Some(&MAGIC[..]) {
            return Err(PackageError::Missing);
        }
        u64_at(header, 16).ok_or(PackageError::Truncated)
    }

    /// Validates `bytes` (which may extend past the package) as a package.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PackageError> {
        let total = Self::peek_size(bytes)?;
        let version = u32_at(bytes, 8).ok_or(PackageError::Truncated)?;
        if version != VERSION {
            return Err(PackageError::Version(version));
        }
        let total = usize::try_from(total).map_err(|_| PackageError::Truncated)?;
        let bytes = bytes.get(..total).ok_or(PackageError::Truncated)?;
        let vm_count = u32_at(bytes, 12).ok_or(PackageError::Truncated)? as usize;
        match u32_at(bytes, GIC_AT).ok_or(PackageError::Truncated)? {
            0 | 2 | 3 => {}
            v => return Err(PackageError::GicVersion(v)),
        }
        if vm_count > MAX_VMS {
            return Err(PackageError::BadVm(vm_count, "too many VMs"));
        }
        let channel_count = u32_at(bytes, CHANNELS_AT).ok_or(PackageError::Truncated)? as usize;
        if channel_count > MAX_CHANNELS {
            return Err(PackageError::BadChannel(channel_count, "too many channels"));
        }
        if HEADER_SIZE + vm_count * VM_RECORD_SIZE + channel_count * CHANNEL_RECORD_SIZE
            > bytes.len()
        {
            return Err(PackageError::Truncated);
        }
        let pkg = Self {
            bytes,
            vm_count,
            channel_count,
        };
        for i in 0..vm_count {
            let vm = pkg.vm(i)?;
            // A device belongs to one VM: no window or interrupt is given twice.
            for j in 0..i {
                let earlier = pkg.vm(j)?;
                for d in vm.devices() {
                    for e in earlier.devices() {
                        if d.overlaps(e.base, e.size) {
                            return Err(PackageError::BadVm(
                                i,
                                "a device window is given to another VM too",
                            ));
                        }
                        if d.intid != 0 && d.intid == e.intid {
                            return Err(PackageError::BadVm(
                                i,
                                "a device interrupt is given to another VM too",
                            ));
                        }
                    }
                }
            }
        }
        for i in 0..channel_count {
            pkg.channel(i)?;
        }
        Ok(pkg)
    }

    /// Number of channels.
    pub fn channel_count(&self) -> usize {
        self.channel_count
    }

    /// Channel `i`, validated against its two VMs.
    pub fn channel(&self, i: usize) -> Result<ChannelDesc, PackageError> {
        let bad = |why| PackageError::BadChannel(i, why);
        let at = HEADER_SIZE + self.vm_count * VM_RECORD_SIZE + i * CHANNEL_RECORD_SIZE;
        let r = self
            .bytes
            .get(at..at + CHANNEL_RECORD_SIZE)
            .ok_or(PackageError::Truncated)?;
        let word = |off| u64_at(r, off).unwrap_or(0);
        let half = |off| u32_at(r, off).unwrap_or(0);
        let mut c = ChannelDesc {
            vms: [r[16], r[17]],
            virtio_device: half(20),
            ipa: word(24),
            size: word(32),
            intids: [half(40), half(44)],
            window: word(48),
            ..ChannelDesc::default()
        };
        c.name.copy_from_slice(&r[..NAME_LEN]);
        let name_len = c.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        if name_len == 0 || core::str::from_utf8(&c.name[..name_len]).is_err() {
            return Err(bad("name is empty or not UTF-8"));
        }
        let [a, b] = c.vms.map(usize::from);
        if a == b || a >= self.vm_count || b >= self.vm_count {
            return Err(bad("it must join two different VMs of the package"));
        }
        let (lo, hi) = CHANNEL_WINDOW;
        if c.size == 0
            || !c.size.is_multiple_of(DEVICE_ALIGN)
            || !c.ipa.is_multiple_of(DEVICE_ALIGN)
            || c.ipa < lo
            || c.ipa.checked_add(c.size).is_none_or(|e| e > hi)
        {
            return Err(bad(
                "shared region must be 4 KiB pages in 0xc000_0000..0x1_0000_0000",
            ));
        }
        for (end, vm) in [a, b].into_iter().enumerate() {
            let d = self.vm(vm)?;
            if d.ram_ipa + d.ram_size > lo {
                return Err(bad(
                    "a VM with a channel must have its RAM below 0xc000_0000",
                ));
            }
            let intid = c.intids[end];
            if !(32..=1019).contains(&intid)
                || intid == d.console_intid
                || d.devices().iter().any(|dev| dev.intid == intid)
            {
                return Err(bad("each interrupt must be a free SPI of its VM"));
            }
        }
        if c.is_virtio() {
            let front = self.vm(a)?;
            if !c.window.is_multiple_of(0x200)
                || c.window.checked_add(0x200).is_none_or(|e| e > lo)
                || front
                    .devices()
                    .iter()
                    .any(|d| d.overlaps(c.window & !0xfff, 0x1000))
                || (c.window < front.ram_ipa + front.ram_size && c.window + 0x200 > front.ram_ipa)
            {
                return Err(bad(
                    "virtio window must be 0x200 bytes of the front-end's free MMIO",
                ));
            }
        } else if c.window != 0 {
            return Err(bad("a plain channel has no virtio window"));
        }
        for j in 0..i {
            let e = self.channel(j)?;
            if c.ipa < e.ipa + e.size && e.ipa < c.ipa + c.size {
                return Err(bad("two channels share memory"));
            }
            for (end, vm) in c.vms.iter().enumerate() {
                if let Some(other) = e.end_of(usize::from(*vm)) {
                    if e.intids[other] == c.intids[end] {
                        return Err(bad("two channels share an interrupt in a VM"));
                    }
                    if c.is_virtio()
                        && e.is_virtio()
                        && end == 0
                        && other == 0
                        && e.window == c.window
                    {
                        return Err(bad("two virtio devices share a window"));
                    }
                }
            }
        }
        Ok(c)
    }

    /// Number of VMs.
    pub fn vm_count(&self) -> usize {
        self.vm_count
    }

    /// The GIC version (2 or 3) the guests' device trees describe: the
    /// machine's GIC must be the same, or the guests would not find theirs.
    pub fn gic_version(&self) -> u8 {
        match u32_at(self.bytes, GIC_AT) {
            Some(2) => 2,
            _ => 3,
        }
    }

    /// The package bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// VM `i`, validated.
    pub fn vm(&self, i: usize) -> Result<VmDesc, PackageError> {
        let bad = |why| PackageError::BadVm(i, why);
        let r = self
            .bytes
            .get(HEADER_SIZE + i * VM_RECORD_SIZE..HEADER_SIZE + (i + 1) * VM_RECORD_SIZE)
            .ok_or(PackageError::Truncated)?;
        let word = |off| u64_at(r, off).unwrap_or(0);
        let half = |off| u32_at(r, off).unwrap_or(0);
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(&r[..NAME_LEN]);
        let mut pcpus = [0u8; MAX_VCPUS];
        pcpus.copy_from_slice(&r[56..64]);
        let mut d = VmDesc {
            name,
            ram_ipa: word(16),
            ram_size: word(24),
            entry: word(32),
            x0: word(40),
            vcpus: half(48),
            flags: half(52),
            pcpus,
            console_intid: half(64),
            blob_count: half(68),
            blobs: [Blob::default(); MAX_BLOBS],
            device_count: half(DEVICES_AT),
            devices: [Device::default(); MAX_DEVICES],
            priority: 0,
            budget_us: half(SCHED_AT + 4),
            period_us: half(SCHED_AT + 8),
            pl011_ipa: u64::from(half(SCHED_AT + 12)),
        };
        d.priority = u8::try_from(half(SCHED_AT)).map_err(|_| bad("priority must be 0..=255"))?;
        if d.budget_us > d.period_us || (d.budget_us == 0) != (d.period_us == 0) {
            return Err(bad("budget must be 1..=period µs, or both 0"));
        }
        let name_len = d.name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        if name_len == 0 || core::str::from_utf8(&d.name[..name_len]).is_err() {
            return Err(bad("name is empty or not UTF-8"));
        }
        if d.vcpus == 0 || d.vcpus as usize > MAX_VCPUS {
            return Err(bad("vCPU count must be 1..=8"));
        }
        if d.ram_size == 0
            || !d.ram_size.is_multiple_of(2 << 20)
            || !d.ram_ipa.is_multiple_of(2 << 20)
        {
            return Err(bad("RAM base and size must be non-zero 2 MiB multiples"));
        }
        let ram_end = d
            .ram_ipa
            .checked_add(d.ram_size)
            .ok_or(bad("RAM range overflows"))?;
        if ram_end > 1 << 32 {
            return Err(bad("RAM must lie below 4 GiB of IPA"));
        }
        let in_ram =
            |a: u64, len: u64| a >= d.ram_ipa && a.checked_add(len).is_some_and(|e| e <= ram_end);
        if !in_ram(d.entry, 4) {
            return Err(bad("entry point outside the VM's RAM"));
        }
        if d.blob_count as usize > MAX_BLOBS {
            return Err(bad("more than 4 blobs"));
        }
        for b in 0..d.blob_count as usize {
            let at = 72 + b * 24;
            let blob = Blob {
                offset: word(at),
                size: word(at + 8),
                load_ipa: word(at + 16),
            };
            let end = blob
                .offset
                .checked_add(blob.size)
                .ok_or(bad("blob range overflows"))?;
            if end > self.bytes.len() as u64 || blob.offset < HEADER_SIZE as u64 {
                return Err(bad("blob lies outside the package"));
            }
            if !in_ram(blob.load_ipa, blob.size) {
                return Err(bad("blob does not fit in the VM's RAM"));
            }
            d.blobs[b] = blob;
        }
        if d.device_count as usize > MAX_DEVICES {
            return Err(bad("more than 8 passthrough devices"));
        }
        for n in 0..d.device_count as usize {
            let at = DEVICES_AT + 8 + n * DEVICE_SIZE;
            let dev = Device {
                base: word(at),
                size: word(at + 8),
                intid: half(at + 16),
                flags: half(at + 20),
            };
            if dev.size == 0
                || !dev.size.is_multiple_of(DEVICE_ALIGN)
                || !dev.base.is_multiple_of(DEVICE_ALIGN)
            {
                return Err(bad("device window must be a non-empty run of 4 KiB pages"));
            }
            if dev.base.checked_add(dev.size).is_none_or(|e| e > IPA_LIMIT) {
                return Err(bad("device window must lie below 4 GiB of IPA"));
            }
            if dev.overlaps(d.ram_ipa, d.ram_size) {
                return Err(bad("device window overlaps the VM's RAM"));
            }
            if dev.intid != 0 && !(32..=1019).contains(&dev.intid) {
                return Err(bad("device interrupt must be an SPI (INTID 32..=1019)"));
            }
            if dev.intid != 0 && dev.intid == d.console_intid {
                return Err(bad("device interrupt is the VM's console interrupt"));
            }
            if dev.flags & !DEVICE_EDGE != 0 {
                return Err(bad("unknown device flags"));
            }
            if d.devices[..n]
                .iter()
                .any(|e| e.overlaps(dev.base, dev.size) || (dev.intid != 0 && e.intid == dev.intid))
            {
                return Err(bad("two devices share a window or an interrupt"));
            }
            d.devices[n] = dev;
        }
        if let Some(base) = d.pl011() {
            if !base.is_multiple_of(DEVICE_ALIGN) {
                return Err(bad("virtual PL011 window must be 4 KiB aligned"));
            }
            if base < ram_end && d.ram_ipa < base + DEVICE_ALIGN {
                return Err(bad("virtual PL011 window overlaps the VM's RAM"));
            }
            if d.devices().iter().any(|e| e.overlaps(base, DEVICE_ALIGN)) {
                return Err(bad("virtual PL011 window overlaps a passthrough device"));
            }
            if !(32..=1019).contains(&d.console_intid) {
                return Err(bad(
                    "virtual PL011 interrupt must be an SPI (INTID 32..=1019)",
                ));
            }
        }
        Ok(d)
    }

    /// The bytes of a blob of a validated VM.
    pub fn blob_bytes(&self, blob: &Blob) -> &'a [u8] {
        self.bytes
            .get(blob.offset as usize..(blob.offset + blob.size) as usize)
            .unwrap_or(&[])
    }
}

/// A VM to encode (host side).
#[cfg(not(target_os = "none"))]
#[derive(Clone, Debug, Default)]
pub struct VmSpec {
    /// Name (≤ 15 bytes).
    pub name: alloc::string::String,
    /// RAM base IPA.
    pub ram_ipa: u64,
    /// RAM size.
    pub ram_size: u64,
    /// Entry IPA.
    pub entry: u64,
    /// x0 at entry.
    pub x0: u64,
    /// Physical CPU of each vCPU (its length is the vCPU count).
    pub pcpus: alloc::vec::Vec<u8>,
    /// FLAG_* bits.
    pub flags: u32,
    /// Console interrupt INTID.
    pub console_intid: u32,
    /// (contents, load IPA) of each blob.
    pub blobs: alloc::vec::Vec<(alloc::vec::Vec<u8>, u64)>,
    /// Passthrough devices.
    pub devices: alloc::vec::Vec<Device>,
    /// Scheduling priority.
    pub priority: u8,
    /// (budget µs, period µs), if limited.
    pub budget: Option<(u32, u32)>,
    /// IPA of a virtual PL011 (the VM is transparent), if any.
    pub pl011: Option<u64>,
}

/// Encodes VMs into a package for a GICv3 machine (host side: used by xtask and tests).
#[cfg(not(target_os = "none"))]
pub fn encode(vms: &[VmSpec]) -> alloc::vec::Vec<u8> {
    encode_for_gic(vms, 3)
}

/// Encodes VMs into a package whose guests' device trees describe a GIC of
/// version `gic` (2 or 3).
#[cfg(not(target_os = "none"))]
pub fn encode_for_gic(vms: &[VmSpec], gic: u8) -> alloc::vec::Vec<u8> {
    encode_with_channels(vms, &[], gic)
}

/// Encodes VMs and the channels between them into a package for a GIC of
/// version `gic` (host side).
#[cfg(not(target_os = "none"))]
pub fn encode_with_channels(
    vms: &[VmSpec],
    channels: &[ChannelDesc],
    gic: u8,
) -> alloc::vec::Vec<u8> {
    use alloc::vec::Vec;
    let records_end =
        HEADER_SIZE + vms.len() * VM_RECORD_SIZE + channels.len() * CHANNEL_RECORD_SIZE;
    let mut blob_area: Vec<u8> = Vec::new();
    let mut records: Vec<u8> = Vec::new();
    let align = |n: usize| n.next_multiple_of(4096);
    let blobs_start = align(records_end);
    for vm in vms {
        let mut r = [0u8; VM_RECORD_SIZE];
        let name = vm.name.as_bytes();
        r[..name.len().min(NAME_LEN - 1)].copy_from_slice(&name[..name.len().min(NAME_LEN - 1)]);
        r[16..24].copy_from_slice(&vm.ram_ipa.to_le_bytes());
        r[24..32].copy_from_slice(&vm.ram_size.to_le_bytes());
        r[32..40].copy_from_slice(&vm.entry.to_le_bytes());
        r[40..48].copy_from_slice(&vm.x0.to_le_bytes());
        r[48..52].copy_from_slice(&(vm.pcpus.len() as u32).to_le_bytes());
        r[52..56].copy_from_slice(&vm.flags.to_le_bytes());
        for (i, p) in vm.pcpus.iter().take(MAX_VCPUS).enumerate() {
            r[56 + i] = *p;
        }
        r[64..68].copy_from_slice(&vm.console_intid.to_le_bytes());
        r[68..72].copy_from_slice(&(vm.blobs.len() as u32).to_le_bytes());
        for (i, (data, ipa)) in vm.blobs.iter().take(MAX_BLOBS).enumerate() {
            let offset = blobs_start + blob_area.len();
            let at = 72 + i * 24;
            r[at..at + 8].copy_from_slice(&(offset as u64).to_le_bytes());
            r[at + 8..at + 16].copy_from_slice(&(data.len() as u64).to_le_bytes());
            r[at + 16..at + 24].copy_from_slice(&ipa.to_le_bytes());
            blob_area.extend_from_slice(data);
            blob_area.resize(align(blob_area.len()), 0);
        }
        r[DEVICES_AT..DEVICES_AT + 4].copy_from_slice(&(vm.devices.len() as u32).to_le_bytes());
        for (i, dev) in vm.devices.iter().take(MAX_DEVICES).enumerate() {
            let at = DEVICES_AT + 8 + i * DEVICE_SIZE;
            r[at..at + 8].copy_from_slice(&dev.base.to_le_bytes());
            r[at + 8..at + 16].copy_from_slice(&dev.size.to_le_bytes());
            r[at + 16..at + 20].copy_from_slice(&dev.intid.to_le_bytes());
            r[at + 20..at + 24].copy_from_slice(&dev.flags.to_le_bytes());
        }
        r[SCHED_AT..SCHED_AT + 4].copy_from_slice(&u32::from(vm.priority).to_le_bytes());
        let (budget, period) = vm.budget.unwrap_or((0, 0));
        r[SCHED_AT + 4..SCHED_AT + 8].copy_from_slice(&budget.to_le_bytes());
        r[SCHED_AT + 8..SCHED_AT + 12].copy_from_slice(&period.to_le_bytes());
        let pl011 = vm.pl011.map_or(0, |ipa| ipa as u32);
        r[SCHED_AT + 12..SCHED_AT + 16].copy_from_slice(&pl011.to_le_bytes());
        records.extend_from_slice(&r);
    }
    for c in channels {
        let mut r = [0u8; CHANNEL_RECORD_SIZE];
        r[..NAME_LEN].copy_from_slice(&c.name);
        r[16] = c.vms[0];
        r[17] = c.vms[1];
        r[20..24].copy_from_slice(&c.virtio_device.to_le_bytes());
        r[24..32].copy_from_slice(&c.ipa.to_le_bytes());
        r[32..40].copy_from_slice(&c.size.to_le_bytes());
        r[40..44].copy_from_slice(&c.intids[0].to_le_bytes());
        r[44..48].copy_from_slice(&c.intids[1].to_le_bytes());
        r[48..56].copy_from_slice(&c.window.to_le_bytes());
        records.extend_from_slice(&r);
    }
    let total = blobs_start + blob_area.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(vms.len() as u32).to_le_bytes());
    out.extend_from_slice(&(total as u64).to_le_bytes());
    out.extend_from_slice(&u32::from(gic).to_le_bytes());
    out.extend_from_slice(&(channels.len() as u32).to_le_bytes());
    out.resize(HEADER_SIZE, 0);
    out.extend_from_slice(&records);
    out.resize(blobs_start, 0);
    out.extend_from_slice(&blob_area);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// The header carries the guests' GIC version; a version other than 2 or 3 is refused.
    #[test]
    fn gic_version_round_trip_and_check() {
        assert_eq!(Package::parse(&encode(&[spec()])).unwrap().gic_version(), 3);
        let mut v2 = encode_for_gic(&[spec()], 2);
        assert_eq!(Package::parse(&v2).unwrap().gic_version(), 2);
        v2[GIC_AT] = 0;
        assert_eq!(Package::parse(&v2).unwrap().gic_version(), 3, "0 means 3");
        v2[GIC_AT] = 4;
        assert_eq!(
            Package::parse(&v2).unwrap_err(),
            PackageError::GicVersion(4)
        );
    }

    fn spec() -> VmSpec {
        VmSpec {
            name: "rtos".into(),
            ram_ipa: 0x4000_0000,
            ram_size: 16 << 20,
            entry: 0x4008_0000,
            x0: 0x4000_0000,
            pcpus: vec![2, 3],
            flags: FLAG_CONSOLE_FOCUS,
            console_intid: 48,
            blobs: vec![
                (vec![0xaa; 5000], 0x4008_0000),
                (vec![0xd0, 0x0d], 0x4000_0000),
            ],
            devices: vec![RTC],
            priority: 7,
            budget: Some((300, 1000)),
            pl011: None,
        }
    }

    const RTC: Device = Device {
        base: 0x0901_0000,
        size: 0x1000,
        intid: 34,
        flags: 0,
    };

    /// A second VM with different RAM contents and no devices.
    fn other() -> VmSpec {
        VmSpec {
            name: "other".into(),
            pcpus: vec![1],
            flags: 0,
            devices: vec![],
            ..spec()
        }
    }

    fn vm_err(specs: &[VmSpec]) -> PackageError {
        Package::parse(&encode(specs)).unwrap_err()
    }

    /// Budgets must fit their period and come with one; priorities are a byte.
    #[test]
    fn bad_scheduling_fields() {
        for budget in [Some((0, 1000)), Some((1001, 1000)), Some((5, 0))] {
            let err = vm_err(&[VmSpec { budget, ..spec() }]);
            assert_eq!(
                err,
                PackageError::BadVm(0, "budget must be 1..=period µs, or both 0")
            );
        }
        let mut bytes = encode(&[spec()]);
        bytes[HEADER_SIZE + SCHED_AT + 1] = 1;
        assert_eq!(
            Package::parse(&bytes).unwrap_err(),
            PackageError::BadVm(0, "priority must be 0..=255")
        );
    }

    /// What encode writes, parse reads back.
    #[test]
    fn round_trip() {
        let bytes = encode(&[spec()]);
        let pkg = Package::parse(&bytes).unwrap();
        assert_eq!(pkg.vm_count(), 1);
        let vm = pkg.vm(0).unwrap();
        assert_eq!(vm.name(), "rtos");
        assert_eq!(vm.vcpus, 2);
        assert_eq!(&vm.pcpus[..2], &[2, 3]);
        assert!(vm.has(FLAG_CONSOLE_FOCUS));
        assert_eq!(vm.blobs().len(), 2);
        assert_eq!(pkg.blob_bytes(&vm.blobs()[0]), &[0xaa; 5000][..]);
        assert_eq!(vm.blobs()[1].load_ipa, 0x4000_0000);
        assert_eq!(vm.blobs()[0].offset % 4096, 0);
        assert_eq!(vm.devices(), &[RTC]);
        assert_eq!((vm.priority, vm.budget_us, vm.period_us), (7, 300, 1000));
        assert!(!vm.devices()[0].edge());
    }

    /// A virtual PL011 round-trips; its window and SPI are checked.
    #[test]
    fn virtual_pl011() {
        let uart = VmSpec {
            pl011: Some(0x0900_0000),
            console_intid: 33,
            ..spec()
        };
        let bytes = encode(core::slice::from_ref(&uart));
        let vm = Package::parse(&bytes).unwrap().vm(0).unwrap();
        assert_eq!((vm.pl011(), vm.console_intid), (Some(0x0900_0000), 33));
        assert_eq!(
            Package::parse(&encode(&[spec()]))
                .unwrap()
                .vm(0)
                .unwrap()
                .pl011(),
            None
        );
        let cases: [(VmSpec, &str); 4] = [
            (
                VmSpec {
                    pl011: Some(0x0900_0800),
                    ..uart.clone()
                },
                "virtual PL011 window must be 4 KiB aligned",
            ),
            (
                VmSpec {
                    pl011: Some(0x4000_0000),
                    ..uart.clone()
                },
                "virtual PL011 window overlaps the VM's RAM",
            ),
            (
                VmSpec {
                    pl011: Some(RTC.base),
                    ..uart.clone()
                },
                "virtual PL011 window overlaps a passthrough device",
            ),
            (
                VmSpec {
                    console_intid: 27,
                    ..uart
                },
                "virtual PL011 interrupt must be an SPI (INTID 32..=1019)",
            ),
        ];
        for (s, why) in cases {
            assert_eq!(vm_err(&[s]), PackageError::BadVm(0, why));
        }
    }

    /// A package of format version 1 (or any other) is refused by version, not misread.
    #[test]
    fn old_version_refused() {
        let mut bytes = encode(&[spec()]);
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(
            Package::parse(&bytes).unwrap_err(),
            PackageError::Version(1)
        );
    }

    /// Device records are checked: alignment, size, IPA range, RAM, INTID, flags, duplicates.
    #[test]
    fn bad_device_records() {
        let cases: [(Device, &str); 9] = [
            (
                Device {
                    base: 0x0901_0800,
                    ..RTC
                },
                "device window must be a non-empty run of 4 KiB pages",
            ),
            (
                Device { size: 0, ..RTC },
                "device window must be a non-empty run of 4 KiB pages",
            ),
            (
                Device {
                    size: 0x1800,
                    ..RTC
                },
                "device window must be a non-empty run of 4 KiB pages",
            ),
            (
                Device {
                    base: 0xffff_f000,
                    size: 0x2000,
                    ..RTC
                },
                "device window must lie below 4 GiB of IPA",
            ),
            (
                Device {
                    base: u64::MAX - 0xfff,
                    ..RTC
                },
                "device window must lie below 4 GiB of IPA",
            ),
            (
                Device {
                    base: 0x40ff_f000,
                    size: 0x2000,
                    ..RTC
                },
                "device window overlaps the VM's RAM",
            ),
            (
                Device { intid: 27, ..RTC },
                "device interrupt must be an SPI (INTID 32..=1019)",
            ),
            (
                Device { intid: 48, ..RTC },
                "device interrupt is the VM's console interrupt",
            ),
            (Device { flags: 0x80, ..RTC }, "unknown device flags"),
        ];
        for (dev, why) in cases {
            let mut s = spec();
            s.devices = vec![dev];
            assert_eq!(vm_err(&[s]), PackageError::BadVm(0, why), "{dev:?}");
        }
        let mut s = spec();
        s.devices = vec![
            RTC,
            Device {
                base: 0x0902_0000,
                ..RTC
            },
        ];
        assert_eq!(
            vm_err(&[s]),
            PackageError::BadVm(0, "two devices share a window or an interrupt")
        );
        // No interrupt at all is fine; an edge interrupt decodes as such.
        let mut s = spec();
        s.devices = vec![
            Device { intid: 0, ..RTC },
            Device {
                base: 0x0a00_0000,
                intid: 40,
                flags: DEVICE_EDGE,
                ..RTC
            },
        ];
        let bytes = encode(&[s]);
        let vm = Package::parse(&bytes).unwrap().vm(0).unwrap();
        assert_eq!(vm.devices().len(), 2);
        assert!(vm.devices()[1].edge());
        // More than eight devices in the count.
        let mut bytes = encode(&[spec()]);
        let at = HEADER_SIZE + DEVICES_AT;
        bytes[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(
            Package::parse(&bytes).unwrap_err(),
            PackageError::BadVm(0, "more than 8 passthrough devices")
        );
    }

    /// A device window or interrupt given to two VMs is refused.
    #[test]
    fn device_in_two_vms() {
        let mut o = other();
        o.devices = vec![Device { intid: 40, ..RTC }];
        assert_eq!(
            vm_err(&[spec(), o]),
            PackageError::BadVm(1, "a device window is given to another VM too")
        );
        let mut o = other();
        o.devices = vec![Device {
            base: 0x0a00_0000,
            ..RTC
        }];
        assert_eq!(
            vm_err(&[spec(), o]),
            PackageError::BadVm(1, "a device interrupt is given to another VM too")
        );
        let mut o = other();
        o.devices = vec![Device {
            base: 0x0a00_0000,
            intid: 40,
            ..RTC
        }];
        assert_eq!(Package::parse(&encode(&[spec(), o])).unwrap().vm_count(), 2);
    }

    /// Every truncation of a package is an error, never a panic.
    #[test]
    fn truncations_are_errors() {
        let bytes = encode(&[spec(), other()]);
        for len in 0..bytes.len() {
            assert!(Package::parse(&bytes[..len]).is_err(), "len {len}");
        }
    }

    /// A blob that would land outside the VM's RAM is rejected with the reason.
    #[test]
    fn blob_outside_ram() {
        let mut s = spec();
        s.blobs[0].1 = 0x4100_0000 - 100;
        let err = Package::parse(&encode(&[s])).unwrap_err();
        assert_eq!(
            err,
            PackageError::BadVm(0, "blob does not fit in the VM's RAM")
        );
    }

    /// Entry points, vCPU counts and RAM sizes are checked.
    #[test]
    fn bad_fields() {
        let mut s = spec();
        s.entry = 0x1000;
        assert!(matches!(
            Package::parse(&encode(&[s])),
            Err(PackageError::BadVm(0, _))
        ));
        let mut s = spec();
        s.pcpus = vec![];
        assert!(matches!(
            Package::parse(&encode(&[s])),
            Err(PackageError::BadVm(0, _))
        ));
        let mut s = spec();
        s.ram_size = 3 << 20;
        assert!(matches!(
            Package::parse(&encode(&[s])),
            Err(PackageError::BadVm(0, _))
        ));
    }

    /// A virtio channel from `other` (front, VM 1) to `spec` (back, VM 0).
    fn net() -> ChannelDesc {
        let mut name = [0u8; NAME_LEN];
        name[..9].copy_from_slice(b"modem-net");
        ChannelDesc {
            name,
            vms: [1, 0],
            virtio_device: 1,
            ipa: 0xC000_0000,
            size: 1 << 20,
            intids: [95, 94],
            window: 0x0a00_0000,
        }
    }

    fn channel_err(c: ChannelDesc) -> PackageError {
        Package::parse(&encode_with_channels(&[spec(), other()], &[c], 3)).unwrap_err()
    }

    /// Channels round-trip, and each end finds itself.
    #[test]
    fn channels_round_trip() {
        let plain = ChannelDesc {
            virtio_device: 0,
            window: 0,
            ipa: 0xC010_0000,
            intids: [93, 93],
            ..net()
        };
        let bytes = encode_with_channels(&[spec(), other()], &[net(), plain], 3);
        let pkg = Package::parse(&bytes).unwrap();
        assert_eq!(pkg.channel_count(), 2);
        assert_eq!(pkg.channel(0), Ok(net()));
        assert_eq!(pkg.channel(1), Ok(plain));
        let c = pkg.channel(0).unwrap();
        assert_eq!(
            (c.name(), c.end_of(1), c.end_of(0), c.end_of(2)),
            ("modem-net", Some(0), Some(1), None)
        );
        // The VMs' blobs are still where their records say.
        let vm = pkg.vm(0).unwrap();
        assert_eq!(pkg.blob_bytes(&vm.blobs()[0]), &[0xaa; 5000][..]);
    }

    /// Every malformed channel record is refused with its reason.
    #[test]
    fn bad_channel_records() {
        let cases = [
            (
                ChannelDesc {
                    vms: [0, 0],
                    ..net()
                },
                "it must join two different VMs of the package",
            ),
            (
                ChannelDesc {
                    vms: [0, 2],
                    ..net()
                },
                "it must join two different VMs of the package",
            ),
            (
                ChannelDesc {
                    ipa: 0x8000_0000,
                    ..net()
                },
                "shared region must be 4 KiB pages in 0xc000_0000..0x1_0000_0000",
            ),
            (
                ChannelDesc {
                    ipa: 0xC000_0800,
                    ..net()
                },
                "shared region must be 4 KiB pages in 0xc000_0000..0x1_0000_0000",
            ),
            (
                ChannelDesc { size: 0, ..net() },
                "shared region must be 4 KiB pages in 0xc000_0000..0x1_0000_0000",
            ),
            (
                ChannelDesc {
                    ipa: 0xFFFF_F000,
                    size: 0x2000,
                    ..net()
                },
                "shared region must be 4 KiB pages in 0xc000_0000..0x1_0000_0000",
            ),
            (
                ChannelDesc {
                    intids: [48, 94],
                    ..net()
                },
                "each interrupt must be a free SPI of its VM",
            ),
            (
                ChannelDesc {
                    intids: [95, 34],
                    ..net()
                },
                "each interrupt must be a free SPI of its VM",
            ),
            (
                ChannelDesc {
                    intids: [16, 94],
                    ..net()
                },
                "each interrupt must be a free SPI of its VM",
            ),
            (
                ChannelDesc {
                    window: 0x0a00_0100,
                    ..net()
                },
                "virtio window must be 0x200 bytes of the front-end's free MMIO",
            ),
            (
                ChannelDesc {
                    window: 0x4000_0000,
                    ..net()
                },
                "virtio window must be 0x200 bytes of the front-end's free MMIO",
            ),
            (
                ChannelDesc {
                    virtio_device: 0,
                    ..net()
                },
                "a plain channel has no virtio window",
            ),
        ];
        for (c, why) in cases {
            assert_eq!(channel_err(c), PackageError::BadChannel(0, why), "{c:?}");
        }
        let mut big = spec();
        big.ram_size = 0x8000_0000 + (2 << 20);
        big.blobs.clear();
        let err = Package::parse(&encode_with_channels(&[big, other()], &[net()], 3)).unwrap_err();
        assert_eq!(
            err,
            PackageError::BadChannel(0, "a VM with a channel must have its RAM below 0xc000_0000")
        );
        // Two channels may not share memory, an interrupt in a VM, or a window.
        let twins = [
            (
                ChannelDesc {
                    window: 0x0a00_0200,
                    intids: [93, 92],
                    ..net()
                },
                "two channels share memory",
            ),
            (
                ChannelDesc {
                    ipa: 0xC010_0000,
                    window: 0x0a00_0200,
                    ..net()
                },
                "two channels share an interrupt in a VM",
            ),
            (
                ChannelDesc {
                    ipa: 0xC010_0000,
                    intids: [93, 92],
                    ..net()
                },
                "two virtio devices share a window",
            ),
        ];
        for (twin, why) in twins {
            let bytes = encode_with_channels(&[spec(), other()], &[net(), twin], 3);
            assert_eq!(
                Package::parse(&bytes).unwrap_err(),
                PackageError::BadChannel(1, why)
            );
        }
    }

    /// Random garbage after a valid magic never panics the parser.
    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_u64;
        // Header, both VM records (device tables included) and the channel record.
        let span = HEADER_SIZE + 2 * VM_RECORD_SIZE + CHANNEL_RECORD_SIZE;
        for _ in 0..4000 {
            let mut bytes = encode_with_channels(&[spec(), other()], &[net()], 3);
            for _ in 0..8 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (seed >> 33) as usize % span;
                bytes[i] = (seed >> 24) as u8;
            }
            if let Ok(p) = Package::parse(&bytes) {
                for i in 0..p.channel_count() {
                    let _ = p.channel(i);
                }
                for i in 0..p.vm_count() {
                    let _ = p.vm(i).map(|vm| {
                        let devices = vm.devices().iter().map(|d| d.end()).max();
                        let blobs = vm
                            .blobs()
                            .iter()
                            .map(|b| p.blob_bytes(b).len())
                            .sum::<usize>();
                        (devices, blobs)
                    });
                }
            }
        }
    }
}
