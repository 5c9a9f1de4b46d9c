//! `cargo xtask bench [micro|linux|footprint|latency|io]`, every run under
//! `-icount shift=0,sleep=off` (so the figures are instruction counts and
//! repeat run to run, save for when typed shell commands reach Linux).
//!
//! With no name, [`report`] runs them all and writes `report.md`,
//! `figures.json` and the SVG plots (`report.rs`). `micro`: the probe's
//! `exit-cost:` lines, the vCPU switch between two VMs on one pCPU
//! (`switch-a`, `switch-b`) and the doorbell. `linux`: the Linux VM natively, on
//! Tandem alone and beside the RTOS, booted with `tandem.bench` so that its
//! profile runs `tandem-bench` at the same virtual time every run.
//! `footprint`: `tandem-novm.bin`, Tandem's boot log, `kernel/src` lines.
//!
//! `latency`: the RTOS's release latency side by side, one table (also
//! `latency.md`), and its histograms (`rtos-hist:`). Rows: the
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
use std::path::{Path, PathBuf};
use std::time::Duration;

use system_tests::qemu::{MachineConfig, Qemu};

use crate::package::{self, Vms};
use crate::report;
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

/// The figures of one `rtos-stats:` line, and of the `rtos-hist:` line printed with it.
struct Stats {
    periods: u64,
    min: u64,
    misses: u64,
    mean: u64,
    p99: u64,
    max: u64,
    /// The latency histogram: (bin, count), bins as the RTOS names them (`lt512`, ..,
    /// `ge131072`); empty when the RTOS printed none.
    hist: Vec<(String, u64)>,
}

/// The bins of an `rtos-hist:` line, in order: `lt512=3 lt1024=10 ..` -> [("lt512", 3), ..].
fn parse_hist(line: &str) -> Option<Vec<(String, u64)>> {
    let (_, rest) = line.split_once("rtos-hist:")?;
    rest.split_whitespace()
        .map(|w| {
            let (bin, n) = w.split_once('=')?;
            Some((bin.to_string(), n.parse().ok()?))
        })
        .collect()
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
            min: field("lat_min_ns")?,
            misses: field("misses")?,
            mean: field("lat_mean_ns")?,
            p99: field("lat_p99_ns")?,
            max: field("lat_max_ns")?,
            hist: Vec::new(),
        })
    }
}

/// Prints `report` and writes it to `out/name`.
fn write_table(out: &Path, name: &str, report: &str) -> Result<(), String> {
    print!("{report}");
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let file = out.join(name);
    std::fs::write(&file, report).map_err(|e| format!("{}: {e}", file.display()))?;
    say(&format!("bench: table written to {}", file.display()));
    Ok(())
}

/// The `latency` benchmark's rows.
fn latency_rows(root: &Path) -> Result<Vec<Row>, String> {
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
        let image = package::build(root, "qemu-virt", true, vms, None, None, machine)?;
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

    Ok(rows)
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
    let (_, report) = io_figures(root)?;
    write_table(out, "io.md", &report)
}

/// A doorbell round trip in ns: the mean, and the fastest and slowest round trip.
type RoundTrip = (f64, Option<(f64, f64)>);

/// The doorbell's round trip between two VMs on two pCPUs (`--vms ping,pong`).
fn doorbell(root: &Path) -> Result<RoundTrip, String> {
    say("bench io: doorbell round trips between two VMs on two pCPUs (--vms ping,pong)");
    let names = ["ping".to_string(), "pong".to_string()];
    let image = package::build(
        root,
        "qemu-virt",
        true,
        Vms::Named(&names),
        None,
        None,
        Machine::DEFAULT,
    )?;
    let mut q = boot(&image, true, "bench-doorbell")?;
    let rtt = line_after(&mut q, 0, "exit-cost: path=doorbell-rtt")?;
    let mean = number_after(&rtt, "ns_per_op=").ok_or_else(|| format!("unreadable: {rtt}"))?;
    let range = number_after(&rtt, "min_ns=").zip(number_after(&rtt, "max_ns="));
    Ok((mean, range))
}

