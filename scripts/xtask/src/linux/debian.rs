//! Debian bookworm's stock arm64 kernel, unmodified: the `debian-linux` image
//! of a transparent VM (issue 16: an unmodified Linux on the virtual PL011).
//!
//! [`kernel`] downloads the kernel package once (`apt-get download` of the
//! version `linux-image-arm64:arm64` depends on, e.g.
//! `linux-image-6.1.0-57-arm64`) into `<cache>/debian-kernel/`, takes its
//! `/boot/vmlinuz-*` and turns it into the arm64 `Image` the boot protocol
//! loads ([`image_from_vmlinuz`]): arm64 packages ship vmlinuz as the plain
//! Image (bookworm's), gzip-compressed, or as an EFI zboot image whose
//! payload is the compressed Image. The Image is used as shipped; it is kept
//! beside the package, and a cached package is never downloaded again.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{CacheLock, apt_download, cache_root, mkdir, output};
use crate::util::say;

/// The meta-package whose dependency names the current kernel package.
pub const META_PACKAGE: &str = "linux-image-arm64:arm64";
/// Offset of the `ARM\x64` magic in an arm64 Image header.
const IMAGE_MAGIC_AT: usize = 56;
/// An EFI zboot image: `MZ`, then `zimg` at offset 4.
const ZBOOT_MAGIC: &[u8; 4] = b"zimg";

/// The Image of Debian's kernel, downloaded and extracted on first use.
pub fn kernel() -> Result<PathBuf, String> {
    let cache = cache_root()?.join("debian-kernel");
    mkdir(&cache)?;
    let _lock = CacheLock::acquire(&cache)?;
    let deb = match cached_deb(&cache) {
        Some(deb) => deb,
        None => download(&cache)?,
    };
    let stem = deb
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let image = cache.join(format!("{stem}.Image"));
    if image.is_file() {
        return Ok(image);
    }
    say(&format!(
        "debian-linux: extracting the kernel Image from {}",
        deb.display()
    ));
    let vmlinuz = vmlinuz_of(&deb)?;
    let bytes = image_from_vmlinuz(&vmlinuz)
        .map_err(|e| format!("{}: /boot/vmlinuz-*: {e}", deb.display()))?;
    let tmp = image.with_extension("tmp");
    fs::write(&tmp, &bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, &image).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))?;
    say(&format!(
        "debian-linux: {} ({} bytes, used as shipped)",
        image.display(),
        bytes.len()
    ));
    Ok(image)
}

/// The newest `linux-image-*-arm64_*_arm64.deb` in `cache`.
fn cached_deb(cache: &Path) -> Option<PathBuf> {
    let mut debs: Vec<PathBuf> = fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("linux-image-") && n.ends_with("_arm64.deb")
            })
        })
        .collect();
    debs.sort();
    debs.pop()
}

/// The kernel package [`META_PACKAGE`] depends on, from `apt-cache depends`.
pub fn package_from_depends(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.contains("-arm64"))
        .map(|p| {
            let name = p.split(':').next().unwrap_or(p);
            format!("{name}:arm64")
        })
}

fn download(cache: &Path) -> Result<PathBuf, String> {
    super::ensure_arm64_arch()?;
    let depends = output(Command::new("apt-cache").args(["depends", META_PACKAGE]))?;
    let package = package_from_depends(&depends).ok_or_else(|| {
        format!("apt-cache depends {META_PACKAGE} names no linux-image-*-arm64 package")
    })?;
    say(&format!(
        "debian-linux: downloading {package} (Debian's stock arm64 kernel, about 60 MB) into {}",
        cache.display()
    ));
    apt_download(cache, &package)?;
    cached_deb(cache).ok_or_else(|| {
        format!(
            "apt-get download {package} left no .deb in {}",
            cache.display()
        )
    })
}

/// The `/boot/vmlinuz-*` file of the kernel package `deb`.
fn vmlinuz_of(deb: &Path) -> Result<Vec<u8>, String> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let tar_in = dpkg.stdout.take().ok_or("dpkg-deb gave no output")?;
    let tar = Command::new("tar")
        .args(["-xO", "--wildcards", "./boot/vmlinuz-*"])
        .stdin(tar_in)
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let status = dpkg.wait().map_err(|e| format!("dpkg-deb: {e}"))?;
    if !status.success() || !tar.status.success() || tar.stdout.is_empty() {
        return Err(format!(
            "{} holds no ./boot/vmlinuz-*: {}",
            deb.display(),
            String::from_utf8_lossy(&tar.stderr).trim()
        ));
    }
    Ok(tar.stdout)
}

