//! Guest-side call logic over an abstract conduit, so it is host-testable.
//!
//! [`Client`] implements every guest wrapper (discovery, Tandem calls, PSCI helpers) on top of a
//! [`Conduit`], the one operation that actually traps, and [`ConsoleWriter`] is the console as a
//! [`core::fmt::Write`] sink. On an AArch64 bare-metal guest the `guest` feature provides
//! [`guest::hvc_call`](crate::guest::hvc_call) as the conduit and free functions that use it;
//! host tests and other runtimes plug in their own (any `FnMut(HvcArgs) -> HvcRet` is one).

use core::convert::Infallible;
use core::fmt;

use crate::call::{Call, HvcArgs, HvcRet, VmInfo};
use crate::console::{CONSOLE_READ_MAX, CONSOLE_WRITE_MAX, ConsoleChunk, parse_read_reply};
use crate::psci::{self, EntryPoint, Mpidr};
use crate::smccc::{VENDOR_HYP_CALL_UID, VENDOR_HYP_REVISION};
use crate::stats::StatId;
use crate::status::Status;
use crate::uuid::TANDEM_UUID_REGS;
use crate::version::{ABI_VERSION, AbiVersion};

/// Something that performs one SMCCC call: places `args` in `x0..x7`, traps, and returns
/// `x0..x3`.
///
/// ```
/// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
/// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
/// # fn tandem(args: HvcArgs) -> HvcRet {
/// #     match Call::decode(args.x[0], &args) {
/// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
/// #         Ok(Call::Revision) => HvcRet::revision(),
/// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
/// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
/// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
/// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
/// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
/// #         Ok(_) => HvcRet::success(0, 0, 0),
/// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
/// #     }
/// # }
/// use pv_abi::{Client, Conduit};
///
/// // Any FnMut(HvcArgs) -> HvcRet is a conduit; so is a type of your own.
/// struct Traced(u32);
/// impl Conduit for Traced {
///     fn call(&mut self, args: HvcArgs) -> HvcRet {
///         self.0 += 1;
///         tandem(args)
///     }
/// }
/// let mut hv = Client::new(Traced(0));
/// assert!(hv.is_tandem());
/// assert_eq!(hv.into_inner().0, 1);
/// ```
pub trait Conduit {
    /// Performs the call.
    fn call(&mut self, args: HvcArgs) -> HvcRet;
}

impl<F: FnMut(HvcArgs) -> HvcRet> Conduit for F {
    fn call(&mut self, args: HvcArgs) -> HvcRet {
        self(args)
    }
}

/// Why discovery ([`Client::discover`]) did not find a hypervisor this crate can talk to.
///
/// ```
/// use pv_abi::{Client, DiscoveryError, HvcArgs, HvcRet, Status};
///
/// // KVM, say: its Call UID is another UUID.
/// let mut hv = Client::new(|_: HvcArgs| HvcRet { x: [0x28b46fb6, 0x11e82d2c, 0x7d4ca5fe, 0xba6ac0ab] });
/// let e = hv.discover().unwrap_err();
/// assert_eq!(e, DiscoveryError::NotTandem);
/// assert_eq!(Status::from(e), Status::NotSupported);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiscoveryError {
    /// `Call UID` did not return the Tandem UUID: another hypervisor, or one without the
    /// SMCCC vendor hypervisor service (it answered `NOT_SUPPORTED`).
    NotTandem,
    /// Tandem, but with an ABI major version other than [`ABI_VERSION_MAJOR`](crate::ABI_VERSION_MAJOR):
    /// its calls may mean something else. Carries the hypervisor's version.
    UnsupportedVersion(AbiVersion),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::NotTandem => f.write_str(
                "the hypervisor is not Tandem (Call UID did not return the Tandem UUID)",
            ),
            DiscoveryError::UnsupportedVersion(v) => write!(
                f,
                "Tandem ABI {v} is not supported: this guest speaks ABI {ABI_VERSION} (the major versions must match)"
            ),
        }
    }
}

impl core::error::Error for DiscoveryError {}

impl From<DiscoveryError> for Status {
    /// Both kinds are [`Status::NotSupported`]: there is no Tandem ABI this guest can use.
    fn from(_: DiscoveryError) -> Self {
        Status::NotSupported
    }
}

/// Typed Tandem and PSCI calls over a [`Conduit`].
///
/// ```
/// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
/// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
/// # fn tandem(args: HvcArgs) -> HvcRet {
/// #     match Call::decode(args.x[0], &args) {
/// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
/// #         Ok(Call::Revision) => HvcRet::revision(),
/// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
/// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
/// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
/// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
/// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
/// #         Ok(_) => HvcRet::success(0, 0, 0),
/// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
/// #     }
/// # }
/// use pv_abi::Client;
///
/// let mut hv = Client::new(tandem); // on a guest: pv_abi::guest::client()
/// let version = hv.discover().expect("Tandem");
/// let me = hv.vm_info().unwrap();
/// assert!(version.major == 1 && me.vm_id >= 1);
/// ```
#[derive(Debug)]
pub struct Client<C> {
    conduit: C,
}

impl<C: Conduit> Client<C> {
    /// Wraps a conduit.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let mut hv = pv_abi::Client::new(tandem);
    /// assert!(hv.is_tandem());
    /// ```
    pub const fn new(conduit: C) -> Self {
        Self { conduit }
    }

