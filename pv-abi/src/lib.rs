//! Tandem hypercall ABI: the contract between the Tandem microhypervisor and its guests.
//!
//! Tandem runs at EL2 on ARMv8-A and hosts paravirtualized guests at EL1 (Linux 6.12 and a Rust
//! RTOS). This crate is the single source of truth for the interface between them: function
//! IDs, register layouts, status codes, statistics and discovery values. The hypervisor decodes
//! guest calls with [`Call::decode`]; Rust guests issue them with [`Client`] (or the [`guest`]
//! module); C guests include `include/tandem_abi.h`, which a golden test generates from the
//! constants here, so the two languages cannot drift.
//!
//! # Crate map
//!
//! | Module      | Contents                                                              |
//! |-------------|-----------------------------------------------------------------------|
//! | [`smccc`]   | [`FunctionId`] field decoding, SMCCC architecture and discovery IDs  |
//! | [`psci`]    | PSCI function IDs and return codes (Tandem emulates PSCI 1.1)        |
//! | [`call`]    | [`HypercallId`], [`Call`] (total decoder), [`HvcArgs`], [`HvcRet`], [`VmInfo`] |
//! | [`status`]  | [`Status`], the signed result code in `x0`                           |
//! | [`version`] | [`AbiVersion`] and [`ABI_VERSION`], the version this crate speaks    |
//! | [`console`] | console byte packing ([`pack_bytes`], [`unpack_bytes`], [`ConsoleChunk`]) |
//! | [`stats`]   | [`StatId`] and the stable statistic names                            |
//! | [`uuid`]    | [`Uuid`], [`TANDEM_UUID`] and its register form                      |
//! | [`virtio`]  | channels and forwarded virtio-mmio: [`virtio::MmioAccess`], [`virtio::VirtioPoll`] |
//! | [`ring`]    | the message ring in a channel's shared memory: [`ring::Producer`], [`ring::Consumer`] |
//! | [`client`]  | [`Client`]: every guest wrapper over an abstract [`Conduit`]; [`ConsoleWriter`] |
//! | [`guest`]   | feature `guest`, bare-metal AArch64 only: [`guest::hvc_call`] and free wrappers |
//!
//! The crate is `no_std`, has no dependencies and forbids `unsafe` everywhere except the one
//! `hvc #0` in [`guest::hvc_call`]. The [`guest`] module is compiled only with the `guest`
//! feature on a bare-metal AArch64 target (`aarch64-unknown-none`), but documented on every
//! target, so `cargo doc -p pv-abi` shows everything a porter uses.
//!
//! # Porting guide
//!
//! ## Calling convention
//!
//! Tandem uses the SMC Calling Convention v1.1 (Arm DEN0028) with `hvc #0`, issued from EL1:
//!
//! | Register  | On entry                        | On return                               |
//! |-----------|---------------------------------|-----------------------------------------|
//! | `x0`      | function ID (only `w0` is read) | [`Status`] (signed), or `w0` for SMC32  |
//! | `x1..x3`  | arguments                       | results                                 |
//! | `x4..x7`  | arguments                       | preserved                               |
//! | `x8..x30`, `sp`, FP/SIMD, system registers | —  | preserved                          |
//!
//! Unused argument registers should be zero; ABI 1.0 ignores them, and a later minor version
//! may give them a meaning for which zero keeps the old behaviour. A guest `smc #0` is trapped
//! and served exactly like `hvc #0` (so firmware-style PSCI calls work too), but `hvc` is the
//! documented conduit. All calls are fast (atomic) calls.
//!
//! ## Discovery
//!
//! Use the standard SMCCC vendor-specific hypervisor service (OEN 6) to find Tandem:
//!
//! 1. Make sure an HVC conduit exists (the device tree has a `compatible = "tandem,hypervisor"`
//!    node, [`DT_COMPATIBLE`], or `psci { method = "hvc"; }`). Without EL2, `hvc` is undefined.
//! 2. `Call UID`: `w0 = 0x8600_FF01` ([`smccc::VENDOR_HYP_CALL_UID`]). Tandem returns its UUID
//!    `817a8793-3da7-4bed-a672-3c9608f510ec` in `w0..w3` as little-endian words of the RFC 4122
//!    bytes: `w0 = 0x93877a81`, `w1 = 0xed4ba73d`, `w2 = 0x963c72a6`, `w3 = 0xec10f508`
//!    ([`TANDEM_UUID_REGS`]). Any other hypervisor returns another UUID, or `0xFFFF_FFFF`
//!    (`NOT_SUPPORTED`) in `w0`.
//! 3. `Revision`: `w0 = 0x8600_FF03` ([`smccc::VENDOR_HYP_REVISION`]) returns `w0` = ABI major,
//!    `w1` = ABI minor. Proceed only if major == [`ABI_VERSION_MAJOR`] (1).
//!
//! [`Client::discover`] performs steps 2 and 3 and says which failed
//! ([`DiscoveryError::NotTandem`] or [`DiscoveryError::UnsupportedVersion`]).
//!
//! ## Tandem calls
//!
//! SMC64 fast calls in the vendor hypervisor range, ID `0xC600_0000 | n` ([`HypercallId`]):
//!
//! | ID | Name | Arguments | Results (after `x0` = 0) |
//! |----|------|-----------|--------------------------|
//! | `0xC600_0000` | `VERSION` | — | `x1` major, `x2` minor |
//! | `0xC600_0001` | `VM_INFO` | — | `x1` VM id, `x2` vCPU id, `x3` vCPU count |
//! | `0xC600_0002` | `CONSOLE_WRITE` | `x1` length ≤ 48, `x2..x7` bytes | `x1` bytes accepted |
//! | `0xC600_0003` | `CONSOLE_READ` | — | `x1` length ≤ 16, `x2..x3` bytes |
//! | `0xC600_0004` | `YIELD` | — | — |
//! | `0xC600_0005` | `STATS` | `x1` [`StatId`] | `x1` value (u64) |
//! | `0xC600_0006` | `CRASH` (1.1) | `x1` length ≤ 48, `x2..x7` reason bytes (as `CONSOLE_WRITE`) | none: the VM restarts or stops |
//! | `0xC600_0007` | `WATCHDOG` (1.1) | `x1` timeout in ms ≤ [`call::WATCHDOG_MAX_MS`], 0 disarms | — |
//! | `0xC600_0010` | `CHANNEL_NOTIFY` (1.2) | `x1` channel id | — |
//! | `0xC600_0011` | `VIRTIO_POLL` (1.2) | `x1` channel id (a virtio back-end's) | `x1` queues notified, `x2` a forwarded access word or 0, `x3` its value if a write |
//! | `0xC600_0012` | `VIRTIO_REPLY` (1.2) | `x1` channel id, `x2` access word, `x3` value read | — |
//! | `0xC600_0013` | `VIRTIO_INTERRUPT` (1.2) | `x1` channel id, `x2` interrupt status bits (1 used buffer, 2 config change) | — |
//! | `0xC600_0014..=0xC600_001F` | reserved | more channel calls (later minor) | `NOT_SUPPORTED` |
//!
//! `CRASH` reports a fatal error (Linux: its panic notifier); Tandem then restarts the VM from
//! its pristine images, after a back-off, or stops it, as the VM's configuration says
//! (`on_crash` in `vms.toml`). `WATCHDOG` arms the VM's paravirtual watchdog; every call starts
//! the countdown again, and when it runs out Tandem handles the VM as crashed. Both are ABI
//! 1.1: a guest checks the minor version first (an ABI 1.0 hypervisor answers
//! `NOT_SUPPORTED`).
//!
//! **Channels** (ABI 1.2, [`virtio`]): a channel joins two VMs with shared memory (the same IPA
//! in both) and an edge-triggered interrupt in each; both are in each guest's device tree
//! (`compatible = "tandem,channel"` or, for a virtio back-end, `"tandem,virtio-backend"`:
//! `reg` the shared region, `interrupts` the doorbell, `tandem,channel` the id, `tandem,peer`
//! the other VM, `label` the channel's name). `CHANNEL_NOTIFY` raises the peer's interrupt:
//! it never blocks, coalesces while the interrupt is pending, and returns `DENIED` when the
//! peer is not running (stopped, paused, restarting) and `INVALID_PARAMETER` for a channel
//! the caller is not an end of. A virtio channel's front-end sees a standard virtio-mmio
//! device; its back-end serves it with `VIRTIO_POLL`, `VIRTIO_REPLY` and `VIRTIO_INTERRUPT`
//! (see [`virtio`] for what Tandem forwards). Only the channel's back-end may make them.
//! What two VMs keep in a channel's region is their affair; [`ring`] defines a
//! single-producer, single-consumer message ring for it, byte by byte, that checks everything
//! the peer wrote (`TANDEM_RING_*` in the C header).
//!
//! `VERSION` doubles as the null hypercall for benchmarks. VM ids are 1-based, in the order
//! the boot package lists the VMs (the same ids Tandem's log prints: `VM 1 'rtos'`); vCPU ids
//! are 0-based.
//!
//! Console bytes are packed little-endian: byte `i` is bits `[8*(i%8)+7 : 8*(i%8)]` of register
//! `x(2 + i/8)` (see [`console`]). `CONSOLE_WRITE` may accept fewer bytes than sent when the
//! hypervisor's buffer is full; the caller retries the rest. Console input is signalled by the
//! console-input virtual interrupt, an edge-triggered interrupt named by the `interrupts`
//! property of the guest's `compatible = "tandem,hypervisor"` device-tree node; on it, call
//! `CONSOLE_READ` until it returns length 0.
//!
//! Statistics ([`StatId`]; per calling VM unless noted): 0 `exits` (traps into the
//! hypervisor), 1 `hypercalls`, 2 `virqs_injected`, 3 `mmio_emulated`, 4 `wfi_exits`,
//! 5 `uptime_ns` (hypervisor uptime, global); ABI 1.2 adds the channel counters 6
//! `channel_doorbells` (`CHANNEL_NOTIFY` calls that rang the peer), 7 `channel_denied` (those
//! refused with `DENIED`), 8 `virtio_forwarded` (virtio-mmio accesses forwarded to a
//! back-end) and 9 `virtio_notifies` (`QueueNotify` writes). An id the hypervisor does not
//! define returns `INVALID_PARAMETER`. Linux exposes them as `/sys/hypervisor/stats/<name>`.
//!
//! ## Status codes
//!
//! `x0` of a Tandem call is a signed 64-bit [`Status`], SMCCC-style:
//!
//! | Value | Name                | Meaning                                      |
//! |-------|---------------------|----------------------------------------------|
//! | 0     | `SUCCESS`           | results follow in `x1..x3`                   |
//! | -1    | `NOT_SUPPORTED`     | unknown function ID                          |
//! | -2    | `NOT_REQUIRED`      | nothing to do on this system                 |
//! | -3    | `INVALID_PARAMETER` | argument out of range (console length > 48, unknown stat id, a channel the caller is not an end of, an access that is not outstanding) |
//! | -4    | `DENIED`            | the caller may not do this now (the channel's peer is not running) |
//! | -5    | `BUSY`              | temporarily unavailable, retry               |
//!
//! The discovery queries are SMC32: their `w0` is the UUID word or the major version, and
//! `0xFFFF_FFFF` means `NOT_SUPPORTED`. PSCI calls return PSCI codes ([`psci::Error`]).
//!
//! ## PSCI
//!
//! Tandem emulates PSCI 1.1 on the same conduit for `CPU_ON`, `CPU_OFF`, `AFFINITY_INFO`,
//! `SYSTEM_OFF`, `SYSTEM_RESET` and the version and feature queries; see [`psci`]. vCPU `n` of
//! a VM has MPIDR Aff0 = `n` ([`psci::Mpidr`]`::new(0, 0, 0, n)`).
//!
//! ## Entry state
//!
//! How Tandem starts a vCPU of a `kind = "bare"` VM: the boot vCPU (vCPU 0) at the image's
//! load address, every other one where PSCI `CPU_ON` says. (A `kind = "linux"` VM gets the same
//! state, which is what arm64 `booting.rst` asks for.)
//!
//! | State | Value |
//! |-------|-------|
//! | PSTATE | EL1h (`SP_EL1` selected), DAIF all masked (SPSR `0x3c5`) |
//! | `pc` | vCPU 0: RAM base + `0x8_0000` = `0x4008_0000`; `CPU_ON`: its [`psci::EntryPoint`] |
//! | `x0` | vCPU 0: the device tree's IPA (RAM base, `0x4000_0000`); `CPU_ON`: the context id |
//! | `x1..x30` | 0 (`x1..x3` = 0 as `booting.rst` requires) |
//! | `SP_EL1`, `SP_EL0` | 0: there is no stack; set `sp` before calling any code that uses one |
//! | `SCTLR_EL1` | `0x30d0_0800`: MMU (stage 1), data and instruction caches off |
//! | `CPACR_EL1` | **0: FP/SIMD instructions trap** (below) |
//! | `VBAR_EL1` | 0: no vectors (an exception taken before you set it cannot be handled) |
//! | other EL1 registers, FP/SIMD registers, virtual timer | 0 (timer disabled) |
//! | RAM | zero, except the image and the device tree, on every start and after each reset |
//! | Device tree | at RAM base, at most 512 KiB (2 MiB for Linux VMs) |
//!
//! **Enable FP/SIMD before any compiled code runs.** With `CPACR_EL1.FPEN` = 0 every FP/SIMD
//! instruction traps to EL1, and code built for `aarch64-unknown-none` uses them freely (NEON in
//! `memcpy`, `memset`, struct copies and formatting), often in the first function called. With
//! `VBAR_EL1` still 0 the trap cannot be handled, and the guest hangs with no output. Set
//! `FPEN` in the entry assembly, on every vCPU (the boot one and each `CPU_ON` entry), as
//! the Tandem tree's shared guest runtime does (`guest-rt/src/entry.S`, used by rtos-guest,
//! the test guests and the examples `pv-abi/examples/hello-rust` and `hello-c`), or build for
//! `aarch64-unknown-none-softfloat`, which never emits FP/SIMD:
//!
//! ```text
//!     mov     x1, #(3 << 20)      // CPACR_EL1.FPEN = 0b11: FP/SIMD not trapped at EL1/EL0
//!     msr     cpacr_el1, x1
//!     isb
//! ```
//!
//! With the MMU off, data accesses are Device-nGnRnE, where the architecture makes an
//! unaligned access fault (QEMU may not): turn the MMU on early, as `rtos-guest` does, or keep
//! early code to aligned accesses.
//!
//! **The image** is raw bytes, copied to the load address as they are: the loadable segments of
//! the guest's ELF, linked at the load address and flattened (`objcopy -O binary`, which is
//! what `cargo xtask` does with its guests). Tandem never sees the ELF, so its entry point is
//! ignored: the first byte of the image is executed first. It may be an arm64 `Image` header
//! (its first word a branch to the code); then its `image_size`, which covers `.bss`, must fit
//! in the VM's RAM.
//!
//! ## Versioning
//!
//! The ABI version is [`ABI_VERSION_MAJOR`]`.`[`ABI_VERSION_MINOR`] (1.2), reported by both
//! `Revision` and `VERSION`. A **minor** bump only adds: new calls (first the reserved channel
//! range), new statistics at the end of [`StatId`], new result registers that were zero, new
//! argument registers where zero keeps the old meaning. A **major** bump may change anything;
//! a guest must check that the major version is 1 and must not use calls newer than the
//! hypervisor's minor. The crate's semver tracks the ABI: an ABI major bump is a crate major
//! bump.
//!
//! ## Porting example
//!
//! A guest needs only a conduit that issues `hvc #0`. With the `guest` feature on
//! `aarch64-unknown-none` that is [`guest::hvc_call`] (and the free functions in [`guest`]
//! wrap everything below, [`guest::console`] included); another runtime plugs its own trap
//! into [`Client`]:
//!
//! ```no_run
//! use core::fmt::Write;
//! use pv_abi::psci::{EntryPoint, Mpidr};
//! use pv_abi::{ABI_VERSION, Client, ConsoleWriter, HvcArgs, HvcRet, StatId, Status};
//!
//! /// The runtime's trap: `hvc #0` with `x0..x7 = args.x`, returning `x0..x3`.
//! fn my_hvc(args: HvcArgs) -> HvcRet {
//!     unimplemented!("issue hvc #0 with {args:?}")
//! }
//!
//! fn start(secondary_entry: u64) -> Result<(), Status> {
//!     let mut hv = Client::new(my_hvc);
//!     let mut console = ConsoleWriter::new(my_hvc);
//!
//!     // Discovery: UUID, then ABI major == 1 (a DiscoveryError says which failed).
//!     let version = hv.discover()?;
//!     if !version.supports(ABI_VERSION) {
//!         // Tandem 1.x older than this crate: avoid the calls it lacks.
//!     }
//!
//!     // Who am I? (VM ids start at 1, vCPU ids at 0.)
//!     let me = hv.vm_info()?;
//!     if me.vcpu_id == 0 {
//!         // Every byte arrives: the writer yields while Tandem's buffer is full.
//!         writeln!(console, "hello from VM {} on Tandem ABI {version}", me.vm_id)
//!             .map_err(|_| Status::Denied)?;
//!     }
//!
//!     // Console input interrupt handler: drain until nothing is pending.
//!     let mut buf = [0u8; 64];
//!     while hv.console_read(&mut buf)? != 0 {
//!         // ... hand the bytes to the tty layer ...
//!     }
//!
//!     // Bring up the other vCPUs through PSCI (the entry point is an IPA; vCPU n has Aff0 n).
//!     for n in 1..me.vcpu_count {
//!         let target = Mpidr::new(0, 0, 0, n as u8);
//!         hv.cpu_on(target, EntryPoint::new(secondary_entry), n)
//!             .map_err(|_| Status::Denied)?;
//!     }
//!
//!     let exits = hv.stats(StatId::Exits)?;
//!     let _ = exits;
//!
//!     // Power the VM off: returns only if that failed, saying why.
//!     let Err(e) = hv.system_off();
//!     writeln!(console, "SYSTEM_OFF failed: {e}").map_err(|_| Status::Denied)?;
//!     Ok(())
//! }
//! # let _ = start;
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(all(feature = "guest", target_arch = "aarch64", target_os = "none")),
    forbid(unsafe_code)
)]
#![cfg_attr(
    all(feature = "guest", target_arch = "aarch64", target_os = "none"),
    deny(unsafe_code)
)]