fn is_image(bytes: &[u8]) -> bool {
    bytes.get(IMAGE_MAGIC_AT..IMAGE_MAGIC_AT + 4) == Some(b"ARM\x64")
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;

    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("gzip has no stdin")?;
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().map_err(|e| format!("gzip: {e}"))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(format!(
            "gzip -d failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// The arm64 `Image` in a packaged vmlinuz: the Image itself, a gzip stream
/// of it, or an EFI zboot image (`MZ`, `zimg`; payload offset and size at
/// bytes 8 and 12, compression name at 24) with a gzip payload.
pub fn image_from_vmlinuz(vmlinuz: &[u8]) -> Result<Vec<u8>, String> {
    let image = if is_image(vmlinuz) {
        vmlinuz.to_vec()
    } else if vmlinuz.starts_with(&[0x1f, 0x8b]) {
        gunzip(vmlinuz)?
    } else if vmlinuz.starts_with(b"MZ") && vmlinuz.get(4..8) == Some(ZBOOT_MAGIC) {
        let word = |at: usize| {
            vmlinuz
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let (offset, size) = (word(8).unwrap_or(0), word(12).unwrap_or(0));
        let payload = offset
            .checked_add(size)
            .and_then(|end| vmlinuz.get(offset..end))
            .ok_or("EFI zboot payload lies outside the file")?;
        let comp = vmlinuz.get(24..56).unwrap_or(&[]);
        let comp = String::from_utf8_lossy(comp.split(|&b| b == 0).next().unwrap_or(&[]));
        if comp != "gzip" {
            return Err(format!(
                "EFI zboot image compressed with \"{comp}\"; only gzip is supported"
            ));
        }
        gunzip(payload)?
    } else {
        return Err(
            "neither an arm64 Image, nor gzip, nor an EFI zboot image (unknown format)".into(),
        );
    };
    if !is_image(&image) {
        return Err("the decompressed kernel has no arm64 Image header".into());
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake arm64 Image of `len` bytes.
    fn fake_image(len: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        v[IMAGE_MAGIC_AT..IMAGE_MAGIC_AT + 4].copy_from_slice(b"ARM\x64");
        v
    }

    /// A plain Image passes as is; gzip and EFI zboot (gzip) are unpacked.
    #[test]
    fn vmlinuz_formats() {
        let image = fake_image(10_000);
        assert_eq!(image_from_vmlinuz(&image).unwrap(), image);
        let gz = super::super::gzip(&image).unwrap();
        assert_eq!(image_from_vmlinuz(&gz).unwrap(), image);
        let mut zboot = vec![0u8; 512];
        zboot[..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(ZBOOT_MAGIC);
        zboot[8..12].copy_from_slice(&512u32.to_le_bytes());
        zboot[12..16].copy_from_slice(&(gz.len() as u32).to_le_bytes());
        zboot[24..28].copy_from_slice(b"gzip");
        zboot.extend_from_slice(&gz);
        zboot.extend_from_slice(&[0; 100]);
        assert_eq!(image_from_vmlinuz(&zboot).unwrap(), image);
    }

    /// Other formats and broken files are named errors.
    #[test]
    fn vmlinuz_errors() {
        let e = image_from_vmlinuz(b"\x7fELF........").unwrap_err();
        assert!(e.contains("unknown format"), "{e}");
        let mut zboot = vec![0u8; 64];
        zboot[..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(ZBOOT_MAGIC);
        zboot[8..12].copy_from_slice(&64u32.to_le_bytes());
        zboot[24..28].copy_from_slice(b"zstd");
        let e = image_from_vmlinuz(&zboot).unwrap_err();
        assert!(e.contains("\"zstd\""), "{e}");
        zboot[12..16].copy_from_slice(&1000u32.to_le_bytes());
        let e = image_from_vmlinuz(&zboot).unwrap_err();
        assert!(e.contains("outside the file"), "{e}");
        let gz = super::super::gzip(&[0u8; 100]).unwrap();
        let e = image_from_vmlinuz(&gz).unwrap_err();
        assert!(e.contains("no arm64 Image header"), "{e}");
    }

    /// The versioned kernel package is read from `apt-cache depends`.
    #[test]
    fn package_from_apt_cache() {
        let text = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-57-arm64:arm64\n";
        assert_eq!(
            package_from_depends(text).as_deref(),
            Some("linux-image-6.1.0-57-arm64:arm64")
        );
        assert_eq!(package_from_depends("linux-image-arm64:arm64\n"), None);
    }
}
