//! Building the paravirtualized Linux guest (kernel Image and initramfs).
//!
//! [`build`] turns Debian's packaged Linux 6.12 source, the patch series,
//! Kconfig fragment and initramfs files in `guest-linux-patches/`, and
//! Debian's `busybox-static:arm64` into an arm64 `Image` and a gzipped newc
//! initramfs. Everything happens in a cache outside the repository:
//!
//! | `<cache>/linux/…`            | contents                                                     |
//! |------------------------------|--------------------------------------------------------------|
//! | `src/`                       | unpacked source with the series applied (`.tandem-tree-key`) |
//! | `build/`                     | the kbuild `O=` directory, reused while `src/` is unchanged  |
//! | `kernel-<key>/Image`         | finished kernels (`config` beside each)                      |
//! | `initramfs-<key>/…cpio.gz`   | finished initramfs images                                    |
//! | `busybox/*.deb`              | the downloaded busybox package                               |
//! | `logs/`                      | the logs of the last configure, build and initramfs runs     |
//!
//! `<cache>` is `$TANDEM_CACHE`, else `$XDG_CACHE_HOME/tandem`, else
//! `~/.cache/tandem`. Keys are FNV-1a hashes ([`hash`]) of every input: the
//! source package version and tarball size and mtime, the cross compiler's
//! version, the patches, the fragment (kernel) or the busybox package and
//! initramfs files (initramfs). A finished artefact is never rebuilt; a
//! changed series re-unpacks the source (a few seconds) and starts a clean
//! build, a changed fragment alone rebuilds incrementally. If `ccache` is
//! installed it is used, with its cache in `<cache>/ccache`.

mod cpio;
pub mod debian;
mod hash;
mod kconfig;
mod make;
mod series;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, UNIX_EPOCH};

use self::hash::{Fnv1a64, hex};
use self::make::{fmt_duration, run_logged, run_with_progress};
use self::series::Series;
use crate::util::say;

/// Debian's packaged Linux 6.12 source.
pub const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
/// The Debian package that installs [`SOURCE_TARBALL`].
const SOURCE_PACKAGE: &str = "linux-source-6.12";
/// The tarball's top-level directory.
const SOURCE_TOPDIR: &str = "linux-source-6.12";
/// The cross toolchain prefix (Debian's gcc-aarch64-linux-gnu).
const CROSS_COMPILE: &str = "aarch64-linux-gnu-";
/// Where busybox comes from.
const BUSYBOX_PACKAGE: &str = "busybox-static:arm64";
/// A fixed build identity, so that the same inputs give the same Image.
const KBUILD_ENV: [(&str, &str); 4] = [
    ("KBUILD_BUILD_TIMESTAMP", "Wed Jan  1 00:00:00 UTC 2025"),
    ("KBUILD_BUILD_USER", "tandem"),
    ("KBUILD_BUILD_HOST", "tandem"),
    ("KBUILD_BUILD_VERSION", "1"),
];
/// The C tools in `initramfs/<name>.c`, installed as `/usr/bin/<name>`.
const INITRAMFS_TOOLS: [&str; 5] = [
    "tandem-stats",
    "machine-uptime",
    "udp-echo",
    "fault-storm",
    "tandem-bench",
];
/// Bumped when the way artefacts are produced changes without an input changing.
const RECIPE_VERSION: &str = "1";

/// What a Linux build produces.
pub struct LinuxArtifacts {
    /// The arm64 kernel `Image`.
    pub image: PathBuf,
    /// The gzip-compressed newc initramfs.
    pub initramfs: PathBuf,
}

/// Builds (or reuses from the cache) the Linux guest.
pub fn build(root: &Path) -> Result<LinuxArtifacts, String> {
    let start = Instant::now();
    check_tools()?;
    let series = Series::load(&root.join(series::DIR))?;
    let cache = cache_root()?.join("linux");
    mkdir(&cache)?;
    mkdir(&cache.join("logs"))?;
    let _lock = CacheLock::acquire(&cache)?;

    let inputs = Inputs::probe(&series)?;
    let image = kernel(&cache, &series, &inputs)?;
    let initramfs = initramfs(&cache, &series, &inputs)?;
    say(&format!(
        "linux: ready in {}",
        fmt_duration(start.elapsed())
    ));
    Ok(LinuxArtifacts { image, initramfs })
}

