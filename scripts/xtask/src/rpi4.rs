//! The Raspberry Pi 4: its device tree, built from the Linux source tree xtask already
//! unpacks, and the SD-card boot folder (`cargo xtask sdcard`).
//!
//! The board's `bcm2711-rpi-4-b.dtb` is what the Pi firmware passes (and what QEMU
//! `-M raspi4b` needs with `-dtb`, since QEMU builds none for raspi boards). It is compiled
//! from `arch/arm64/boot/dts/broadcom/bcm2711-rpi-4-b.dts` of the Linux 6.12 tree with
//! `cpp` (for its `#include`s) and `dtc`, never checked in.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::linux;
use crate::util::say;

/// The board's device tree file name (as in the Raspberry Pi firmware release).
pub const DTB: &str = "bcm2711-rpi-4-b.dtb";
/// The source in the Linux tree.
const DTS: &str = "arch/arm64/boot/dts/broadcom/bcm2711-rpi-4-b.dts";

/// Compiles the board's device tree into `out_dir/bcm2711-rpi-4-b.dtb` (unless it is newer
/// than the Linux source tree) and returns its path. Needs the Linux source
/// (`cargo xtask linux` unpacks it) and dtc.
pub fn dtb(root: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    linux::build(root)?;
    let src = linux::cache_root()?.join("linux").join("src");
    let dts = src.join(DTS);
    if !dts.exists() {
        return Err(format!(
            "{}: not found in the Linux source tree (cargo xtask linux unpacks it)",
            dts.display()
        ));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let out = out_dir.join(DTB);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(source)) = (modified(&out), modified(&src)) {
        if built > source {
            return Ok(out);
        }
    }
    let pre = out_dir.join("bcm2711-rpi-4-b.pre.dts");
    let status = Command::new("cpp")
        .current_dir(&src)
        .args([
            "-nostdinc",
            "-undef",
            "-D__DTS__",
            "-x",
            "assembler-with-cpp",
        ])
        .args(["-I", "include", "-I", "arch/arm64/boot/dts"])
        .args(["-I", "scripts/dtc/include-prefixes"])
        .arg(DTS)
        .arg("-o")
        .arg(&pre)
        .status()
        .map_err(|e| format!("cpp (the C preprocessor, for the device tree's includes): {e}"))?;
    if !status.success() {
        return Err(format!("cpp failed on {} ({status})", dts.display()));
    }
    let status = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb", "-q", "-o"])
        .arg(&out)
        .arg(&pre)
        .status()
        .map_err(|e| format!("dtc: {e}"))?;
    let _ = std::fs::remove_file(&pre);
    if !status.success() {
        return Err(format!("dtc failed on {} ({status})", dts.display()));
    }
    say(&format!("{} (from {DTS} of the Linux tree)", out.display()));
    Ok(out)
}
