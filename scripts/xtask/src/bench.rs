//! `cargo xtask bench [micro|linux|footprint|latency|io]`, every run under
//! `-icount shift=0,sleep=off`, so the figures are instruction counts and
//! repeat run to run. Nothing is typed at Linux's shell: a keystroke reaches
//! the guest when the host's wall clock delivers it, the one input -icount
//! cannot replay. Linux's loads start from boot arguments instead
//! (`guest-linux-patches/initramfs/tandem-autorun`), and every figure is read
//! at a point of the log fixed by the guests' own output.
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
//! with Linux idle at its shell, and in a second boot with Linux running
//! `tandem-stress` from its shell's start (`tandem.stress=ROUNDS`). The
//! `rtos-stats:` figures are cumulative since the RTOS started, so a
//! "stressed" row covers boot and stress.
//!
//! `io`: the paravirtual I/O path (channels): the doorbell between two VMs
//! (`--vms ping,pong`), and Linux reaching the modem over virtio in the
//! default set, booted with `tandem.io`: ping round trip, UDP echo throughput
//! and round trip, and the RTOS's latency line before and after the data path
//! was kept busy.

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
/// The idle figures: each RTOS's third report from its start (6 s of virtual
/// time; Linux's shell is up after 0.1 s).
const IDLE_LINE: usize = 3;
/// Rounds of `tandem-stress` (CPU loop, fork/exec with pipes, memory streamer).
const STRESS_ROUNDS: u32 = 2;
/// The boot argument on which Linux runs `tandem-stress ROUNDS` as its shell starts.
const STRESS_BOOTARG: &str = "tandem.stress";

/// `tandem.stress=ROUNDS`: Linux runs `tandem-stress ROUNDS` as its shell starts, so
/// the stress begins at the same point of virtual time every run.
pub fn stress_bootarg(rounds: u32) -> String {
    format!("{STRESS_BOOTARG}={rounds}")
}
/// The boot argument on which Linux runs the I/O benchmark as its shell starts.
const IO_BOOTARG: &str = "tandem.io";
/// The line Linux prints when the I/O benchmark's long load starts.
const IO_LOAD: &str = "linux | io-load";

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
        let rtos: &[&str] = if layout == "consolidated" {
            &["rtos", "rtos2"]
        } else {
            &["rtos"]
        };
        say(&format!("bench: layout {layout}, Linux idle"));
        let selection =
            crate::vms::Config::load(root, "qemu-virt")?.select_layout(layout, machine)?;
        let image = package::build_selection(root, "qemu-virt", true, &selection, machine)?;
        let mut q = boot(&image, true, &format!("bench-{layout}"))?;
        q.wait_for(PROMPT, BOOT)?;
        for (vm, stats) in stats_line(&mut q, rtos, 0, IDLE_LINE)? {
            rows.push(Row {
                setup: format!("layout {layout}"),
                linux: "idle",
                vm,
                stats,
            });
        }
        drop(q);

        say(&format!(
            "bench: layout {layout}, Linux running tandem-stress from boot ({})",
            stress_bootarg(STRESS_ROUNDS)
        ));
        let stressed = selection.with_bootarg(&stress_bootarg(STRESS_ROUNDS))?;
        let image = package::build_selection(root, "qemu-virt", true, &stressed, machine)?;
        let mut q = boot(&image, true, &format!("bench-{layout}-stressed"))?;
        // From the end of its line, not from how much log the harness has read by then.
        let (_, done) = line_after(&mut q, 0, "linux | stress-done")?;
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

/// The first complete line of `log` after byte `from` that contains `marker`
/// (without its line ending), and the byte after its `\n`.
fn find_line(log: &str, from: usize, marker: &str) -> Option<(String, usize)> {
    let at = from + log[from..].find(marker)?;
    let end = at + log[at..].find('\n')?;
    let start = log[..at].rfind('\n').map_or(0, |n| n + 1);
    Some((log[start..end].trim_end().to_string(), end + 1))
}

