//! SMCCC calls from guests: the architecture service, PSCI 1.1 and Tandem's
//! vendor-specific hypervisor service (pv-abi).
//!
//! One `match` on the function ID, one small handler per call. Handlers see
//! the VM only through [`CallEnv`], so the whole dispatch is host-tested with a
//! fake. Every function ID and argument a guest can send yields a reply or an
//! action; nothing here panics on guest input.
#![forbid(unsafe_code)]

use pv_abi::psci::{self, AffinityState, Error as PsciError};
use pv_abi::smccc::{self, FunctionId, OEN_ARCH, OEN_STANDARD, OEN_STANDARD_HYP, OEN_VENDOR_HYP};
use pv_abi::{HvcArgs, HvcRet, HypercallId, StatId, Status, TANDEM_UUID, VmInfo, console};

/// A vCPU's power state, as PSCI sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    /// Not started, or turned off with CPU_OFF.
    Off,
    /// CPU_ON accepted, not yet running.
    OnPending,
    /// Running (or runnable, or blocked in WFI).
    On,
}

/// What the VM looks like to a call handler.
pub trait CallEnv {
    /// The caller's VM id, vCPU index and the VM's vCPU count.
    fn vm_info(&self) -> VmInfo;
    /// The vCPU whose MPIDR affinity (Aff3..Aff0) is `mpidr`, if any.
    fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<usize>;
    /// Power state of vCPU `i`.
    fn power_state(&self, i: usize) -> PowerState;
    /// Whether `ipa` is guest RAM (for CPU_ON entry points).
    fn is_ram(&self, ipa: u64) -> bool;
    /// Whether the VM is transparent: Tandem's vendor service is hidden from
    /// it, and its calls get `NOT_SUPPORTED` as on bare hardware.
    fn hides_tandem(&self) -> bool {
        false
    }
    /// Takes console output; returns how many bytes were accepted.
    fn console_write(&mut self, bytes: &[u8]) -> usize;
    /// Gives up to `out.len()` bytes of pending console input.
    fn console_read(&mut self, out: &mut [u8]) -> usize;
    /// A statistic.
    fn stat(&self, id: StatId) -> u64;
    /// Arms the VM's paravirtual watchdog for `timeout_ms` from now (0 disarms).
    fn watchdog(&mut self, timeout_ms: u32);
    /// The IPA of the calling vCPU's stolen-time structure (Arm PV time),
    /// which Tandem keeps up to date from now on; `None` if the VM has none.
    fn stolen_time(&mut self) -> Option<u64>;
    /// A channel call (`CHANNEL_NOTIFY`, `VIRTIO_*`), arguments checked:
    /// its results `x1..x3`, or the status to return.
    fn channel(&mut self, call: pv_abi::Call) -> Result<[u64; 3], Status>;
}

/// What the caller's vCPU must do after the reply is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallAction {
    /// Resume the caller with the reply.
    Resume,
    /// Reply, then let other vCPUs on this physical CPU run.
    Yield,
    /// Reply success, and start vCPU `vcpu` at `entry` with x0 = `context`.
    CpuOn {
        /// Target vCPU index.
        vcpu: usize,
        /// Entry IPA.
        entry: u64,
        /// x0 for the target.
        context: u64,
    },
    /// The caller turns itself off (no reply).
    CpuOff,
    /// The VM powers off.
    SystemOff,
    /// The VM restarts.
    SystemReset,
    /// The guest reports a fatal error (`CRASH`; its reason, validated, is
    /// in the caller's `x1..x7`): the VM restarts or stops as configured (no
    /// reply). The reason is not carried here, so that every other call's
    /// result stays a few registers wide.
    Crash,
}

/// Handles one call. `args.x[0]` is the function ID. Returns the reply
/// (success for `CPU_OFF` and `CRASH`, which have none) and the action.
pub fn dispatch(args: &HvcArgs, env: &mut impl CallEnv) -> (HvcRet, CallAction) {
    let mut regs = *args;
    let action = dispatch_in_place(&mut regs, env);
    let ret = match action {
        CallAction::CpuOff | CallAction::Crash => reg(0),
        _ => HvcRet {
            x: [regs.x[0], regs.x[1], regs.x[2], regs.x[3]],
        },
    };
    (ret, action)
}