    /// Returns the conduit.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let hv = pv_abi::Client::new(tandem);
    /// let conduit: fn(HvcArgs) -> HvcRet = hv.into_inner();
    /// # let _ = conduit;
    /// ```
    pub fn into_inner(self) -> C {
        self.conduit
    }

    /// Issues a decoded call and returns the raw reply.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// use pv_abi::Client;
    ///
    /// let mut hv = Client::new(tandem);
    /// let reply = hv.call(&Call::VmInfo);
    /// assert_eq!(VmInfo::from_ret(reply).unwrap().vcpu_count, 2);
    /// ```
    pub fn call(&mut self, call: &Call) -> HvcRet {
        self.conduit.call(call.encode())
    }

    /// Whether the hypervisor answers `Call UID` with the Tandem UUID.
    ///
    /// An unknown hypervisor answers `NOT_SUPPORTED` (`0xFFFF_FFFF` in `w0`) or another UUID.
    /// The HVC conduit itself must exist: on a CPU without EL2, `hvc` is undefined.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// use pv_abi::{Client, Status};
    ///
    /// assert!(Client::new(tandem).is_tandem());
    /// // A hypervisor without the vendor service answers NOT_SUPPORTED:
    /// assert!(!Client::new(|_: HvcArgs| HvcRet::error(Status::NotSupported)).is_tandem());
    /// ```
    pub fn is_tandem(&mut self) -> bool {
        let r = self.conduit.call(HvcArgs::new(VENDOR_HYP_CALL_UID));
        // Compare the `w` halves only; NOT_SUPPORTED (`w0` = 0xFFFF_FFFF) never matches.
        [r.x[0] as u32, r.x[1] as u32, r.x[2] as u32, r.x[3] as u32] == TANDEM_UUID_REGS
    }

    /// The hypervisor's ABI version from the `Revision` query.
    ///
    /// Meaningful only after [`Client::is_tandem`] returned `true`.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let mut hv = pv_abi::Client::new(tandem);
    /// if hv.is_tandem() {
    ///     assert_eq!(hv.abi_version(), ABI_VERSION);
    /// }
    /// ```
    pub fn abi_version(&mut self) -> AbiVersion {
        let r = self.conduit.call(HvcArgs::new(VENDOR_HYP_REVISION));
        AbiVersion::new(r.x[0] as u32, r.x[1] as u32)
    }

    /// The whole discovery sequence: checks the UUID, then that the ABI major version is
    /// [`ABI_VERSION_MAJOR`](crate::ABI_VERSION_MAJOR). Returns the hypervisor's version.
    ///
    /// Fails with [`DiscoveryError::NotTandem`] if the hypervisor is not Tandem and with
    /// [`DiscoveryError::UnsupportedVersion`] if its major version differs. A hypervisor minor
    /// below [`ABI_VERSION_MINOR`](crate::ABI_VERSION_MINOR) is accepted: the caller must then
    /// avoid calls added after that minor ([`AbiVersion::supports`] tells).
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// use pv_abi::{AbiVersion, Client, DiscoveryError};
    ///
    /// match Client::new(tandem).discover() {
    ///     Ok(v) if v.supports(AbiVersion::new(1, 1)) => { /* may use the 1.1 calls */ }
    ///     Ok(_) => { /* Tandem 1.0: only the 1.0 calls */ }
    ///     Err(DiscoveryError::NotTandem) => { /* run without Tandem's services */ }
    ///     Err(DiscoveryError::UnsupportedVersion(v)) => panic!("Tandem ABI {v} is too new for me"),
    /// }
    /// ```
    pub fn discover(&mut self) -> Result<AbiVersion, DiscoveryError> {
        if !self.is_tandem() {
            return Err(DiscoveryError::NotTandem);
        }
        let version = self.abi_version();
        if version.major != ABI_VERSION.major {
            return Err(DiscoveryError::UnsupportedVersion(version));
        }
        Ok(version)
    }

    /// [`Client::discover`] in the form of earlier releases: `(major, minor)`, and
    /// [`Status::NotSupported`] for both failures.
    ///
    /// Kept for existing callers; new code should use [`Client::discover`], which says which
    /// check failed.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let (major, _minor) = pv_abi::Client::new(tandem).probe().unwrap();
    /// assert_eq!(major, 1);
    /// ```
    pub fn probe(&mut self) -> Result<(u32, u32), Status> {
        let v = self.discover()?;
        Ok((v.major, v.minor))
    }

    /// `VERSION`: the ABI version; also the cheapest round trip (null hypercall).
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// assert_eq!(pv_abi::Client::new(tandem).version(), Ok(ABI_VERSION));
    /// ```
    pub fn version(&mut self) -> Result<AbiVersion, Status> {
        let [major, minor, _] = self.call(&Call::Version).into_result()?;
        Ok(AbiVersion::new(major as u32, minor as u32))
    }

    /// `VM_INFO`: the caller's VM id (1-based), vCPU id (0-based) and vCPU count.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let me = pv_abi::Client::new(tandem).vm_info().unwrap();
    /// assert_eq!((me.vm_id, me.vcpu_id, me.vcpu_count), (2, 0, 2));
    /// ```
    pub fn vm_info(&mut self) -> Result<VmInfo, Status> {
        VmInfo::from_ret(self.call(&Call::VmInfo))
    }