/// [`find_line`] in `q`'s log, waiting for it. The position returned is fixed by
/// the guests' output, not by when the harness read the log.
fn line_after(q: &mut Qemu, from: usize, marker: &str) -> Result<(String, usize), String> {
    let deadline = std::time::Instant::now() + BOOT;
    loop {
        if let Some(found) = find_line(&q.log(), from, marker) {
            return Ok(found);
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
    let (rtt, _) = line_after(&mut q, 0, "exit-cost: path=doorbell-rtt")?;
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

    say(&format!(
        "bench io: Linux to the modem over virtio (the default set, {IO_BOOTARG})"
    ));
    let selection = crate::vms::Config::load(root, "qemu-virt")?.select(None, machine)?;
    let image = package::build_selection(
        root,
        "qemu-virt",
        true,
        &selection.with_bootarg(IO_BOOTARG)?,
        machine,
    )?;
    let mut q = boot(&image, true, "bench-io")?;
    let (ping, mut at) = line_after(&mut q, 0, "round-trip min/avg/max")?;
    let avg = ping
        .rsplit_once(" = ")
        .and_then(|(_, v)| v.split('/').nth(1)?.parse::<f64>().ok())
        .ok_or_else(|| format!("unreadable: {ping}"))?;
    figures.push(Figure {
        name: "ping round trip (avg of 20)",
        value: format!("{:.1} µs", avg * 1000.0),
        note: "ICMP echo, Linux to the modem and back",
    });
    // tandem-autorun's `tandem.io`: `udp-echo 2000 1472`, then `udp-echo 2000 64`.
    for size in [1472, 64] {
        let (line, end) = line_after(&mut q, at, "udp-echo: ")?;
        at = end;
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
    // The first report after the short runs, in the 3 s idle before the load.
    let (_, load) = line_after(&mut q, at, IO_LOAD)?;
    let before = stats_in(&q.log()[at..load], &["rtos"], 1)
        .ok_or_else(|| q.failure("no rtos-stats line between the UDP echoes and the load"))?;
    let (_, done) = line_after(&mut q, load, "udp-echo: ")?;
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
    let (shell, _) = line_after(&mut q, 0, "s after power-on")?;
    let boot = parse_shell_line(&shell).ok_or_else(|| format!("unreadable: {shell}"))?;
    let (line, _) = line_after(&mut q, 0, "tandem-bench: ")?;
    let [cpu, sys, pipe, mem] =
        parse_tandem_bench(&line).ok_or_else(|| format!("unreadable: {line}"))?;
    Ok([boot, cpu, sys, pipe, mem])
}

/// A boot image of `names` (or the default set) whose Linux VM has [`BENCH_BOOTARG`],
/// written as `image` so that the ordinary images stay as they are.
fn bench_image(root: &Path, names: Option<&[String]>, image: &str) -> Result<PathBuf, String> {
    let config = crate::vms::Config::load(root, "qemu-virt")?;
    let mut selection = config
        .select(names, Machine::DEFAULT)?
        .with_bootarg(BENCH_BOOTARG)?;
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

/// For each VM in `tags`, the `nth` `rtos-stats:` line it prints in `lines` (complete
/// lines of the log), with the histogram of the same report; `None` until all are there.
fn stats_in(lines: &str, tags: &[&str], nth: usize) -> Option<Vec<(String, Stats)>> {
    tags.iter()
        .map(|tag| {
            // Native runs print without a VM tag.
            let mine = |l: &&str| {
                l.contains(&format!(" {tag} | rtos-stats:"))
                    || (tags.len() == 1 && !l.contains(" | ") && l.contains("rtos-stats:"))
            };
            let line = lines.lines().filter(mine).nth(nth.checked_sub(1)?)?;
            let mut stats = Stats::parse(line)?;
            // The histogram the same report printed: the VM's next line after it.
            let after = &lines[lines.find(line)? + line.len()..];
            let prefix = line.split_once(" | ").map(|(vm, _)| format!("{vm} | "));
            let same_vm = |l: &&str| match &prefix {
                Some(p) => l.starts_with(p.as_str()),
                None => !l.contains(" | "),
            };
            stats.hist = after.lines().filter(same_vm).take(3).find_map(parse_hist)?;
            Some((tag.to_string(), stats))
        })
        .collect()
}

/// [`stats_in`] the complete lines of `q`'s log after byte `from`, waiting for them.
fn stats_line(
    q: &mut Qemu,
    tags: &[&str],
    from: usize,
    nth: usize,
) -> Result<Vec<(String, Stats)>, String> {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let log = q.log();
        let complete = &log[from..from.max(log.rfind('\n').map_or(0, |n| n + 1))];
        if let Some(found) = stats_in(complete, tags, nth) {
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
        "\nFigures are cumulative from the RTOS's start: an idle row to its report {IDLE_LINE}, a stressed\n\
         row to its first report after `tandem-stress {STRESS_ROUNDS}`, run from Linux's boot\n\
         (`{STRESS_BOOTARG}={STRESS_ROUNDS}`), so it covers boot and stress.\n\
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

    /// A log as the harness sees it: VMs interleaved, `\r\n` line ends, the last
    /// line still arriving.
    const LOG: &str = concat!(
        " linux | tandem-linux: shell on /dev/hvc0 at 0.07s, 0.098s after power-on\r\n",
        "  rtos | rtos-stats: periods=10 misses=0 lat_min_ns=1 lat_mean_ns=2 lat_p99_ns=3 lat_max_ns=4\r\n",
        " rtos2 | rtos-stats: periods=10 misses=0 lat_min_ns=1 lat_mean_ns=5 lat_p99_ns=6 lat_max_ns=7\r\n",
        "  rtos | rtos-hist: lt512=10\r\n",
        " rtos2 | rtos-hist: lt512=9 lt1024=1\r\n",
        " linux | stress-done\r\n",
        "  rtos | rtos-stats: periods=20 misses=0 lat_min_ns=1 lat_mean_ns=8 lat_p99_ns=9 lat_max_ns=10\r\n",
        "  rtos | rtos-hist: lt512=20\r\n",
        " rtos2 | rtos-stats: periods=20 misses=0 lat_min_ns=1 lat_mean_ns=11 lat_p99_ns=12 lat_max_ns=13\r\n",
        " rtos2 | rtos-hi",
    );

    #[test]
    fn finds_lines_at_positions_fixed_by_the_log() {
        let (line, end) = find_line(LOG, 0, "linux | stress-done").unwrap();
        assert_eq!(line, " linux | stress-done");
        assert!(LOG[end..].starts_with("  rtos | rtos-stats: periods=20"));
        // From its end on, the marker is not found again; an unfinished line is not a line.
        assert_eq!(find_line(LOG, end, "stress-done"), None);
        assert_eq!(find_line(LOG, end, "rtos2 | rtos-hi"), None);
    }

    #[test]
    fn picks_each_vms_report_after_a_point() {
        let both = stats_in(LOG, &["rtos", "rtos2"], 1).unwrap();
        let means: Vec<_> = both.iter().map(|(vm, s)| (vm.as_str(), s.mean)).collect();
        assert_eq!(means, [("rtos", 2), ("rtos2", 5)]);
        assert_eq!(both[1].1.hist, [("lt512".into(), 9), ("lt1024".into(), 1)]);
        let (_, done) = find_line(LOG, 0, "linux | stress-done").unwrap();
        // After the stress: rtos's first report there; rtos2's has no histogram yet.
        let rtos = stats_in(&LOG[done..], &["rtos"], 1).unwrap();
        assert_eq!((rtos[0].1.periods, rtos[0].1.max), (20, 10));
        assert!(stats_in(&LOG[done..], &["rtos", "rtos2"], 1).is_none());
        assert!(stats_in(LOG, &["rtos"], 3).is_none());
        assert!(stats_in(LOG, &["rtos"], 0).is_none());
    }

    /// `tandem-autorun` under the host's `sh`, with stand-ins that print how they were run.
    fn autorun(cmdline: &str) -> (String, String) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let script = root.join("guest-linux-patches/initramfs/tandem-autorun");
        let bin = std::env::temp_dir().join(format!(
            "xtask-autorun-{}-{}",
            std::process::id(),
            cmdline.len()
        ));
        std::fs::create_dir_all(&bin).unwrap();
        for name in ["tandem-bench", "tandem-stress", "ping", "udp-echo", "sleep"] {
            let stub = bin.join(name);
            std::fs::write(&stub, format!("#!/bin/sh\necho {name} \"$*\"\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = std::process::Command::new("sh")
            .arg(&script)
            .arg(cmdline)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .unwrap();
        std::fs::remove_dir_all(&bin).unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (text(&out.stdout), text(&out.stderr))
    }

    #[test]
    fn autorun_runs_what_the_boot_arguments_ask_for() {
        let (out, err) = autorun("console=hvc0 * tandem.stress=2 tandem.bench tandem.benchx");
        assert_eq!(out, "tandem-stress 2\ntandem-bench \n");
        assert_eq!(err, "");
        let (out, _) = autorun("quiet tandem.io");
        assert_eq!(
            out,
            "ping -c 20 -i 0.01 169.254.77.1\nudp-echo 2000 1472\nudp-echo 2000 64\n\
             sleep 3\nio-load\nudp-echo 20000 1472\n"
        );
        let (out, err) = autorun(
            "tandem.stress= tandem.stress=x tandem.stress=0 tandem.stress=07 tandem.stress=10000 tandem.stress=9999",
        );
        assert_eq!(out, "tandem-stress 9999\n");
        assert_eq!(err.lines().count(), 5, "{err}");
        assert!(
            err.starts_with(
                "tandem-autorun: tandem.stress=: ROUNDS must be a number from 1 to 9999\n"
            ),
            "{err}"
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