pub mod call;
pub mod client;
pub mod console;
pub mod psci;
pub mod ring;
pub mod smccc;
pub mod stats;
pub mod status;
pub mod uuid;
pub mod version;
pub mod virtio;

// Compiled for guests; documented everywhere (`cfg(doc)`), so the porting guide that
// `cargo doc -p pv-abi` builds on the host includes it. A documentation build on another
// target gets the signatures and docs only (see `guest::hvc_call`).
#[cfg(any(
    doc,
    all(feature = "guest", target_arch = "aarch64", target_os = "none")
))]
#[cfg_attr(
    all(feature = "guest", target_arch = "aarch64", target_os = "none"),
    allow(unsafe_code) // The single `hvc #0` in `guest::hvc_call`, with its `// SAFETY:` comment.
)]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "guest", target_arch = "aarch64", target_os = "none")))
)]
pub mod guest;

pub use call::{
    CHANNEL_RESERVED_FIRST, CHANNEL_RESERVED_LAST, Call, HvcArgs, HvcRet, HypercallId, VmInfo,
};
pub use client::{Client, Conduit, ConsoleWriter, DiscoveryError};
pub use console::{CONSOLE_READ_MAX, CONSOLE_WRITE_MAX, ConsoleChunk, pack_bytes, unpack_bytes};
pub use smccc::FunctionId;
pub use stats::StatId;
pub use status::Status;
pub use uuid::{TANDEM_UUID, TANDEM_UUID_REGS, Uuid};
pub use version::{ABI_VERSION, AbiVersion};

