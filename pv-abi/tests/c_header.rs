//! Golden test for `include/tandem_abi.h`, the C view of the ABI.
//!
//! The header is rendered here from the crate's exported constants and tables ([`CALLS`],
//! [`DISCOVERY_CALLS`], [`STATUS_CODES`], [`STAT_IDS`], ...) and compared with the checked-in
//! file, so Rust and C cannot drift. After an intended ABI change, regenerate it with
//!
//! ```text
//! TANDEM_BLESS=1 cargo test -p pv-abi --test c_header
//! ```
//!
//! and commit the result. The header follows Linux kernel style (tabs, SPDX first line,
//! lines of at most 100 columns) because `guest-linux-patches/` carries a copy of it.

use std::fmt::Write as _;
use std::path::PathBuf;

use pv_abi::console::{CONSOLE_READ_MAX, CONSOLE_WRITE_MAX};
use pv_abi::{
    ABI_VERSION_MAJOR, ABI_VERSION_MINOR, CALLS, CHANNEL_RESERVED_FIRST, CHANNEL_RESERVED_LAST,
    DISCOVERY_CALLS, DT_COMPATIBLE, STAT_IDS, STATUS_CODES, StatId, TANDEM_UUID, TANDEM_UUID_REGS,
};
use pv_abi::{ring, virtio};

/// Path of the checked-in header.
fn header_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/tandem_abi.h")
}

/// Appends a block of `#define NAME<tabs>VALUE` lines with values aligned on a tab stop.
fn defines(out: &mut String, comment: &[&str], rows: &[(String, String)]) {
    match comment {
        [] => {}
        [line] => writeln!(out, "/* {line} */").unwrap(),
        lines => {
            out.push_str("/*\n");
            for line in lines {
                writeln!(out, " * {line}").unwrap();
            }
            out.push_str(" */\n");
        }
    }
    let prefix = "#define ".len();
    let widest = rows
        .iter()
        .map(|(n, _)| prefix + n.len())
        .max()
        .unwrap_or(0);
    let column = (widest / 8 + 1) * 8;
    for (name, value) in rows {
        let start = prefix + name.len();
        let tabs = (column - start / 8 * 8) / 8;
        writeln!(out, "#define {name}{}{value}", "\t".repeat(tabs)).unwrap();
    }
    out.push('\n');
}

/// A 32-bit value in the header's hex form, `0xC6000000`.
fn hex(v: u32) -> String {
    format!("0x{v:08X}")
}

/// A signed value, parenthesised when negative so it is safe in any expression.
fn signed(v: i64) -> String {
    if v < 0 {
        format!("({v})")
    } else {
        v.to_string()
    }
}