/// The cache root: `$TANDEM_CACHE`, `$XDG_CACHE_HOME/tandem` or `~/.cache/tandem`.
pub fn cache_root() -> Result<PathBuf, String> {
    cache_root_from(|name| std::env::var_os(name))
}

fn cache_root_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf, String> {
    let var = |name| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("TANDEM_CACHE") {
        return Ok(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(dir.join("tandem"));
    }
    var("HOME")
        .map(|home| home.join(".cache/tandem"))
        .ok_or_else(|| "set TANDEM_CACHE or HOME for the build cache".into())
}

fn mkdir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Output of a command that must succeed, as text.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

fn check_tools() -> Result<(), String> {
    let gcc = format!("{CROSS_COMPILE}gcc");
    let tools = [
        "make",
        "tar",
        "xz",
        "gzip",
        "git",
        "bc",
        "flex",
        "bison",
        "perl",
        "dpkg-deb",
        "apt-get",
        gcc.as_str(),
    ];
    let missing: Vec<&str> = tools.into_iter().filter(|t| !on_path(t)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "building Linux needs {} on PATH (`cargo xtask setup` installs the toolchain; git comes from the `git` package)",
            missing.join(", ")
        ));
    }
    if !Path::new(SOURCE_TARBALL).is_file() {
        return Err(format!(
            "{SOURCE_TARBALL} is missing: apt-get install {SOURCE_PACKAGE} (or `cargo xtask setup`)"
        ));
    }
    Ok(())
}

/// Holds `<cache>/linux/lock` so that two xtask runs never build into the same cache at once.
struct CacheLock(PathBuf);

impl CacheLock {
    fn acquire(cache: &Path) -> Result<Self, String> {
        let dir = cache.join("lock");
        let mut waiting = false;
        loop {
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let _ = fs::write(dir.join("pid"), std::process::id().to_string());
                    return Ok(Self(dir));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = || {
                        fs::read_to_string(dir.join("pid"))
                            .ok()
                            .and_then(|p| p.trim().parse::<u32>().ok())
                    };
                    // No pid yet: the owner may be between mkdir and write; look again shortly.
                    let pid = owner().or_else(|| {
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        owner()
                    });
                    match pid {
                        Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
                            if !waiting {
                                say(&format!(
                                    "linux: waiting for another build using the cache (pid {pid})"
                                ));
                                waiting = true;
                            }
                            std::thread::sleep(std::time::Duration::from_secs(1));
                        }
                        // The owner died (an interrupted build): the lock is stale.
                        _ => remove_dir(&dir)?,
                    }
                }
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        }
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The identity of the inputs that do not live in the repository, and the keys.
struct Inputs {
    /// `linux-source-6.12 6.12.117-1~deb12u1`.
    source_desc: String,
    /// Source package version + tarball size and mtime.
    source_key: u64,
    /// Source + patches: what `src/` holds.
    tree_key: u64,
    /// Tree + compiler + fragment: what `kernel-<key>/Image` is.
    kernel_key: u64,
    /// The cross compiler's version line.
    compiler: String,
}

impl Inputs {
    fn probe(series: &Series) -> Result<Self, String> {
        let version =
            output(Command::new("dpkg-query").args(["-W", "-f=${Version}", SOURCE_PACKAGE]))
                .unwrap_or_else(|_| "unknown version".into());
        let meta = fs::metadata(SOURCE_TARBALL).map_err(|e| format!("{SOURCE_TARBALL}: {e}"))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let compiler = output(Command::new(format!("{CROSS_COMPILE}gcc")).arg("--version"))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();

        let mut h = Fnv1a64::new();
        h.field("source")
            .field(&version)
            .field(meta.len().to_le_bytes())
            .field(mtime.to_le_bytes());
        let source_key = h.finish();
        series.hash_patches(&mut h);
        let tree_key = h.finish();
        h.field("kernel")
            .field(RECIPE_VERSION)
            .field(&compiler)
            .field(&series.config.bytes);
        for (k, v) in KBUILD_ENV {
            h.field(k).field(v);
        }
        Ok(Self {
            source_desc: format!("{SOURCE_PACKAGE} {version}"),
            source_key,
            tree_key,
            kernel_key: h.finish(),
            compiler,
        })
    }
}