/// The I/O benchmarks: the doorbell round trip ([`doorbell`]) and the rendered table.
fn io_figures(root: &Path) -> Result<(RoundTrip, String), String> {
    let machine = Machine::DEFAULT;
    let mut figures = Vec::new();
    let rtt = doorbell(root)?;
    let ns = rtt.0;
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
    let image = package::build(root, "qemu-virt", true, Vms::Default, None, None, machine)?;
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
    Ok((rtt, io_table(&figures)))
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

/// Which parts `bench_all` runs (`cargo xtask bench [NAME]`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Micro,
    Linux,
    Latency,
    Io,
    Footprint,
}

/// Runs `parts` and writes `report.md`, the plots and `figures.json` into `out`.
pub fn report(root: &Path, out: &Path, parts: &[Part]) -> Result<(), String> {
    let mut run = report::Run::default();
    let mut el2 = None;
    if parts.contains(&Part::Micro) {
        let (micro, boot_log) = micro(root)?;
        run.micro = micro;
        el2 = el2_footprint(&boot_log);
    }
    // The `io` and `latency` tables also go to their own files, as when run alone.
    let mut tables = Vec::new();
    if parts.contains(&Part::Io) {
        let (rtt, table) = io_figures(root)?;
        run.micro.push(doorbell_figure(rtt));
        tables.push(("io.md", table.clone()));
        run.appendix.push(table);
    } else if parts.contains(&Part::Micro) {
        run.micro.push(doorbell_figure(doorbell(root)?));
    }
    if parts.contains(&Part::Linux) {
        run.macros = linux_macro(root)?;
    }
    if parts.contains(&Part::Latency) {
        let rows = latency_rows(root)?;
        run.latency = rows.iter().map(latency_bar).collect();
        tables.push(("latency.md", table(&rows)));
        run.appendix.push(table(&rows));
    }
    if parts.contains(&Part::Footprint) {
        say("bench: footprint (tandem-novm.bin, EL2 RAM from the boot log, kernel/ lines)");
        let image = package::build(
            root,
            "qemu-virt",
            true,
            Vms::None,
            None,
            None,
            Machine::DEFAULT,
        )?;
        let image_bytes = std::fs::metadata(&image)
            .map_err(|e| format!("{}: {e}", image.display()))?
            .len();
        let (el2_image_kib, el2_tables) = match el2 {
            Some(f) => f,
            None => {
                let mut q = boot(&image, true, "bench-footprint")?;
                q.wait_for("no VMs to run", STEP)?;
                el2_footprint(&q.log()).ok_or("Tandem's boot log has no `image …` line")?
            }
        };
        let (kernel_files, kernel_lines) = report::count_code_lines(&root.join("kernel/src"))?;
        run.footprint = Some(report::Footprint {
            image_bytes,
            el2_image_kib,
            el2_tables,
            kernel_lines,
            kernel_files,
        });
    }

    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let plots = run.plots(out)?;
    let md = run.markdown(&plots);
    tables.push(("report.md", md.clone()));
    tables.push(("figures.json", run.json()));
    for (name, text) in tables {
        let file = out.join(name);
        std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    print!("{md}");
    say(&format!(
        "bench: report.md, figures.json and {} plot(s) written to {}",
        plots.len(),
        out.display()
    ));
    Ok(())
}

/// One doorbell VM to VM is half the measured round trip.
fn doorbell_figure((rtt, range): RoundTrip) -> report::Micro {
    report::Micro {
        key: "doorbell_vm_to_vm_instructions".into(),
        what: "doorbell VM -> VM (half the ping-pong round trip)".into(),
        value: rtt / 2.0,
        statistic: "mean of 1,000 round trips / 2",
        range: range.map(|(lo, hi)| (lo / 2.0, hi / 2.0)),
        spread: None,
        target: Some(1000.0),
    }
}

fn latency_bar(r: &Row) -> report::Latency {
    let label = if r.linux == "-" {
        format!("{} ({})", r.setup, r.vm)
    } else {
        format!("{}, Linux {} ({})", r.setup, r.linux, r.vm)
    };
    let key: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    report::Latency {
        label,
        key,
        min: r.stats.min as f64,
        mean: r.stats.mean as f64,
        p99: r.stats.p99 as f64,
        max: r.stats.max as f64,
        misses: r.stats.misses as f64,
        hist: r.stats.hist.clone(),
    }
}

/// Tandem's `image … (N KiB incl. stacks), M EL2 tables` boot line: (N, M).
fn el2_footprint(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().find(|l| l.contains("KiB incl. stacks"))?;
    let kib = line
        .split_once('(')?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let tables = line
        .rsplit_once("), ")?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((kib, tables))
}

/// The probe's exit-cost figures (`--vms probe`), and the boot log.
fn micro(root: &Path) -> Result<(Vec<report::Micro>, String), String> {
    say("bench micro: the probe's exit paths (--vms probe)");
    let names = ["probe".to_string()];
    let image = package::build(
        root,
        "qemu-virt",
        true,
        Vms::Named(&names),
        None,
        None,
        Machine::DEFAULT,
    )?;
    let mut config = MachineConfig::new("qemu-virt", &image);
    config.icount = true;
    // The passed-through PL031 on the virtual clock from a fixed date (as tests/tests/guest_probe.rs).
    config.extra = ["-rtc", "base=2025-01-01T00:00:00,clock=vm"]
        .map(String::from)
        .to_vec();
    let mut q = Qemu::spawn("bench-probe", &config)?;
    // The exit-cost lines end with the interrupt paths; the summary line ends the suites.
    q.wait_for("probe | [T] exit_cost::passthrough_irq", BOOT)?;
    q.wait_for(" failed", BOOT)?;
    let log = q.log();
    drop(q);
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("probe | ").map(|(_, r)| r))
        .collect();
    let mut micro = micro_figures(&lines)?;
    if micro.is_empty() {
        return Err(format!("the probe printed no exit-cost line:\n{log}"));
    }
    micro.extend(vcpu_switch(root)?);
    Ok((micro, log))
}