/// [`dispatch`] on the caller's own registers, the form the hypervisor's
/// exit path uses: the reply goes straight into `regs.x[0..4]` (except for
/// `CPU_OFF`, which has none, and `CRASH`, whose reason stays readable in
/// `x1..x7`), and only the action returns. The common calls are inline and
/// write their few result registers directly; the calls that move data or
/// change power are out of line.
#[inline(always)]
pub fn dispatch_in_place(regs: &mut HvcArgs, env: &mut impl CallEnv) -> CallAction {
    let fid = FunctionId::from_reg(regs.x[0]);
    match fid.oen() {
        OEN_ARCH if fid.is_fast() => {
            let ret = arch_call(fid, regs);
            put(regs, ret)
        }
        OEN_STANDARD_HYP if fid.is_fast() => apply(regs, pv_time_call(fid, regs, env)),
        OEN_VENDOR_HYP if !env.hides_tandem() => tandem_call(fid, regs, env),
        OEN_STANDARD if fid.is_fast() => apply(regs, psci_call(fid, regs, env)),
        _ => put(regs, HvcRet::error(Status::NotSupported)),
    }
}

/// Writes `ret` into the caller's result registers; the caller resumes.
#[inline(always)]
fn put(regs: &mut HvcArgs, ret: HvcRet) -> CallAction {
    regs.x[..4].copy_from_slice(&ret.x);
    CallAction::Resume
}

/// Writes the reply of an out-of-line handler (none for `CPU_OFF` and
/// `CRASH`) and passes its action on.
#[inline(never)]
fn apply(regs: &mut HvcArgs, (ret, action): (HvcRet, CallAction)) -> CallAction {
    if !matches!(action, CallAction::CpuOff | CallAction::Crash) {
        regs.x[..4].copy_from_slice(&ret.x);
    }
    action
}

fn reg(v: u64) -> HvcRet {
    HvcRet { x: [v, 0, 0, 0] }
}

#[inline(always)]
fn arch_call(fid: FunctionId, args: &HvcArgs) -> HvcRet {
    if fid == smccc::SMCCC_VERSION {
        reg(u64::from(smccc::SMCCC_VERSION_1_1))
    } else if fid == smccc::SMCCC_ARCH_FEATURES {
        // The discovery calls themselves and Arm PV time; no firmware
        // workarounds are offered.
        let queried = FunctionId::from_reg(args.x[1]);
        if queried == smccc::SMCCC_VERSION
            || queried == smccc::SMCCC_ARCH_FEATURES
            || queried == smccc::PV_TIME_FEATURES
        {
            reg(0)
        } else {
            HvcRet::error(Status::NotSupported)
        }
    } else {
        HvcRet::error(Status::NotSupported)
    }
}

/// Arm paravirtualized time (DEN0057): stolen time only.
#[inline(never)]
fn pv_time_call(fid: FunctionId, args: &HvcArgs, env: &mut impl CallEnv) -> (HvcRet, CallAction) {
    // DEN0057 returns SMCCC codes: 0 success, -1 NOT_SUPPORTED.
    let not_supported = reg(Status::NotSupported.to_reg());
    let ret = if fid == smccc::PV_TIME_FEATURES {
        let queried = FunctionId::from_reg(args.x[1]);
        if queried == smccc::PV_TIME_FEATURES || queried == smccc::PV_TIME_ST {
            reg(0)
        } else {
            not_supported
        }
    } else if fid == smccc::PV_TIME_ST {
        env.stolen_time().map_or(not_supported, reg)
    } else {
        not_supported
    };
    (ret, CallAction::Resume)
}

const PSCI_SUPPORTED: [FunctionId; 8] = [
    psci::PSCI_VERSION,
    psci::PSCI_FEATURES,
    psci::CPU_ON,
    psci::CPU_OFF,
    psci::AFFINITY_INFO,
    psci::MIGRATE_INFO_TYPE,
    psci::SYSTEM_OFF,
    psci::SYSTEM_RESET,
];

fn psci_err(e: PsciError) -> (HvcRet, CallAction) {
    (reg(e.to_reg()), CallAction::Resume)
}