/// ABI major version: changes only for incompatible changes. A guest requires an exact match.
///
/// ```
/// use pv_abi::{ABI_VERSION_MAJOR, AbiVersion};
///
/// // Discovery: the hypervisor's Revision major must be this one.
/// let revision = AbiVersion::new(1, 0);
/// assert_eq!(revision.major, ABI_VERSION_MAJOR);
/// ```
pub const ABI_VERSION_MAJOR: u32 = 1;
/// ABI minor version: grows with compatible additions.
///
/// ```
/// use pv_abi::{ABI_VERSION_MAJOR, ABI_VERSION_MINOR, AbiVersion};
///
/// // The newest calls this crate knows need a hypervisor of at least this minor.
/// let needed = AbiVersion::new(ABI_VERSION_MAJOR, ABI_VERSION_MINOR);
/// assert!(AbiVersion::new(1, 99).supports(needed));
/// ```
pub const ABI_VERSION_MINOR: u32 = 2;

/// The device-tree `compatible` of the node describing Tandem to a guest. Its `interrupts`
/// property names the edge-triggered console-input virtual interrupt.
///
/// ```
/// // A guest that reads its device tree finds Tandem (and the console interrupt) here.
/// assert_eq!(pv_abi::DT_COMPATIBLE, "tandem,hypervisor");
/// ```
pub const DT_COMPATIBLE: &str = "tandem,hypervisor";

