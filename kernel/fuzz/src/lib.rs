//! Coverage-guided fuzz targets against Tandem's real code, on the host.
//!
//! Each module is one target: its `run(data)` turns libFuzzer's bytes into
//! input for the real code (the run loop on [`kernel::arch::fake`] CPUs, the
//! vGIC, stage 2, the device-tree readers, the boot package, xtask's vms.toml
//! parser, the channel ring) and checks what must hold whatever the input:
//! no panic, no arithmetic overflow (the build keeps overflow checks and
//! debug assertions on), and the target's own invariants. The binaries in
//! `fuzz_targets/` hand each input to a `run`; `cargo xtask fuzz` builds them
//! with libFuzzer's coverage instrumentation and runs them (docs/fuzzing.md).

pub mod dtb;
pub mod hypercall;
pub mod package;
pub mod ring;
pub mod stage2;
pub mod vgic_mmio;
pub mod vm_config;

#[allow(dead_code, missing_docs, clippy::all)]
#[path = "../../../scripts/xtask/src/channels.rs"]
mod channels;
#[allow(dead_code, missing_docs, clippy::all)]
#[path = "../../../scripts/xtask/src/guest_dt.rs"]
mod guest_dt;
/// xtask's vms.toml parser and the modules it uses, compiled here as they are
/// (xtask is a binary, not a library).
#[allow(dead_code, missing_docs, clippy::all)]
#[path = "../../../scripts/xtask/src/vms.rs"]
mod vms;

/// Reads little-endian values from the front of a fuzz input; an exhausted
/// input reads as zeros (so every prefix of an input is an input).
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// The next 16-bit value.
    pub fn u16(&mut self) -> u16 {
        let mut b = [0; 2];
        let src = self.take(2);
        b[..src.len()].copy_from_slice(src);
        u16::from_le_bytes(b)
    }

    /// The next 32-bit value.
    pub fn u32(&mut self) -> u32 {
        let mut b = [0; 4];
        let src = self.take(4);
        b[..src.len()].copy_from_slice(src);
        u32::from_le_bytes(b)
    }

    /// The next 64-bit value.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0; 8];
        let src = self.take(8);
        b[..src.len()].copy_from_slice(src);
        u64::from_le_bytes(b)
    }

    /// A value in `0..n` (`n` > 0) from one byte.
    pub fn below(&mut self, n: u8) -> u8 {
        self.u8() % n
    }

    /// A register-like value: small numbers, boundary values or raw bits, so
    /// that both exact small arguments and hostile ones come up often.
    pub fn word(&mut self) -> u64 {
        match self.u8() % 8 {
            0 => 0,
            1 => u64::from(self.u8()),
            2 => u64::from(self.u16()),
            3 => u64::from(self.u32()),
            4 => u64::MAX - u64::from(self.u8()),
            5 => 1u64 << (self.u8() % 64),
            _ => self.u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// A target's entry.
    type Target = fn(&[u8]);

    fn seeds(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join(target)
    }

    /// Every committed seed runs clean through its target.
    #[test]
    fn seeds_run_clean() {
        let targets: [(&str, Target); 7] = [
            ("hypercall", crate::hypercall::run),
            ("vgic_mmio", crate::vgic_mmio::run),
            ("stage2", crate::stage2::run),
            ("dtb", crate::dtb::run),
            ("package", crate::package::run),
            ("vm_config", crate::vm_config::run),
            ("ring", crate::ring::run),
        ];
        for (name, run) in targets {
            let dir = std::fs::read_dir(seeds(name)).expect("a seed directory per target");
            let mut n = 0;
            for entry in dir {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                run(&bytes);
                n += 1;
            }
            assert!(n > 0, "no seeds for {name}");
        }
    }
}
