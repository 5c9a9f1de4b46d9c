//! Tandem call IDs, register bundles and the total decoder the hypervisor runs on guest input.
//!
//! [`Call::decode`] turns a guest's `x0..x7` into a typed [`Call`] or the [`Status`] to return.
//! It is total over arbitrary input: it never panics, and every ID it does not know, including
//! the reserved channel range, yields [`Status::NotSupported`]. [`Call::encode`] is its inverse,
//! used by guests; the two round-trip for every call.

use crate::console::{CONSOLE_WRITE_REGS, ConsoleChunk};
use crate::smccc::{FunctionId, OEN_VENDOR_HYP, VENDOR_HYP_CALL_UID, VENDOR_HYP_REVISION};
use crate::stats::StatId;
use crate::status::Status;
use crate::uuid::Uuid;
use crate::virtio::{INTERRUPT_BITS, MmioAccess};
use crate::{ABI_VERSION_MAJOR, ABI_VERSION_MINOR};

/// A Tandem call: an SMC64 fast call in the vendor hypervisor range, ID `0xC600_0000 | n`.
///
/// ```
/// use pv_abi::HypercallId;
///
/// assert_eq!(HypercallId::ConsoleWrite.fid().raw(), 0xC600_0002);
/// assert_eq!(HypercallId::ConsoleWrite.name(), "CONSOLE_WRITE"); // TANDEM_HC_CONSOLE_WRITE in C
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum HypercallId {
    /// `0xC600_0000`: ABI version; also the null hypercall for benchmarks.
    Version = 0xC600_0000,
    /// `0xC600_0001`: the caller's VM id, vCPU id and vCPU count.
    VmInfo = 0xC600_0001,
    /// `0xC600_0002`: write up to 48 bytes to the caller's console.
    ConsoleWrite = 0xC600_0002,
    /// `0xC600_0003`: read up to 16 pending console input bytes.
    ConsoleRead = 0xC600_0003,
    /// `0xC600_0004`: give the physical CPU to another runnable vCPU.
    Yield = 0xC600_0004,
    /// `0xC600_0005`: read one statistic.
    Stats = 0xC600_0005,
    /// `0xC600_0006` (ABI 1.1): report a fatal error with up to 48 bytes of reason; the VM is
    /// restarted or stopped as its configuration says, and the call does not return.
    Crash = 0xC600_0006,
    /// `0xC600_0007` (ABI 1.1): arm or pet the paravirtual watchdog with a timeout in ms (0
    /// disarms); if it expires, the VM is handled as if it had crashed.
    Watchdog = 0xC600_0007,
    /// `0xC600_0010` (ABI 1.2): raise a channel's interrupt in the peer VM.
    ChannelNotify = 0xC600_0010,
    /// `0xC600_0011` (ABI 1.2): a virtio back-end collects notified queues and one forwarded
    /// register access.
    VirtioPoll = 0xC600_0011,
    /// `0xC600_0012` (ABI 1.2): a virtio back-end answers a forwarded register access.
    VirtioReply = 0xC600_0012,
    /// `0xC600_0013` (ABI 1.2): a virtio back-end sets interrupt status bits and interrupts
    /// the front-end.
    VirtioInterrupt = 0xC600_0013,
}

impl HypercallId {
    /// The number of Tandem calls in this ABI version.
    ///
    /// ```
    /// assert_eq!(pv_abi::HypercallId::ALL.len(), pv_abi::HypercallId::COUNT);
    /// ```
    pub const COUNT: usize = 12;

    /// Every Tandem call, in ID order.
    ///
    /// ```
    /// use pv_abi::HypercallId;
    ///
    /// // Core calls from 0xC600_0000, channel calls from 0xC600_0010.
    /// assert_eq!(HypercallId::ALL[0].fid().raw(), 0xC600_0000);
    /// assert_eq!(HypercallId::ALL[8].fid().raw(), 0xC600_0010);
    /// ```
    pub const ALL: [HypercallId; Self::COUNT] = [
        HypercallId::Version,
        HypercallId::VmInfo,
        HypercallId::ConsoleWrite,
        HypercallId::ConsoleRead,
        HypercallId::Yield,
        HypercallId::Stats,
        HypercallId::Crash,
        HypercallId::Watchdog,
        HypercallId::ChannelNotify,
        HypercallId::VirtioPoll,
        HypercallId::VirtioReply,
        HypercallId::VirtioInterrupt,
    ];