/// A `make` in the source tree building into `build`, for arm64, with the fixed identity.
fn kmake(src: &Path, build: &Path, ccache: Option<&Path>) -> Command {
    let mut cmd = Command::new("make");
    cmd.current_dir(src)
        .arg(format!("O={}", build.display()))
        .arg("ARCH=arm64")
        .arg(format!("CROSS_COMPILE={CROSS_COMPILE}"));
    if let Some(dir) = ccache {
        cmd.arg(format!("CC=ccache {CROSS_COMPILE}gcc"))
            .env("CCACHE_DIR", dir);
    }
    cmd.envs(KBUILD_ENV)
        .env("LC_ALL", "C")
        .env("ARCH", "arm64")
        .env("CROSS_COMPILE", CROSS_COMPILE);
    cmd
}

/// Makes `<cache>/linux/src` the source with the series applied; returns
/// whether it had to be (re)created.
fn ensure_tree(cache: &Path, series: &Series, inputs: &Inputs) -> Result<bool, String> {
    let src = cache.join("src");
    let stamp = src.join(".tandem-tree-key");
    if fs::read_to_string(&stamp).is_ok_and(|k| k.trim() == hex(inputs.tree_key)) {
        return Ok(false);
    }

    let t = Instant::now();
    say(&format!(
        "linux: unpacking {SOURCE_TARBALL} ({})",
        inputs.source_desc
    ));
    remove_dir(&src)?;
    let unpack = cache.join("unpack.tmp");
    remove_dir(&unpack)?;
    mkdir(&unpack)?;
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&unpack)
        .args(["-I", "xz -T0", "-xf", SOURCE_TARBALL])
        .output();
    match tar {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "unpacking {SOURCE_TARBALL} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Err(e) => return Err(format!("cannot run tar: {e}")),
    }
    fs::rename(unpack.join(SOURCE_TOPDIR), &src)
        .map_err(|e| format!("{SOURCE_TARBALL} has no {SOURCE_TOPDIR}/: {e}"))?;
    remove_dir(&unpack)?;
    say(&format!("linux: unpacked in {}", fmt_duration(t.elapsed())));

    let t = Instant::now();
    for patch in &series.patches {
        let git_apply = |check: bool| {
            let mut cmd = Command::new("git");
            // The tree is not a git repository; never let git find one above it.
            cmd.current_dir(&src)
                .env("GIT_CEILING_DIRECTORIES", cache)
                .arg("apply");
            if check {
                cmd.arg("--check");
            }
            cmd.arg(&patch.path)
                .output()
                .map_err(|e| format!("cannot run git apply: {e}"))
        };
        let check = git_apply(true)?;
        if !check.status.success() {
            return Err(format!(
                "{}/{} does not apply to {} (after the patches before it):\n{}\n\
                 Rebase the series on that source (see {}/README.md).",
                series::DIR,
                patch.name,
                inputs.source_desc,
                String::from_utf8_lossy(&check.stderr).trim(),
                series::DIR
            ));
        }
        let applied = git_apply(false)?;
        if !applied.status.success() {
            return Err(format!(
                "applying {}: {}",
                patch.name,
                String::from_utf8_lossy(&applied.stderr).trim()
            ));
        }
    }
    fs::write(&stamp, hex(inputs.tree_key))
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    say(&format!(
        "linux: applied {} patches in {}",
        series.patches.len(),
        fmt_duration(t.elapsed())
    ));
    Ok(true)
}

