//! pv-abi as a published crate: every public item has an example, and the package builds on
//! its own (what `cargo publish --dry-run -p pv-abi` checks, without the registry).

use std::path::PathBuf;
use std::process::Command;

/// The public items of `src` (outside `#[cfg(test)]` modules) whose doc comment has no code
/// block: `(file, line, item)`.
fn items_without_example(file: &str, src: &str) -> Vec<(String, usize, String)> {
    let lines: Vec<&str> = src.lines().collect();
    let tests = lines
        .iter()
        .position(|l| l.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len());
    let kinds = [
        "pub fn ",
        "pub const fn ",
        "pub const ",
        "pub struct ",
        "pub enum ",
        "pub trait ",
        "pub type ",
        "pub static ",
    ];
    let mut missing = Vec::new();
    for (i, line) in lines[..tests].iter().enumerate() {
        let t = line.trim_start();
        if !kinds.iter().any(|k| t.starts_with(k)) {
            continue;
        }
        let mut j = i;
        let mut has_example = false;
        while j > 0 {
            j -= 1;
            let above = lines[j].trim_start();
            if above.starts_with("#[") {
                continue;
            }
            if !above.starts_with("///") {
                break;
            }
            has_example |= above.contains("```");
        }
        if !has_example {
            missing.push((file.to_string(), i + 1, t.to_string()));
        }
    }
    missing
}

/// Every public item has an example (compiled as a doctest; the `guest` module's by
/// `tests/guest_examples.rs`).
#[test]
fn every_public_item_has_an_example() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("src/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for path in files {
        let src = std::fs::read_to_string(&path).expect("read source");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        missing.extend(items_without_example(&name, &src));
    }
    assert!(
        missing.is_empty(),
        "public items without an example in their documentation:\n{}",
        missing
            .iter()
            .map(|(f, l, item)| format!("  src/{f}:{l}: {item}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `cargo package` builds the crate alone from what it packs, without warnings, and packs
/// the C header but not the example guests (they need the Tandem tree).
#[test]
fn the_package_builds_on_its_own() {
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pv-abi-package");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |extra: &[&str]| {
        Command::new(&cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "package",
                "-p",
                "pv-abi",
                "--allow-dirty",
                "--offline",
                "--target-dir",
            ])
            .arg(&target_dir)
            .args(extra)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("run cargo package")
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo package failed:\n{stderr}");
    assert!(
        !stderr.contains("warning"),
        "cargo package warns:\n{stderr}"
    );
    let list = run(&["--list"]);
    let files = String::from_utf8_lossy(&list.stdout);
    for want in [
        "README.md",
        "CHANGELOG.md",
        "include/tandem_abi.h",
        "src/guest.rs",
    ] {
        assert!(
            files.lines().any(|f| f == want),
            "{want} is not packed:\n{files}"
        );
    }
    assert!(
        !files.lines().any(|f| f.starts_with("examples/")),
        "the example guests are packed:\n{files}"
    );
}