/// Renders the whole header from the crate's constants.
fn render() -> String {
    let mut h = String::new();
    h.push_str("/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */\n");
    let intro = [
        format!("Tandem hypercall ABI {ABI_VERSION_MAJOR}.{ABI_VERSION_MINOR} for C guests."),
        String::new(),
        "Generated from the pv-abi crate (pv-abi/tests/c_header.rs); do not edit.".into(),
        "Regenerate with: TANDEM_BLESS=1 cargo test -p pv-abi --test c_header".into(),
        String::new(),
        "Conduit: HVC #0 from EL1, SMC Calling Convention v1.1. x0 = function ID".into(),
        "(only w0 is read), x1..x7 = arguments, x0..x3 = results; the hypervisor".into(),
        "preserves x4..x17 and all other state. SMC is not a Tandem conduit.".into(),
        String::new(),
        "Console bytes are packed little-endian: byte i is bits [8*(i%8)+7 : 8*(i%8)]".into(),
        "of register x(2 + i/8). See the pv-abi crate documentation for each call.".into(),
    ];
    h.push_str("/*\n");
    for line in &intro {
        if line.is_empty() {
            h.push_str(" *\n");
        } else {
            writeln!(h, " * {line}").unwrap();
        }
    }
    h.push_str(" */\n\n");
    h.push_str("#ifndef _TANDEM_ABI_H\n#define _TANDEM_ABI_H\n\n");
    h.push_str(
        "#ifdef __KERNEL__\n#include <linux/types.h>\n#else\n#include <stdint.h>\n#endif\n\n",
    );

    defines(
        &mut h,
        &["ABI version (REVISION, VERSION). A guest requires MAJOR == 1."],
        &[
            (
                "TANDEM_ABI_VERSION_MAJOR".into(),
                ABI_VERSION_MAJOR.to_string(),
            ),
            (
                "TANDEM_ABI_VERSION_MINOR".into(),
                ABI_VERSION_MINOR.to_string(),
            ),
        ],
    );
    defines(
        &mut h,
        &["Device-tree node; its \"interrupts\" is the console-input interrupt (edge)."],
        &[(
            "TANDEM_DT_COMPATIBLE".into(),
            format!("\"{DT_COMPATIBLE}\""),
        )],
    );
    defines(
        &mut h,
        &["Discovery: vendor-specific hypervisor service queries (SMC32 fast calls)."],
        &DISCOVERY_CALLS
            .iter()
            .map(|&(name, id)| (format!("TANDEM_HYP_{name}"), hex(id)))
            .collect::<Vec<_>>(),
    );
    let uuid_comment = [
        format!("Tandem UUID {TANDEM_UUID} as CALL_UID returns it in w0..w3"),
        "(little-endian words of the RFC 4122 bytes). Unknown: w0 = 0xFFFFFFFF.".into(),
    ];
    defines(
        &mut h,
        &uuid_comment.iter().map(String::as_str).collect::<Vec<_>>(),
        &TANDEM_UUID_REGS
            .iter()
            .enumerate()
            .map(|(i, &w)| (format!("TANDEM_UUID_W{i}"), hex(w)))
            .collect::<Vec<_>>(),
    );
    let calls_comment = [
        "Tandem calls: SMC64 fast calls, 0xC6000000 | n.".to_string(),
        format!(
            "{}..{} belong to inter-VM channels (ABI 1.2 defines the first four).",
            hex(CHANNEL_RESERVED_FIRST.raw()),
            hex(CHANNEL_RESERVED_LAST.raw())
        ),
    ];
    defines(
        &mut h,
        &calls_comment.iter().map(String::as_str).collect::<Vec<_>>(),
        &CALLS
            .iter()
            .map(|&(name, id)| (format!("TANDEM_HC_{name}"), hex(id)))
            .collect::<Vec<_>>(),
    );
    defines(
        &mut h,
        &["Status codes, returned in x0 as a signed 64-bit value."],
        &STATUS_CODES
            .iter()
            .map(|&(name, v)| (format!("TANDEM_ST_{name}"), signed(v)))
            .collect::<Vec<_>>(),
    );
    let mut stats: Vec<(String, String)> = STAT_IDS
        .iter()
        .map(|&(name, id)| {
            (
                format!("TANDEM_STAT_{}", name.to_ascii_uppercase()),
                id.to_string(),
            )
        })
        .collect();
    stats.push(("TANDEM_STAT_COUNT".into(), StatId::COUNT.to_string()));
    defines(
        &mut h,
        &[
            "STATS ids (x1). Linux: /sys/hypervisor/stats/<name>, where <name> is the",
            "lower-case suffix (TANDEM_STAT_WFI_EXITS -> wfi_exits). UPTIME_NS is global.",
        ],
        &stats,
    );
    defines(
        &mut h,
        &["Console payload limits in bytes (CONSOLE_WRITE: x2..x7, CONSOLE_READ: x2..x3)."],
        &[
            (
                "TANDEM_CONSOLE_WRITE_MAX".into(),
                CONSOLE_WRITE_MAX.to_string(),
            ),
            (
                "TANDEM_CONSOLE_READ_MAX".into(),
                CONSOLE_READ_MAX.to_string(),
            ),
        ],
    );
    defines(
        &mut h,
        &["Longest WATCHDOG timeout in ms (ABI 1.1; CRASH takes its reason like CONSOLE_WRITE)."],
        &[(
            "TANDEM_WATCHDOG_MAX_MS".into(),
            pv_abi::call::WATCHDOG_MAX_MS.to_string(),
        )],
    );
    defines(
        &mut h,
        &[
            "Channels (ABI 1.2): device-tree compatibles of a channel's node in each guest.",
            "reg = the shared region, interrupts = the doorbell, tandem,channel = the id.",
        ],
        &[
            (
                "TANDEM_DT_CHANNEL".into(),
                format!("\"{}\"", virtio::DT_CHANNEL),
            ),
            (
                "TANDEM_DT_VIRTIO_BACKEND".into(),
                format!("\"{}\"", virtio::DT_VIRTIO_BACKEND),
            ),
        ],
    );
    defines(
        &mut h,
        &[
            "Forwarded virtio-mmio: registers Tandem answers itself, the window size, and",
            "VIRTIO_INTERRUPT's bits.",
        ],
        &[
            (
                "TANDEM_VIRTIO_WINDOW_SIZE".into(),
                format!("0x{:X}", virtio::WINDOW_SIZE),
            ),
            (
                "TANDEM_VIRTIO_QUEUE_NOTIFY".into(),
                format!("0x{:03X}", virtio::QUEUE_NOTIFY),
            ),
            (
                "TANDEM_VIRTIO_INTERRUPT_STATUS".into(),
                format!("0x{:03X}", virtio::INTERRUPT_STATUS),
            ),
            (
                "TANDEM_VIRTIO_INTERRUPT_ACK".into(),
                format!("0x{:03X}", virtio::INTERRUPT_ACK),
            ),
            (
                "TANDEM_VIRTIO_INT_USED_BUFFER".into(),
                virtio::INTERRUPT_USED_BUFFER.to_string(),
            ),
            (
                "TANDEM_VIRTIO_INT_CONFIG_CHANGE".into(),
                virtio::INTERRUPT_CONFIG_CHANGE.to_string(),
            ),
        ],
    );
    defines(
        &mut h,
        &[
            "VIRTIO_POLL's access word (x2; 0 = none), VIRTIO_REPLY's x2: bit 63 valid,",
            "62 write, 59..56 size in bytes, 55..48 vCPU, 47..16 sequence, 15..0 offset.",
        ],
        &[
            ("TANDEM_VIRTIO_ACCESS_VALID".into(), "(1ULL << 63)".into()),
            ("TANDEM_VIRTIO_ACCESS_WRITE".into(), "(1ULL << 62)".into()),
            (
                "TANDEM_VIRTIO_ACCESS_SIZE(w)".into(),
                "((unsigned int)(((w) >> 56) & 0xf))".into(),
            ),
            (
                "TANDEM_VIRTIO_ACCESS_VCPU(w)".into(),
                "((unsigned int)(((w) >> 48) & 0xff))".into(),
            ),
            (
                "TANDEM_VIRTIO_ACCESS_OFFSET(w)".into(),
                "((unsigned int)((w) & 0xffff))".into(),
            ),
        ],
    );
    defines(
        &mut h,
        &[
            "Message ring in a channel's shared memory (ABI 1.2; pv-abi's ring module).",
            "u32 prod at PROD_OFFSET, written by the producer (store-release after the record);",
            "u32 cons at CONS_OFFSET, written by the consumer (store-release after reading);",
            "both little-endian, free-running, multiples of 4, prod - cons <= capacity.",
            "Data from DATA_OFFSET; capacity = the largest power of two <= size - DATA_OFFSET,",
            "MIN_CAPACITY..MAX_CAPACITY. A record at data[index % capacity]: u32 length, the",
            "payload, padding to RECORD_ALIGN. A reader checks all of it: the peer may lie.",
        ],
        &[
            (
                "TANDEM_RING_PROD_OFFSET".into(),
                format!("0x{:02X}", ring::PROD_OFFSET),
            ),
            (
                "TANDEM_RING_CONS_OFFSET".into(),
                format!("0x{:02X}", ring::CONS_OFFSET),
            ),
            (
                "TANDEM_RING_DATA_OFFSET".into(),
                format!("0x{:02X}", ring::DATA_OFFSET),
            ),
            (
                "TANDEM_RING_RECORD_HEADER".into(),
                ring::RECORD_HEADER.to_string(),
            ),
            (
                "TANDEM_RING_RECORD_ALIGN".into(),
                ring::RECORD_ALIGN.to_string(),
            ),
            (
                "TANDEM_RING_MIN_CAPACITY".into(),
                ring::MIN_CAPACITY.to_string(),
            ),
            (
                "TANDEM_RING_MAX_CAPACITY".into(),
                format!("0x{:X}U", ring::MAX_CAPACITY),
            ),
            (
                "TANDEM_RING_RECORD_SIZE(len)".into(),
                format!(
                    "({} + ((len) + {}) / {a} * {a})",
                    ring::RECORD_HEADER,
                    ring::RECORD_ALIGN - 1,
                    a = ring::RECORD_ALIGN
                ),
            ),
        ],
    );
    h.push_str("#endif /* _TANDEM_ABI_H */\n");
    h
}

