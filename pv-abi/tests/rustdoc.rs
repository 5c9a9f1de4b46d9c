//! The porting guide is the crate documentation: `cargo doc -p pv-abi --no-deps`, the command
//! the README gives, must show everything a porter uses, the `guest` module included (it is
//! compiled only for bare-metal AArch64 guests, but documented on every target), and build
//! without warnings.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn cargo_doc_shows_the_guest_module() {
    // A target directory of its own: the `cargo test` that runs this may hold the main one.
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pv-abi-rustdoc");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["doc", "-p", "pv-abi", "--no-deps", "--target-dir"])
        .arg(&target_dir)
        // What a porter's shell has: no flags inherited from the test's own build.
        .env_remove("RUSTDOCFLAGS")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo doc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo doc failed:\n{stderr}");
    assert!(
        !stderr.contains("warning"),
        "cargo doc -p pv-abi warns:\n{stderr}"
    );
    let doc = target_dir.join("doc/pv_abi");
    for page in [
        "guest/index.html",
        "guest/fn.hvc_call.html",
        "guest/struct.Hvc.html",
        "guest/fn.discover.html",
        "guest/fn.console.html",
        "guest/fn.system_off.html",
        "version/struct.AbiVersion.html",
        "client/struct.ConsoleWriter.html",
    ] {
        assert!(
            doc.join(page).is_file(),
            "cargo doc -p pv-abi --no-deps did not document {page}"
        );
    }
    let index = std::fs::read_to_string(doc.join("index.html")).expect("index.html");
    assert!(
        index.contains("href=\"guest/index.html\""),
        "the crate page does not list the guest module"
    );
    assert!(
        index.contains("id=\"entry-state\""),
        "the crate page has no \"Entry state\" section"
    );
}
