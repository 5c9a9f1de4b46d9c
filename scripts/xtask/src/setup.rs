//! Installing what Tandem's build and tests need, visibly.
//!
//! Each requirement is checked first; only what is missing is installed, and
//! every install is announced with its reason. Debian packages come from apt
//! (QEMU 10 from bookworm-backports, since bookworm's QEMU 7.2 has no raspi4b);
//! Rust targets come from rustup.

use std::path::Path;
use std::process::Command;

use crate::util::{run, say};

/// Host tools a part of the build needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// QEMU ≥ 10 for booting (virt and raspi4b).
    Qemu,
    /// dtc for guest device trees.
    Dtc,
    /// Cross compiler, kernel build tools and the Linux 6.12 source.
    LinuxBuild,
    /// The aarch64-linux-gnu cross gcc and make, for the C example guest.
    CrossGcc,
    /// A host C++ compiler: the libfuzzer-sys crate compiles libFuzzer (`cargo xtask fuzz`).
    Cxx,
}

const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/tandem-bookworm-backports.list";

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn qemu_major() -> Option<u32> {
    let out = Command::new("qemu-system-aarch64")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split("version ").nth(1)?;
    version.split('.').next()?.trim().parse().ok()
}

fn debian_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
}

/// Runs apt-get as root (directly, or through sudo).
fn apt(args: &[&str]) -> Result<(), String> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut cmd = if is_root {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut cmd).map_err(|e| {
        format!(
            "{e}\nInstall failed. Run as root, or install by hand: apt-get {}",
            args.join(" ")
        )
    })
}

fn apt_install(packages: &[&str], from_backports: bool, why: &str) -> Result<(), String> {
    say(&format!("installing {} ({why})", packages.join(" ")));
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    if from_backports {
        args.extend(["-t", "bookworm-backports"]);
    }
    args.extend(packages);
    apt(&args)
}

/// Whether some apt source already offers `suite`.
fn suite_configured(suite: &str) -> bool {
    let mut texts = vec![std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        texts.extend(
            dir.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()),
        );
    }
    texts.iter().any(|t| {
        t.lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains(suite))
    })
}

fn backports_configured() -> bool {
    suite_configured("bookworm-backports")
}

const SECURITY_LIST: &str = "/etc/apt/sources.list.d/tandem-bookworm-security.list";

/// linux-source-6.12 for bookworm comes from the security suite (6.12.117, the
/// base of guest-linux-patches); a minimal bookworm install may lack it.
fn ensure_security() -> Result<bool, String> {
    if debian_codename().as_deref() != Some("bookworm") || suite_configured("bookworm-security") {
        return Ok(false);
    }
    say(&format!(
        "adding bookworm-security to apt sources ({SECURITY_LIST}) for linux-source-6.12"
    ));
    std::fs::write(
        SECURITY_LIST,
        "deb http://deb.debian.org/debian-security bookworm-security main\n",
    )
    .map_err(|e| format!("cannot write {SECURITY_LIST} (run as root): {e}"))?;
    Ok(true)
}

fn ensure_backports() -> Result<(), String> {
    if Path::new(BACKPORTS_LIST).exists() {
        return Ok(());
    }
    match debian_codename().as_deref() {
        Some("bookworm") => {}
        Some(other) => {
            return Err(format!(
                "QEMU >= 10 is needed; this is Debian/Ubuntu '{other}', where xtask does not know the source. \
                 Install qemu-system-arm >= 10 yourself."
            ));
        }
        None => {
            return Err(
                "QEMU >= 10 is needed and this is not Debian; install qemu-system-aarch64 >= 10"
                    .into(),
            );
        }
    }
    say(&format!(
        "adding bookworm-backports to apt sources ({BACKPORTS_LIST}) for QEMU 10"
    ));
    std::fs::write(
        BACKPORTS_LIST,
        "deb http://deb.debian.org/debian bookworm-backports main\n",
    )
    .map_err(|e| format!("cannot write {BACKPORTS_LIST} (run as root): {e}"))?;
    apt(&["update", "-qq"])
}

