//! Tandem hypercall ABI: the contract between the Tandem microhypervisor and its guests.
//!
//! Tandem runs at EL2 on ARMv8-A and hosts paravirtualized guests at EL1 (Linux 6.12 and a Rust
//! RTOS). This crate is the single source of truth for the interface between them: function
//! IDs, register layouts, status codes, statistics and discovery values. The hypervisor decodes
//! guest calls with [`Call::decode`]; Rust guests issue them with [`Client`] (or the `guest`
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
//! | [`console`] | console byte packing ([`pack_bytes`], [`unpack_bytes`], [`ConsoleChunk`]) |
//! | [`stats`]   | [`StatId`] and the stable statistic names                            |
//! | [`uuid`]    | [`Uuid`], [`TANDEM_UUID`] and its register form                      |
//! | [`client`]  | [`Client`]: every guest wrapper over an abstract [`Conduit`]         |
//! | `guest`     | feature `guest`, `aarch64-unknown-none` only: `hvc_call` and free wrappers |
//!
//! The crate is `no_std`, has no dependencies and forbids `unsafe` everywhere except the one
//! `hvc #0` in `guest::hvc_call`.
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
//! [`Client::probe`] performs steps 2 and 3.
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
//! | `0xC600_0010..=0xC600_001F` | reserved | inter-VM channels (later minor) | `NOT_SUPPORTED` |
//!
//! `VERSION` doubles as the null hypercall for benchmarks; vCPU ids are 0-based.
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
//! 5 `uptime_ns` (hypervisor uptime, global). Linux exposes them as
//! `/sys/hypervisor/stats/<name>`.
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
//! | -3    | `INVALID_PARAMETER` | argument out of range (console length > 48, unknown stat id) |
//! | -4    | `DENIED`            | the caller may not do this                   |
//! | -5    | `BUSY`              | temporarily unavailable, retry               |
//!
//! The discovery queries are SMC32: their `w0` is the UUID word or the major version, and
//! `0xFFFF_FFFF` means `NOT_SUPPORTED`. PSCI calls return PSCI codes ([`psci::Error`]).
//!
//! ## PSCI
//!
//! Tandem emulates PSCI 1.1 on the same conduit for `CPU_ON`, `CPU_OFF`, `AFFINITY_INFO`,
//! `SYSTEM_OFF`, `SYSTEM_RESET` and the version and feature queries; see [`psci`].
//!
//! ## Versioning
//!
//! The ABI version is [`ABI_VERSION_MAJOR`]`.`[`ABI_VERSION_MINOR`] (1.0), reported by both
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
//! `aarch64-unknown-none` that is `guest::hvc_call` (and the free functions in `guest` wrap
//! everything below); another runtime plugs its own trap into [`Client`]:
//!
//! ```no_run
//! use pv_abi::{ABI_VERSION_MINOR, Client, HvcArgs, HvcRet, StatId, Status};
//!
//! /// The runtime's trap: `hvc #0` with `x0..x7 = args.x`, returning `x0..x3`.
//! fn my_hvc(args: HvcArgs) -> HvcRet {
//!     unimplemented!("issue hvc #0 with {args:?}")
//! }
//!
//! fn start() -> Result<(), Status> {
//!     let mut hv = Client::new(my_hvc);
//!
//!     // Discovery: UUID, then ABI major == 1.
//!     let (_major, minor) = hv.probe()?;
//!     assert!(minor >= ABI_VERSION_MINOR, "hypervisor older than this guest's ABI");
//!
//!     // Who am I?
//!     let me = hv.vm_info()?;
//!     if me.vcpu_id == 0 {
//!         hv.console_write(b"hello from a Tandem guest\n")?;
//!     }
//!
//!     // Console input interrupt handler: drain until nothing is pending.
//!     let mut buf = [0u8; 64];
//!     while hv.console_read(&mut buf)? != 0 {
//!         // ... hand the bytes to the tty layer ...
//!     }
//!
//!     // Bring up the other vCPUs through PSCI (entry point is an IPA).
//!     for mpidr in 1..me.vcpu_count {
//!         hv.cpu_on(mpidr, 0x4008_0000, mpidr).map_err(|_| Status::Denied)?;
//!     }
//!
//!     let exits = hv.stats(StatId::Exits)?;
//!     let _ = exits;
//!     Ok(())
//! }
//! # let _ = start;
//! ```
#![no_std]
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
pub mod smccc;
pub mod stats;
pub mod status;
pub mod uuid;

#[cfg(all(feature = "guest", target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)] // The single `hvc #0` in `guest::hvc_call`, with its `// SAFETY:` comment.
pub mod guest;

pub use call::{
    CHANNEL_RESERVED_FIRST, CHANNEL_RESERVED_LAST, Call, HvcArgs, HvcRet, HypercallId, VmInfo,
};
pub use client::{Client, Conduit};
pub use console::{CONSOLE_READ_MAX, CONSOLE_WRITE_MAX, ConsoleChunk, pack_bytes, unpack_bytes};
pub use smccc::FunctionId;
pub use stats::StatId;
pub use status::Status;
pub use uuid::{TANDEM_UUID, TANDEM_UUID_REGS, Uuid};

/// ABI major version: changes only for incompatible changes. A guest requires an exact match.
pub const ABI_VERSION_MAJOR: u32 = 1;
/// ABI minor version: grows with compatible additions.
pub const ABI_VERSION_MINOR: u32 = 0;

/// The device-tree `compatible` of the node describing Tandem to a guest. Its `interrupts`
/// property names the edge-triggered console-input virtual interrupt.
pub const DT_COMPATIBLE: &str = "tandem,hypervisor";

/// Tandem calls as `(name, function ID)`, in ID order: the source of `TANDEM_HC_<name>`.
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
pub const DISCOVERY_CALLS: &[(&str, u32)] = &[
    ("CALL_UID", smccc::VENDOR_HYP_CALL_UID.raw()),
    ("REVISION", smccc::VENDOR_HYP_REVISION.raw()),
];

/// Status codes as `(name, value)`, in code order: the source of `TANDEM_ST_<name>`.
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

    /// The ABI version is 1.0, as fixed for this release.
    #[test]
    fn abi_version_is_1_0() {
        assert_eq!((ABI_VERSION_MAJOR, ABI_VERSION_MINOR), (1, 0));
    }
}
