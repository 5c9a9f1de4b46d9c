//! The examples of the `guest` module compile for the guest target.
//!
//! `pv_abi::guest` exists only with the `guest` feature on bare-metal AArch64, so its examples
//! are marked `ignore` for the host doctests. This test compiles every one of them where they
//! belong: each becomes a function of a small `no_std` library built for
//! `aarch64-unknown-none` against this crate with `features = ["guest"]`. (Linking and running
//! them takes a Tandem VM: `pv-abi/examples/hello-rust` does that in `cargo xtask test`.)

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// The ```ignore blocks of the doc comments in `src`, with rustdoc's hidden-line `# ` removed.
fn ignored_examples(src: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in src.lines() {
        let t = line.trim_start();
        let Some(doc) = t.strip_prefix("///").or_else(|| t.strip_prefix("//!")) else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        match (&mut current, doc.trim()) {
            (None, "```ignore") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap_or_default()),
            (Some(code), _) => {
                // rustdoc hides a line whose first non-blank characters are `# ` (or `#`).
                let code_line = match doc.trim_start().strip_prefix("# ") {
                    Some(rest) => rest,
                    None if doc.trim() == "#" => "",
                    None => doc,
                };
                code.push_str(code_line);
                code.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn guest_module_examples_compile_for_aarch64_unknown_none() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(manifest.join("src/guest.rs")).expect("src/guest.rs");
    let blocks = ignored_examples(&src);
    assert!(
        blocks.len() >= 20,
        "only {} guest examples found",
        blocks.len()
    );

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest-examples");
    std::fs::create_dir_all(dir.join("src")).expect("create the example crate");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"guest-examples\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             publish = false\n\n[dependencies]\npv-abi = {{ path = {:?}, features = [\"guest\"] }}\n\n\
             # Not part of the Tandem workspace.\n[workspace]\n",
            manifest.display().to_string()
        ),
    )
    .expect("write Cargo.toml");
    let mut lib =
        String::from("#![no_std]\n#![allow(unused, unreachable_code, dead_code, clippy::all)]\n\n");
    for (i, block) in blocks.iter().enumerate() {
        let _ = writeln!(lib, "pub fn example_{i}() {{\n{block}}}\n");
    }
    std::fs::write(dir.join("src/lib.rs"), &lib).expect("write lib.rs");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&dir)
        .args([
            "build",
            "--offline",
            "--target",
            "aarch64-unknown-none",
            "--target-dir",
        ])
        .arg(dir.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "the guest module's examples do not compile for aarch64-unknown-none \
         (rustup target add aarch64-unknown-none if it is missing):\n{}\n--- {} ---\n{lib}",
        String::from_utf8_lossy(&out.stderr),
        dir.join("src/lib.rs").display()
    );
}