    /// The SMCCC function ID.
    ///
    /// ```
    /// let fid = pv_abi::HypercallId::VmInfo.fid();
    /// assert!(fid.is_fast() && fid.is_smc64());
    /// ```
    pub const fn fid(self) -> FunctionId {
        FunctionId::new(self as u32)
    }

    /// Looks up a Tandem call by function ID; `None` for any other ID.
    ///
    /// ```
    /// use pv_abi::{FunctionId, HypercallId};
    ///
    /// assert_eq!(HypercallId::from_fid(FunctionId::new(0xC600_0004)), Some(HypercallId::Yield));
    /// assert_eq!(HypercallId::from_fid(FunctionId::new(0xC600_0014)), None); // reserved
    /// ```
    pub const fn from_fid(fid: FunctionId) -> Option<Self> {
        // Two runs of consecutive IDs: core calls from VERSION, channel calls from 0x10.
        let raw = fid.raw();
        let index = if raw >= HypercallId::ChannelNotify as u32 {
            (raw - HypercallId::ChannelNotify as u32) as usize + 8
        } else {
            raw.wrapping_sub(HypercallId::Version as u32) as usize
        };
        if index < Self::COUNT && Self::ALL[index] as u32 == raw {
            Some(Self::ALL[index])
        } else {
            None
        }
    }

    /// The upper-case name used in the specification and the C header (`"CONSOLE_WRITE"`).
    ///
    /// ```
    /// assert_eq!(pv_abi::HypercallId::VmInfo.name(), "VM_INFO");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            HypercallId::Version => "VERSION",
            HypercallId::VmInfo => "VM_INFO",
            HypercallId::ConsoleWrite => "CONSOLE_WRITE",
            HypercallId::ConsoleRead => "CONSOLE_READ",
            HypercallId::Yield => "YIELD",
            HypercallId::Stats => "STATS",
            HypercallId::Crash => "CRASH",
            HypercallId::Watchdog => "WATCHDOG",
            HypercallId::ChannelNotify => "CHANNEL_NOTIFY",
            HypercallId::VirtioPoll => "VIRTIO_POLL",
            HypercallId::VirtioReply => "VIRTIO_REPLY",
            HypercallId::VirtioInterrupt => "VIRTIO_INTERRUPT",
        }
    }
}

/// First function ID of the inter-VM channel range.
///
/// `0xC600_0010..=0xC600_001F` belong to channels. ABI 1.2 defines `0x10..=0x13`
/// ([`HypercallId::ChannelNotify`] to [`HypercallId::VirtioInterrupt`]); the rest are reserved
/// for a later minor version, and until then [`Call::decode`] answers them with
/// [`Status::NotSupported`] like any unknown ID.
///
/// ```
/// use pv_abi::{CHANNEL_RESERVED_FIRST, Call, FunctionId, HvcArgs, Status};
///
/// let args = HvcArgs::new(FunctionId::new(0xC600_0014));
/// assert_eq!(Call::decode(args.x[0], &args), Err(Status::NotSupported));
/// assert_eq!(CHANNEL_RESERVED_FIRST.raw(), 0xC600_0010);
/// ```
pub const CHANNEL_RESERVED_FIRST: FunctionId = FunctionId::fast(true, OEN_VENDOR_HYP, 0x0010);
/// Last function ID reserved for inter-VM channel calls; see [`CHANNEL_RESERVED_FIRST`].
///
/// ```
/// assert_eq!(pv_abi::CHANNEL_RESERVED_LAST.raw(), 0xC600_001F);
/// ```
pub const CHANNEL_RESERVED_LAST: FunctionId = FunctionId::fast(true, OEN_VENDOR_HYP, 0x001F);

/// A caller's argument registers `x0..x7` (`x0` holds the function ID).
///
/// ```
/// use pv_abi::{HvcArgs, HypercallId, StatId};
///
/// // STATS(exits): x0 = the ID, x1 = the statistic.
/// let args = HvcArgs::new(HypercallId::Stats.fid()).with(1, StatId::Exits.as_raw());
/// assert_eq!(args.x[..2], [0xC600_0005, 0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct HvcArgs {
    /// `x[i]` is register `xi`.
    pub x: [u64; 8],
}

// Eight 64-bit registers, as SMCCC v1.1 passes them (DEN0028 §2.6).
const _: () = assert!(core::mem::size_of::<HvcArgs>() == 64);