/// Tandem calls as `(name, function ID)`, in ID order: the source of `TANDEM_HC_<name>`.
///
/// ```
/// // The C header's TANDEM_HC_<name> lines come from this table.
/// let (name, id) = pv_abi::CALLS[2];
/// assert_eq!((name, id), ("CONSOLE_WRITE", 0xC600_0002));
/// ```
pub const CALLS: &[(&str, u32)] = &{
    let mut table = [("", 0u32); HypercallId::COUNT];
    let mut i = 0;
    while i < HypercallId::COUNT {
        let hc = HypercallId::ALL[i];
        table[i] = (hc.name(), hc.fid().raw());
        i += 1;
    }
    table
};

/// Discovery queries of the vendor hypervisor service as `(name, function ID)`: the source of
/// `TANDEM_HYP_<name>`.
///
/// ```
/// assert_eq!(pv_abi::DISCOVERY_CALLS, [("CALL_UID", 0x8600_FF01), ("REVISION", 0x8600_FF03)]);
/// ```
pub const DISCOVERY_CALLS: &[(&str, u32)] = &[
    ("CALL_UID", smccc::VENDOR_HYP_CALL_UID.raw()),
    ("REVISION", smccc::VENDOR_HYP_REVISION.raw()),
];

/// Status codes as `(name, value)`, in code order: the source of `TANDEM_ST_<name>`.
///
/// ```
/// assert!(pv_abi::STATUS_CODES.contains(&("INVALID_PARAMETER", -3))); // TANDEM_ST_INVALID_PARAMETER
/// ```
pub const STATUS_CODES: &[(&str, i64)] = &{
    let mut table = [("", 0i64); Status::ALL.len()];
    let mut i = 0;
    while i < Status::ALL.len() {
        table[i] = (Status::ALL[i].name(), Status::ALL[i].as_raw());
        i += 1;
    }
    table
};