#[inline(never)]
fn psci_call(fid: FunctionId, args: &HvcArgs, env: &mut impl CallEnv) -> (HvcRet, CallAction) {
    let ok = |v: u64| (reg(v), CallAction::Resume);
    // SMC32 forms of the 64-bit calls pass 32-bit arguments.
    let arg = |i: usize| {
        if fid.is_smc64() {
            args.x[i]
        } else {
            args.x[i] & 0xffff_ffff
        }
    };
    let base = FunctionId::new(fid.raw() | FunctionId::SMC64_BIT);
    match fid {
        f if f == psci::PSCI_VERSION => ok(u64::from(psci::VERSION_1_1)),
        f if f == psci::PSCI_FEATURES => {
            let queried = FunctionId::from_reg(args.x[1]);
            let q64 = FunctionId::new(queried.raw() | FunctionId::SMC64_BIT);
            let known = PSCI_SUPPORTED.iter().any(|s| *s == queried || *s == q64)
                || queried == smccc::SMCCC_VERSION;
            if known {
                ok(0)
            } else {
                psci_err(PsciError::NotSupported)
            }
        }
        f if f == psci::MIGRATE_INFO_TYPE => ok(u64::from(psci::MIGRATE_INFO_TYPE_NOT_PRESENT)),
        f if f == psci::CPU_OFF => (reg(0), CallAction::CpuOff),
        f if f == psci::SYSTEM_OFF => (reg(0), CallAction::SystemOff),
        f if f == psci::SYSTEM_RESET => (reg(0), CallAction::SystemReset),
        _ if base == psci::CPU_ON => {
            let (target, entry, context) = (arg(1), arg(2), arg(3));
            let Some(vcpu) = env.vcpu_by_mpidr(target) else {
                return psci_err(PsciError::InvalidParameters);
            };
            if !env.is_ram(entry) || entry % 4 != 0 {
                return psci_err(PsciError::InvalidAddress);
            }
            match env.power_state(vcpu) {
                PowerState::On => psci_err(PsciError::AlreadyOn),
                PowerState::OnPending => psci_err(PsciError::OnPending),
                PowerState::Off => (
                    reg(0),
                    CallAction::CpuOn {
                        vcpu,
                        entry,
                        context,
                    },
                ),
            }
        }
        _ if base == psci::AFFINITY_INFO => {
            if arg(2) != 0 {
                return psci_err(PsciError::InvalidParameters);
            }
            let Some(vcpu) = env.vcpu_by_mpidr(arg(1)) else {
                return psci_err(PsciError::InvalidParameters);
            };
            let state = match env.power_state(vcpu) {
                PowerState::On => AffinityState::On,
                PowerState::Off => AffinityState::Off,
                PowerState::OnPending => AffinityState::OnPending,
            };
            ok(state as u64)
        }
        _ => psci_err(PsciError::NotSupported),
    }
}

#[inline(always)]
fn tandem_call(fid: FunctionId, regs: &mut HvcArgs, env: &mut impl CallEnv) -> CallAction {
    // Call n is 0xC600_0000 + n ([`HypercallId`]). Decoded per call, on the
    // caller's registers: CONSOLE_WRITE, STATS, CRASH and WATCHDOG have
    // arguments to check (as `Call::decode` checks them). The calls that
    // move data are out of line, so that the null hypercall's path stays short.
    const BASE: u32 = HypercallId::Version as u32;
    const VERSION: u32 = HypercallId::Version as u32 - BASE;
    const VM_INFO: u32 = HypercallId::VmInfo as u32 - BASE;
    const CONSOLE_WRITE: u32 = HypercallId::ConsoleWrite as u32 - BASE;
    const CONSOLE_READ: u32 = HypercallId::ConsoleRead as u32 - BASE;
    const YIELD: u32 = HypercallId::Yield as u32 - BASE;
    const STATS: u32 = HypercallId::Stats as u32 - BASE;
    const CRASH: u32 = HypercallId::Crash as u32 - BASE;
    const WATCHDOG: u32 = HypercallId::Watchdog as u32 - BASE;
    const CHANNEL_FIRST: u32 = HypercallId::ChannelNotify as u32 - BASE;
    const CHANNEL_LAST: u32 = HypercallId::VirtioInterrupt as u32 - BASE;
    match fid.raw().wrapping_sub(BASE) {
        VERSION => put(
            regs,
            HvcRet::success(
                u64::from(pv_abi::ABI_VERSION_MAJOR),
                u64::from(pv_abi::ABI_VERSION_MINOR),
                0,
            ),
        ),
        VM_INFO => {
            let ret = env.vm_info().to_ret();
            put(regs, ret)
        }
        YIELD => {
            put(regs, HvcRet::success(0, 0, 0));
            CallAction::Yield
        }
        STATS => {
            let ret = match StatId::from_raw(regs.x[1]) {
                Some(id) => HvcRet::success(env.stat(id), 0, 0),
                None => HvcRet::error(Status::InvalidParameter),
            };
            put(regs, ret)
        }
        CONSOLE_WRITE | CONSOLE_READ => {
            let r = console_call(fid, regs, env);
            apply(regs, r)
        }
        CRASH | WATCHDOG => {
            let r = recovery_call(fid, regs, env);
            apply(regs, r)
        }
        CHANNEL_FIRST..=CHANNEL_LAST => {
            let r = channel_call(regs, env);
            apply(regs, r)
        }
        _ => put(regs, discovery_call(fid)),
    }
}

