//! `cargo xtask bench [latency|io]`, every run under `-icount
//! shift=0,sleep=off` (so the figures are instruction counts and repeat run
//! to run, save for when the shell commands reach Linux).
//!
//! `latency`: the RTOS's release latency side by side, one table. Rows: the
//! RTOS natively at EL1; on Tandem alone; then each layout of `vms.toml`
//! with Linux idle at its shell and after `tandem-stress`. The
//! `rtos-stats:` figures are cumulative since the RTOS started, so a
//! "stressed" row covers boot, idle and stress.
//!
//! `io`: the paravirtual I/O path (channels): the doorbell between two VMs
//! (`--vms ping,pong`), and Linux reaching the modem over virtio in the
//! default set: ping round trip, UDP echo throughput and round trip, and the
//! RTOS's latency line before and after the data path was kept busy.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use system_tests::qemu::{MachineConfig, Qemu};

use crate::package::{self, Vms};
use crate::util::say;
use crate::vms::Machine;

const BOOT: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(120);
const PROMPT: &str = "tandem:/root# ";
/// The layouts measured, as `vms.toml` names them (`default`: no `--layout`).
const LAYOUTS: [&str; 4] = ["default", "single-core", "shared", "consolidated"];
/// The idle figures: each RTOS's third report from its start (about 4.5 s
/// of virtual time, well after Linux's shell is up). Counted from the start,
/// so these rows repeat exactly; the stressed rows depend on when the
/// command reaches Linux, the one input -icount cannot replay.
const IDLE_LINE: usize = 3;
/// Rounds of `tandem-stress` (CPU loop, fork/exec with pipes, memory streamer).
const STRESS_ROUNDS: u32 = 2;

/// One measured row.
struct Row {
    setup: String,
    linux: &'static str,
    vm: String,
    stats: Stats,
}

/// The figures of one `rtos-stats:` line.
struct Stats {
    periods: u64,
    misses: u64,
    mean: u64,
    p99: u64,
    max: u64,
}

impl Stats {
    fn parse(line: &str) -> Option<Self> {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        };
        Some(Self {
            periods: field("periods")?,
            misses: field("misses")?,
            mean: field("lat_mean_ns")?,
            p99: field("lat_p99_ns")?,
            max: field("lat_max_ns")?,
        })
    }
}

/// Runs every case and prints the table (also written to `out/latency.md`).
pub fn latency(root: &Path, out: &Path) -> Result<(), String> {
    let machine = Machine::DEFAULT;
    let mut rows = Vec::new();

    say("bench: the RTOS natively at EL1");
    let native = crate::image::build_guest(root, "rtos-guest", "rtos", &[])?;
    let mut q = boot(&native, false, "bench-native")?;
    for (vm, stats) in stats_line(&mut q, &["rtos"], 0, IDLE_LINE)? {
        rows.push(Row {
            setup: "native (EL1, no Tandem)".into(),
            linux: "-",
            vm,
            stats,
        });
    }
    drop(q);

    say("bench: the RTOS on Tandem, alone");
    let alone = package::build(
        root,
        "qemu-virt",
        true,
        Vms::Named(&["rtos".to_string()]),
        None,
        machine,
    )?;
    let mut q = boot(&alone, true, "bench-alone")?;
    for (vm, stats) in stats_line(&mut q, &["rtos"], 0, IDLE_LINE)? {
        rows.push(Row {
            setup: "Tandem, RTOS alone".into(),
            linux: "-",
            vm,
            stats,
        });
    }
    drop(q);

    for layout in LAYOUTS {
        say(&format!("bench: layout {layout}, Linux idle then stressed"));
        let vms = if layout == "default" {
            Vms::Default
        } else {
            Vms::Layout(layout)
        };
        let image = package::build(root, "qemu-virt", true, vms, None, machine)?;
        let mut q = boot(&image, true, &format!("bench-{layout}"))?;
        q.wait_for(PROMPT, BOOT)?;
        let rtos: &[&str] = if layout == "consolidated" {
            &["rtos", "rtos2"]
        } else {
            &["rtos"]
        };
        for (vm, stats) in stats_line(&mut q, rtos, 0, IDLE_LINE)? {
            rows.push(Row {
                setup: format!("layout {layout}"),
                linux: "idle",
                vm,
                stats,
            });
        }
        let mark = q.log().len();
        q.send(&format!("tandem-stress {STRESS_ROUNDS}\n"))?;
        wait_after(&mut q, mark, "linux | stress-done")?;
        let done = q.log().len();
        for (vm, stats) in stats_line(&mut q, rtos, done, 1)? {
            rows.push(Row {
                setup: format!("layout {layout}"),
                linux: "stressed",
                vm,
                stats,
            });
        }
    }

    let report = table(&rows);
    print!("{report}");
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let file = out.join("latency.md");
    std::fs::write(&file, &report).map_err(|e| format!("{}: {e}", file.display()))?;
    say(&format!("bench: table written to {}", file.display()));
    Ok(())
}

