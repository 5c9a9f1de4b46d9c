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
    if let (Some(built), Some(source)) = (modified(&out), modified(&src))
        && built > source
    {
        return Ok(out);
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

/// `config.txt` for the Pi firmware: 64-bit, Tandem's image at the address it is linked
/// for, the PL011 on GPIO 14/15 (Bluetooth moved off it), the GIC-400 enabled.
pub const CONFIG_TXT: &str = "\
# Tandem on a Raspberry Pi 4 (written by `cargo xtask sdcard`).
# 64-bit mode: the firmware starts kernel8.img at EL2.
arm_64bit=1
kernel=kernel8.img
# Where Tandem is linked (platforms/rpi4/link.ld).
kernel_address=0x80000
# The PL011 (uart0) on GPIO 14/15 at 115200 baud; Bluetooth gives it up.
enable_uart=1
dtoverlay=disable-bt
# The GIC-400 instead of the legacy interrupt controller.
enable_gic=1
";

/// What the boot folder's README says.
pub const README_TXT: &str = "\
Tandem for the Raspberry Pi 4 — the boot folder `cargo xtask sdcard` wrote
==========================================================================

Files here
  kernel8.img   Tandem with its two VMs (the RTOS and Linux), one image
  config.txt    firmware settings: 64-bit, kernel8.img at 0x80000, the PL011 on
                GPIO 14/15 (enable_uart=1, dtoverlay=disable-bt), enable_gic=1

Add from the Raspberry Pi firmware release (https://github.com/raspberrypi/firmware,
directory boot/), into this same folder:
  start4.elf               the VideoCore firmware for the Pi 4
  fixup4.dat               its memory split
  bcm2711-rpi-4-b.dtb      the board's device tree (the firmware passes it to Tandem)
  overlays/disable-bt.dtbo the overlay config.txt names

Put everything on the first (FAT32) partition of an SD card.

Serial console (3.3 V TTL adapter, 115200 baud, 8N1, no flow control)
  Pi GPIO 14 (TXD, header pin 8)   -> adapter RX
  Pi GPIO 15 (RXD, header pin 10)  <- adapter TX
  Pi GND (header pin 6)            -- adapter GND

What you will see
  Tandem's boot log (\"Tandem v... on rpi4 (Raspberry Pi 4 Model B): EL2, 4 CPUs,
  ... GICv2\"), the four CPUs coming online, then every line tagged with the VM that
  printed it: \"  rtos | rtos-guest: ...\" and its rtos-stats lines every 2 s, and
  \" linux | ...\" booting to a shell (tandem:/root#), where
  `cat /sys/hypervisor/type` prints `tandem`. Ctrl-] moves the console input between
  the VMs and Tandem's monitor.

Tested in QEMU -M raspi4b (QEMU 10, `cargo xtask run --platform rpi4`), not on a
board: on real hardware the firmware, its UART set-up and the RAM it reports are
untried.
";

/// Checks that `dir` is a writable directory, with an error that says what is wrong.
pub fn check_boot_folder(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        format!(
            "{}: {e} (give an existing folder: the SD card's mounted boot partition, or a folder \
             to copy onto it)",
            dir.display()
        )
    })?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let probe = dir.join(".tandem-write-test");
    std::fs::write(&probe, b"").map_err(|e| {
        format!(
            "{}: cannot write there: {e} (is the SD card mounted read-write?)",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes `kernel8.img` (`image`), `config.txt` and `README.txt` into `dir`.
pub fn write_boot_folder(dir: &Path, image: &[u8]) -> Result<(), String> {
    check_boot_folder(dir)?;
    for (name, bytes) in [
        ("kernel8.img", image),
        ("config.txt", CONFIG_TXT.as_bytes()),
        ("README.txt", README_TXT.as_bytes()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        say(&format!("{} ({} bytes)", path.display(), bytes.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-sdcard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The folder gets the image as kernel8.img, the firmware settings and the README.
    #[test]
    fn writes_the_boot_folder() {
        let dir = scratch("ok");
        write_boot_folder(&dir, b"IMAGE").unwrap();
        assert_eq!(std::fs::read(dir.join("kernel8.img")).unwrap(), b"IMAGE");
        let config = std::fs::read_to_string(dir.join("config.txt")).unwrap();
        for line in [
            "arm_64bit=1",
            "enable_uart=1",
            "dtoverlay=disable-bt",
            "enable_gic=1",
            "kernel=kernel8.img",
        ] {
            assert!(config.lines().any(|l| l == line), "{line} in {config}");
        }
        let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
        for needle in [
            "start4.elf",
            "fixup4.dat",
            "bcm2711-rpi-4-b.dtb",
            "GPIO 14",
            "GPIO 15",
            "115200",
            "8N1",
            "QEMU -M raspi4b",
            "not on a\nboard",
        ] {
            assert!(readme.contains(needle), "{needle:?} in the README");
        }
        assert!(!dir.join(".tandem-write-test").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A missing folder, a file and a place nobody can write are clear errors.
    #[test]
    fn bad_folders_are_clear_errors() {
        let dir = scratch("bad");
        let missing = dir.join("no-such-dir");
        let e = write_boot_folder(&missing, b"x").unwrap_err();
        assert!(
            e.contains("no-such-dir") && e.contains("existing folder"),
            "{e}"
        );
        let file = dir.join("a-file");
        std::fs::write(&file, b"").unwrap();
        let e = write_boot_folder(&file, b"x").unwrap_err();
        assert!(e.ends_with("not a directory"), "{e}");
        // procfs takes no new files, not even from root.
        let e = write_boot_folder(Path::new("/proc"), b"x").unwrap_err();
        assert!(e.starts_with("/proc: cannot write there"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
