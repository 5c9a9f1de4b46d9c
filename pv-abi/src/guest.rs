//! Guest-side wrappers: the `hvc #0` trap and ready-made calls over it.
//!
//! **Available with the `guest` feature on bare-metal AArch64** (`target_arch = "aarch64"`,
//! `target_os = "none"`, e.g. `aarch64-unknown-none`): add
//! `pv-abi = { version = "…", features = ["guest"] }` to the guest's dependencies. Elsewhere the
//! module does not exist (it is documented everywhere), the Hafnium
//! `vmlib/aarch64/hvc_call.c` pattern: the gate includes `target_os` so an AArch64 Linux or
//! macOS developer host never compiles an EL1-only instruction into host builds.
//!
//! [`hvc_call`] holds the crate's only `unsafe` code. Every other function here is a one-line
//! call into [`Client`] over the [`Hvc`] conduit, whose logic the host tests cover.
//!
//! Call these at EL1 in a VM that runs under a hypervisor: with no EL2, `hvc` is undefined.
//! Before the first call from Rust, the guest must have enabled FP/SIMD (`CPACR_EL1.FPEN`),
//! because Tandem starts it with FP/SIMD trapped; see "Entry state" in the
//! [crate documentation](crate#entry-state).
//!
//! The examples of this module are marked `ignore` because the host doctests cannot see the
//! module; `tests/guest_examples.rs` compiles every one of them for `aarch64-unknown-none`
//! with the `guest` feature instead.
//!
//! ```ignore
//! use core::fmt::Write;
//! use pv_abi::guest;
//!
//! fn main_on_tandem() -> ! {
//!     let version = match guest::discover() {
//!         Ok(v) => v,
//!         Err(e) => panic!("{e}"), // not Tandem, or an ABI major this guest does not speak
//!     };
//!     let me = guest::vm_info().expect("VM_INFO");
//!     let mut console = guest::console();
//!     let _ = writeln!(console, "hello from VM {} on Tandem ABI {version}", me.vm_id);
//!     let Err(e) = guest::system_off();
//!     panic!("SYSTEM_OFF failed: {e}");
//! }
//! ```

use core::convert::Infallible;

use crate::call::{HvcArgs, HvcRet, VmInfo};
use crate::client::{Client, Conduit, ConsoleWriter, DiscoveryError};
use crate::psci::{self, EntryPoint, Mpidr};
use crate::stats::StatId;
use crate::status::Status;
use crate::version::AbiVersion;

/// Issues `hvc #0` with `args` in `x0..x7` and returns `x0..x3`.
///
/// Follows SMCCC v1.1: Tandem preserves `x4..x17`, `sp` and everything else, so only
/// `x0..x3` are declared clobbered.
///
/// ```ignore
/// use pv_abi::{HvcArgs, HypercallId, guest};
///
/// // A raw call: VERSION (the null hypercall), x0 = the ID, x1..x7 zero.
/// let ret = guest::hvc_call(HvcArgs::new(HypercallId::Version.fid()));
/// let [major, _minor, _] = ret.into_result().expect("VERSION");
/// assert_eq!(major, 1);
/// ```
#[inline]
pub fn hvc_call(args: HvcArgs) -> HvcRet {
    #[cfg(all(feature = "guest", target_arch = "aarch64", target_os = "none"))]
    {
        let [mut x0, mut x1, mut x2, mut x3, x4, x5, x6, x7] = args.x;
        // SAFETY: `hvc #0` traps to the hypervisor, which under SMCCC v1.1 returns results in
        // x0..x3 (declared `inout`) and preserves x4..x17, the stack pointer and the stack
        // (hence `in` operands and `nostack`). It touches no guest memory the compiler could
        // be caching for Tandem calls, but PSCI CPU_ON lets another vCPU read memory this one
        // wrote, so the asm is not marked `nomem`/`readonly`: the compiler must complete prior
        // stores first. Condition flags are not promised preserved, so `preserves_flags` is not
        // claimed either.
        unsafe {
            core::arch::asm!(
                "hvc #0",
                inout("x0") x0,
                inout("x1") x1,
                inout("x2") x2,
                inout("x3") x3,
                in("x4") x4,
                in("x5") x5,
                in("x6") x6,
                in("x7") x7,
                options(nostack),
            );
        }
        HvcRet {
            x: [x0, x1, x2, x3],
        }
    }
    // Only a documentation build (`cargo doc` on another target) gets here.
    #[cfg(not(all(feature = "guest", target_arch = "aarch64", target_os = "none")))]
    {
        let _ = args;
        unreachable!("pv_abi::guest exists only with the guest feature on aarch64 bare metal")
    }
}

