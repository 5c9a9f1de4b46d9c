//! `cargo xtask bench [latency]`: the RTOS's release latency side by side, one
//! table, every run under `-icount shift=0,sleep=off` (so the figures are
//! instruction counts and repeat run to run, save for when the shell
//! commands reach Linux).
//!
//! Rows: the RTOS natively at EL1; on Tandem alone; then each layout of
//! `vms.toml` with Linux idle at its shell and after `tandem-stress`. The
//! `rtos-stats:` figures are cumulative since the RTOS started, so a
//! "stressed" row covers boot, idle and stress.

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