impl HvcArgs {
    /// Arguments for `fid` with `x1..x7` zero.
    ///
    /// ```
    /// let args = pv_abi::HvcArgs::new(pv_abi::HypercallId::Yield.fid());
    /// assert_eq!(args.x, [0xC600_0004, 0, 0, 0, 0, 0, 0, 0]);
    /// ```
    pub const fn new(fid: FunctionId) -> Self {
        let mut x = [0; 8];
        x[0] = fid.to_reg();
        Self { x }
    }

    /// Returns a copy with register `x{index}` set to `value`.
    ///
    /// # Panics
    ///
    /// If `index > 7` (like any out-of-bounds array index).
    ///
    /// ```
    /// let args = pv_abi::HvcArgs::default().with(3, 42);
    /// assert_eq!(args.x[3], 42);
    /// ```
    pub const fn with(mut self, index: usize, value: u64) -> Self {
        self.x[index] = value;
        self
    }

    /// The function ID in `w0`.
    ///
    /// ```
    /// use pv_abi::{HvcArgs, HypercallId};
    ///
    /// assert_eq!(HvcArgs::new(HypercallId::Version.fid()).function_id(), HypercallId::Version.fid());
    /// ```
    pub const fn function_id(&self) -> FunctionId {
        FunctionId::from_reg(self.x[0])
    }
}

/// A callee's result registers `x0..x3` (`x0` holds the status).
///
/// ```
/// use pv_abi::{HvcRet, Status};
///
/// assert_eq!(HvcRet::success(7, 0, 0).into_result(), Ok([7, 0, 0]));
/// assert_eq!(HvcRet::error(Status::Busy).into_result(), Err(Status::Busy));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct HvcRet {
    /// `x[i]` is register `xi`.
    pub x: [u64; 4],
}

// Four 64-bit result registers, as SMCCC v1.1 returns them (DEN0028 §2.6).
const _: () = assert!(core::mem::size_of::<HvcRet>() == 32);

impl HvcRet {
    /// A [`Status::Success`] reply with results `x1..x3`.
    ///
    /// ```
    /// assert_eq!(pv_abi::HvcRet::success(1, 2, 3).x, [0, 1, 2, 3]);
    /// ```
    pub const fn success(x1: u64, x2: u64, x3: u64) -> Self {
        Self { x: [0, x1, x2, x3] }
    }

    /// An error reply: `x0` = `status`, `x1..x3` zero.
    ///
    /// ```
    /// use pv_abi::{HvcRet, Status};
    ///
    /// assert_eq!(HvcRet::error(Status::NotSupported).x, [u64::MAX, 0, 0, 0]);
    /// ```
    pub const fn error(status: Status) -> Self {
        Self {
            x: [status.to_reg(), 0, 0, 0],
        }
    }

    /// The `Call UID` reply for `uuid`: `w0..w3` in the SMCCC packing.
    ///
    /// ```
    /// use pv_abi::{HvcRet, TANDEM_UUID, TANDEM_UUID_REGS};
    ///
    /// let reply = HvcRet::call_uid(&TANDEM_UUID);
    /// assert_eq!(reply.x.map(|x| x as u32), TANDEM_UUID_REGS);
    /// ```
    pub const fn call_uid(uuid: &Uuid) -> Self {
        let w = uuid.to_regs();
        Self {
            x: [w[0] as u64, w[1] as u64, w[2] as u64, w[3] as u64],
        }
    }

    /// The `Revision` reply for this crate's ABI version: `w0` = major, `w1` = minor.
    ///
    /// ```
    /// use pv_abi::{ABI_VERSION, HvcRet};
    ///
    /// let r = HvcRet::revision();
    /// assert_eq!((r.x[0], r.x[1]), (u64::from(ABI_VERSION.major), u64::from(ABI_VERSION.minor)));
    /// ```
    pub const fn revision() -> Self {
        Self {
            x: [ABI_VERSION_MAJOR as u64, ABI_VERSION_MINOR as u64, 0, 0],
        }
    }