/// The `hvc #0` conduit as a zero-sized type, so [`Client`] calls inline to the trap.
///
/// ```ignore
/// use pv_abi::{Client, guest::Hvc};
///
/// // Hvc is zero-sized: a Client over it costs nothing but the hvc itself.
/// let mut hv = Client::new(Hvc);
/// let me = hv.vm_info().expect("VM_INFO");
/// assert!(me.vm_id >= 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Hvc;

impl Conduit for Hvc {
    #[inline]
    fn call(&mut self, args: HvcArgs) -> HvcRet {
        hvc_call(args)
    }
}

/// A [`Client`] over [`Hvc`].
///
/// ```ignore
/// let mut hv = pv_abi::guest::client();
/// if hv.is_tandem() {
///     let _ = hv.yield_now();
/// }
/// ```
pub const fn client() -> Client<Hvc> {
    Client::new(Hvc)
}

/// The console as a [`core::fmt::Write`] sink that delivers every byte (it yields and retries
/// while Tandem's buffer is full); see [`ConsoleWriter`].
///
/// ```ignore
/// use core::fmt::Write;
///
/// let mut out = pv_abi::guest::console();
/// let _ = writeln!(out, "{} timer interrupts", 3);
/// ```
pub const fn console() -> ConsoleWriter<Hvc> {
    ConsoleWriter::new(Hvc)
}

/// Whether the hypervisor is Tandem (`Call UID` compare); see [`Client::is_tandem`].
///
/// ```ignore
/// // rtos-guest runs natively too: pick the console by what is below it.
/// let use_pv_console = pv_abi::guest::is_tandem();
/// # let _ = use_pv_console;
/// ```
pub fn is_tandem() -> bool {
    client().is_tandem()
}

/// The hypervisor's ABI version from `Revision`; see [`Client::abi_version`].
///
/// ```ignore
/// use pv_abi::{AbiVersion, guest};
///
/// if guest::is_tandem() && guest::abi_version().supports(AbiVersion::new(1, 1)) {
///     let _ = guest::watchdog(5_000);
/// }
/// ```
pub fn abi_version() -> AbiVersion {
    client().abi_version()
}

/// Full discovery (UUID, then major == 1), telling "not Tandem" from "unsupported major
/// version"; see [`Client::discover`].
///
/// ```ignore
/// use pv_abi::guest;
///
/// let Ok(version) = guest::discover() else {
///     // Not Tandem, or a major version this guest does not speak: make no Tandem call.
///     loop {}
/// };
/// let _ = guest::console_write_all(b"on Tandem\n");
/// # let _ = version;
/// ```
pub fn discover() -> Result<AbiVersion, DiscoveryError> {
    client().discover()
}

/// Discovery in the form of earlier releases; see [`Client::probe`]. Prefer [`discover`].
///
/// ```ignore
/// let (major, minor) = pv_abi::guest::probe().expect("Tandem");
/// # let _ = (major, minor);
/// ```
pub fn probe() -> Result<(u32, u32), Status> {
    client().probe()
}

/// `VERSION` (also the null hypercall); see [`Client::version`].
///
/// ```ignore
/// // VERSION is the null hypercall: a round trip costs what an exit costs.
/// let v = pv_abi::guest::version().expect("VERSION");
/// assert_eq!(v.major, 1);
/// ```
pub fn version() -> Result<AbiVersion, Status> {
    client().version()
}