/// The vCPU switch between two VMs on one pCPU (`--vms switch-a,switch-b`).
fn vcpu_switch(root: &Path) -> Result<Vec<report::Micro>, String> {
    say("bench micro: the vCPU switch between two VMs on one pCPU (--vms switch-a,switch-b)");
    let names = ["switch-a".to_string(), "switch-b".to_string()];
    let image = package::build(
        root,
        "qemu-virt",
        true,
        Vms::Named(&names),
        None,
        None,
        Machine::DEFAULT,
    )?;
    let mut q = boot(&image, true, "bench-vcpu-switch")?;
    for vm in &names {
        q.wait_for(&format!("{vm} | 1 passed, 0 failed"), BOOT)?;
    }
    let log = q.log();
    drop(q);
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            l.split_once("switch-a | ")
                .or_else(|| l.split_once("switch-b | "))
                .map(|(_, r)| r.trim_end())
        })
        .collect();
    let micro = micro_figures(&lines)?;
    if micro.len() != 2 {
        return Err(format!("want the two vCPU switch figures:\n{log}"));
    }
    Ok(micro)
}

/// The figures of the `exit-cost:` lines among `lines` (a guest's, untagged).
fn micro_figures(lines: &[&str]) -> Result<Vec<report::Micro>, String> {
    let measured = system_tests::figures::parse_log(lines.iter().copied())?;
    let micro = measured
        .iter()
        .map(|m| {
            let line = lines
                .iter()
                .find(|l| l.contains(&format!("path={} ", m.path)))
                .copied()
                .unwrap_or("");
            let (key, what, target) = report::probe_path(&m.path);
            let range = number_after(line, "min_ns=").zip(number_after(line, "max_ns="));
            let spread = number_after(line, "median_ns=")
                .zip(number_after(line, "p99_ns="))
                .zip(number_after(line, "max_ns="))
                .map(|((median, p99), max)| (median, p99, max));
            let iterations = number_after(line, "iterations=").unwrap_or(0.0);
            report::Micro {
                key,
                what,
                value: m.ns_per_op,
                statistic: if spread.is_some() && iterations >= 1024.0 {
                    "mean of 1,024 dithered samples"
                } else if spread.is_some() {
                    "mean of 1,000 rounds"
                } else if range.is_some() {
                    "mean of dithered samples"
                } else if iterations >= 100_000.0 {
                    "mean of 100,000"
                } else {
                    "mean of 20,000"
                },
                range,
                spread,
                target,
            }
        })
        .collect();
    Ok(micro)
}