/// Statistics as `(short name, id)`, in id order: the source of `TANDEM_STAT_<NAME>`.
///
/// ```
/// assert_eq!(pv_abi::STAT_IDS[4], ("wfi_exits", 4)); // TANDEM_STAT_WFI_EXITS
/// ```
pub const STAT_IDS: &[(&str, u32)] = &{
    let mut table = [("", 0u32); StatId::COUNT];
    let mut i = 0;
    while i < StatId::COUNT {
        table[i] = (StatId::ALL[i].name(), StatId::ALL[i] as u32);
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The exported tables agree with the enums they are built from.
    #[test]
    fn tables_match_enums() {
        assert_eq!(CALLS.len(), HypercallId::COUNT);
        for (&(name, id), hc) in CALLS.iter().zip(HypercallId::ALL) {
            assert_eq!((name, id), (hc.name(), hc.fid().raw()));
        }
        for (&(name, raw), s) in STATUS_CODES.iter().zip(Status::ALL) {
            assert_eq!(Status::from_raw(raw), Some(s), "{name}");
        }
        for &(name, id) in STAT_IDS {
            assert_eq!(
                StatId::from_name(name).map(|s| s.as_raw()),
                Some(u64::from(id))
            );
        }
    }

    /// The ABI version is 1.2 (1.1 plus the channel calls), as fixed for this release.
    #[test]
    fn abi_version_is_1_2() {
        assert_eq!((ABI_VERSION_MAJOR, ABI_VERSION_MINOR), (1, 2));
        assert_eq!(ABI_VERSION, AbiVersion::new(1, 2));
    }
}