/// `VM_INFO`; see [`Client::vm_info`].
///
/// ```ignore
/// let me = pv_abi::guest::vm_info().expect("VM_INFO");
/// let secondaries = 1..me.vcpu_count; // vCPU ids are 0-based; VM ids start at 1
/// # let _ = secondaries;
/// ```
pub fn vm_info() -> Result<VmInfo, Status> {
    client().vm_info()
}

/// `CONSOLE_WRITE` in 48-byte chunks, **possibly writing only a prefix** (the count is
/// returned); see [`Client::console_write`]. [`console_write_all`] and [`console`] write
/// everything.
///
/// ```ignore
/// let msg = b"partial writes are possible\n";
/// let n = pv_abi::guest::console_write(msg).unwrap_or(0);
/// if n < msg.len() {
///     let _ = pv_abi::guest::console_write_all(&msg[n..]);
/// }
/// ```
pub fn console_write(bytes: &[u8]) -> Result<usize, Status> {
    client().console_write(bytes)
}

/// `CONSOLE_WRITE` until every byte is accepted, yielding while the buffer is full; see
/// [`Client::console_write_all`].
///
/// ```ignore
/// let _ = pv_abi::guest::console_write_all(b"rtos: boot done\n");
/// ```
pub fn console_write_all(bytes: &[u8]) -> Result<(), Status> {
    client().console_write_all(bytes)
}

/// `CONSOLE_READ` until drained or `out` is full; see [`Client::console_read`].
///
/// ```ignore
/// // Console-input interrupt (SPI 32): drain until nothing is pending.
/// let mut buf = [0u8; 64];
/// while let Ok(n @ 1..) = pv_abi::guest::console_read(&mut buf) {
///     let _line = &buf[..n];
/// }
/// ```
pub fn console_read(out: &mut [u8]) -> Result<usize, Status> {
    client().console_read(out)
}

/// `YIELD`; see [`Client::yield_now`].
///
/// ```ignore
/// use core::sync::atomic::{AtomicBool, Ordering};
/// static READY: AtomicBool = AtomicBool::new(false);
///
/// while !READY.load(Ordering::Acquire) {
///     let _ = pv_abi::guest::yield_now(); // let the other vCPU of this pCPU run
///     # break;
/// }
/// ```
pub fn yield_now() -> Result<(), Status> {
    client().yield_now()
}

/// `STATS`; see [`Client::stats`].
///
/// ```ignore
/// use pv_abi::{StatId, guest};
///
/// let exits = guest::stats(StatId::Exits).unwrap_or(0);
/// let uptime_ns = guest::stats(StatId::UptimeNs).unwrap_or(0);
/// # let _ = (exits, uptime_ns);
/// ```
pub fn stats(id: StatId) -> Result<u64, Status> {
    client().stats(id)
}

/// `CRASH` (ABI 1.1), returning only on failure; see [`Client::crash`].
///
/// ```ignore
/// // In a panic handler: tell Tandem, which restarts or stops the VM as configured.
/// let Err(e) = pv_abi::guest::crash("assertion failed in the modem task");
/// // Only an older Tandem (ABI 1.0) gets here: NOT_SUPPORTED.
/// # let _ = e;
/// ```
pub fn crash(reason: &str) -> Result<Infallible, Status> {
    client().crash(reason)
}

/// `WATCHDOG` (ABI 1.1); see [`Client::watchdog`].
///
/// ```ignore
/// let _ = pv_abi::guest::watchdog(1_000); // pet it at least every second from now on
/// ```
pub fn watchdog(timeout_ms: u32) -> Result<(), Status> {
    client().watchdog(timeout_ms)
}

/// `CHANNEL_NOTIFY` (ABI 1.2): see [`Client::channel_notify`].
///
/// ```ignore
/// // The channel id is the `tandem,channel` property of the channel's device-tree node.
/// if pv_abi::guest::channel_notify(0) == Err(pv_abi::Status::Denied) {
///     // The peer is not running: nobody to tell.
/// }
/// ```
pub fn channel_notify(channel: u32) -> Result<(), Status> {
    client().channel_notify(channel)
}

