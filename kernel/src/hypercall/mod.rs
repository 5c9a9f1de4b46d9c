//! SMCCC calls from guests: the architecture service, PSCI 1.1 and Tandem's
//! vendor-specific hypervisor service (pv-abi).
//!
//! One `match` on the function ID, one small handler per call. Handlers see
//! the VM only through [`CallEnv`], so the whole dispatch is host-tested with a
//! fake. Every function ID and argument a guest can send yields a reply or an
//! action; nothing here panics on guest input.
#![forbid(unsafe_code)]

use pv_abi::psci::{self, AffinityState, Error as PsciError};
use pv_abi::smccc::{self, FunctionId, OEN_ARCH, OEN_STANDARD, OEN_VENDOR_HYP};
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
    /// Takes console output; returns how many bytes were accepted.
    fn console_write(&mut self, bytes: &[u8]) -> usize;
    /// Gives up to `out.len()` bytes of pending console input.
    fn console_read(&mut self, out: &mut [u8]) -> usize;
    /// A statistic.
    fn stat(&self, id: StatId) -> u64;
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
}

/// Handles one call. `args.x[0]` is the function ID.
pub fn dispatch(args: &HvcArgs, env: &mut impl CallEnv) -> (HvcRet, CallAction) {
    let fid = FunctionId::from_reg(args.x[0]);
    let resume = |ret: HvcRet| (ret, CallAction::Resume);
    match fid.oen() {
        OEN_ARCH if fid.is_fast() => resume(arch_call(fid, args)),
        OEN_STANDARD if fid.is_fast() => psci_call(fid, args, env),
        OEN_VENDOR_HYP => tandem_call(args, env),
        _ => resume(HvcRet::error(Status::NotSupported)),
    }
}

fn reg(v: u64) -> HvcRet {
    HvcRet { x: [v, 0, 0, 0] }
}

fn arch_call(fid: FunctionId, args: &HvcArgs) -> HvcRet {
    if fid == smccc::SMCCC_VERSION {
        reg(u64::from(smccc::SMCCC_VERSION_1_1))
    } else if fid == smccc::SMCCC_ARCH_FEATURES {
        // Only the discovery calls themselves; no firmware workarounds are offered.
        let queried = FunctionId::from_reg(args.x[1]);
        if queried == smccc::SMCCC_VERSION || queried == smccc::SMCCC_ARCH_FEATURES {
            reg(0)
        } else {
            HvcRet::error(Status::NotSupported)
        }
    } else {
        HvcRet::error(Status::NotSupported)
    }
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

fn tandem_call(args: &HvcArgs, env: &mut impl CallEnv) -> (HvcRet, CallAction) {
    let resume = |ret: HvcRet| (ret, CallAction::Resume);
    let fid = FunctionId::from_reg(args.x[0]);
    // Decoded per call, on the caller's registers: only CONSOLE_WRITE and
    // STATS have arguments to check (as `Call::decode` checks them).
    let Some(id) = HypercallId::from_fid(fid) else {
        return resume(if fid == smccc::VENDOR_HYP_CALL_UID {
            HvcRet::call_uid(&TANDEM_UUID)
        } else if fid == smccc::VENDOR_HYP_REVISION {
            HvcRet::revision()
        } else {
            HvcRet::error(Status::NotSupported)
        });
    };
    match id {
        HypercallId::Version => resume(HvcRet::success(
            u64::from(pv_abi::ABI_VERSION_MAJOR),
            u64::from(pv_abi::ABI_VERSION_MINOR),
            0,
        )),
        HypercallId::VmInfo => resume(env.vm_info().to_ret()),
        HypercallId::ConsoleWrite => {
            let regs: &[u64; console::CONSOLE_WRITE_REGS] = match args.x[2..].try_into() {
                Ok(r) => r,
                Err(_) => return resume(HvcRet::error(Status::InvalidParameter)),
            };
            match console::ConsoleChunk::from_regs(args.x[1], regs) {
                Ok(chunk) => {
                    let n = env.console_write(chunk.as_bytes());
                    resume(HvcRet::success(n as u64, 0, 0))
                }
                Err(status) => resume(HvcRet::error(status)),
            }
        }
        HypercallId::ConsoleRead => {
            let mut buf = [0u8; console::CONSOLE_READ_MAX];
            let n = env.console_read(&mut buf);
            resume(console::read_reply(&buf[..n]).0)
        }
        HypercallId::Yield => (HvcRet::success(0, 0, 0), CallAction::Yield),
        HypercallId::Stats => match StatId::from_raw(args.x[1]) {
            Some(id) => resume(HvcRet::success(env.stat(id), 0, 0)),
            None => resume(HvcRet::error(Status::InvalidParameter)),
        },
    }
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
    }

    fn fake() -> Fake {
        Fake {
            states: [PowerState::On, PowerState::Off],
            out: Vec::new(),
            input: Vec::new(),
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
        assert_eq!((r.x[0], r.x[1]), (1, 0));
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
            0xC600_0010,
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
                    None => assert!((ret.x[0] as i64) >= 0, "{raw:#x} {x:?}: {ret:?}"),
                }
            }
        }
    }
}