fn kernel(cache: &Path, series: &Series, inputs: &Inputs) -> Result<PathBuf, String> {
    let key = hex(inputs.kernel_key);
    let out = cache.join(format!("kernel-{key}"));
    let image = out.join("Image");
    if image.is_file() {
        say(&format!("linux: cached (key {key})"));
        return Ok(image);
    }
    say(&format!(
        "linux: building the kernel (key {key}): {} + {} patches + {}, {}",
        inputs.source_desc,
        series.patches.len(),
        series::CONFIG_FRAGMENT,
        inputs.compiler
    ));

    let src = cache.join("src");
    let build = cache.join("build");
    if ensure_tree(cache, series, inputs)? {
        // Objects of another series must not survive: kbuild compares times, not contents.
        remove_dir(&build)?;
    }
    let fresh = !build.join(".config").exists();
    mkdir(&build)?;
    let ccache_dir = cache.join("ccache");
    let ccache = on_path("ccache").then_some(ccache_dir.as_path());

    // Configure: allnoconfig + fragment, and check that nothing was dropped.
    let t = Instant::now();
    let log = cache.join("logs/configure.log");
    let _ = fs::remove_file(&log);
    run_logged(
        kmake(&src, &build, ccache).arg("allnoconfig"),
        &log,
        "make allnoconfig",
    )?;
    let dot_config = build.join(".config");
    run_logged(
        Command::new("sh")
            .current_dir(&src)
            .env("ARCH", "arm64")
            .env("CROSS_COMPILE", CROSS_COMPILE)
            .arg("scripts/kconfig/merge_config.sh")
            .arg("-m")
            .arg("-O")
            .arg(&build)
            .arg(&dot_config)
            .arg(&series.config.path),
        &log,
        "merging the Kconfig fragment",
    )?;
    run_logged(
        kmake(&src, &build, ccache).arg("olddefconfig"),
        &log,
        "make olddefconfig",
    )?;
    let final_config = fs::read_to_string(&dot_config)
        .map_err(|e| format!("cannot read {}: {e}", dot_config.display()))?;
    let missing = kconfig::missing(
        &String::from_utf8_lossy(&series.config.bytes),
        &final_config,
    );
    if !missing.is_empty() {
        return Err(format!(
            "{}/{} asks for settings the final .config does not have (unmet dependencies?):\n  {}\n(.config: {})",
            series::DIR,
            series::CONFIG_FRAGMENT,
            missing.join("\n  "),
            dot_config.display()
        ));
    }
    say(&format!(
        "linux: configured in {}",
        fmt_duration(t.elapsed())
    ));

    // Compile.
    let t = Instant::now();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let counts = cache.join("logs/objects");
    let expected = if fresh {
        fs::read_to_string(&counts)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    } else {
        None
    };
    say(&format!(
        "linux: make -j{jobs} Image{} (log: {})",
        if ccache.is_some() { " with ccache" } else { "" },
        cache.join("logs/build.log").display()
    ));
    let objects = run_with_progress(
        kmake(&src, &build, ccache)
            .arg(format!("-j{jobs}"))
            .arg("Image"),
        &cache.join("logs/build.log"),
        "building Image",
        expected,
    )?;
    if fresh {
        let _ = fs::write(&counts, objects.to_string());
    }
    say(&format!(
        "linux: compiled {objects} objects in {}",
        fmt_duration(t.elapsed())
    ));

    // Publish atomically: a kernel-<key>/ directory is complete or absent.
    let tmp = cache.join(format!("kernel-{key}.tmp"));
    remove_dir(&tmp)?;
    mkdir(&tmp)?;
    let copy = |from: &Path, to: &str| {
        fs::copy(from, tmp.join(to))
            .map(drop)
            .map_err(|e| format!("cannot copy {}: {e}", from.display()))
    };
    copy(&build.join("arch/arm64/boot/Image"), "Image")?;
    copy(&dot_config, "config")?;
    fs::rename(&tmp, &out)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), out.display()))?;
    let size = fs::metadata(&image).map_or(0, |m| m.len());
    say(&format!("linux: kernel {} ({size} bytes)", image.display()));
    Ok(image)
}

/// Runs a command as root: directly when root, else through sudo.
fn as_root(args: &[&str]) -> Result<(), String> {
    let is_root = output(Command::new("id").arg("-u")).is_ok_and(|o| o.trim() == "0");
    let mut cmd = if is_root {
        Command::new(args[0])
    } else {
        Command::new("sudo")
    };
    cmd.args(if is_root { &args[1..] } else { args })
        .env("DEBIAN_FRONTEND", "noninteractive");
    crate::util::run(&mut cmd)
}

/// The busybox-static:arm64 package in `<cache>/linux/busybox/`, downloaded once.
fn busybox_deb(cache: &Path) -> Result<PathBuf, String> {
    let dir = cache.join("busybox");
    mkdir(&dir)?;
    let find = || -> Option<PathBuf> {
        let mut debs: Vec<PathBuf> = fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy().starts_with("busybox-static_")
                        && n.to_string_lossy().ends_with("_arm64.deb")
                })
            })
            .collect();
        debs.sort();
        debs.pop()
    };
    if let Some(deb) = find() {
        return Ok(deb);
    }

    say(&format!(
        "linux: downloading {BUSYBOX_PACKAGE} into {}",
        dir.display()
    ));
    apt_download(&dir, BUSYBOX_PACKAGE)?;
    find().ok_or_else(|| {
        format!(
            "apt-get download {BUSYBOX_PACKAGE} left no .deb in {}",
            dir.display()
        )
    })
}