/// `VIRTIO_POLL` (ABI 1.2): see [`Client::virtio_poll`].
///
/// ```ignore
/// // A back-end's doorbell handler: collect the work, answer every access.
/// fn doorbell(ch: u32, registers: impl Fn(u16, bool, u64) -> u64) -> Result<u32, pv_abi::Status> {
///     let mut queues = 0;
///     loop {
///         let poll = pv_abi::guest::virtio_poll(ch)?;
///         queues |= poll.queues;
///         let Some((access, value)) = poll.access else { return Ok(queues) };
///         let read = registers(access.offset, access.write, value);
///         pv_abi::guest::virtio_reply(ch, access, read)?;
///     }
/// }
/// ```
pub fn virtio_poll(channel: u32) -> Result<crate::virtio::VirtioPoll, Status> {
    client().virtio_poll(channel)
}

/// `VIRTIO_REPLY` (ABI 1.2): see [`Client::virtio_reply`].
///
/// ```ignore
/// use pv_abi::virtio::MmioAccess;
///
/// let access = MmioAccess { vcpu: 0, seq: 1, write: false, size: 4, offset: 0 };
/// let _ = pv_abi::guest::virtio_reply(0, access, 0x7472_6976); // MagicValue "virt"
/// ```
pub fn virtio_reply(
    channel: u32,
    access: crate::virtio::MmioAccess,
    value: u64,
) -> Result<(), Status> {
    client().virtio_reply(channel, access, value)
}

/// `VIRTIO_INTERRUPT` (ABI 1.2): see [`Client::virtio_interrupt`].
///
/// ```ignore
/// let _ = pv_abi::guest::virtio_interrupt(0, pv_abi::virtio::INTERRUPT_USED_BUFFER);
/// ```
pub fn virtio_interrupt(channel: u32, bits: u32) -> Result<(), Status> {
    client().virtio_interrupt(channel, bits)
}

/// PSCI `PSCI_VERSION`; see [`Client::psci_version`].
///
/// ```ignore
/// let v = pv_abi::guest::psci_version().expect("PSCI");
/// assert!(v >= pv_abi::psci::version(0, 2));
/// ```
pub fn psci_version() -> Result<u32, psci::Error> {
    client().psci_version()
}

/// PSCI `CPU_ON`; see [`Client::cpu_on`].
///
/// ```ignore
/// use pv_abi::guest;
/// use pv_abi::psci::{EntryPoint, Mpidr};
///
/// unsafe extern "C" {
///     fn secondary_entry(); // the guest's CPU_ON entry (guest-rt: guest_secondary_entry)
/// }
/// let entry = EntryPoint::new(secondary_entry as *const () as u64); // MMU off: VA = IPA
/// guest::cpu_on(Mpidr::new(0, 0, 0, 1), entry, 1).expect("CPU_ON vCPU 1");
/// ```
pub fn cpu_on(target: Mpidr, entry: EntryPoint, context_id: u64) -> Result<(), psci::Error> {
    client().cpu_on(target, entry, context_id)
}

/// PSCI `CPU_OFF`, returning only on failure; see [`Client::cpu_off`].
///
/// ```ignore
/// let Err(e) = pv_abi::guest::cpu_off(); // returns only if it failed
/// panic!("CPU_OFF failed: {e}");
/// ```
pub fn cpu_off() -> Result<Infallible, psci::Error> {
    client().cpu_off()
}

/// PSCI `SYSTEM_OFF`, returning only on failure; see [`Client::system_off`].
///
/// ```ignore
/// let Err(e) = pv_abi::guest::system_off(); // this VM only; the others run on
/// panic!("SYSTEM_OFF failed: {e}");
/// ```
pub fn system_off() -> Result<Infallible, psci::Error> {
    client().system_off()
}

/// PSCI `SYSTEM_RESET`, returning only on failure; see [`Client::system_reset`].
///
/// ```ignore
/// let Err(e) = pv_abi::guest::system_reset(); // restarts this VM from its pristine image
/// panic!("SYSTEM_RESET failed: {e}");
/// ```
pub fn system_reset() -> Result<Infallible, psci::Error> {
    client().system_reset()
}
