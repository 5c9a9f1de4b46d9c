//! Guest-side wrappers: the crate's only `unsafe` code, the `hvc #0` trap.
//!
//! Compiled only with the `guest` feature on bare-metal AArch64 (`target_os = "none"`), the
//! Hafnium `vmlib/aarch64/hvc_call.c` pattern. The gate includes `target_os` so an AArch64
//! Linux or macOS developer host never compiles an EL1-only instruction into host builds.
//! Every safe wrapper here is a one-line call into [`Client`], whose logic the host tests cover.
//!
//! Call these at EL1 in a VM that runs under a hypervisor: with no EL2, `hvc` is undefined.

use crate::call::{HvcArgs, HvcRet, VmInfo};
use crate::client::{Client, Conduit};
use crate::psci;
use crate::stats::StatId;
use crate::status::Status;

/// Issues `hvc #0` with `args` in `x0..x7` and returns `x0..x3`.
#[inline]
///
/// Follows SMCCC v1.1: Tandem preserves `x4..x17`, `sp` and everything else, so only
/// `x0..x3` are declared clobbered.
pub fn hvc_call(args: HvcArgs) -> HvcRet {
    let [mut x0, mut x1, mut x2, mut x3, x4, x5, x6, x7] = args.x;
    // SAFETY: `hvc #0` traps to the hypervisor, which under SMCCC v1.1 returns results in
    // x0..x3 (declared `inout`) and preserves x4..x17, the stack pointer and the stack (hence
    // `in` operands and `nostack`). It touches no guest memory the compiler could be caching
    // for Tandem calls, but PSCI CPU_ON lets another vCPU read memory this one wrote, so the
    // asm is not marked `nomem`/`readonly`: the compiler must complete prior stores first.
    // Condition flags are not promised preserved, so `preserves_flags` is not claimed either.
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

/// Whether the hypervisor is Tandem (`Call UID` compare); see [`Client::is_tandem`].
pub fn is_tandem() -> bool {
    client().is_tandem()
}

/// The hypervisor's ABI `(major, minor)` from `Revision`; see [`Client::abi_version`].
pub fn abi_version() -> (u32, u32) {
    client().abi_version()
}

/// Full discovery (UUID, then major == 1); see [`Client::probe`].
pub fn probe() -> Result<(u32, u32), Status> {
    client().probe()
}

/// `VERSION` (also the null hypercall); see [`Client::version`].
pub fn version() -> Result<(u32, u32), Status> {
    client().version()
}

/// `VM_INFO`; see [`Client::vm_info`].
pub fn vm_info() -> Result<VmInfo, Status> {
    client().vm_info()
}

/// `CONSOLE_WRITE` in 48-byte chunks; see [`Client::console_write`].
pub fn console_write(bytes: &[u8]) -> Result<usize, Status> {
    client().console_write(bytes)
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
pub fn cpu_on(mpidr: u64, entry: u64, ctx: u64) -> Result<(), psci::Error> {
    client().cpu_on(mpidr, entry, ctx)
}

/// PSCI `CPU_OFF`, returning only on failure; see [`Client::cpu_off`].
pub fn cpu_off() -> psci::Error {
    client().cpu_off()
}

/// PSCI `SYSTEM_OFF`, returning only on failure; see [`Client::system_off`].
pub fn system_off() -> psci::Error {
    client().system_off()
}

/// PSCI `SYSTEM_RESET`, returning only on failure; see [`Client::system_reset`].
pub fn system_reset() -> psci::Error {
    client().system_reset()
}