    /// Splits a Tandem-call reply: `Ok([x1, x2, x3])` on success, else the error status.
    /// An `x0` outside the status table is reported as [`Status::NotSupported`].
    ///
    /// ```
    /// use pv_abi::{HvcRet, Status};
    ///
    /// assert_eq!(HvcRet::success(5, 0, 0).into_result(), Ok([5, 0, 0]));
    /// assert_eq!(HvcRet { x: [0x1234, 0, 0, 0] }.into_result(), Err(Status::NotSupported));
    /// ```
    pub const fn into_result(self) -> Result<[u64; 3], Status> {
        match Status::from_reg(self.x[0]) {
            Some(Status::Success) => Ok([self.x[1], self.x[2], self.x[3]]),
            Some(e) => Err(e),
            None => Err(Status::NotSupported),
        }
    }
}

impl From<Status> for HvcRet {
    fn from(status: Status) -> Self {
        Self::error(status)
    }
}

/// The calling vCPU's identity, as `VM_INFO` returns it.
///
/// ```
/// use pv_abi::{HvcRet, VmInfo};
///
/// // VM_INFO's reply for vCPU 1 of VM 2, which has two vCPUs.
/// let me = VmInfo::from_ret(HvcRet::success(2, 1, 2)).unwrap();
/// assert_eq!(me, VmInfo { vm_id: 2, vcpu_id: 1, vcpu_count: 2 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmInfo {
    /// The caller's VM id (`x1`): 1 for the first VM of the boot package, 2 for the next, and
    /// so on (the ids Tandem's log prints); never 0.
    pub vm_id: u64,
    /// The caller's vCPU id, 0-based (`x2`).
    pub vcpu_id: u64,
    /// The number of vCPUs in the caller's VM (`x3`).
    pub vcpu_count: u64,
}

impl VmInfo {
    /// The hypervisor's `VM_INFO` reply.
    ///
    /// ```
    /// use pv_abi::VmInfo;
    ///
    /// let info = VmInfo { vm_id: 1, vcpu_id: 0, vcpu_count: 4 };
    /// assert_eq!(info.to_ret().x, [0, 1, 0, 4]);
    /// ```
    pub const fn to_ret(&self) -> HvcRet {
        HvcRet::success(self.vm_id, self.vcpu_id, self.vcpu_count)
    }

    /// Parses a `VM_INFO` reply.
    ///
    /// ```
    /// use pv_abi::{HvcRet, Status, VmInfo};
    ///
    /// assert_eq!(VmInfo::from_ret(HvcRet::error(Status::Denied)), Err(Status::Denied));
    /// ```
    pub const fn from_ret(ret: HvcRet) -> Result<Self, Status> {
        match ret.into_result() {
            Ok([vm_id, vcpu_id, vcpu_count]) => Ok(Self {
                vm_id,
                vcpu_id,
                vcpu_count,
            }),
            Err(e) => Err(e),
        }
    }
}

/// A decoded call in Tandem's service range (OEN 6): discovery queries and Tandem calls.
///
/// PSCI and SMCCC architecture calls are not `Call`s; the hypervisor routes them by
/// [`FunctionId::oen`] before decoding (see [`crate::psci`], [`crate::smccc`]).
///
/// ```
/// use pv_abi::{Call, ConsoleChunk, HvcArgs};
///
/// // Guest side: encode; hypervisor side: decode the same registers.
/// let call = Call::ConsoleWrite(ConsoleChunk::new(b"hi\n").unwrap());
/// let args: HvcArgs = call.encode();
/// assert_eq!(Call::decode(args.x[0], &args), Ok(call));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// Vendor hypervisor service `Call UID` (`0x8600_FF01`): reply with the UUID in `w0..w3`.
    CallUid,
    /// Vendor hypervisor service `Revision` (`0x8600_FF03`): reply `w0` = major, `w1` = minor.
    Revision,
    /// `VERSION`: reply `x1` = major, `x2` = minor.
    Version,
    /// `VM_INFO`: reply with a [`VmInfo`].
    VmInfo,
    /// `CONSOLE_WRITE`: `x1` = length, bytes in `x2..x7`; reply `x1` = bytes accepted.
    ConsoleWrite(ConsoleChunk),
    /// `CONSOLE_READ`: reply `x1` = length (0..=16), bytes in `x2..x3`.
    ConsoleRead,
    /// `YIELD`: give the physical CPU away; reply success.
    Yield,
    /// `STATS`: `x1` = stat id; reply `x1` = value.
    Stats(StatId),
    /// `CRASH` (1.1): `x1` = length, the reason's bytes in `x2..x7` as for `CONSOLE_WRITE`.
    /// No reply: the VM restarts or stops.
    Crash(ConsoleChunk),
    /// `WATCHDOG` (1.1): `x1` = timeout in ms, 0..=[`WATCHDOG_MAX_MS`] (0 disarms); reply
    /// success. Every call starts the countdown again.
    Watchdog(u32),
    /// `CHANNEL_NOTIFY` (1.2): `x1` = channel id; reply success.
    ChannelNotify(u32),
    /// `VIRTIO_POLL` (1.2): `x1` = channel id; reply `x1..x3` = a
    /// [`VirtioPoll`](crate::virtio::VirtioPoll).
    VirtioPoll(u32),
    /// `VIRTIO_REPLY` (1.2): `x1` = channel id, `x2` = the [`MmioAccess`] word, `x3` = the
    /// value read; reply success.
    VirtioReply {
        /// The channel.
        channel: u32,
        /// The access answered.
        access: MmioAccess,
        /// The value a read returns (ignored for a write).
        value: u64,
    },
    /// `VIRTIO_INTERRUPT` (1.2): `x1` = channel id, `x2` = interrupt status bits (a non-empty
    /// subset of [`INTERRUPT_BITS`]); reply success.
    VirtioInterrupt {
        /// The channel.
        channel: u32,
        /// `InterruptStatus` bits to set.
        bits: u32,
    },
}