/// The checked-in header equals the rendering (or is rewritten when `TANDEM_BLESS=1`).
#[test]
fn header_matches_rust_constants() {
    let want = render();
    let path = header_path();
    if std::env::var_os("TANDEM_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "{} is stale: first difference at line {}\n  file:      {:?}\n  generated: {:?}\n\
             Regenerate it with `TANDEM_BLESS=1 cargo test -p pv-abi --test c_header` and \
             review the diff (`git diff pv-abi/include`).",
            path.display(),
            line + 1,
            have.lines().nth(line).unwrap_or("<end of file>"),
            want.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// The SPDX identifier is the first line, as Linux requires.
#[test]
fn header_starts_with_spdx() {
    assert_eq!(
        render().lines().next(),
        Some("/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */")
    );
}

/// Checkpatch basics: no trailing whitespace, no space indentation, lines of at most 100 columns.
#[test]
fn header_is_checkpatch_clean() {
    let h = render();
    assert!(h.ends_with('\n') && !h.ends_with("\n\n"));
    for (i, line) in h.lines().enumerate() {
        let n = i + 1;
        assert_eq!(line.trim_end(), line, "line {n}: trailing whitespace");
        assert!(!line.starts_with("  "), "line {n}: indented with spaces");
        assert!(!line.contains(" \t"), "line {n}: space before tab");
        let columns = line
            .chars()
            .map(|c| if c == '\t' { 8 } else { 1 })
            .sum::<usize>();
        assert!(columns <= 100, "line {n}: {columns} columns");
        assert!(line.is_ascii(), "line {n}: non-ASCII");
    }
}

/// The include guard wraps the whole file and the libc/kernel type include is selected.
#[test]
fn header_has_guard_and_includes() {
    let h = render();
    let body: Vec<&str> = h.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        body[..2],
        ["#ifndef _TANDEM_ABI_H", "#define _TANDEM_ABI_H"]
    );
    assert_eq!(body.last(), Some(&"#endif /* _TANDEM_ABI_H */"));
    assert!(
        h.contains("#ifdef __KERNEL__\n#include <linux/types.h>\n#else\n#include <stdint.h>\n")
    );
}

/// Every name and value the spec fixes appears with its expected value.
#[test]
fn header_contains_spec_values() {
    let h = render();
    let define = |name: &str| -> String {
        let line = h
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} missing"));
        line.split_whitespace().nth(2).unwrap().to_string()
    };
    let expect = [
        ("TANDEM_ABI_VERSION_MAJOR", "1"),
        ("TANDEM_HYP_CALL_UID", "0x8600FF01"),
        ("TANDEM_HYP_REVISION", "0x8600FF03"),
        ("TANDEM_UUID_W0", "0x93877A81"),
        ("TANDEM_UUID_W1", "0xED4BA73D"),
        ("TANDEM_UUID_W2", "0x963C72A6"),
        ("TANDEM_UUID_W3", "0xEC10F508"),
        ("TANDEM_HC_VERSION", "0xC6000000"),
        ("TANDEM_HC_VM_INFO", "0xC6000001"),
        ("TANDEM_HC_CONSOLE_WRITE", "0xC6000002"),
        ("TANDEM_HC_CONSOLE_READ", "0xC6000003"),
        ("TANDEM_HC_YIELD", "0xC6000004"),
        ("TANDEM_HC_STATS", "0xC6000005"),
        ("TANDEM_HC_CRASH", "0xC6000006"),
        ("TANDEM_HC_WATCHDOG", "0xC6000007"),
        ("TANDEM_WATCHDOG_MAX_MS", "3600000"),
        ("TANDEM_ABI_VERSION_MINOR", "2"),
        ("TANDEM_HC_CHANNEL_NOTIFY", "0xC6000010"),
        ("TANDEM_HC_VIRTIO_POLL", "0xC6000011"),
        ("TANDEM_HC_VIRTIO_REPLY", "0xC6000012"),
        ("TANDEM_HC_VIRTIO_INTERRUPT", "0xC6000013"),
        ("TANDEM_VIRTIO_QUEUE_NOTIFY", "0x050"),
        ("TANDEM_VIRTIO_INTERRUPT_STATUS", "0x060"),
        ("TANDEM_VIRTIO_INTERRUPT_ACK", "0x064"),
        ("TANDEM_VIRTIO_WINDOW_SIZE", "0x200"),
        ("TANDEM_DT_VIRTIO_BACKEND", "\"tandem,virtio-backend\""),
        ("TANDEM_ST_SUCCESS", "0"),
        ("TANDEM_ST_NOT_SUPPORTED", "(-1)"),
        ("TANDEM_ST_NOT_REQUIRED", "(-2)"),
        ("TANDEM_ST_INVALID_PARAMETER", "(-3)"),
        ("TANDEM_ST_DENIED", "(-4)"),
        ("TANDEM_ST_BUSY", "(-5)"),
        ("TANDEM_STAT_EXITS", "0"),
        ("TANDEM_STAT_HYPERCALLS", "1"),
        ("TANDEM_STAT_VIRQS_INJECTED", "2"),
        ("TANDEM_STAT_MMIO_EMULATED", "3"),
        ("TANDEM_STAT_WFI_EXITS", "4"),
        ("TANDEM_STAT_UPTIME_NS", "5"),
        ("TANDEM_STAT_CHANNEL_DOORBELLS", "6"),
        ("TANDEM_STAT_CHANNEL_DENIED", "7"),
        ("TANDEM_STAT_VIRTIO_FORWARDED", "8"),
        ("TANDEM_STAT_VIRTIO_NOTIFIES", "9"),
        ("TANDEM_STAT_COUNT", "10"),
        ("TANDEM_RING_PROD_OFFSET", "0x00"),
        ("TANDEM_RING_CONS_OFFSET", "0x40"),
        ("TANDEM_RING_DATA_OFFSET", "0x80"),
        ("TANDEM_RING_RECORD_HEADER", "4"),
        ("TANDEM_RING_RECORD_ALIGN", "4"),
        ("TANDEM_RING_MIN_CAPACITY", "16"),
        ("TANDEM_RING_MAX_CAPACITY", "0x80000000U"),
        ("TANDEM_CONSOLE_WRITE_MAX", "48"),
        ("TANDEM_CONSOLE_READ_MAX", "16"),
        ("TANDEM_DT_COMPATIBLE", "\"tandem,hypervisor\""),
    ];
    for (name, value) in expect {
        assert_eq!(define(name), value, "{name}");
    }
}