/// Makes sure everything in `needs` is installed.
pub fn ensure(needs: &[Need]) -> Result<(), String> {
    let mut updated = false;
    let update_once = |updated: &mut bool| -> Result<(), String> {
        if !*updated {
            say("refreshing apt package lists");
            apt(&["update", "-qq"])?;
            *updated = true;
        }
        Ok(())
    };
    for need in needs {
        match need {
            Need::Qemu => {
                if qemu_major().is_some_and(|v| v >= 10) {
                    continue;
                }
                ensure_backports()?;
                update_once(&mut updated)?;
                apt_install(
                    &["qemu-system-arm"],
                    true,
                    "QEMU 10 boots Tandem on virt and raspi4b",
                )?;
                if !qemu_major().is_some_and(|v| v >= 10) {
                    return Err("qemu-system-aarch64 >= 10 still not found after installing".into());
                }
            }
            Need::Dtc => {
                if have("dtc", "--version") {
                    continue;
                }
                update_once(&mut updated)?;
                apt_install(
                    &["device-tree-compiler"],
                    false,
                    "dtc compiles guest device trees",
                )?;
            }
            Need::CrossGcc => {
                if have("aarch64-linux-gnu-gcc", "--version") && have("make", "--version") {
                    continue;
                }
                update_once(&mut updated)?;
                apt_install(
                    &[
                        "gcc-aarch64-linux-gnu",
                        "binutils-aarch64-linux-gnu",
                        "make",
                    ],
                    false,
                    "the cross compiler for the C example guest",
                )?;
            }
            Need::Cxx => {
                if have("c++", "--version") || have("g++", "--version") {
                    continue;
                }
                update_once(&mut updated)?;
                apt_install(
                    &["g++"],
                    false,
                    "libfuzzer-sys compiles libFuzzer for cargo xtask fuzz",
                )?;
            }
            Need::LinuxBuild => {
                let tools_ok = have("aarch64-linux-gnu-gcc", "--version")
                    && have("git", "--version")
                    && have("make", "--version")
                    && have("bc", "--version")
                    && have("flex", "--version")
                    && have("bison", "--version")
                    && have("cpio", "--version")
                    && Path::new("/usr/include/openssl/opensslv.h").exists()
                    && Path::new("/usr/include/libelf.h").exists();
                let source = Path::new(crate::linux::SOURCE_TARBALL).exists();
                if tools_ok && source {
                    continue;
                }
                if ensure_security()? {
                    updated = false;
                }
                update_once(&mut updated)?;
                // QEMU from backports upgrades libelf1, and bookworm's libelf-dev then no
                // longer installs: take libelf-dev from backports too in that case.
                let libelf = if backports_configured() {
                    "libelf-dev/bookworm-backports"
                } else {
                    "libelf-dev"
                };
                apt_install(
                    &[
                        "gcc-aarch64-linux-gnu",
                        "git",
                        "binutils-aarch64-linux-gnu",
                        "make",
                        "bc",
                        "flex",
                        "bison",
                        "libssl-dev",
                        libelf,
                        "cpio",
                        "xz-utils",
                        "linux-source-6.12",
                    ],
                    false,
                    "building the Linux 6.12 guest",
                )?;
            }
        }
    }
    Ok(())
}

/// Makes sure rustup has the bare-metal targets (rust-toolchain.toml lists them too).
pub fn ensure_rust_targets() -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let installed = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        // No rustup: trust that the toolchain has the targets, cargo will say otherwise.
        _ => return Ok(()),
    };
    for target in ["aarch64-unknown-none-softfloat", "aarch64-unknown-none"] {
        if !installed.lines().any(|l| l.trim() == target) {
            say(&format!("adding Rust target {target}"));
            run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    Ok(())
}