/// Longest paravirtual watchdog timeout: one hour.
///
/// ```
/// use pv_abi::{Call, HvcArgs, HypercallId, Status};
/// use pv_abi::call::WATCHDOG_MAX_MS;
///
/// let too_long = HvcArgs::new(HypercallId::Watchdog.fid()).with(1, u64::from(WATCHDOG_MAX_MS) + 1);
/// assert_eq!(Call::decode(too_long.x[0], &too_long), Err(Status::InvalidParameter));
/// ```
pub const WATCHDOG_MAX_MS: u32 = 3_600_000;

impl Call {
    /// Decodes a guest's call. `id` is the caller's `x0` (only `w0` counts, per SMCCC); the
    /// arguments are read from `args.x[1..]`, so `args.x[0]` is ignored.
    ///
    /// Total over hostile input: returns [`Status::NotSupported`] for any ID that is not a
    /// Tandem call or discovery query (including the SMCCC v1.3 SVE-hint form and the reserved
    /// channel range) and [`Status::InvalidParameter`] for out-of-range arguments. Argument
    /// registers a call does not use are ignored.
    ///
    /// ```
    /// use pv_abi::{Call, HvcArgs, HypercallId, StatId, Status};
    ///
    /// let args = HvcArgs::new(HypercallId::Stats.fid()).with(1, 5);
    /// assert_eq!(Call::decode(args.x[0], &args), Ok(Call::Stats(StatId::UptimeNs)));
    /// let bad = args.with(1, 99);
    /// assert_eq!(Call::decode(bad.x[0], &bad), Err(Status::InvalidParameter));
    /// assert_eq!(Call::decode(0xC600_0014, &bad), Err(Status::NotSupported));
    /// ```
    pub fn decode(id: u64, args: &HvcArgs) -> Result<Call, Status> {
        let fid = FunctionId::from_reg(id);
        if fid == VENDOR_HYP_CALL_UID {
            return Ok(Call::CallUid);
        }
        if fid == VENDOR_HYP_REVISION {
            return Ok(Call::Revision);
        }
        let Some(hc) = HypercallId::from_fid(fid) else {
            return Err(Status::NotSupported);
        };
        Ok(match hc {
            HypercallId::Version => Call::Version,
            HypercallId::VmInfo => Call::VmInfo,
            HypercallId::ConsoleWrite => {
                let mut regs = [0u64; CONSOLE_WRITE_REGS];
                regs.copy_from_slice(&args.x[2..8]);
                Call::ConsoleWrite(ConsoleChunk::from_regs(args.x[1], &regs)?)
            }
            HypercallId::ConsoleRead => Call::ConsoleRead,
            HypercallId::Yield => Call::Yield,
            HypercallId::Stats => {
                Call::Stats(StatId::from_raw(args.x[1]).ok_or(Status::InvalidParameter)?)
            }
            HypercallId::Crash => {
                let mut regs = [0u64; CONSOLE_WRITE_REGS];
                regs.copy_from_slice(&args.x[2..8]);
                Call::Crash(ConsoleChunk::from_regs(args.x[1], &regs)?)
            }
            HypercallId::Watchdog => Call::Watchdog(
                u32::try_from(args.x[1])
                    .ok()
                    .filter(|&ms| ms <= WATCHDOG_MAX_MS)
                    .ok_or(Status::InvalidParameter)?,
            ),
            HypercallId::ChannelNotify => Call::ChannelNotify(channel_id(args)?),
            HypercallId::VirtioPoll => Call::VirtioPoll(channel_id(args)?),
            HypercallId::VirtioReply => Call::VirtioReply {
                channel: channel_id(args)?,
                access: MmioAccess::from_word(args.x[2]).ok_or(Status::InvalidParameter)?,
                value: args.x[3],
            },
            HypercallId::VirtioInterrupt => Call::VirtioInterrupt {
                channel: channel_id(args)?,
                bits: u32::try_from(args.x[2])
                    .ok()
                    .filter(|&b| b != 0 && b & !INTERRUPT_BITS == 0)
                    .ok_or(Status::InvalidParameter)?,
            },
        })
    }

