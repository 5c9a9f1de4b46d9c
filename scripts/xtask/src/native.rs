//! `cargo xtask run --native <guest>`: a guest on the bare emulated machine,
//! without Tandem — the baseline Tandem is measured against.
//!
//! - `rtos`: the RTOS image at EL1 (its latency baseline).
//! - `linux`: the same kernel `Image` and initramfs as Tandem's Linux VM, on
//!   the same QEMU machine without EL2, with the VM's shape (vCPUs and RAM
//!   from `platforms/<board>/vms.toml`, unless `--smp`/`--memory` say
//!   otherwise) and the VM's command line with the PL011 as console
//!   ([`native_bootargs`]).
//!
//! Native Linux gets QEMU's own device tree, made reproducible the way
//! `/work/shared/notes/determinism.md` describes: dumped once with
//! `dtb-randomness=off` (which also leaves it packed, a few KiB, like the
//! DT Tandem gives its VM; QEMU's default in-memory tree is padded to 1 MiB,
//! and Linux's early boot CRCs all of it, about 8 ms under `-icount`), an
//! `rng-seed` and a zero `kaslr-seed` added in `/chosen` (as Tandem's VM DT
//! has), and booted with `-dtb`. QEMU refills every `rng-seed` at reset from
//! its own generator, so `-seed` makes that generator fixed: the boot is then
//! identical run to run under `--icount`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::vms::{Config, GuestImage, Image, Vm};

/// What `--native` boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeGuest {
    /// The RTOS (rtos-guest).
    Rtos,
    /// The Linux guest's Image and initramfs.
    Linux,
}

/// The `--native` names, with what each boots (for errors and help).
const NATIVE_GUESTS: [(&str, NativeGuest, &str); 2] = [
    ("rtos", NativeGuest::Rtos, "the RTOS"),
    (
        "linux",
        NativeGuest::Linux,
        "the Linux VM's kernel and initramfs",
    ),
];

/// The fixed seed of QEMU's guest random generator for native Linux (`-seed`).
pub const QEMU_SEED: u64 = 1;

impl NativeGuest {
    /// Parses a `--native` value; the error lists what is known.
    pub fn parse(name: &str) -> Result<Self, String> {
        NATIVE_GUESTS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, g, _)| *g)
            .ok_or_else(|| {
                let known: Vec<String> = NATIVE_GUESTS
                    .iter()
                    .map(|(n, _, what)| format!("{n} ({what})"))
                    .collect();
                format!(
                    "unknown native guest \"{name}\": --native boots {}",
                    known.join(" or ")
                )
            })
    }
}

/// The VM whose Linux is booted natively: the `default = true` VM running the
/// `linux` image, else the first VM running it.
pub fn linux_vm(config: &Config) -> Result<&Vm, String> {
    let linux = |v: &&Vm| v.image == Image::Built(GuestImage::Linux);
    config
        .vms
        .iter()
        .filter(linux)
        .find(|v| v.default)
        .or_else(|| config.vms.iter().find(linux))
        .ok_or_else(|| {
            format!(
                "{}: no VM runs the \"linux\" image, so there is no Linux to boot natively",
                config.file
            )
        })
}

/// The VM's kernel command line for a native boot: Tandem's console
/// (`console=hvcN`) becomes the PL011 (`console=ttyAMA0`), `earlycon=tandem`
/// becomes `earlycon` (which finds the PL011 through `/chosen/stdout-path`);
/// everything else is kept. Without a console, `console=ttyAMA0` is added.
pub fn native_bootargs(vm_bootargs: Option<&str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut console = false;
    for word in vm_bootargs.unwrap_or("").split_whitespace() {
        if let Some(dev) = word.strip_prefix("console=") {
            console = true;
            out.push(if dev.starts_with("hvc") {
                "console=ttyAMA0"
            } else {
                word
            });
        } else if word == "earlycon=tandem" || word.starts_with("earlycon=tandem,") {
            out.push("earlycon");
        } else {
            out.push(word);
        }
    }
    if !console {
        out.push("console=ttyAMA0");
    }
    out.join(" ")
}

/// Adds `option` to the value of the `-M` (or `-machine`) argument.
pub fn add_machine_option(args: &mut [String], option: &str) -> Result<(), String> {
    let at = args
        .iter()
        .position(|a| a == "-M" || a == "-machine")
        .filter(|&i| i + 1 < args.len())
        .ok_or("the platform's QEMU arguments have no -M")?;
    args[at + 1] = format!("{},{option}", args[at + 1]);
    Ok(())
}

/// The `fdtput` calls that give `/chosen` of `dtb` an `rng-seed` (eight words,
/// QEMU refills them at reset) and a zero `kaslr-seed`, as Tandem's VM DT has.
pub fn seed_commands(dtb: &Path, rng_seed: &[u32; 8]) -> Vec<Vec<String>> {
    let dtb = dtb.display().to_string();
    let mut rng = vec!["-t".into(), "x".into(), dtb.clone(), "/chosen".into()];
    rng.push("rng-seed".into());
    rng.extend(rng_seed.iter().map(|w| format!("{w:#x}")));
    let kaslr = ["-t", "x", &dtb, "/chosen", "kaslr-seed", "0", "0"]
        .map(String::from)
        .to_vec();
    vec![rng, kaslr]
}