/// The vendor service's discovery queries, and anything else in its range.
#[inline(never)]
fn discovery_call(fid: FunctionId) -> HvcRet {
    if fid == smccc::VENDOR_HYP_CALL_UID {
        HvcRet::call_uid(&TANDEM_UUID)
    } else if fid == smccc::VENDOR_HYP_REVISION {
        HvcRet::revision()
    } else {
        HvcRet::error(Status::NotSupported)
    }
}

/// The payload of `CONSOLE_WRITE` or `CRASH` (`x1` = length, bytes in `x2..x7`).
fn payload(args: &HvcArgs) -> Result<console::ConsoleChunk, Status> {
    let regs: [u64; console::CONSOLE_WRITE_REGS] = core::array::from_fn(|i| args.x[2 + i]);
    console::ConsoleChunk::from_regs(args.x[1], &regs)
}

#[inline(never)]
fn console_call(fid: FunctionId, args: &HvcArgs, env: &mut impl CallEnv) -> (HvcRet, CallAction) {
    let ret = if fid == HypercallId::ConsoleWrite.fid() {
        match payload(args) {
            Ok(chunk) => HvcRet::success(env.console_write(chunk.as_bytes()) as u64, 0, 0),
            Err(status) => HvcRet::error(status),
        }
    } else {
        let mut buf = [0u8; console::CONSOLE_READ_MAX];
        let n = env.console_read(&mut buf);
        console::read_reply(&buf[..n]).0
    };
    (ret, CallAction::Resume)
}

#[inline(never)]
fn recovery_call(fid: FunctionId, args: &HvcArgs, env: &mut impl CallEnv) -> (HvcRet, CallAction) {
    if fid == HypercallId::Crash.fid() {
        return match payload(args) {
            Ok(_) => (HvcRet::success(0, 0, 0), CallAction::Crash),
            Err(status) => (HvcRet::error(status), CallAction::Resume),
        };
    }
    let ret = match u32::try_from(args.x[1]) {
        Ok(ms) if ms <= pv_abi::call::WATCHDOG_MAX_MS => {
            env.watchdog(ms);
            HvcRet::success(0, 0, 0)
        }
        _ => HvcRet::error(Status::InvalidParameter),
    };
    (ret, CallAction::Resume)
}

/// `CHANNEL_NOTIFY` and the virtio back-end calls: checked by the ABI's
/// decoder, served by the environment.
#[inline(never)]
fn channel_call(args: &HvcArgs, env: &mut impl CallEnv) -> (HvcRet, CallAction) {
    let ret = match pv_abi::Call::decode(args.x[0], args).and_then(|call| env.channel(call)) {
        Ok([x1, x2, x3]) => HvcRet::success(x1, x2, x3),
        Err(status) => HvcRet::error(status),
    };
    (ret, CallAction::Resume)
}