/// `tandem-bench`'s line: (cpu loop, getppid ×100,000, pipe ×10,000, streamer), in ns.
fn parse_tandem_bench(line: &str) -> Option<[f64; 4]> {
    let f = |k| number_after(line, k);
    Some([
        f("cpu_loop_ns=")?,
        f("getppid_ns=")?,
        f("pipe_ns=")?,
        f("stream_ns=")?,
    ])
}

/// `… 0.073947s after power-on` in the profile's shell line, in ns.
fn parse_shell_line(line: &str) -> Option<f64> {
    let (head, _) = line.split_once("s after power-on")?;
    let s: f64 = head.rsplit(' ').next()?.parse().ok()?;
    Some((s * 1e9).round())
}

/// The kernel command-line word on which the profile runs `tandem-bench` by itself, at
/// the same point of virtual time every run (a typed command would not be).
const BENCH_BOOTARG: &str = "tandem.bench";

/// Waits for Linux in `q` to reach its shell and run `tandem-bench`: power-on -> shell,
/// then its figures.
fn linux_figures(mut q: Qemu) -> Result<[f64; 5], String> {
    let shell = line_after(&mut q, 0, "s after power-on")?;
    let boot = parse_shell_line(&shell).ok_or_else(|| format!("unreadable: {shell}"))?;
    let line = line_after(&mut q, 0, "tandem-bench: ")?;
    let [cpu, sys, pipe, mem] =
        parse_tandem_bench(&line).ok_or_else(|| format!("unreadable: {line}"))?;
    Ok([boot, cpu, sys, pipe, mem])
}

/// A boot image of `names` (or the default set) whose Linux VM has [`BENCH_BOOTARG`],
/// written as `image` so that the ordinary images stay as they are.
fn bench_image(root: &Path, names: Option<&[String]>, image: &str) -> Result<PathBuf, String> {
    let config = crate::vms::Config::load(root, "qemu-virt")?;
    let mut selection = config.select(names, Machine::DEFAULT)?;
    let mut found = false;
    for vm in &mut selection.vms {
        if let Some(args) = &mut vm.bootargs {
            args.push(' ');
            args.push_str(BENCH_BOOTARG);
            found = true;
        }
    }
    if !found {
        return Err(format!(
            "{}: no VM with bootargs (a Linux VM) among the selected",
            selection.file
        ));
    }
    selection.name = Some(image.into());
    package::build_selection(root, "qemu-virt", true, &selection, Machine::DEFAULT)
}

/// The macro-benchmarks: the Linux VM natively, on Tandem alone, and beside the RTOS.
fn linux_macro(root: &Path) -> Result<Vec<report::Macro>, String> {
    say("bench linux: the Linux VM natively (EL1, no Tandem), to its shell, then tandem-bench");
    let native = linux_figures(native_linux(root)?)?;
    say("bench linux: Linux alone on Tandem (--vms linux)");
    let names = ["linux".to_string()];
    let image = bench_image(root, Some(&names), "tandem-bench-linux.bin")?;
    let alone = linux_figures(boot(&image, true, "bench-linux-alone")?)?;
    say("bench linux: Linux beside the RTOS on Tandem (the default set)");
    let image = bench_image(root, None, "tandem-bench-default.bin")?;
    let beside = linux_figures(boot(&image, true, "bench-linux-beside")?)?;
    const WHAT: [(&str, &str, u64); 5] = [
        ("boot_to_shell", "power-on -> shell (machine-uptime)", 1),
        ("cpu_loop", "CPU loop, 20 M rounds of an integer hash", 1),
        ("getppid", "getppid, 100,000 calls", 100_000),
        (
            "pipe_pingpong",
            "pipe ping-pong to a child, 10,000 round trips",
            10_000,
        ),
        (
            "memory_stream",
            "memory streamer, 8 × write + sum of 4 MiB",
            1,
        ),
    ];
    Ok(WHAT
        .iter()
        .enumerate()
        .map(|(i, &(stem, what, ops))| report::Macro {
            stem,
            what,
            ops,
            native: native[i],
            alone: alone[i],
            beside: beside[i],
        })
        .collect())
}