    /// The function ID this call is made with.
    ///
    /// ```
    /// use pv_abi::{Call, HypercallId};
    ///
    /// assert_eq!(Call::VmInfo.function_id(), HypercallId::VmInfo.fid());
    /// assert_eq!(Call::CallUid.function_id().raw(), 0x8600_FF01);
    /// ```
    pub const fn function_id(&self) -> FunctionId {
        match self {
            Call::CallUid => VENDOR_HYP_CALL_UID,
            Call::Revision => VENDOR_HYP_REVISION,
            Call::Version => HypercallId::Version.fid(),
            Call::VmInfo => HypercallId::VmInfo.fid(),
            Call::ConsoleWrite(_) => HypercallId::ConsoleWrite.fid(),
            Call::ConsoleRead => HypercallId::ConsoleRead.fid(),
            Call::Yield => HypercallId::Yield.fid(),
            Call::Stats(_) => HypercallId::Stats.fid(),
            Call::Crash(_) => HypercallId::Crash.fid(),
            Call::Watchdog(_) => HypercallId::Watchdog.fid(),
            Call::ChannelNotify(_) => HypercallId::ChannelNotify.fid(),
            Call::VirtioPoll(_) => HypercallId::VirtioPoll.fid(),
            Call::VirtioReply { .. } => HypercallId::VirtioReply.fid(),
            Call::VirtioInterrupt { .. } => HypercallId::VirtioInterrupt.fid(),
        }
    }

    /// The argument registers a guest issues for this call; unused registers are zero.
    ///
    /// ```
    /// use pv_abi::{Call, StatId};
    ///
    /// assert_eq!(Call::Stats(StatId::UptimeNs).encode().x[..2], [0xC600_0005, 5]);
    /// ```
    pub fn encode(&self) -> HvcArgs {
        let mut args = HvcArgs::new(self.function_id());
        match self {
            Call::ConsoleWrite(chunk) | Call::Crash(chunk) => {
                args.x[1] = chunk.len() as u64;
                args.x[2..8].copy_from_slice(&chunk.to_regs());
            }
            Call::Stats(id) => args.x[1] = id.as_raw(),
            Call::Watchdog(ms) => args.x[1] = u64::from(*ms),
            Call::ChannelNotify(ch) | Call::VirtioPoll(ch) => args.x[1] = u64::from(*ch),
            Call::VirtioReply {
                channel,
                access,
                value,
            } => {
                args.x[1] = u64::from(*channel);
                args.x[2] = access.to_word();
                args.x[3] = *value;
            }
            Call::VirtioInterrupt { channel, bits } => {
                args.x[1] = u64::from(*channel);
                args.x[2] = u64::from(*bits);
            }
            Call::CallUid
            | Call::Revision
            | Call::Version
            | Call::VmInfo
            | Call::ConsoleRead
            | Call::Yield => {}
        }
        args
    }
}

