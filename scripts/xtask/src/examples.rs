//! `cargo xtask example NAME`: the pv-abi example guests, built into
//! `target/tandem/examples/NAME.bin` (the raw image `run --guest` boots) and `NAME.elf`.
//!
//! - `hello-rust` (`pv-abi/examples/hello-rust`): cargo, for `aarch64-unknown-none`, then the
//!   ELF flattened as `objcopy -O binary` does;
//! - `hello-c` (`pv-abi/examples/hello-c`): its Makefile, with the `aarch64-linux-gnu-gcc`
//!   cross compiler (installed first if missing).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image;
use crate::setup::{self, Need};
use crate::util::{run, say};

/// The examples: name, directory, what it is.
pub const EXAMPLES: [(&str, &str, &str); 2] = [
    (
        "hello-rust",
        "pv-abi/examples/hello-rust",
        "no_std Rust on pv-abi's guest feature",
    ),
    (
        "hello-c",
        "pv-abi/examples/hello-c",
        "freestanding C on tandem_abi.h",
    ),
];

/// Parses an example name (clap value parser).
pub fn parse(name: &str) -> Result<String, String> {
    if EXAMPLES.iter().any(|(n, _, _)| *n == name) {
        Ok(name.to_string())
    } else {
        let known: Vec<String> = EXAMPLES
            .iter()
            .map(|(n, dir, what)| format!("{n} ({dir}: {what})"))
            .collect();
        Err(format!(
            "unknown example \"{name}\" (known: {})",
            known.join(", ")
        ))
    }
}

/// Where the examples' images go: `target/tandem/examples/`.
pub fn out_dir(root: &Path) -> PathBuf {
    root.join("target").join("tandem").join("examples")
}

/// Builds example `name`; returns the raw image's path.
pub fn build(root: &Path, name: &str) -> Result<PathBuf, String> {
    let out = out_dir(root);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let bin = out.join(format!("{name}.bin"));
    match name {
        "hello-rust" => {
            let built = image::build_guest(root, "hello-rust", "hello-rust", &[])?;
            let copy = |from: &Path, to: &Path| {
                std::fs::copy(from, to).map_err(|e| format!("{}: {e}", to.display()))
            };
            copy(&built, &bin)?;
            copy(&built.with_extension("elf"), &out.join("hello-rust.elf"))?;
        }
        "hello-c" => {
            setup::ensure(&[Need::CrossGcc])?;
            say("building example hello-c with aarch64-linux-gnu-gcc");
            run(Command::new("make")
                .arg("--no-print-directory")
                .arg("-C")
                .arg(root.join("pv-abi/examples/hello-c"))
                .arg(format!("OUT={}", out.display())))?;
        }
        other => return Err(parse(other).unwrap_err()),
    }
    Ok(bin)
}

/// Builds every example (for the system tests).
pub fn build_all(root: &Path) -> Result<Vec<PathBuf>, String> {
    EXAMPLES
        .iter()
        .map(|(name, _, _)| build(root, name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse("hello-c"), Ok("hello-c".into()));
        let e = parse("hello-go").unwrap_err();
        assert!(
            e.starts_with(
                "unknown example \"hello-go\" (known: hello-rust (pv-abi/examples/hello-rust"
            ),
            "{e}"
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (_, dir, _) in EXAMPLES {
            assert!(
                root.join(dir).join("README.md").is_file(),
                "{dir}/README.md"
            );
        }
    }
}
