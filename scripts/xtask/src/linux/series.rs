//! The inputs in `guest-linux-patches/`: the patch series, the Kconfig
//! fragment and the initramfs files.

use std::fs;
use std::path::{Path, PathBuf};

use super::hash::Fnv1a64;

/// The directory, relative to the workspace root.
pub const DIR: &str = "guest-linux-patches";
/// The Kconfig fragment merged onto allnoconfig.
pub const CONFIG_FRAGMENT: &str = "tandem-guest.config";
/// The initramfs sources (init script, profile, tools).
pub const INITRAMFS_DIR: &str = "initramfs";

/// A file with its name (for messages and keys) and contents.
pub struct Input {
    /// File name inside its directory.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Everything `guest-linux-patches/` contributes to a build.
pub struct Series {
    /// `*.patch`, in file-name order (the `git format-patch` numbering).
    pub patches: Vec<Input>,
    /// `tandem-guest.config`.
    pub config: Input,
    /// Every file of `initramfs/`, in name order.
    pub initramfs: Vec<Input>,
}

fn read_input(path: PathBuf) -> Result<Input, String> {
    let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Input { name, path, bytes })
}

/// The files of `dir` (not directories) whose names satisfy `keep`, sorted by name.
fn files_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<Input>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_file() && keep(&name) {
            paths.push(path);
        }
    }
    paths.sort();
    paths.into_iter().map(read_input).collect()
}

impl Series {
    /// Loads the series from `dir` (normally `<root>/guest-linux-patches`).
    pub fn load(dir: &Path) -> Result<Self, String> {
        let patches = files_in(dir, |n| n.ends_with(".patch"))?;
        if patches.is_empty() {
            return Err(format!("no *.patch files in {}", dir.display()));
        }
        let config = read_input(dir.join(CONFIG_FRAGMENT))?;
        let initramfs = files_in(&dir.join(INITRAMFS_DIR), |_| true)?;
        Ok(Self {
            patches,
            config,
            initramfs,
        })
    }

    /// Feeds the patches (names and contents, in order) to a key.
    pub fn hash_patches(&self, h: &mut Fnv1a64) {
        h.field("patches")
            .field((self.patches.len() as u64).to_le_bytes());
        for p in &self.patches {
            h.field(&p.name).field(&p.bytes);
        }
    }

    /// Feeds the initramfs files to a key.
    pub fn hash_initramfs(&self, h: &mut Fnv1a64) {
        h.field("initramfs")
            .field((self.initramfs.len() as u64).to_le_bytes());
        for f in &self.initramfs {
            h.field(&f.name).field(&f.bytes);
        }
    }

    /// The initramfs file called `name`.
    pub fn initramfs_file(&self, name: &str) -> Result<&Input, String> {
        self.initramfs
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("{DIR}/{INITRAMFS_DIR}/{name} is missing"))
    }
}

/// The contents of the file that `patch` creates at `path` (a `new file`
/// diff with one `@@ -0,0 +1,N @@` hunk, as `git format-patch` writes it).
#[cfg(test)]
pub fn new_file_in_patch(patch: &str, path: &str) -> Option<String> {
    let header = format!("diff --git a/{path} b/{path}\n");
    let start = patch.find(&header)? + header.len();
    let rest = &patch[start..];
    let diff = rest.find("\ndiff --git ").map_or(rest, |end| &rest[..=end]);
    if !diff.contains("new file mode") {
        return None;
    }
    let hunk_start = diff.find("\n@@ -0,0 +1")? + 1;
    let mut out = String::new();
    let mut lines = diff[hunk_start..].lines();
    lines.next(); // the @@ line
    for line in lines {
        if let Some(text) = line.strip_prefix('+') {
            out.push_str(text);
            out.push('\n');
        } else if line.starts_with("\\ No newline at end of file") {
            out.pop();
        } else {
            break; // the "-- " signature separator or the end of the diff
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn series() -> Series {
        Series::load(&root().join(DIR)).expect("guest-linux-patches loads")
    }

    /// The ABI header the series adds to Linux is byte-identical to pv-abi's generated header.
    #[test]
    fn abi_header_matches_pv_abi() {
        let generated =
            fs::read_to_string(root().join("pv-abi/include/tandem_abi.h")).expect("pv-abi header");
        let series = series();
        let in_patch = series
            .patches
            .iter()
            .find_map(|p| {
                new_file_in_patch(
                    &String::from_utf8_lossy(&p.bytes),
                    "include/linux/tandem_abi.h",
                )
            })
            .expect("a patch creates include/linux/tandem_abi.h");
        assert!(
            in_patch == generated,
            "include/linux/tandem_abi.h in guest-linux-patches differs from pv-abi/include/tandem_abi.h: \
             regenerate the patch from the pv-abi header (see guest-linux-patches/README.md)"
        );
    }

    /// The series is a numbered `git format-patch` series, each patch signed off.
    #[test]
    fn series_is_well_formed() {
        for (i, p) in series().patches.iter().enumerate() {
            let text = String::from_utf8_lossy(&p.bytes);
            assert!(
                p.name.starts_with(&format!("{:04}-", i + 1)),
                "{} is out of sequence",
                p.name
            );
            assert!(
                text.starts_with("From "),
                "{} is not git format-patch output",
                p.name
            );
            assert!(
                text.contains("\nSubject: [PATCH"),
                "{} has no subject",
                p.name
            );
            assert!(
                text.contains("\nSigned-off-by: "),
                "{} is not signed off",
                p.name
            );
        }
    }

    /// The fragment enables the Tandem drivers and the hypervisor sysfs.
    #[test]
    fn fragment_enables_tandem() {
        let text = String::from_utf8(series().config.bytes).unwrap();
        for symbol in [
            "CONFIG_TANDEM_GUEST=y",
            "CONFIG_HVC_TANDEM=y",
            "CONFIG_SYS_HYPERVISOR=y",
        ] {
            assert!(
                text.lines().any(|l| l == symbol),
                "{CONFIG_FRAGMENT} lacks {symbol}"
            );
        }
    }

    /// A new file is recovered exactly from a format-patch diff, among other diffs.
    #[test]
    fn extracts_new_file() {
        let patch = "Subject: x\n---\n\
            diff --git a/MAINTAINERS b/MAINTAINERS\nindex 1..2 100644\n--- a/MAINTAINERS\n+++ b/MAINTAINERS\n\
            @@ -1,1 +1,2 @@\n x\n+y\n\
            diff --git a/include/a.h b/include/a.h\nnew file mode 100644\nindex 0..1\n--- /dev/null\n+++ b/include/a.h\n\
            @@ -0,0 +1,3 @@\n+/* a */\n+\n+#define A 1\n\
            diff --git a/z.c b/z.c\nnew file mode 100644\n--- /dev/null\n+++ b/z.c\n@@ -0,0 +1 @@\n+z\n-- \n2.47.3\n";
        assert_eq!(
            new_file_in_patch(patch, "include/a.h").as_deref(),
            Some("/* a */\n\n#define A 1\n")
        );
        assert_eq!(new_file_in_patch(patch, "z.c").as_deref(), Some("z\n"));
        assert_eq!(new_file_in_patch(patch, "MAINTAINERS"), None);
        assert_eq!(new_file_in_patch(patch, "nope.h"), None);
    }
}