/// Adds the arm64 dpkg architecture if it is missing (to download arm64
/// packages; nothing arm64 is installed).
fn ensure_arm64_arch() -> Result<(), String> {
    let foreign = output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if !foreign.split_whitespace().any(|a| a == "arm64") {
        say(
            "linux: adding the arm64 dpkg architecture (to download arm64 packages; nothing arm64 is installed)",
        );
        as_root(&["dpkg", "--add-architecture", "arm64"])?;
        as_root(&["apt-get", "update", "-qq"])?;
    }
    Ok(())
}

/// `apt-get download PACKAGE` into `dir` (after an `apt-get update` if the
/// first try fails: stale package lists).
fn apt_download(dir: &Path, package: &str) -> Result<(), String> {
    ensure_arm64_arch()?;
    let download = || {
        // As root, apt would otherwise warn that the download is not sandboxed.
        Command::new("apt-get")
            .current_dir(dir)
            .args(["-q", "-o", "APT::Sandbox::User=root", "download", package])
            .status()
    };
    if !download().is_ok_and(|s| s.success()) {
        as_root(&["apt-get", "update", "-qq"])?;
        if !download().is_ok_and(|s| s.success()) {
            return Err(format!("apt-get download {package} failed"));
        }
    }
    Ok(())
}

fn initramfs(cache: &Path, series: &Series, inputs: &Inputs) -> Result<PathBuf, String> {
    let deb = busybox_deb(cache)?;
    let deb_bytes = fs::read(&deb).map_err(|e| format!("cannot read {}: {e}", deb.display()))?;
    let mut h = Fnv1a64::new();
    h.field("initramfs")
        .field(RECIPE_VERSION)
        .field(inputs.source_key.to_le_bytes())
        .field(&inputs.compiler)
        .field(&deb_bytes);
    series.hash_initramfs(&mut h);
    let key = hex(h.finish());
    let out = cache.join(format!("initramfs-{key}"));
    let file = out.join("initramfs.cpio.gz");
    if file.is_file() {
        say(&format!("linux: initramfs cached (key {key})"));
        return Ok(file);
    }

    let t = Instant::now();
    say(&format!("linux: building the initramfs (key {key})"));
    // The tools build against the kernel's nolibc and UAPI headers.
    ensure_tree(cache, series, inputs)?;
    let src = cache.join("src");
    let work = cache.join("initramfs.tmp");
    remove_dir(&work)?;
    mkdir(&work)?;
    let log = cache.join("logs/initramfs.log");
    let _ = fs::remove_file(&log);

    run_logged(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(work.join("deb")),
        &log,
        "unpacking busybox",
    )?;
    let busybox = fs::read(work.join("deb/bin/busybox"))
        .map_err(|e| format!("{} has no bin/busybox: {e}", deb.display()))?;

    // `make headers` leaves them in <O>/usr/include (headers_install would need rsync).
    let headers = work.join("hdr");
    run_logged(
        kmake(&src, &headers, None).arg("headers"),
        &log,
        "installing the arm64 UAPI headers",
    )?;
    // The C tools of the initramfs, each one static binary in /usr/bin.
    let mut tools = Vec::new();
    for name in INITRAMFS_TOOLS {
        let source = series.initramfs_file(&format!("{name}.c"))?;
        let bin = work.join(name);
        run_logged(
            Command::new(format!("{CROSS_COMPILE}gcc"))
                .args([
                    "-static",
                    "-Os",
                    "-s",
                    "-Wall",
                    "-Wextra",
                    "-nostdlib",
                    "-ffreestanding",
                ])
                .args([
                    "-fno-asynchronous-unwind-tables",
                    "-fno-ident",
                    "-include",
                    "nolibc.h",
                ])
                .arg("-I")
                .arg(src.join("tools/include/nolibc"))
                .arg("-I")
                .arg(headers.join("usr/include"))
                .arg("-o")
                .arg(&bin)
                .arg(&source.path)
                .arg("-lgcc"),
            &log,
            &format!("compiling {name}"),
        )?;
        let bytes = fs::read(&bin).map_err(|e| format!("cannot read {}: {e}", bin.display()))?;
        tools.push((name, bytes));
    }

    let mut a = cpio::Archive::new();
    for dir in [
        "bin", "dev", "etc", "proc", "root", "run", "sbin", "sys", "tmp", "usr", "usr/bin",
        "usr/sbin",
    ] {
        a.dir(dir, if dir == "root" { 0o700 } else { 0o755 });
    }
    a.char_dev("dev/console", 0o600, 5, 1);
    a.file("init", 0o755, &series.initramfs_file("init")?.bytes);
    a.file(
        "etc/profile",
        0o644,
        &series.initramfs_file("profile")?.bytes,
    );
    for script in ["tandem-stress", "tandem-autorun"] {
        a.file(
            &format!("usr/bin/{script}"),
            0o755,
            &series.initramfs_file(script)?.bytes,
        );
    }
    a.file(
        "usr/bin/modem-at",
        0o755,
        &series.initramfs_file("modem-at")?.bytes,
    );
    a.file("bin/busybox", 0o755, &busybox);
    // The rest of the applets are linked at boot by `busybox --install -s`.
    a.symlink("bin/sh", "busybox");
    a.symlink("sbin/init", "../bin/busybox");
    for (name, bytes) in &tools {
        a.file(&format!("usr/bin/{name}"), 0o755, bytes);
    }
    let archive = a.finish();

    let gz = gzip(&archive)?;
    let tmp = cache.join(format!("initramfs-{key}.tmp"));
    remove_dir(&tmp)?;
    mkdir(&tmp)?;
    fs::write(tmp.join("initramfs.cpio.gz"), &gz)
        .map_err(|e| format!("cannot write the initramfs: {e}"))?;
    fs::rename(&tmp, &out)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), out.display()))?;
    remove_dir(&work)?;
    say(&format!(
        "linux: initramfs {} ({} bytes, busybox from {}) in {}",
        file.display(),
        gz.len(),
        deb.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        fmt_duration(t.elapsed())
    ));
    Ok(file)
}