/// One figure of the I/O report.
struct Figure {
    name: &'static str,
    value: String,
    note: &'static str,
}

/// The number after `key` (up to the next space, `/` or `,`) in `line`.
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The first line after byte `from` containing `marker`, once it is complete.
fn line_after(q: &mut Qemu, from: usize, marker: &str) -> Result<String, String> {
    let deadline = std::time::Instant::now() + BOOT;
    loop {
        let log = q.log();
        if let Some(at) = log[from..].find(marker)
            && let Some(end) = log[from + at..].find('\n')
        {
            let start = log[..from + at].rfind('\n').map_or(0, |n| n + 1);
            return Ok(log[start..from + at + end].trim_end().to_string());
        }
        if std::time::Instant::now() > deadline {
            return Err(q.failure(&format!("no {marker:?}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `udp-echo`'s throughput (Mbit/s) and average round trip (µs).
fn parse_udp_echo(line: &str) -> Option<(f64, f64)> {
    let mbit = number_after(line, " us: ")?;
    let (_, rtts) = line.split_once("rtt min/avg/max ")?;
    let avg = rtts.split('/').nth(1)?.parse().ok()?;
    Some((mbit, avg))
}

/// Runs the I/O benchmarks and prints the report (also written to `out/io.md`).
pub fn io(root: &Path, out: &Path) -> Result<(), String> {
    let machine = Machine::DEFAULT;
    let mut figures = Vec::new();

    say("bench io: doorbell round trips between two VMs on two pCPUs (--vms ping,pong)");
    let names = ["ping".to_string(), "pong".to_string()];
    let image = package::build(root, "qemu-virt", true, Vms::Named(&names), None, machine)?;
    let mut q = boot(&image, true, "bench-doorbell")?;
    let rtt = line_after(&mut q, 0, "exit-cost: path=doorbell-rtt")?;
    drop(q);
    let ns = number_after(&rtt, "ns_per_op=").ok_or_else(|| format!("unreadable: {rtt}"))?;
    figures.push(Figure {
        name: "doorbell VM to VM (half a round trip)",
        value: format!("{:.0} ns", ns / 2.0),
        note: "CHANNEL_NOTIFY to the peer's handler; target 1,000",
    });
    figures.push(Figure {
        name: "doorbell round trip",
        value: format!("{ns:.0} ns"),
        note: "tests/figures/doorbell.toml holds it",
    });

    say("bench io: Linux to the modem over virtio (the default set)");
    let image = package::build(root, "qemu-virt", true, Vms::Default, None, machine)?;
    let mut q = boot(&image, true, "bench-io")?;
    q.wait_for(PROMPT, BOOT)?;
    let mark = q.log().len();
    q.send("ping -c 20 -i 0.01 169.254.77.1\n")?;
    let ping = line_after(&mut q, mark, "round-trip min/avg/max")?;
    let avg = ping
        .rsplit_once(" = ")
        .and_then(|(_, v)| v.split('/').nth(1)?.parse::<f64>().ok())
        .ok_or_else(|| format!("unreadable: {ping}"))?;
    figures.push(Figure {
        name: "ping round trip (avg of 20)",
        value: format!("{:.1} µs", avg * 1000.0),
        note: "ICMP echo, Linux to the modem and back",
    });
    for (count, size) in [(2000, 1472), (2000, 64)] {
        let mark = q.log().len();
        q.send(&format!("udp-echo {count} {size}\n"))?;
        let line = line_after(&mut q, mark, "udp-echo: ")?;
        let (mbit, rtt) = parse_udp_echo(&line).ok_or_else(|| format!("unreadable: {line}"))?;
        figures.push(Figure {
            name: if size == 1472 {
                "UDP echo, 1472-byte datagrams"
            } else {
                "UDP echo, 64-byte datagrams"
            },
            value: format!("{mbit:.1} Mbit/s, {rtt:.0} µs round trip"),
            note: "one datagram in flight; bytes counted both ways",
        });
    }
    let idle = q.log().len();
    let before = stats_line(&mut q, &["rtos"], idle, 1)?;
    let mark = q.log().len();
    q.send("udp-echo 20000 1472\n")?;
    line_after(&mut q, mark, "udp-echo: ")?;
    let done = q.log().len();
    let after = stats_line(&mut q, &["rtos"], done, 1)?;
    for ((_, s), when) in [
        (&before[0], "before the load"),
        (&after[0], "after 20,000 echoes"),
    ] {
        figures.push(Figure {
            name: if when == "before the load" {
                "RTOS latency, data path idle"
            } else {
                "RTOS latency, data path busy"
            },
            value: format!(
                "misses={} mean {} µs, p99 {} µs, max {} µs",
                s.misses,
                us(s.mean),
                us(s.p99),
                us(s.max)
            ),
            note: if when == "before the load" {
                "cumulative from the RTOS's start, before the load"
            } else {
                "cumulative, after 20,000 UDP echoes of 1472 bytes"
            },
        });
    }
    drop(q);

    let report = io_table(&figures);
    print!("{report}");
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let file = out.join("io.md");
    std::fs::write(&file, &report).map_err(|e| format!("{}: {e}", file.display()))?;
    say(&format!("bench: table written to {}", file.display()));
    Ok(())
}

/// The I/O report: a Markdown table.
fn io_table(figures: &[Figure]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nParavirtual I/O, QEMU virt, cortex-a72, -smp 4, -icount shift=0,sleep=off (1 instruction = 1 ns)\n"
    );
    let _ = writeln!(s, "| figure | value | what |");
    let _ = writeln!(s, "|---|---|---|");
    for f in figures {
        let _ = writeln!(s, "| {} | {} | {} |", f.name, f.value, f.note);
    }
    let _ = writeln!(
        s,
        "\nUnder -icount QEMU runs the pCPUs in turn on one virtual timeline: a doorbell also carries\n\
         the sender's way into idle before the receiver's pCPU runs, which on hardware overlaps."
    );
    s
}

/// Boots `image` on the default QEMU machine under `-icount`.
fn boot(image: &Path, virtualization: bool, name: &str) -> Result<Qemu, String> {
    let mut config = MachineConfig::new("qemu-virt", image);
    config.virtualization = virtualization;
    config.icount = true;
    Qemu::spawn(name, &config)
}

/// Waits until `text` appears in the log after byte `from`.
fn wait_after(q: &mut Qemu, from: usize, text: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + STEP;
    while !q.log()[from..].contains(text) {
        if std::time::Instant::now() > deadline {
            return Err(q.failure(&format!("no {text:?}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// For each VM in `tags`, the `nth` complete `rtos-stats:` line it prints
/// after byte `from` of the log.
fn stats_line(
    q: &mut Qemu,
    tags: &[&str],
    from: usize,
    nth: usize,
) -> Result<Vec<(String, Stats)>, String> {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let log = q.log();
        let complete = &log[from..from.max(log.rfind('\n').unwrap_or(0))];
        let found: Vec<_> = tags
            .iter()
            .filter_map(|tag| {
                // Native runs print without a VM tag.
                let mine = |l: &&str| {
                    l.contains(&format!(" {tag} | rtos-stats:"))
                        || (tags.len() == 1 && !l.contains(" | ") && l.contains("rtos-stats:"))
                };
                let line = complete.lines().filter(mine).nth(nth - 1)?;
                Some((tag.to_string(), Stats::parse(line)?))
            })
            .collect();
        if found.len() == tags.len() {
            return Ok(found);
        }
        if std::time::Instant::now() > deadline {
            return Err(q.failure("no rtos-stats line"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1000.0)
}

/// The report: a Markdown table a person can read in a terminal.
fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nRTOS release latency, QEMU virt, cortex-a72, -smp 4, -icount shift=0,sleep=off (1 instruction = 1 ns)\n"
    );
    let _ = writeln!(
        s,
        "| setup | Linux | RTOS VM | periods | misses | mean µs | p99 µs | max µs |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.setup,
            r.linux,
            r.vm,
            r.stats.periods,
            r.stats.misses,
            us(r.stats.mean),
            us(r.stats.p99),
            us(r.stats.max)
        );
    }
    let _ = writeln!(
        s,
        "\nFigures are cumulative from the RTOS's start (a stressed row covers boot, idle and stress).\n\
         With more than one busy pCPU, QEMU runs the CPUs in turn on one virtual timeline, so an\n\
         RTOS's latency includes the other CPUs' turns (docs/design.md, \"Scheduling\")."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stats_line() {
        let s = Stats::parse(
            "rtos-stats: periods=2433 misses=0 lat_min_ns=480 lat_mean_ns=1788 lat_p99_ns=7423 lat_max_ns=9424 jitter_p99_ns=68623 irqs=2630 vm=tandem",
        )
        .unwrap();
        assert_eq!(
            (s.periods, s.misses, s.mean, s.p99, s.max),
            (2433, 0, 1788, 7423, 9424)
        );
        assert!(Stats::parse("rtos-stats: periods=1").is_none());
    }

    #[test]
    fn reads_numbers_out_of_lines() {
        let udp = "linux | udp-echo: 100/100 echoed, 1024 bytes each, 204800 bytes in 8214 us: 199.4 Mbit/s, rtt min/avg/max 72/82/154 us";
        assert_eq!(parse_udp_echo(udp), Some((199.4, 82.0)));
        assert_eq!(parse_udp_echo("udp-echo: sendto: -101"), None);
        assert_eq!(
            number_after(
                "exit-cost: path=doorbell-rtt ns_per_op=5664.0 min_ns=1",
                "ns_per_op="
            ),
            Some(5664.0)
        );
        assert_eq!(number_after("x", "y"), None);
        let t = io_table(&[Figure {
            name: "ping round trip",
            value: "42.0 µs".into(),
            note: "ICMP",
        }]);
        assert!(t.contains("| ping round trip | 42.0 µs | ICMP |"), "{t}");
    }

    #[test]
    fn table_shows_microseconds() {
        let t = table(&[Row {
            setup: "layout single-core".into(),
            linux: "stressed",
            vm: "rtos".into(),
            stats: Stats {
                periods: 10,
                misses: 0,
                mean: 1788,
                p99: 2431,
                max: 3152,
            },
        }]);
        assert!(
            t.contains("| layout single-core | stressed | rtos | 10 | 0 | 1.79 | 2.43 | 3.15 |"),
            "{t}"
        );
    }
}