/// Writes the native Linux device tree to `out`: QEMU dumps its tree for the
/// machine `args` describe (with `dtb-randomness=off` already in `-M`), then
/// `fdtput` adds the seeds.
pub fn make_dtb(
    qemu: &str,
    args: &[String],
    out: &Path,
    rng_seed: &[u32; 8],
) -> Result<PathBuf, String> {
    let mut dump = args.to_vec();
    add_machine_option(&mut dump, &format!("dumpdtb={}", out.display()))?;
    let _ = std::fs::remove_file(out);
    let status = Command::new(qemu)
        .args(&dump)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {qemu}: {e}"))?;
    if !status.status.success() || !out.is_file() {
        return Err(format!(
            "{qemu} did not dump its device tree to {}: {}",
            out.display(),
            String::from_utf8_lossy(&status.stderr).trim()
        ));
    }
    for call in seed_commands(out, rng_seed) {
        let result = Command::new("fdtput").args(&call).output().map_err(|e| {
            format!("cannot run fdtput (it comes with device-tree-compiler, like dtc): {e}")
        })?;
        if !result.status.success() {
            return Err(format!(
                "fdtput {}: {}",
                call.join(" "),
                String::from_utf8_lossy(&result.stderr).trim()
            ));
        }
    }
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vms::Board;

    #[test]
    fn parses_known_guests_and_names_them_on_error() {
        assert_eq!(NativeGuest::parse("rtos"), Ok(NativeGuest::Rtos));
        assert_eq!(NativeGuest::parse("linux"), Ok(NativeGuest::Linux));
        let e = NativeGuest::parse("freertos").unwrap_err();
        assert_eq!(
            e,
            "unknown native guest \"freertos\": --native boots rtos (the RTOS) or linux (the Linux VM's kernel and initramfs)"
        );
        assert!(NativeGuest::parse("Linux").is_err());
        assert!(NativeGuest::parse("").is_err());
    }

    #[test]
    fn bootargs_move_to_the_pl011() {
        assert_eq!(
            native_bootargs(Some("console=hvc0 earlycon=tandem")),
            "console=ttyAMA0 earlycon"
        );
        assert_eq!(
            native_bootargs(Some("quiet  console=hvc0,115200 loglevel=3")),
            "quiet console=ttyAMA0 loglevel=3"
        );
        // A console that is not Tandem's stays; no second one is added.
        assert_eq!(
            native_bootargs(Some("console=ttyAMA0,115200")),
            "console=ttyAMA0,115200"
        );
        assert_eq!(
            native_bootargs(Some("rdinit=/init")),
            "rdinit=/init console=ttyAMA0"
        );
        assert_eq!(native_bootargs(None), "console=ttyAMA0");
        assert_eq!(
            native_bootargs(Some("earlycon=tandem,x")),
            "earlycon console=ttyAMA0"
        );
        // Only Tandem's earlycon is rewritten.
        assert_eq!(
            native_bootargs(Some("earlycon=pl011,0x9000000 console=hvc0")),
            "earlycon=pl011,0x9000000 console=ttyAMA0"
        );
    }

    #[test]
    fn machine_option_is_appended_to_dash_m() {
        let mut args: Vec<String> = ["-M", "virt,virtualization=off,gic-version=3", "-smp", "2"]
            .map(String::from)
            .to_vec();
        add_machine_option(&mut args, "dtb-randomness=off").unwrap();
        assert_eq!(
            args[1],
            "virt,virtualization=off,gic-version=3,dtb-randomness=off"
        );
        assert_eq!(args.len(), 4);
        let mut none: Vec<String> = vec!["-smp".into(), "2".into()];
        assert!(add_machine_option(&mut none, "x").is_err());
        let mut dangling: Vec<String> = vec!["-M".into()];
        assert!(add_machine_option(&mut dangling, "x").is_err());
    }

    #[test]
    fn seeds_go_to_chosen() {
        let calls = seed_commands(Path::new("/t/n.dtb"), &[1, 2, 3, 4, 5, 6, 7, 0xffff_ffff]);
        assert_eq!(
            calls[0].join(" "),
            "-t x /t/n.dtb /chosen rng-seed 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0xffffffff"
        );
        assert_eq!(calls[1].join(" "), "-t x /t/n.dtb /chosen kaslr-seed 0 0");
    }

    fn config(text: &str) -> Config {
        Config::parse(Board::of("qemu-virt").unwrap(), "vms.toml", text).unwrap()
    }

    #[test]
    fn picks_the_default_linux_vm() {
        let vm = |name: &str, default: bool, image: &str, kind: &str| {
            format!(
                "[[vm]]\nname = \"{name}\"\ndefault = {default}\nkind = \"{kind}\"\nimage = \"{image}\"\nmemory_mib = 64\npcpus = [0]\n"
            )
        };
        let c = config(
            &[
                vm("rtos", true, "rtos", "bare"),
                vm("small", false, "linux", "linux"),
                vm("big", true, "linux", "linux"),
            ]
            .concat(),
        );
        assert_eq!(linux_vm(&c).unwrap().name, "big");
        let c = config(
            &[
                vm("rtos", true, "rtos", "bare"),
                vm("small", false, "linux", "linux"),
            ]
            .concat(),
        );
        assert_eq!(linux_vm(&c).unwrap().name, "small");
        let c = config(&vm("rtos", true, "rtos", "bare"));
        assert_eq!(
            linux_vm(&c).unwrap_err(),
            "vms.toml: no VM runs the \"linux\" image, so there is no Linux to boot natively"
        );
    }

    /// The shipped vms.toml has a Linux VM, and its native command line is the PL011 one.
    #[test]
    fn shipped_linux_vm() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let c = Config::load(&root, "qemu-virt").unwrap();
        let vm = linux_vm(&c).unwrap();
        assert_eq!(vm.name, "linux");
        assert_eq!(
            native_bootargs(vm.bootargs.as_deref()),
            "console=ttyAMA0 earlycon"
        );
    }
}