/// `gzip -9 -n` (no name or time stamp: reproducible).
fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::process::Stdio;

    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().map_err(|e| format!("gzip: {e}"))?;
    writer
        .join()
        .map_err(|_| "gzip writer panicked".to_string())?
        .map_err(|e| format!("writing to gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip failed: {}", out.status));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same series gives the same keys; any patch or fragment byte changes them.
    #[test]
    fn keys_follow_the_inputs() {
        let dir = std::env::temp_dir().join(format!("xtask-linux-keys-{}", std::process::id()));
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("0001-a.patch", "From x\n");
        write("tandem-guest.config", "CONFIG_A=y\n");
        write("initramfs/init", "#!/bin/sh\n");
        let keys = |s: &Series| {
            let mut h = Fnv1a64::new();
            s.hash_patches(&mut h);
            let patches = h.finish();
            h.field(&s.config.bytes);
            (patches, h.finish())
        };
        let base = keys(&Series::load(&dir).unwrap());
        assert_eq!(base, keys(&Series::load(&dir).unwrap()));
        write("tandem-guest.config", "CONFIG_A=n\n");
        let config_changed = keys(&Series::load(&dir).unwrap());
        assert_eq!(config_changed.0, base.0);
        assert_ne!(config_changed.1, base.1);
        write("0002-b.patch", "From y\n");
        assert_ne!(keys(&Series::load(&dir).unwrap()).0, base.0);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A lock left by a dead process is taken over; dropping the lock releases it.
    #[test]
    fn stale_lock_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("xtask-linux-lock-{}", std::process::id()));
        fs::create_dir_all(dir.join("lock")).unwrap();
        // PIDs are below 2^22 on Linux: this one cannot be alive.
        fs::write(dir.join("lock/pid"), "999999999").unwrap();
        let lock = CacheLock::acquire(&dir).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("lock/pid")).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
        assert!(!dir.join("lock").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// TANDEM_CACHE wins, then XDG_CACHE_HOME/tandem, then ~/.cache/tandem; empty values are unset.
    #[test]
    fn cache_root_precedence() {
        fn env(
            vars: &'static [(&'static str, &'static str)],
        ) -> impl Fn(&str) -> Option<std::ffi::OsString> {
            move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.into())
        }
        const ALL: &[(&str, &str)] = &[
            ("TANDEM_CACHE", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_root_from(env(ALL)).unwrap(), PathBuf::from("/c"));
        assert_eq!(
            cache_root_from(env(&ALL[1..])).unwrap(),
            PathBuf::from("/x/tandem")
        );
        assert_eq!(
            cache_root_from(env(&[("TANDEM_CACHE", ""), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.cache/tandem")
        );
        assert!(cache_root_from(env(&[])).is_err());
    }
}
