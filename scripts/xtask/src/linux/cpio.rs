//! Writing initramfs archives: the cpio "newc" format the kernel unpacks.
//!
//! Written here rather than with `cpio(1)` so that the archive is
//! reproducible (entries in the order given, mtime 0, owner root) and can
//! hold device nodes without root privileges. Format:
//! Documentation/driver-api/early-userspace/buffer-format.rst.

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFLNK: u32 = 0o120_000;

/// An initramfs under construction.
pub struct Archive {
    out: Vec<u8>,
    next_ino: u32,
}

/// One newc header's variable fields.
struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &'a [u8],
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            out: Vec::new(),
            next_ino: 1,
        }
    }

    fn entry(&mut self, h: Header<'_>) {
        assert!(
            !h.name.starts_with('/'),
            "cpio names are relative: {}",
            h.name
        );
        let ino = self.next_ino;
        self.next_ino += 1;
        let filesize = u32::try_from(h.data.len()).expect("file larger than 4 GiB");
        let namesize = u32::try_from(h.name.len() + 1).expect("name too long");
        let fields = [
            ino, h.mode, 0, 0, h.nlink, 0, filesize, 0, 0, h.rdev.0, h.rdev.1, namesize, 0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(h.name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(h.data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// Adds a directory (`perm` e.g. 0o755). Parents must come first.
    pub fn dir(&mut self, name: &str, perm: u32) {
        self.entry(Header {
            name,
            mode: S_IFDIR | perm,
            nlink: 2,
            rdev: (0, 0),
            data: &[],
        });
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(Header {
            name,
            mode: S_IFREG | perm,
            nlink: 1,
            rdev: (0, 0),
            data,
        });
    }

    /// Adds a character device node.
    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(Header {
            name,
            mode: S_IFCHR | perm,
            nlink: 1,
            rdev: (major, minor),
            data: &[],
        });
    }

    /// Adds a symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(Header {
            name,
            mode: S_IFLNK | 0o777,
            nlink: 1,
            rdev: (0, 0),
            data: target.as_bytes(),
        });
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(Header {
            name: "TRAILER!!!",
            mode: 0,
            nlink: 1,
            rdev: (0, 0),
            data: &[],
        });
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed entry: (name, mode, rdev major, rdev minor, data).
    type Parsed = (String, u32, u32, u32, Vec<u8>);

    /// A minimal newc reader, checking the alignment rules as it goes.
    fn parse(mut bytes: &[u8]) -> Vec<Parsed> {
        let total = bytes.len();
        let mut entries = Vec::new();
        loop {
            assert_eq!((total - bytes.len()) % 4, 0, "header not 4-aligned");
            assert_eq!(&bytes[..6], b"070701");
            let field = |i: usize| {
                let s = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, filesize, rmaj, rmin, namesize) =
                (field(1), field(6), field(9), field(10), field(11));
            let name_end = 110 + namesize as usize;
            assert_eq!(bytes[name_end - 1], 0, "name not NUL-terminated");
            let name = String::from_utf8(bytes[110..name_end - 1].to_vec()).unwrap();
            let data_start = name_end.div_ceil(4) * 4;
            let data_end = data_start + filesize as usize;
            let data = bytes[data_start..data_end].to_vec();
            bytes = &bytes[data_end.div_ceil(4) * 4..];
            if name == "TRAILER!!!" {
                assert!(bytes.is_empty(), "bytes after the trailer");
                return entries;
            }
            entries.push((name, mode, rmaj, rmin, data));
        }
    }

    /// Every kind of entry reads back with its name, type, mode and data.
    #[test]
    fn round_trip() {
        let mut a = Archive::new();
        a.dir("bin", 0o755);
        a.file("bin/hello", 0o755, b"hello\n");
        a.file("init", 0o755, b"#!/bin/sh\n");
        a.char_dev("dev/console", 0o600, 5, 1);
        a.symlink("sbin", "bin");
        let entries = parse(&a.finish());
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/hello", "init", "dev/console", "sbin"]);
        assert_eq!(entries[0].1, 0o040_755);
        assert_eq!(
            (entries[1].1, entries[1].4.as_slice()),
            (0o100_755, &b"hello\n"[..])
        );
        assert_eq!(
            (entries[3].1, entries[3].2, entries[3].3),
            (0o020_600, 5, 1)
        );
        assert_eq!(
            (entries[4].1, entries[4].4.as_slice()),
            (0o120_777, &b"bin"[..])
        );
    }

    /// The same entries always give the same bytes (no timestamps, owners or host inodes).
    #[test]
    fn reproducible() {
        let build = || {
            let mut a = Archive::new();
            a.file("x", 0o644, b"data");
            a.finish()
        };
        assert_eq!(build(), build());
    }

    /// The header layout matches the kernel's buffer-format.rst byte for byte.
    #[test]
    fn header_layout() {
        let mut a = Archive::new();
        a.file("ab", 0o644, b"xyz");
        let bytes = a.finish();
        let expected = "070701\
            00000001\
            000081A4\
            00000000\
            00000000\
            00000001\
            00000000\
            00000003\
            00000000\
            00000000\
            00000000\
            00000000\
            00000003\
            00000000";
        assert_eq!(&bytes[..110], expected.as_bytes());
        // 110 + 3 (name + NUL) = 113 -> padded to 116; data 3 -> padded to 120.
        assert_eq!(&bytes[110..120], b"ab\0\0\0\0xyz\0");
    }
}