/// A channel id argument (`x1`): any 32-bit value; the hypervisor checks that it exists.
fn channel_id(args: &HvcArgs) -> Result<u32, Status> {
    u32::try_from(args.x[1]).map_err(|_| Status::InvalidParameter)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::console::CONSOLE_WRITE_MAX;
    use std::vec::Vec;

    /// One instance of every call, with every stat id and console lengths 0, 1, 47 and 48.
    fn every_call() -> Vec<Call> {
        let mut calls = std::vec![
            Call::CallUid,
            Call::Revision,
            Call::Version,
            Call::VmInfo,
            Call::ConsoleRead,
            Call::Yield,
        ];
        calls.extend(StatId::iter().map(Call::Stats));
        let text = [b'#'; CONSOLE_WRITE_MAX];
        for n in [0, 1, 47, 48] {
            calls.push(Call::ConsoleWrite(ConsoleChunk::new(&text[..n]).unwrap()));
            calls.push(Call::Crash(ConsoleChunk::new(&text[..n]).unwrap()));
        }
        for ms in [0, 1, WATCHDOG_MAX_MS] {
            calls.push(Call::Watchdog(ms));
        }
        for ch in [0, 1, u32::MAX] {
            calls.push(Call::ChannelNotify(ch));
            calls.push(Call::VirtioPoll(ch));
            calls.push(Call::VirtioInterrupt {
                channel: ch,
                bits: INTERRUPT_BITS,
            });
            calls.push(Call::VirtioReply {
                channel: ch,
                access: MmioAccess {
                    vcpu: 1,
                    seq: 3,
                    write: false,
                    size: 4,
                    offset: 0x70,
                },
                value: u64::MAX,
            });
        }
        calls
    }

    /// Function IDs `decode` accepts: the Tandem calls plus the two discovery queries.
    fn known_ids() -> Vec<u32> {
        let mut ids: Vec<u32> = HypercallId::ALL.iter().map(|h| h.fid().raw()).collect();
        ids.extend([VENDOR_HYP_CALL_UID.raw(), VENDOR_HYP_REVISION.raw()]);
        ids
    }

    /// Every call survives `encode` then `decode`.
    #[test]
    fn encode_decode_round_trip() {
        for call in every_call() {
            let args = call.encode();
            assert_eq!(Call::decode(args.x[0], &args), Ok(call), "{call:?}");
            assert_eq!(args.function_id(), call.function_id());
        }
    }

    /// Every Tandem call ID has the `0xC600_0000 | n` SMC64 fast-call form in OEN 6.
    #[test]
    fn hypercall_ids_are_vendor_hyp_smc64_fast() {
        for (n, hc) in HypercallId::ALL.into_iter().enumerate() {
            let fid = hc.fid();
            let expected = if n < 8 { n } else { 0x10 + n - 8 };
            assert_eq!(fid.raw(), 0xC600_0000 | expected as u32);
            assert!(fid.is_fast() && fid.is_smc64());
            assert_eq!(fid.oen(), OEN_VENDOR_HYP);
            assert_eq!(HypercallId::from_fid(fid), Some(hc));
        }
    }

    /// Every ID near and inside the Tandem ranges that is not in the table is NOT_SUPPORTED.
    #[test]
    fn unknown_ids_are_not_supported() {
        let known = known_ids();
        let args = HvcArgs::default();
        let ranges = [
            0xC600_0000..=0xC600_FFFF, // whole SMC64 vendor hyp range, incl. channel reserve
            0x8600_0000..=0x8600_FFFF, // whole SMC32 vendor hyp range
            0xC601_0000..=0xC601_00FF, // reserved bits 23:16 set (SVE hint is bit 16)
            0x4600_0000..=0x4600_00FF, // yielding-call form of Tandem IDs
            0x0600_FF00..=0x0600_FF03, // yielding form of the discovery queries
        ];
        for id in ranges
            .into_iter()
            .flatten()
            .filter(|id| !known.contains(id))
        {
            assert_eq!(
                Call::decode(u64::from(id), &args),
                Err(Status::NotSupported),
                "{id:#x}"
            );
        }
    }

    /// The channel range beyond the calls of ABI 1.2 is not decodable.
    #[test]
    fn channel_range_is_reserved() {
        assert_eq!(CHANNEL_RESERVED_FIRST.raw(), 0xC600_0010);
        assert_eq!(CHANNEL_RESERVED_LAST.raw(), 0xC600_001F);
        for id in 0xC600_0014..=CHANNEL_RESERVED_LAST.raw() {
            let args = HvcArgs::new(FunctionId::new(id));
            assert_eq!(Call::decode(args.x[0], &args), Err(Status::NotSupported));
        }
    }

    /// PSCI and SMCCC architecture IDs are not Tandem calls.
    #[test]
    fn psci_and_arch_ids_are_not_calls() {
        let others = [
            crate::smccc::SMCCC_VERSION,
            crate::smccc::SMCCC_ARCH_FEATURES,
            crate::psci::PSCI_VERSION,
            crate::psci::CPU_ON,
            crate::psci::SYSTEM_OFF,
        ];
        for fid in others {
            let args = HvcArgs::new(fid);
            assert_eq!(
                Call::decode(args.x[0], &args),
                Err(Status::NotSupported),
                "{fid:?}"
            );
        }
    }

    /// Malformed arguments (console length > 48, unknown stat id) are INVALID_PARAMETER.
    #[test]
    fn malformed_args_are_invalid_parameter() {
        let write = HvcArgs::new(HypercallId::ConsoleWrite.fid());
        let stats = HvcArgs::new(HypercallId::Stats.fid());
        for bad in [49, 64, 256, 1 << 32, 1 << 63, u64::MAX] {
            let w = write.with(1, bad);
            assert_eq!(
                Call::decode(w.x[0], &w),
                Err(Status::InvalidParameter),
                "len {bad}"
            );
            let s = stats.with(1, bad);
            assert_eq!(
                Call::decode(s.x[0], &s),
                Err(Status::InvalidParameter),
                "stat {bad}"
            );
        }
        let s = stats.with(1, StatId::COUNT as u64);
        assert_eq!(Call::decode(s.x[0], &s), Err(Status::InvalidParameter));
        let notify = HvcArgs::new(HypercallId::ChannelNotify.fid()).with(1, 1 << 32);
        assert_eq!(
            Call::decode(notify.x[0], &notify),
            Err(Status::InvalidParameter)
        );
        let reply = HvcArgs::new(HypercallId::VirtioReply.fid()).with(2, 0);
        assert_eq!(
            Call::decode(reply.x[0], &reply),
            Err(Status::InvalidParameter)
        );
        let irq = HvcArgs::new(HypercallId::VirtioInterrupt.fid());
        for bad in [0, 4, 1 << 31, 1 << 32] {
            let i = irq.with(2, bad);
            assert_eq!(
                Call::decode(i.x[0], &i),
                Err(Status::InvalidParameter),
                "{bad}"
            );
        }
    }

    /// Only `w0` selects the call, and unused argument registers are ignored.
    #[test]
    fn decode_ignores_upper_w0_and_unused_registers() {
        let mut args = HvcArgs { x: [u64::MAX; 8] };
        args.x[0] = 0xffff_ffff_0000_0000 | u64::from(HypercallId::Version.fid().raw());
        assert_eq!(Call::decode(args.x[0], &args), Ok(Call::Version));
        args.x[1] = 4;
        let console = Call::decode(u64::from(HypercallId::ConsoleWrite.fid().raw()), &args);
        assert_eq!(
            console,
            Ok(Call::ConsoleWrite(ConsoleChunk::new(&[0xff; 4]).unwrap()))
        );
    }

    /// `decode` never panics on pseudo-random register contents.
    #[test]
    fn decode_is_total_on_random_input() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let known = known_ids();
        for i in 0..100_000 {
            let mut args = HvcArgs::default();
            for r in args.x.iter_mut() {
                *r = next();
            }
            // Half the time aim at a real ID so argument validation is exercised too.
            if i % 2 == 0 {
                args.x[0] = u64::from(known[i % known.len()]);
                args.x[1] %= 64;
            }
            if let Ok(call) = Call::decode(args.x[0], &args) {
                assert_eq!(call.function_id(), args.function_id());
            }
        }
    }

    /// Reply helpers: `VmInfo` round-trips; error and discovery replies have the ABI layout.
    #[test]
    fn reply_helpers_round_trip() {
        let info = VmInfo {
            vm_id: 2,
            vcpu_id: 1,
            vcpu_count: 4,
        };
        assert_eq!(VmInfo::from_ret(info.to_ret()), Ok(info));
        assert_eq!(
            VmInfo::from_ret(HvcRet::error(Status::Denied)),
            Err(Status::Denied)
        );
        assert_eq!(HvcRet::from(Status::Busy).x, [(-5i64) as u64, 0, 0, 0]);
        let uid = HvcRet::call_uid(&crate::TANDEM_UUID);
        assert_eq!(uid.x, crate::TANDEM_UUID_REGS.map(u64::from));
        assert_eq!(HvcRet::revision().x[..2], [1, 2]);
        assert_eq!(
            HvcRet { x: [7, 0, 0, 0] }.into_result(),
            Err(Status::NotSupported)
        );
    }
}