/// QEMU running the Linux VM's Image and initramfs natively, as `run --native linux`
/// does: the VM's CPUs, RAM and command line, a device tree with fixed seeds.
fn native_linux(root: &Path) -> Result<Qemu, String> {
    let config_file = crate::vms::Config::load(root, "qemu-virt")?;
    let vm = crate::native::linux_vm(&config_file)?;
    let linux = crate::linux::build(root)?;
    let mut config = MachineConfig::new("qemu-virt", &linux.image);
    config.virtualization = false;
    config.icount = true;
    config.smp = vm.pcpus.len() as u32;
    config.memory = format!("{}M", vm.memory_mib);
    config.extra = vec![
        "-initrd".into(),
        linux.initramfs.display().to_string(),
        "-append".into(),
        format!(
            "{} {BENCH_BOOTARG}",
            crate::native::native_bootargs(vm.bootargs.as_deref())
        ),
        "-seed".into(),
        crate::native::QEMU_SEED.to_string(),
    ];
    let mut args = config.args()?;
    crate::native::add_machine_option(&mut args, "dtb-randomness=off")?;
    let dir = root.join("target/tandem/qemu-virt");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dtb = crate::native::make_dtb(
        system_tests::qemu::QEMU,
        &args,
        &dir.join("bench-native-linux.dtb"),
        &crate::guest_dt::rng_seed(&vm.name),
    )?;
    // QEMU merges a second -machine into the first.
    config.extra.extend([
        "-machine".into(),
        "dtb-randomness=off".into(),
        "-dtb".into(),
        dtb.display().to_string(),
    ]);
    Qemu::spawn("bench-native-linux", &config)
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
                let mut stats = Stats::parse(line)?;
                // The histogram the same report printed: the VM's next line after it.
                let after = &complete[complete.find(line)? + line.len()..];
                let prefix = line.split_once(" | ").map(|(vm, _)| format!("{vm} | "));
                let same_vm = |l: &&str| match &prefix {
                    Some(p) => l.starts_with(p.as_str()),
                    None => !l.contains(" | "),
                };
                stats.hist = after.lines().filter(same_vm).take(3).find_map(parse_hist)?;
                Some((tag.to_string(), stats))
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
        assert_eq!(
            parse_hist("  rtos | rtos-hist: lt512=3 lt1024=10 ge1024=0"),
            Some(vec![
                ("lt512".to_string(), 3),
                ("lt1024".to_string(), 10),
                ("ge1024".to_string(), 0)
            ])
        );
        assert_eq!(parse_hist("rtos-hist: lt512=x"), None);
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
    fn reads_the_linux_and_boot_lines() {
        assert_eq!(
            parse_tandem_bench(
                "linux | tandem-bench: cpu_loop_ns=100 getppid_ns=2 pipe_ns=3 stream_ns=4\r"
            ),
            Some([100.0, 2.0, 3.0, 4.0])
        );
        assert_eq!(
            parse_tandem_bench("tandem-bench: pipe ping-pong failed"),
            None
        );
        assert_eq!(
            parse_shell_line(
                " linux | tandem-linux: shell on /dev/hvc0 at 0.05s, 0.073947s after power-on"
            ),
            Some(73_947_000.0)
        );
        assert_eq!(
            el2_footprint(
                "[    0.001116] cpu0 INFO    image    0x40080000..0x4019b000 (1132 KiB incl. stacks), 3 EL2 tables"
            ),
            Some((1132, 3))
        );
    }

    #[test]
    fn table_shows_microseconds() {
        let t = table(&[Row {
            setup: "layout single-core".into(),
            linux: "stressed",
            vm: "rtos".into(),
            stats: Stats {
                periods: 10,
                min: 480,
                misses: 0,
                mean: 1788,
                p99: 2431,
                max: 3152,
                hist: Vec::new(),
            },
        }]);
        assert!(
            t.contains("| layout single-core | stressed | rtos | 10 | 0 | 1.79 | 2.43 | 3.15 |"),
            "{t}"
        );
    }
}