    /// Writes a prefix of `bytes` to the console in 48-byte `CONSOLE_WRITE` calls; returns how
    /// many bytes the hypervisor accepted, **which may be fewer than `bytes.len()`**.
    ///
    /// Stops early, like `write(2)`, when the hypervisor accepts nothing (its buffer is full):
    /// the caller must retry the rest, for example after [`Client::yield_now`]. An error
    /// after some bytes were written returns `Ok` with the count so far; an error before any
    /// byte returns the error. An empty `bytes` makes no call.
    ///
    /// To write everything, use [`Client::console_write_all`] or a [`ConsoleWriter`].
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let mut hv = pv_abi::Client::new(tandem);
    /// let line = b"a line longer than one call's 48 bytes, so it takes two calls\n";
    /// let mut done = 0;
    /// while done < line.len() {
    ///     done += hv.console_write(&line[done..]).unwrap();
    ///     # if done < line.len() { hv.yield_now().unwrap(); }
    /// }
    /// ```
    pub fn console_write(&mut self, bytes: &[u8]) -> Result<usize, Status> {
        let mut done = 0;
        while done < bytes.len() {
            let (chunk, sent) = ConsoleChunk::take(&bytes[done..]);
            let accepted = match self.call(&Call::ConsoleWrite(chunk)).into_result() {
                Ok([accepted, _, _]) => accepted.min(sent as u64) as usize,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            if accepted == 0 {
                break;
            }
            done += accepted;
        }
        Ok(done)
    }

    /// Writes all of `bytes` to the console: while the hypervisor's buffer is full (it accepts
    /// nothing, or answers [`Status::Busy`]) it issues `YIELD`, so the vCPU that drains the
    /// buffer can run, and tries again.
    ///
    /// Fails only with a status other than `BUSY` (for example [`Status::NotSupported`] off
    /// Tandem); the bytes before the failure were written.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// pv_abi::Client::new(tandem).console_write_all(b"every byte arrives\n").unwrap();
    /// ```
    pub fn console_write_all(&mut self, bytes: &[u8]) -> Result<(), Status> {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.console_write(rest) {
                Ok(0) | Err(Status::Busy) => {
                    // A failing YIELD must not lose output: the next attempt decides.
                    let _ = self.yield_now();
                }
                Ok(n) => rest = &rest[n.min(rest.len())..],
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drains pending console input into `out` with `CONSOLE_READ` calls; returns the byte
    /// count (0 = nothing pending).
    ///
    /// Each call dequeues up to 16 bytes in the hypervisor, so the wrapper only issues a call
    /// while at least [`CONSOLE_READ_MAX`] bytes of `out` are free, and `out` must hold at
    /// least 16 bytes ([`Status::InvalidParameter`] otherwise). It stops when the hypervisor
    /// reports nothing pending. Call it when the console-input interrupt fires until it
    /// returns 0.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// // In the console-input interrupt handler (SPI 32):
    /// let mut hv = pv_abi::Client::new(tandem);
    /// let mut buf = [0u8; 64];
    /// let n = hv.console_read(&mut buf).unwrap();
    /// # let n = n.min(3);
    /// assert_eq!(&buf[..n], b"AT\r");
    /// ```
    pub fn console_read(&mut self, out: &mut [u8]) -> Result<usize, Status> {
        if out.len() < CONSOLE_READ_MAX {
            return Err(Status::InvalidParameter);
        }
        let mut done = 0;
        while out.len() - done >= CONSOLE_READ_MAX {
            let ret = self.call(&Call::ConsoleRead);
            let n = match parse_read_reply(&ret, &mut out[done..]) {
                Ok(n) => n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// `YIELD`: lets another runnable vCPU use the physical CPU.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// pv_abi::Client::new(tandem).yield_now().unwrap(); // e.g. while spinning on another vCPU
    /// ```
    pub fn yield_now(&mut self) -> Result<(), Status> {
        self.call(&Call::Yield).into_result().map(|_| ())
    }

    /// `STATS`: reads one statistic.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// use pv_abi::StatId;
    ///
    /// let exits = pv_abi::Client::new(tandem).stats(StatId::Exits).unwrap();
    /// assert_eq!(exits, 1234);
    /// ```
    pub fn stats(&mut self, id: StatId) -> Result<u64, Status> {
        self.call(&Call::Stats(id))
            .into_result()
            .map(|[value, _, _]| value)
    }

    /// `CRASH` (ABI 1.1): reports a fatal error with `reason` (its first 48 bytes); Tandem
    /// restarts or stops the VM as configured, so this returns only on failure (an older
    /// Tandem answers [`Status::NotSupported`]).
    ///
    /// ```
    /// # use pv_abi::{Client, HvcRet, HvcArgs, Status};
    /// let mut c = Client::new(|_: HvcArgs| HvcRet::error(Status::NotSupported));
    /// let Err(e) = c.crash("kernel panic: oops");
    /// assert_eq!(e, Status::NotSupported);
    /// ```
    pub fn crash(&mut self, reason: &str) -> Result<Infallible, Status> {
        let bytes = reason.as_bytes();
        let chunk = ConsoleChunk::new(&bytes[..bytes.len().min(CONSOLE_WRITE_MAX)])
            .ok_or(Status::InvalidParameter)?;
        Err(match self.call(&Call::Crash(chunk)).into_result() {
            Ok(_) => Status::Denied,
            Err(e) => e,
        })
    }

    /// `WATCHDOG` (ABI 1.1): arms the paravirtual watchdog for `timeout_ms` (at most
    /// [`WATCHDOG_MAX_MS`](crate::call::WATCHDOG_MAX_MS); 0 disarms). Call it again before
    /// the timeout ends; if it ends, Tandem handles the VM as crashed.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let mut hv = pv_abi::Client::new(tandem);
    /// hv.watchdog(2_000).unwrap(); // arm: 2 s
    /// // ... then, in the main loop, at least every 2 s:
    /// hv.watchdog(2_000).unwrap();
    /// hv.watchdog(0).unwrap(); // disarm
    /// ```
    pub fn watchdog(&mut self, timeout_ms: u32) -> Result<(), Status> {
        if timeout_ms > crate::call::WATCHDOG_MAX_MS {
            return Err(Status::InvalidParameter);
        }
        self.call(&Call::Watchdog(timeout_ms))
            .into_result()
            .map(|_| ())
    }

    /// `CHANNEL_NOTIFY` (ABI 1.2): raises channel `channel`'s interrupt in the peer VM.
    /// [`Status::Denied`]: the peer is not running; [`Status::InvalidParameter`]: no such
    /// channel, or the caller is not one of its ends.
    ///
    /// ```
    /// # use pv_abi::{Client, HvcRet, HvcArgs, Status};
    /// let mut c = Client::new(|_: HvcArgs| HvcRet::error(Status::Denied));
    /// assert_eq!(c.channel_notify(0), Err(Status::Denied));
    /// ```
    pub fn channel_notify(&mut self, channel: u32) -> Result<(), Status> {
        self.call(&Call::ChannelNotify(channel))
            .into_result()
            .map(|_| ())
    }

    /// `VIRTIO_POLL` (ABI 1.2, virtio back-ends): the queues notified since the last poll and
    /// one forwarded register access, if any. Call it until it returns no access.
    ///
    /// ```
    /// # use pv_abi::{Client, HvcRet, HvcArgs};
    /// use pv_abi::virtio::MmioAccess;
    /// let read = MmioAccess { vcpu: 0, seq: 1, write: false, size: 4, offset: 0 };
    /// let mut c = Client::new(move |_: HvcArgs| HvcRet::success(0b10, read.to_word(), 0));
    /// let poll = c.virtio_poll(0).unwrap();
    /// assert_eq!((poll.queues, poll.access), (0b10, Some((read, 0))));
    /// ```
    pub fn virtio_poll(&mut self, channel: u32) -> Result<crate::virtio::VirtioPoll, Status> {
        self.call(&Call::VirtioPoll(channel))
            .into_result()
            .map(|[x1, x2, x3]| crate::virtio::VirtioPoll::from_regs(x1, x2, x3))
    }

    /// `VIRTIO_REPLY` (ABI 1.2, virtio back-ends): answers `access` (from
    /// [`virtio_poll`](Self::virtio_poll)); a read returns `value` to the front-end.
    ///
    /// ```
    /// # use pv_abi::{Client, HvcRet, HvcArgs, Status};
    /// use pv_abi::virtio::MmioAccess;
    /// let a = MmioAccess { vcpu: 0, seq: 1, write: false, size: 4, offset: 0 };
    /// let mut c = Client::new(|_: HvcArgs| HvcRet::error(Status::InvalidParameter));
    /// assert_eq!(c.virtio_reply(0, a, 0x7472_6976), Err(Status::InvalidParameter)); // not outstanding
    /// ```
    pub fn virtio_reply(
        &mut self,
        channel: u32,
        access: crate::virtio::MmioAccess,
        value: u64,
    ) -> Result<(), Status> {
        self.call(&Call::VirtioReply {
            channel,
            access,
            value,
        })
        .into_result()
        .map(|_| ())
    }

    /// `VIRTIO_INTERRUPT` (ABI 1.2, virtio back-ends): sets `bits` in the device's
    /// `InterruptStatus` and interrupts the front-end.
    ///
    /// ```
    /// # use pv_abi::{Client, HvcRet, HvcArgs, Status};
    /// use pv_abi::virtio::INTERRUPT_USED_BUFFER;
    /// let mut c = Client::new(|_: HvcArgs| HvcRet::success(0, 0, 0));
    /// c.virtio_interrupt(0, INTERRUPT_USED_BUFFER).unwrap();
    /// assert_eq!(c.virtio_interrupt(0, 0), Err(Status::InvalidParameter));
    /// ```
    pub fn virtio_interrupt(&mut self, channel: u32, bits: u32) -> Result<(), Status> {
        if bits == 0 || bits & !crate::virtio::INTERRUPT_BITS != 0 {
            return Err(Status::InvalidParameter);
        }
        self.call(&Call::VirtioInterrupt { channel, bits })
            .into_result()
            .map(|_| ())
    }

    /// PSCI `PSCI_VERSION`: `major << 16 | minor`.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// assert_eq!(pv_abi::Client::new(tandem).psci_version(), Ok(pv_abi::psci::VERSION_1_1));
    /// ```
    pub fn psci_version(&mut self) -> Result<u32, psci::Error> {
        psci::result_from_reg(self.conduit.call(HvcArgs::new(psci::PSCI_VERSION)).x[0])
    }

    /// PSCI `CPU_ON`: starts the CPU `target` at `entry` with `context_id` in its `x0`.
    ///
    /// The target starts in the same state as the boot vCPU (see the crate documentation,
    /// "Entry state"): MMU off, DAIF masked, FP/SIMD trapped.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// use pv_abi::psci::{EntryPoint, Mpidr};
    ///
    /// let mut hv = pv_abi::Client::new(tandem);
    /// let secondary_entry = 0x4008_0088; // e.g. guest_rt::secondary_entry()
    /// for n in 1..hv.vm_info().unwrap().vcpu_count {
    ///     hv.cpu_on(Mpidr::new(0, 0, 0, n as u8), EntryPoint::new(secondary_entry), n).unwrap();
    /// }
    /// ```
    pub fn cpu_on(
        &mut self,
        target: Mpidr,
        entry: EntryPoint,
        context_id: u64,
    ) -> Result<(), psci::Error> {
        let args = HvcArgs::new(psci::CPU_ON)
            .with(1, target.to_reg())
            .with(2, entry.addr())
            .with(3, context_id);
        psci::result_from_reg(self.conduit.call(args).x[0]).map(|_| ())
    }

    /// PSCI `CPU_OFF`: stops the calling vCPU. Returns only if the call failed, with the
    /// reason: `Ok` is [`Infallible`], so `let Err(e) = client.cpu_off();` is irrefutable.
    ///
    /// ```
    /// use pv_abi::{Client, HvcArgs, HvcRet};
    /// use pv_abi::psci::Error;
    ///
    /// // CPU_OFF returns only when it failed; here the stand-in refuses it.
    /// let mut hv = Client::new(|_: HvcArgs| HvcRet { x: [Error::Denied.to_reg(), 0, 0, 0] });
    /// let Err(e) = hv.cpu_off();
    /// assert_eq!(e, Error::Denied);
    /// ```
    pub fn cpu_off(&mut self) -> Result<Infallible, psci::Error> {
        Err(self.no_return(psci::CPU_OFF))
    }

    /// PSCI `SYSTEM_OFF`: powers the calling VM off. Returns only if the call failed, with the
    /// reason: `Ok` is [`Infallible`], so `let Err(e) = client.system_off();` is irrefutable.
    ///
    /// ```
    /// use pv_abi::{Client, HvcArgs, HvcRet};
    ///
    /// // On Tandem the call does not return; a stand-in that returns "success" is a failure.
    /// let mut hv = Client::new(|_: HvcArgs| HvcRet::success(0, 0, 0));
    /// let Err(e) = hv.system_off();
    /// assert_eq!(e.name(), "INTERNAL_FAILURE");
    /// ```
    pub fn system_off(&mut self) -> Result<Infallible, psci::Error> {
        Err(self.no_return(psci::SYSTEM_OFF))
    }

    /// PSCI `SYSTEM_RESET`: resets the calling VM. Returns only if the call failed, with the
    /// reason: `Ok` is [`Infallible`], so `let Err(e) = client.system_reset();` is irrefutable.
    ///
    /// ```
    /// use pv_abi::{Client, HvcArgs, HvcRet};
    /// use pv_abi::psci::Error;
    ///
    /// let mut hv = Client::new(|_: HvcArgs| HvcRet { x: [Error::NotSupported.to_reg(), 0, 0, 0] });
    /// let Err(e) = hv.system_reset();
    /// assert_eq!(e, Error::NotSupported);
    /// ```
    pub fn system_reset(&mut self) -> Result<Infallible, psci::Error> {
        Err(self.no_return(psci::SYSTEM_RESET))
    }

    /// Issues a PSCI call that does not return on success and maps whatever came back.
    fn no_return(&mut self, fid: crate::smccc::FunctionId) -> psci::Error {
        match psci::result_from_reg(self.conduit.call(HvcArgs::new(fid)).x[0]) {
            // A "successful" return from a call that must not return is itself a failure.
            Ok(_) => psci::Error::InternalFailure,
            Err(e) => e,
        }
    }
}

/// The console as a [`core::fmt::Write`] sink that delivers every byte.
///
/// Each `write_str` is [`Client::console_write_all`]: while the hypervisor's buffer is full it
/// yields and retries, so nothing is dropped. It fails (with [`fmt::Error`]) only when the
/// hypervisor refuses console output altogether, for example off Tandem. Bytes are passed
/// through unchanged; Tandem ends a console line at `\n`.
///
/// Every `write_str` is at least one hypercall, and lines of two vCPUs writing at once may
/// interleave: format a whole line into a buffer first where that matters.
///
/// ```
/// use core::fmt::Write;
/// use pv_abi::{ConsoleWriter, HvcArgs, HvcRet};
///
/// # fn hvc(_: HvcArgs) -> HvcRet { HvcRet::success(48, 0, 0) }
/// let mut console = ConsoleWriter::new(hvc); // on a guest: pv_abi::guest::console()
/// writeln!(console, "hello from VM {}", 1).unwrap();
/// ```
#[derive(Debug)]
pub struct ConsoleWriter<C> {
    client: Client<C>,
}

impl<C: Conduit> ConsoleWriter<C> {
    /// A console writer over `conduit`.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// use core::fmt::Write;
    ///
    /// let mut console = pv_abi::ConsoleWriter::new(tandem); // on a guest: pv_abi::guest::console()
    /// write!(console, "{} + {} = {}\n", 1, 1, 2).unwrap();
    /// ```
    pub const fn new(conduit: C) -> Self {
        Self {
            client: Client::new(conduit),
        }
    }

    /// Writes all of `bytes`; see [`Client::console_write_all`].
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let mut console = pv_abi::ConsoleWriter::new(tandem);
    /// console.write_bytes(b"raw bytes, not UTF-8: \xff\n").unwrap();
    /// ```
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), Status> {
        self.client.console_write_all(bytes)
    }

    /// Returns the conduit.
    ///
    /// ```
    /// # use pv_abi::{ABI_VERSION, Call, HvcArgs, HvcRet, TANDEM_UUID, VmInfo};
    /// # /// A stand-in for Tandem behind `hvc #0` (on a guest: `pv_abi::guest::Hvc`).
    /// # fn tandem(args: HvcArgs) -> HvcRet {
    /// #     match Call::decode(args.x[0], &args) {
    /// #         Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
    /// #         Ok(Call::Revision) => HvcRet::revision(),
    /// #         Ok(Call::Version) => HvcRet::success(ABI_VERSION.major.into(), ABI_VERSION.minor.into(), 0),
    /// #         Ok(Call::VmInfo) => VmInfo { vm_id: 2, vcpu_id: 0, vcpu_count: 2 }.to_ret(),
    /// #         Ok(Call::ConsoleWrite(chunk)) => HvcRet::success(chunk.len() as u64, 0, 0),
    /// #         Ok(Call::ConsoleRead) => pv_abi::console::read_reply(b"AT\r").0,
    /// #         Ok(Call::Stats(_)) => HvcRet::success(1234, 0, 0),
    /// #         Ok(_) => HvcRet::success(0, 0, 0),
    /// #         Err(_) => HvcRet { x: [0x0001_0001, 0, 0, 0] }, // PSCI: version 1.1 / success
    /// #     }
    /// # }
    /// let console = pv_abi::ConsoleWriter::new(tandem);
    /// let hv = pv_abi::Client::new(console.into_inner()); // the same conduit, for other calls
    /// # let _ = hv;
    /// ```
    pub fn into_inner(self) -> C {
        self.client.into_inner()
    }
}

impl<C: Conduit> fmt::Write for ConsoleWriter<C> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::console::read_reply;
    use crate::{HypercallId, TANDEM_UUID, psci::Error as PsciError};
    use std::string::ToString;
    use std::vec::Vec;

    /// A tiny in-memory Tandem: decodes with `Call::decode` as the real hypervisor does.
    #[derive(Default)]
    struct FakeHyp {
        /// Bytes written to the console.
        written: Vec<u8>,
        /// Pending console input.
        input: Vec<u8>,
        /// Maximum bytes accepted per `CONSOLE_WRITE` (models a full buffer).
        accept_max: usize,
        /// The next this many `CONSOLE_WRITE` calls accept nothing (a full buffer).
        full_for: usize,
        /// Every function ID issued, in order.
        log: Vec<u32>,
    }

    impl FakeHyp {
        fn new() -> Self {
            Self {
                accept_max: usize::MAX,
                ..Self::default()
            }
        }
    }

    impl Conduit for &mut FakeHyp {
        fn call(&mut self, args: HvcArgs) -> HvcRet {
            self.log.push(args.function_id().raw());
            if args.function_id() == psci::CPU_ON {
                return HvcRet {
                    x: [
                        if args.x[1] == 1 {
                            0
                        } else {
                            PsciError::AlreadyOn.to_reg()
                        },
                        0,
                        0,
                        0,
                    ],
                };
            }
            if args.function_id() == psci::SYSTEM_OFF {
                return HvcRet {
                    x: [PsciError::Denied.to_reg(), 0, 0, 0],
                };
            }
            match Call::decode(args.x[0], &args) {
                Err(e) => HvcRet::error(e),
                Ok(Call::CallUid) => HvcRet::call_uid(&TANDEM_UUID),
                Ok(Call::Revision) => HvcRet::revision(),
                Ok(Call::Version) => HvcRet::success(1, 2, 0),
                Ok(Call::VmInfo) => VmInfo {
                    vm_id: 1,
                    vcpu_id: 0,
                    vcpu_count: 2,
                }
                .to_ret(),
                Ok(Call::ConsoleWrite(_)) if self.full_for > 0 => {
                    self.full_for -= 1;
                    HvcRet::success(0, 0, 0)
                }
                Ok(Call::ConsoleWrite(c)) => {
                    let n = c.len().min(self.accept_max);
                    self.written.extend_from_slice(&c.as_bytes()[..n]);
                    HvcRet::success(n as u64, 0, 0)
                }
                Ok(Call::ConsoleRead) => {
                    let (ret, n) = read_reply(&self.input);
                    self.input.drain(..n);
                    ret
                }
                Ok(Call::Yield) => HvcRet::success(0, 0, 0),
                Ok(Call::Stats(id)) => HvcRet::success(100 + id.as_raw(), 0, 0),
                Ok(Call::Crash(_)) => HvcRet::error(Status::Denied),
                Ok(Call::Watchdog(_)) => HvcRet::success(0, 0, 0),
                Ok(
                    Call::ChannelNotify(_)
                    | Call::VirtioReply { .. }
                    | Call::VirtioInterrupt { .. },
                ) => HvcRet::success(0, 0, 0),
                Ok(Call::VirtioPoll(_)) => HvcRet::success(0, 0, 0),
            }
        }
    }

    /// Discovery succeeds against Tandem and reports the hypervisor's version.
    #[test]
    fn discover_finds_tandem() {
        let mut hyp = FakeHyp::new();
        let mut c = Client::new(&mut hyp);
        assert!(c.is_tandem());
        assert_eq!(c.discover(), Ok(AbiVersion::new(1, 2)));
        assert_eq!(c.version(), Ok(ABI_VERSION));
        assert_eq!(c.probe(), Ok((1, 2)));
    }

    /// An unknown hypervisor (NOT_SUPPORTED in `w0`) or another UUID is not Tandem.
    #[test]
    fn discover_rejects_other_hypervisors() {
        let mut bare = Client::new(|_| HvcRet {
            x: [u64::MAX, 0, 0, 0],
        });
        assert!(!bare.is_tandem());
        assert_eq!(bare.discover(), Err(DiscoveryError::NotTandem));
        assert_eq!(bare.probe(), Err(Status::NotSupported));
        let mut kvm = Client::new(|_| HvcRet {
            x: [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d],
        });
        assert!(!kvm.is_tandem());
        assert_eq!(kvm.discover(), Err(DiscoveryError::NotTandem));
    }

    /// A Tandem with another major version fails discovery with its version, not "not Tandem".
    #[test]
    fn discover_rejects_other_major() {
        let mut c = Client::new(|a: HvcArgs| {
            if a.function_id() == VENDOR_HYP_REVISION {
                HvcRet { x: [2, 3, 0, 0] }
            } else {
                HvcRet::call_uid(&TANDEM_UUID)
            }
        });
        assert_eq!(c.abi_version(), AbiVersion::new(2, 3));
        let e = c.discover().unwrap_err();
        assert_eq!(e, DiscoveryError::UnsupportedVersion(AbiVersion::new(2, 3)));
        assert_eq!(
            e.to_string(),
            "Tandem ABI 2.3 is not supported: this guest speaks ABI 1.2 (the major versions must match)"
        );
        assert_eq!(Status::from(e), Status::NotSupported);
        assert_eq!(c.probe(), Err(Status::NotSupported));
    }

    /// A higher minor of the same major is accepted (it only adds calls).
    #[test]
    fn discover_accepts_any_minor() {
        let mut c = Client::new(|a: HvcArgs| {
            if a.function_id() == VENDOR_HYP_REVISION {
                HvcRet { x: [1, 7, 0, 0] }
            } else {
                HvcRet::call_uid(&TANDEM_UUID)
            }
        });
        assert_eq!(c.discover(), Ok(AbiVersion::new(1, 7)));
    }

    /// `console_write` splits into 48-byte calls and delivers every byte in order.
    #[test]
    fn console_write_chunks_whole_message() {
        let msg: Vec<u8> = (0..=255u8).cycle().take(130).collect();
        let mut hyp = FakeHyp::new();
        assert_eq!(Client::new(&mut hyp).console_write(&msg), Ok(130));
        assert_eq!(hyp.written, msg);
        assert_eq!(hyp.log.len(), 3); // 48 + 48 + 34
    }

    /// Partial acceptance is retried from the first unaccepted byte.
    #[test]
    fn console_write_resumes_after_partial_accept() {
        let msg = [b'a'; 50];
        let mut hyp = FakeHyp {
            accept_max: 20,
            ..FakeHyp::new()
        };
        assert_eq!(Client::new(&mut hyp).console_write(&msg), Ok(50));
        assert_eq!(hyp.written, msg);
        assert_eq!(hyp.log.len(), 3); // 20 + 20 + 10
    }

    /// A full buffer (0 accepted) stops the loop instead of spinning; empty input makes no call.
    #[test]
    fn console_write_stops_when_nothing_accepted() {
        let mut hyp = FakeHyp {
            accept_max: 0,
            ..FakeHyp::new()
        };
        let mut c = Client::new(&mut hyp);
        assert_eq!(c.console_write(b"hello"), Ok(0));
        assert_eq!(c.console_write(b""), Ok(0));
        assert_eq!(hyp.log.len(), 1);
    }

    /// `console_write_all` yields while the buffer is full and delivers every byte.
    #[test]
    fn console_write_all_yields_until_accepted() {
        let msg: Vec<u8> = (b'a'..=b'z').cycle().take(100).collect();
        let mut hyp = FakeHyp {
            accept_max: 30,
            full_for: 2,
            ..FakeHyp::new()
        };
        assert_eq!(Client::new(&mut hyp).console_write_all(&msg), Ok(()));
        assert_eq!(hyp.written, msg);
        let yield_id = HypercallId::Yield.fid().raw();
        let write_id = HypercallId::ConsoleWrite.fid().raw();
        // full, YIELD, full, YIELD, then 30 + 30 + 30 + 10.
        assert_eq!(
            hyp.log,
            [
                write_id, yield_id, write_id, yield_id, write_id, write_id, write_id, write_id
            ]
        );
    }

    /// A refused console (an error status) ends `console_write_all` with that status.
    #[test]
    fn console_write_all_reports_refusal() {
        let mut off_tandem = Client::new(|_| HvcRet::error(Status::NotSupported));
        assert_eq!(
            off_tandem.console_write_all(b"hi"),
            Err(Status::NotSupported)
        );
        assert_eq!(off_tandem.console_write_all(b""), Ok(()));
    }

    /// `ConsoleWriter` formats through `console_write_all`: nothing is lost to a full buffer.
    #[test]
    fn console_writer_formats_every_byte() {
        use core::fmt::Write;
        let mut hyp = FakeHyp {
            accept_max: 7,
            full_for: 3,
            ..FakeHyp::new()
        };
        writeln!(
            ConsoleWriter::new(&mut hyp),
            "VM {} vCPU {}: {}",
            1,
            0,
            "x".repeat(60)
        )
        .unwrap();
        let expect = std::format!("VM 1 vCPU 0: {}\n", "x".repeat(60));
        assert_eq!(hyp.written, expect.as_bytes());
        let mut refused = ConsoleWriter::new(|_| HvcRet::error(Status::Denied));
        assert!(write!(refused, "x").is_err());
    }

    /// `console_read` drains all pending input and then reports 0.
    #[test]
    fn console_read_drains_input() {
        let input: Vec<u8> = (b'a'..=b'z').collect();
        let mut hyp = FakeHyp {
            input: input.clone(),
            ..FakeHyp::new()
        };
        let mut out = [0u8; 64];
        let mut c = Client::new(&mut hyp);
        assert_eq!(c.console_read(&mut out), Ok(26));
        assert_eq!(out[..26], input[..]);
        assert_eq!(c.console_read(&mut out), Ok(0));
    }

    /// `console_read` never issues a call that could overflow `out`.
    #[test]
    fn console_read_respects_buffer_space() {
        let mut hyp = FakeHyp {
            input: std::vec![b'x'; 40],
            ..FakeHyp::new()
        };
        let mut c = Client::new(&mut hyp);
        assert_eq!(
            c.console_read(&mut [0u8; 15]),
            Err(Status::InvalidParameter)
        );
        assert_eq!(c.console_read(&mut [0u8; 20]), Ok(16));
        assert_eq!(hyp.input.len(), 24);
    }

    /// VM_INFO, STATS and YIELD pass their results through.
    #[test]
    fn simple_calls_return_results() {
        let mut hyp = FakeHyp::new();
        let mut c = Client::new(&mut hyp);
        assert_eq!(
            c.vm_info(),
            Ok(VmInfo {
                vm_id: 1,
                vcpu_id: 0,
                vcpu_count: 2
            })
        );
        assert_eq!(c.stats(StatId::WfiExits), Ok(104));
        assert_eq!(c.yield_now(), Ok(()));
    }

    /// PSCI helpers map return codes; a returning SYSTEM_OFF yields its error.
    #[test]
    fn psci_helpers_map_codes() {
        let mut hyp = FakeHyp::new();
        let mut c = Client::new(&mut hyp);
        let entry = EntryPoint::new(0x4008_0000);
        assert_eq!(c.cpu_on(Mpidr::new(0, 0, 0, 1), entry, 7), Ok(()));
        assert_eq!(
            c.cpu_on(Mpidr::new(0, 0, 0, 2), entry, 7),
            Err(PsciError::AlreadyOn)
        );
        let Err(e) = c.system_off();
        assert_eq!(e, PsciError::Denied);
        assert_eq!(c.system_reset().unwrap_err(), PsciError::NotSupported);
    }

    /// `cpu_on` places target, entry and context id in `x1`, `x2`, `x3`.
    #[test]
    fn cpu_on_register_layout() {
        let mut seen = HvcArgs::default();
        let mut c = Client::new(|a: HvcArgs| {
            seen = a;
            HvcRet::default()
        });
        assert_eq!(
            c.cpu_on(
                Mpidr::from_reg(0x8000_0001),
                EntryPoint::new(0x4010_0000),
                9
            ),
            Ok(())
        );
        assert_eq!(
            seen.x,
            [u64::from(psci::CPU_ON.raw()), 1, 0x4010_0000, 9, 0, 0, 0, 0]
        );
    }

    /// A PSCI call that must not return but reports success is an internal failure.
    #[test]
    fn returning_power_calls_are_failures() {
        let mut c = Client::new(|_| HvcRet::default());
        assert_eq!(c.cpu_off().unwrap_err(), PsciError::InternalFailure);
        assert_eq!(c.system_off().unwrap_err().to_string(), "INTERNAL_FAILURE");
    }
}