/// The reason of a `CRASH` call whose registers [`dispatch`] accepted
/// (`None` for registers it would have refused).
pub fn crash_reason(args: &HvcArgs) -> Option<console::ConsoleChunk> {
    payload(args).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pv_abi::Call;
    use std::vec::Vec;

    struct Fake {
        states: [PowerState; 2],
        out: Vec<u8>,
        input: Vec<u8>,
        watchdog: Option<u32>,
    }

    impl CallEnv for Fake {
        fn vm_info(&self) -> VmInfo {
            VmInfo {
                vm_id: 3,
                vcpu_id: 0,
                vcpu_count: 2,
            }
        }
        fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<usize> {
            (mpidr < 2).then_some(mpidr as usize)
        }
        fn power_state(&self, i: usize) -> PowerState {
            self.states[i]
        }
        fn is_ram(&self, ipa: u64) -> bool {
            (0x4000_0000..0x4100_0000).contains(&ipa)
        }
        fn console_write(&mut self, bytes: &[u8]) -> usize {
            self.out.extend_from_slice(bytes);
            bytes.len()
        }
        fn console_read(&mut self, out: &mut [u8]) -> usize {
            let n = self.input.len().min(out.len());
            out[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            n
        }
        fn stat(&self, id: StatId) -> u64 {
            100 + id.as_raw()
        }
        fn watchdog(&mut self, timeout_ms: u32) {
            self.watchdog = Some(timeout_ms);
        }
        fn stolen_time(&mut self) -> Option<u64> {
            Some(0x4fff_0000)
        }
        fn channel(&mut self, call: Call) -> Result<[u64; 3], Status> {
            match call {
                Call::ChannelNotify(0) => Ok([0; 3]),
                Call::VirtioPoll(0) => Ok([1, 2, 3]),
                _ => Err(Status::Denied),
            }
        }
    }

    fn fake() -> Fake {
        Fake {
            states: [PowerState::On, PowerState::Off],
            out: Vec::new(),
            input: Vec::new(),
            watchdog: None,
        }
    }

    fn call(env: &mut Fake, x: [u64; 8]) -> (HvcRet, CallAction) {
        dispatch(&HvcArgs { x }, env)
    }

    /// PSCI_VERSION is 1.1 and SMCCC_VERSION is 1.1.
    #[test]
    fn versions() {
        let mut f = fake();
        assert_eq!(
            call(&mut f, [0x8400_0000, 0, 0, 0, 0, 0, 0, 0]).0.x[0],
            0x1_0001
        );
        assert_eq!(
            call(&mut f, [0x8000_0000, 0, 0, 0, 0, 0, 0, 0]).0.x[0],
            0x1_0001
        );
    }

    /// CPU_ON of an off vCPU with an entry in RAM starts it; every bad case has its PSCI error.
    #[test]
    fn cpu_on() {
        let mut f = fake();
        let (r, a) = call(&mut f, [0xC400_0003, 1, 0x4008_0000, 7, 0, 0, 0, 0]);
        assert_eq!(
            (r.x[0], a),
            (
                0,
                CallAction::CpuOn {
                    vcpu: 1,
                    entry: 0x4008_0000,
                    context: 7
                }
            )
        );
        let err = |f: &mut Fake, x| call(f, x).0.x[0] as i64;
        assert_eq!(
            err(&mut f, [0xC400_0003, 0, 0x4008_0000, 0, 0, 0, 0, 0]),
            -4,
            "already on"
        );
        assert_eq!(
            err(&mut f, [0xC400_0003, 9, 0x4008_0000, 0, 0, 0, 0, 0]),
            -2,
            "no such CPU"
        );
        assert_eq!(
            err(&mut f, [0xC400_0003, 1, 0x1000, 0, 0, 0, 0, 0]),
            -9,
            "entry outside RAM"
        );
        f.states[1] = PowerState::OnPending;
        assert_eq!(
            err(&mut f, [0xC400_0003, 1, 0x4008_0000, 0, 0, 0, 0, 0]),
            -5,
            "on pending"
        );
    }

    /// AFFINITY_INFO reports each state and rejects other affinity levels.
    #[test]
    fn affinity_info() {
        let mut f = fake();
        assert_eq!(call(&mut f, [0xC400_0004, 0, 0, 0, 0, 0, 0, 0]).0.x[0], 0);
        assert_eq!(call(&mut f, [0xC400_0004, 1, 0, 0, 0, 0, 0, 0]).0.x[0], 1);
        assert_eq!(
            call(&mut f, [0xC400_0004, 1, 1, 0, 0, 0, 0, 0]).0.x[0] as i64,
            -2
        );
    }

    /// PSCI_FEATURES knows the implemented calls and nothing else.
    #[test]
    fn psci_features() {
        let mut f = fake();
        assert_eq!(
            call(&mut f, [0x8400_000A, 0xC400_0003, 0, 0, 0, 0, 0, 0])
                .0
                .x[0],
            0
        );
        assert_eq!(
            call(&mut f, [0x8400_000A, 0x8400_0003, 0, 0, 0, 0, 0, 0])
                .0
                .x[0],
            0,
            "SMC32 CPU_ON"
        );
        assert_eq!(
            call(&mut f, [0x8400_000A, 0xC400_0001, 0, 0, 0, 0, 0, 0])
                .0
                .x[0] as i64,
            -1
        );
    }

    /// Off, reset and CPU_OFF become actions.
    #[test]
    fn power_actions() {
        let mut f = fake();
        assert_eq!(
            call(&mut f, [0x8400_0008, 0, 0, 0, 0, 0, 0, 0]).1,
            CallAction::SystemOff
        );
        assert_eq!(
            call(&mut f, [0x8400_0009, 0, 0, 0, 0, 0, 0, 0]).1,
            CallAction::SystemReset
        );
        assert_eq!(
            call(&mut f, [0x8400_0002, 0, 0, 0, 0, 0, 0, 0]).1,
            CallAction::CpuOff
        );
    }

    /// The Call UID is Tandem's and the revision is the ABI version.
    #[test]
    fn discovery() {
        let mut f = fake();
        let r = call(&mut f, [0x8600_FF01, 0, 0, 0, 0, 0, 0, 0]).0;
        assert_eq!(r.x, [0x93877a81, 0xed4ba73d, 0x963c72a6, 0xec10f508]);
        let r = call(&mut f, [0x8600_FF03, 0, 0, 0, 0, 0, 0, 0]).0;
        assert_eq!((r.x[0], r.x[1]), (1, 2));
    }

    /// Channel calls reach the environment only with valid arguments, and
    /// its results or status come back.
    #[test]
    fn channel_calls_go_to_the_environment() {
        let mut f = fake();
        assert_eq!(
            call(&mut f, [0xC600_0010, 0, 0, 0, 0, 0, 0, 0]).0.x,
            [0, 0, 0, 0]
        );
        assert_eq!(
            call(&mut f, [0xC600_0011, 0, 0, 0, 0, 0, 0, 0]).0.x,
            [0, 1, 2, 3]
        );
        assert_eq!(
            call(&mut f, [0xC600_0010, 1, 0, 0, 0, 0, 0, 0]).0.x[0] as i64,
            -4
        );
        // Refused by the decoder: a channel id over 32 bits, a malformed access word, no bits.
        for x in [
            [0xC600_0010, 1 << 32, 0, 0, 0, 0, 0, 0],
            [0xC600_0012, 0, 0, 0, 0, 0, 0, 0],
            [0xC600_0013, 0, 0, 0, 0, 0, 0, 0],
            [0xC600_0013, 0, 4, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(call(&mut f, x).0.x[0] as i64, -3, "{x:x?}");
        }
        assert_eq!(
            call(&mut f, [0xC600_0014, 0, 0, 0, 0, 0, 0, 0]).0.x[0] as i64,
            -1
        );
    }

    /// Console write/read move bytes through the environment.
    #[test]
    fn console() {
        let mut f = fake();
        let (regs, n) = pv_abi::console::pack_bytes(b"hello");
        let mut x = [
            HypercallId::ConsoleWrite.fid().to_reg(),
            n as u64,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        x[2..8].copy_from_slice(&regs);
        assert_eq!(call(&mut f, x).0.x[..2], [0, 5]);
        assert_eq!(f.out, b"hello");
        f.input = b"AT\r".to_vec();
        let r = call(
            &mut f,
            [HypercallId::ConsoleRead.fid().to_reg(), 0, 0, 0, 0, 0, 0, 0],
        )
        .0;
        assert_eq!(r.x[1], 3);
        assert_eq!(r.x[2] & 0xff_ffff, u64::from_le_bytes(*b"AT\r\0\0\0\0\0"));
    }

    /// Hostile input: unknown IDs in every owner range, oversized console writes, unknown stats.
    #[test]
    fn hostile_calls_get_errors() {
        let mut f = fake();
        for id in [
            0xC600_00FFu64,
            0xC600_0014,
            0x8600_0000,
            0xC200_0000,
            0xC300_0001,
            0x8000_8000,
            0xC500_0000,
            0xFFFF_FFFF,
        ] {
            let (r, a) = call(&mut f, [id, 0, 0, 0, 0, 0, 0, 0]);
            assert_eq!(r.x[0] as i64, -1, "{id:#x}");
            assert_eq!(a, CallAction::Resume);
        }
        let r = call(
            &mut f,
            [
                HypercallId::ConsoleWrite.fid().to_reg(),
                49,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
        )
        .0;
        assert_eq!(r.x[0] as i64, -3);
        let r = call(
            &mut f,
            [HypercallId::Stats.fid().to_reg(), 1 << 40, 0, 0, 0, 0, 0, 0],
        )
        .0;
        assert_eq!(r.x[0] as i64, -3);
        assert!(f.out.is_empty());
    }

    /// The per-call decoding answers exactly as pv-abi's `Call::decode`
    /// judges the arguments: every vendor ID (and some past them) with
    /// pseudo-random argument registers, including bad lengths and stat ids.
    #[test]
    fn vendor_decoding_matches_call_decode() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for raw in 0xC600_0000u64..0xC600_0020 {
            for _ in 0..200 {
                let mut x = [0u64; 8];
                x[0] = raw;
                for r in &mut x[1..] {
                    *r = next() % 4 * (next() % 64);
                }
                let args = HvcArgs { x };
                let (ret, _) = dispatch(&args, &mut fake());
                let expected_err = Call::decode(raw, &args).err();
                match expected_err {
                    Some(status) => assert_eq!(ret.x[0], status.to_reg(), "{raw:#x} {x:?}"),
                    // Channel calls: whatever the environment says (below).
                    None if (0xC600_0010..=0xC600_0013).contains(&raw) => {}
                    None => assert!((ret.x[0] as i64) >= 0, "{raw:#x} {x:?}: {ret:?}"),
                }
            }
        }
    }

    /// CRASH carries its reason to the action; WATCHDOG arms with its timeout
    /// and refuses one over the maximum.
    #[test]
    fn crash_and_watchdog() {
        let mut f = fake();
        let (regs, n) = pv_abi::pack_bytes(b"kernel panic");
        let mut x = [0xC600_0006, n as u64, 0, 0, 0, 0, 0, 0];
        x[2..].copy_from_slice(&regs);
        assert_eq!(call(&mut f, x).1, CallAction::Crash);
        assert_eq!(
            crash_reason(&HvcArgs { x }).unwrap().as_bytes(),
            b"kernel panic"
        );
        assert_eq!(
            call(&mut f, [0xC600_0006, 49, 0, 0, 0, 0, 0, 0]).0.x[0] as i64,
            -3
        );
        assert_eq!(
            call(&mut f, [0xC600_0007, 2000, 0, 0, 0, 0, 0, 0]).0.x[0],
            0
        );
        assert_eq!(f.watchdog, Some(2000));
        let too_long = u64::from(pv_abi::call::WATCHDOG_MAX_MS) + 1;
        assert_eq!(
            call(&mut f, [0xC600_0007, too_long, 0, 0, 0, 0, 0, 0]).0.x[0] as i64,
            -3
        );
        assert_eq!(f.watchdog, Some(2000));
    }

    /// Arm PV time: discovered through ARCH_FEATURES and PV_TIME_FEATURES,
    /// and PV_TIME_ST gives the structure's IPA.
    #[test]
    fn pv_time() {
        let mut f = fake();
        assert_eq!(
            call(&mut f, [0x8000_0001, 0xC500_0020, 0, 0, 0, 0, 0, 0])
                .0
                .x[0],
            0
        );
        assert_eq!(
            call(&mut f, [0xC500_0020, 0xC500_0021, 0, 0, 0, 0, 0, 0])
                .0
                .x[0],
            0
        );
        assert_eq!(
            call(&mut f, [0xC500_0020, 0xC500_0022, 0, 0, 0, 0, 0, 0])
                .0
                .x[0] as i64,
            -1
        );
        assert_eq!(
            call(&mut f, [0xC500_0021, 0, 0, 0, 0, 0, 0, 0]).0.x[0],
            0x4fff_0000
        );
        assert_eq!(
            call(&mut f, [0xC500_0030, 0, 0, 0, 0, 0, 0, 0]).0.x[0] as i64,
            -1
        );
    }
}
