//! Where the workspace and its build outputs are.
//!
//! The workspace root is found when the program runs, never baked in when it is compiled: a
//! copy of the tree with a warm `target/` runs binaries compiled in the original checkout,
//! and they must still read and write the copy's files (`platforms/`, `target/tandem/`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the directory holding the top-level Cargo.toml), found once by
/// [`find_workspace_root`].
///
/// # Panics
///
/// If it cannot be found (a binary run by hand from outside the tree); `cargo xtask` and
/// `cargo test` always give the answer.
pub fn workspace_root() -> PathBuf {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match ROOT.get_or_init(find_workspace_root) {
        Ok(root) => root.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// Finds the workspace root at run time.
///
/// First from the manifest directory that `cargo run` and `cargo test` pass to the program
/// they start (`CARGO_MANIFEST_DIR` in its environment): the nearest directory at or above it
/// whose Cargo.toml has a `[workspace]` table. Without it (the binary was started by hand),
/// from `cargo locate-project --workspace` in the current directory. Either way the result
/// must be Tandem's tree (it has `scripts/xtask/`).
pub fn find_workspace_root() -> Result<PathBuf, String> {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    locate(manifest_dir.as_deref())
}

/// [`find_workspace_root`] for a given `CARGO_MANIFEST_DIR` (or none).
fn locate(manifest_dir: Option<&Path>) -> Result<PathBuf, String> {
    let found = match manifest_dir.and_then(workspace_above) {
        Some(root) => root,
        None => locate_project()?,
    };
    let root = found
        .canonicalize()
        .map_err(|e| format!("{}: {e}", found.display()))?;
    if root.join("scripts/xtask/Cargo.toml").is_file() {
        Ok(root)
    } else {
        Err(format!(
            "{} is not the Tandem workspace (no scripts/xtask/Cargo.toml): run `cargo xtask` \
             from inside the Tandem tree",
            root.display()
        ))
    }
}

/// The nearest directory at or above `dir` whose Cargo.toml declares `[workspace]`.
fn workspace_above(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
}

/// The directory of `cargo locate-project --workspace` run in the current directory.
fn locate_project() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output()
        .map_err(|e| format!("cannot find the workspace root: {cargo} locate-project: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot find the workspace root: {cargo} locate-project --workspace: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let manifest = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    manifest
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("cargo locate-project printed {}", manifest.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory of this test's own.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-paths-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A copy of the tree is its own root, wherever the running binary was compiled: the
    /// answer comes from the manifest directory cargo passes at run time.
    #[test]
    fn a_copy_of_the_tree_is_its_own_root() {
        let copy = scratch("copy");
        write(
            &copy.join("Cargo.toml"),
            "[workspace]\nmembers = [\"scripts/xtask\", \"tests\"]\n",
        );
        write(
            &copy.join("scripts/xtask/Cargo.toml"),
            "[package]\nname = \"xtask\"\n",
        );
        write(
            &copy.join("tests/Cargo.toml"),
            "[package]\nname = \"system-tests\"\n",
        );
        let copy = copy.canonicalize().unwrap();
        assert_eq!(locate(Some(&copy.join("scripts/xtask"))), Ok(copy.clone()));
        assert_eq!(locate(Some(&copy.join("tests"))), Ok(copy.clone()));
        let _ = std::fs::remove_dir_all(&copy);
    }

    /// A workspace that is not Tandem's is refused with a message that says so.
    #[test]
    fn another_workspace_is_refused() {
        let other = scratch("other");
        write(&other.join("Cargo.toml"), "[workspace]\nmembers = []\n");
        let e = locate(Some(&other)).unwrap_err();
        assert!(e.contains("is not the Tandem workspace"), "{e}");
        let _ = std::fs::remove_dir_all(&other);
    }

    /// Under `cargo test` the root is this tree: the parent of the tests/ package.
    #[test]
    fn this_tree_is_found_at_run_time() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .canonicalize()
            .unwrap();
        assert_eq!(find_workspace_root(), Ok(here.clone()));
        assert_eq!(workspace_root(), here);
        // Without CARGO_MANIFEST_DIR, `cargo locate-project` from the current directory
        // (cargo test runs in the package directory) finds the same tree.
        assert_eq!(locate(None), Ok(here));
    }
}
