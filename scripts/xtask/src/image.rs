//! Building the hypervisor and turning its ELF into a bootable raw Image.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment};

use crate::util::{cargo, run, say};

/// The target triple of the hypervisor: no FP/SIMD at EL2.
pub const HYP_TARGET: &str = "aarch64-unknown-none-softfloat";

/// The hypervisor alone, with no guest package: `target/tandem/<platform>/tandem-novm.bin`.
pub const NOVM_IMAGE: &str = "tandem-novm.bin";

/// Builds the hypervisor for `platform` and writes `target/tandem/<platform>/`
/// [`NOVM_IMAGE`] and `tandem.elf` (`package::assemble` appends guests to them).
pub fn build_hypervisor(root: &Path, platform: &str, release: bool) -> Result<PathBuf, String> {
    let feature = match platform {
        "qemu-virt" => "board-qemu-virt",
        "rpi4" => "board-rpi4",
        other => {
            return Err(format!(
                "unknown platform '{other}' (known: qemu-virt, rpi4)"
            ));
        }
    };
    say(&format!(
        "building the hypervisor for {platform} ({})",
        if release { "release" } else { "debug" }
    ));
    let mut cmd = cargo();
    cmd.current_dir(root).args([
        "build",
        "--package",
        "kernel",
        "--bin",
        "tandem",
        "--target",
        HYP_TARGET,
        "--no-default-features",
        "--features",
        feature,
    ]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)?;
    let profile = if release { "release" } else { "debug" };
    let elf = root
        .join("target")
        .join(HYP_TARGET)
        .join(profile)
        .join("tandem");
    let out_dir = root.join("target").join("tandem").join(platform);
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let bin = out_dir.join(NOVM_IMAGE);
    let size = elf_to_raw(&elf, &bin)?;
    std::fs::copy(&elf, out_dir.join("tandem.elf")).map_err(|e| e.to_string())?;
    say(&format!("{} ({size} bytes)", bin.display()));
    Ok(bin)
}

/// Writes the loadable bytes of `elf` as a flat image starting at its lowest
/// load address (what `objcopy -O binary` does). Returns the image size.
pub fn elf_to_raw(elf: &Path, out: &Path) -> Result<usize, String> {
    let data = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    let segments: Vec<_> = file
        .segments()
        .filter_map(|s| {
            let (offset, size) = s.file_range();
            (size > 0).then(|| (s.address(), offset as usize, size as usize))
        })
        .collect();
    let base = segments
        .iter()
        .map(|s| s.0)
        .min()
        .ok_or("ELF has no loadable segments")?;
    let end = segments
        .iter()
        .map(|s| s.0 + s.2 as u64)
        .max()
        .unwrap_or(base);
    let mut image = vec![0u8; (end - base) as usize];
    for (addr, offset, size) in segments {
        let at = (addr - base) as usize;
        image[at..at + size].copy_from_slice(&data[offset..offset + size]);
    }
    std::fs::write(out, &image).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(image.len())
}

/// The target triple of guests (EL1 may use FP/SIMD).
pub const GUEST_TARGET: &str = "aarch64-unknown-none";

/// Builds a bare-metal guest binary and writes `target/tandem/guests/<name>.bin`.
///
/// `name` is `bin` plus, when features are given, `-<feature>` for each.
pub fn build_guest(
    root: &Path,
    package: &str,
    bin: &str,
    features: &[&str],
) -> Result<PathBuf, String> {
    let mut name = bin.to_string();
    for f in features {
        name.push('-');
        name.push_str(f);
    }
    say(&format!("building guest {name}"));
    let mut cmd = cargo();
    cmd.current_dir(root).args([
        "build",
        "--release",
        "--package",
        package,
        "--bin",
        bin,
        "--target",
        GUEST_TARGET,
    ]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    // Feature builds get their own target dir so variants do not rebuild each other.
    let target_dir = root.join("target").join(if features.is_empty() {
        "guests".to_string()
    } else {
        format!("guests-{}", features.join("-"))
    });
    cmd.arg("--target-dir").arg(&target_dir);
    run(&mut cmd)?;
    let elf = target_dir.join(GUEST_TARGET).join("release").join(bin);
    let out_dir = root.join("target").join("tandem").join("guests");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let out = out_dir.join(format!("{name}.bin"));
    elf_to_raw(&elf, &out)?;
    std::fs::copy(&elf, out_dir.join(format!("{name}.elf"))).map_err(|e| e.to_string())?;
    Ok(out)
}
