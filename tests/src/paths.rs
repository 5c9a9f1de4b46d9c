//! Where the workspace and its build outputs are.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where xtask writes boot images: `target/tandem/<platform>/`.
pub fn image_dir(platform: &str) -> PathBuf {
    workspace_root()
        .join("target")
        .join("tandem")
        .join(platform)
}

/// The platform directory `platforms/<name>/`.
pub fn platform_dir(platform: &str) -> PathBuf {
    workspace_root().join("platforms").join(platform)
}
