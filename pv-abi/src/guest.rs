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
//! ```ignore
//! // (Not compiled by the host doctests: this module exists only on the guest target.)
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
#[derive(Clone, Copy, Debug, Default)]
pub struct Hvc;

impl Conduit for Hvc {
    #[inline]
    fn call(&mut self, args: HvcArgs) -> HvcRet {
        hvc_call(args)
    }
}

/// A [`Client`] over [`Hvc`].
pub const fn client() -> Client<Hvc> {
    Client::new(Hvc)
}

/// The console as a [`core::fmt::Write`] sink that delivers every byte (it yields and retries
/// while Tandem's buffer is full); see [`ConsoleWriter`].
pub const fn console() -> ConsoleWriter<Hvc> {
    ConsoleWriter::new(Hvc)
}

/// Whether the hypervisor is Tandem (`Call UID` compare); see [`Client::is_tandem`].
pub fn is_tandem() -> bool {
    client().is_tandem()
}

/// The hypervisor's ABI version from `Revision`; see [`Client::abi_version`].
pub fn abi_version() -> AbiVersion {
    client().abi_version()
}

/// Full discovery (UUID, then major == 1), telling "not Tandem" from "unsupported major
/// version"; see [`Client::discover`].
pub fn discover() -> Result<AbiVersion, DiscoveryError> {
    client().discover()
}

/// Discovery in the form of earlier releases; see [`Client::probe`]. Prefer [`discover`].
pub fn probe() -> Result<(u32, u32), Status> {
    client().probe()
}

/// `VERSION` (also the null hypercall); see [`Client::version`].
pub fn version() -> Result<AbiVersion, Status> {
    client().version()
}

/// `VM_INFO`; see [`Client::vm_info`].
pub fn vm_info() -> Result<VmInfo, Status> {
    client().vm_info()
}

/// `CONSOLE_WRITE` in 48-byte chunks, **possibly writing only a prefix** (the count is
/// returned); see [`Client::console_write`]. [`console_write_all`] and [`console`] write
/// everything.
pub fn console_write(bytes: &[u8]) -> Result<usize, Status> {
    client().console_write(bytes)
}

/// `CONSOLE_WRITE` until every byte is accepted, yielding while the buffer is full; see
/// [`Client::console_write_all`].
pub fn console_write_all(bytes: &[u8]) -> Result<(), Status> {
    client().console_write_all(bytes)
}

/// `CONSOLE_READ` until drained or `out` is full; see [`Client::console_read`].
pub fn console_read(out: &mut [u8]) -> Result<usize, Status> {
    client().console_read(out)
}

/// `YIELD`; see [`Client::yield_now`].
pub fn yield_now() -> Result<(), Status> {
    client().yield_now()
}

/// `STATS`; see [`Client::stats`].
pub fn stats(id: StatId) -> Result<u64, Status> {
    client().stats(id)
}

/// PSCI `PSCI_VERSION`; see [`Client::psci_version`].
pub fn psci_version() -> Result<u32, psci::Error> {
    client().psci_version()
}

/// PSCI `CPU_ON`; see [`Client::cpu_on`].
pub fn cpu_on(target: Mpidr, entry: EntryPoint, context_id: u64) -> Result<(), psci::Error> {
    client().cpu_on(target, entry, context_id)
}

/// PSCI `CPU_OFF`, returning only on failure; see [`Client::cpu_off`].
pub fn cpu_off() -> Result<Infallible, psci::Error> {
    client().cpu_off()
}

/// PSCI `SYSTEM_OFF`, returning only on failure; see [`Client::system_off`].
pub fn system_off() -> Result<Infallible, psci::Error> {
    client().system_off()
}

/// PSCI `SYSTEM_RESET`, returning only on failure; see [`Client::system_reset`].
pub fn system_reset() -> Result<Infallible, psci::Error> {
    client().system_reset()
}
