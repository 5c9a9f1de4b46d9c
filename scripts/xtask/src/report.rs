//! The whole-run report of `cargo xtask bench`: `figures.json`, `report.md`
//! and the SVG plots, from figures the benchmarks measured. Everything here
//! is pure (no QEMU), so it is host-tested.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// Every figure of a run by its JSON key (sorted, so the file repeats run to run).
pub type Figures = BTreeMap<String, f64>;

/// One micro-benchmark: a path Tandem takes, measured from inside a guest.
pub struct Micro {
    /// Its key in `figures.json` (ends in `_instructions`).
    pub key: String,
    /// What it measures.
    pub what: String,
    /// The figure the guest reports (instructions; see `statistic`).
    pub value: f64,
    /// Which statistic `value` is.
    pub statistic: &'static str,
    /// Smallest and largest sample, where the guest gives them.
    pub range: Option<(f64, f64)>,
    /// Median, p99 and max of the samples, where the guest gives them.
    pub spread: Option<(f64, f64, f64)>,
    /// The target, in instructions.
    pub target: Option<f64>,
}

/// The key, description and target of a probe `exit-cost:` path.
pub fn probe_path(path: &str) -> (String, String, Option<f64>) {
    let (key, what, target) = match path {
        "smccc-version" => (
            "null_hypercall",
            "null hypercall: HVC SMCCC_VERSION round trip",
            Some(150.0),
        ),
        "tandem-version" => (
            "tandem_version",
            "HVC Tandem VERSION round trip",
            Some(150.0),
        ),
        "gicd-read" => (
            "gicd_read_trap",
            "trapped GICD read (GICD_TYPER), emulated",
            Some(400.0),
        ),
        "gicd-write" => (
            "gicd_write_trap",
            "trapped GICD write (GICD_IPRIORITYR), emulated",
            None,
        ),
        "vtimer-latency" => (
            "vtimer_latency",
            "virtual timer condition -> guest IRQ vector",
            Some(400.0),
        ),
        "sgi-self" => (
            "sgi_self",
            "SGI to self: trapped ICC_SGI1R_EL1 write -> own IRQ vector",
            None,
        ),
        "virtual-ipi" => (
            "virtual_ipi",
            "virtual IPI: SGI on vCPU 0 -> vCPU 1's IRQ vector (other pCPU, in WFI)",
            None,
        ),
        "vcpu-switch" => (
            "vcpu_switch",
            "vCPU switch, two VMs on one pCPU: A blocks in WFI -> busy B runs",
            None,
        ),
        "vcpu-preempt" => (
            "vcpu_preempt",
            "vCPU switch back: A's timer deadline preempts busy B -> A runs",
            None,
        ),
        "passthrough-irq" => (
            "passthrough_irq",
            "passthrough IRQ: PL031 raises SPI 34 -> guest IRQ vector",
            None,
        ),
        other => {
            return (
                format!("{}_instructions", other.replace('-', "_")),
                other.into(),
                None,
            );
        }
    };
    (format!("{key}_instructions"), what.into(), target)
}

/// One macro-benchmark: the same Linux workload natively and on Tandem.
pub struct Macro {
    /// Its key stem: `linux_<stem>_ratio` and `linux_<stem>_*_ns`.
    pub stem: &'static str,
    /// What it measures.
    pub what: &'static str,
    /// Operations the time covers (1 for a whole run), for the per-op column.
    pub ops: u64,
    /// Nanoseconds natively, on Tandem with Linux alone, and beside the RTOS.
    pub native: f64,
    pub alone: f64,
    pub beside: f64,
}

impl Macro {
    /// Tandem (Linux alone) / native.
    pub fn ratio(&self) -> f64 {
        self.alone / self.native
    }
    /// Tandem (beside the RTOS) / native.
    pub fn ratio_beside(&self) -> f64 {
        self.beside / self.native
    }
}

/// One setup's RTOS release latency, in ns.
pub struct Latency {
    /// The setup, e.g. `layout shared, Linux stressed (rtos)`.
    pub label: String,
    /// Its JSON key stem, e.g. `layout_shared_stressed_rtos`.
    pub key: String,
    pub min: f64,
    pub mean: f64,
    pub p99: f64,
    pub max: f64,
    pub misses: f64,
    /// The RTOS's latency histogram (`rtos-hist:`): (bin, count), bins `lt512` .. `ge131072`.
    pub hist: Vec<(String, u64)>,
}

/// What Tandem occupies.
pub struct Footprint {
    /// `tandem-novm.bin`: the hypervisor without VMs.
    pub image_bytes: u64,
    /// From Tandem's boot log: the image incl. stacks and bss, in KiB.
    pub el2_image_kib: u64,
    /// From Tandem's boot log: EL2 page tables (4 KiB each).
    pub el2_tables: u64,
    /// Non-test code lines of `kernel/src` ([`count_code_lines`]).
    pub kernel_lines: u64,
    /// Files counted.
    pub kernel_files: u64,
}

/// Everything one `cargo xtask bench` run measured.
#[derive(Default)]
pub struct Run {
    pub micro: Vec<Micro>,
    pub macros: Vec<Macro>,
    pub latency: Vec<Latency>,
    pub footprint: Option<Footprint>,
    /// Other tables already rendered (the `latency` and `io` benchmarks' own).
    pub appendix: Vec<String>,
}

impl Run {
    /// Every figure by key.
    pub fn figures(&self) -> Figures {
        let mut f = Figures::new();
        for m in &self.micro {
            f.insert(m.key.clone(), m.value);
            if let Some((lo, hi)) = m.range {
                let stem = m.key.trim_end_matches("_instructions");
                f.insert(format!("{stem}_min_instructions"), lo);
                f.insert(format!("{stem}_max_instructions"), hi);
            }
            if let Some((median, p99, max)) = m.spread {
                let stem = m.key.trim_end_matches("_instructions");
                f.insert(format!("{stem}_median_instructions"), median);
                f.insert(format!("{stem}_p99_instructions"), p99);
                f.insert(format!("{stem}_max_instructions"), max);
            }
        }
        for m in &self.macros {
            let s = m.stem;
            f.insert(format!("linux_{s}_native_ns"), m.native);
            f.insert(format!("linux_{s}_tandem_alone_ns"), m.alone);
            f.insert(format!("linux_{s}_tandem_beside_rtos_ns"), m.beside);
            f.insert(format!("linux_{s}_ratio"), round(m.ratio(), 5));
            f.insert(
                format!("linux_{s}_beside_rtos_ratio"),
                round(m.ratio_beside(), 5),
            );
        }
        for l in &self.latency {
            let k = &l.key;
            f.insert(format!("rtos_latency_{k}_min_ns"), l.min);
            f.insert(format!("rtos_latency_{k}_mean_ns"), l.mean);
            f.insert(format!("rtos_latency_{k}_p99_ns"), l.p99);
            f.insert(format!("rtos_latency_{k}_max_ns"), l.max);
            f.insert(format!("rtos_latency_{k}_misses"), l.misses);
            for (bin, n) in &l.hist {
                f.insert(format!("rtos_latency_{k}_hist_{bin}_ns"), *n as f64);
            }
        }
        if let Some(fp) = &self.footprint {
            f.insert("tandem_image_bytes".into(), fp.image_bytes as f64);
            f.insert("el2_image_kib".into(), fp.el2_image_kib as f64);
            f.insert("el2_page_tables".into(), fp.el2_tables as f64);
            f.insert(
                "el2_ram_in_use_kib".into(),
                (fp.el2_image_kib + 4 * fp.el2_tables) as f64,
            );
            f.insert("kernel_code_lines".into(), fp.kernel_lines as f64);
        }
        f
    }

    /// `figures.json`: one object, keys sorted.
    pub fn json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .figures()
            .into_iter()
            .map(|(k, v)| (k, serde_json::json!(v)))
            .collect();
        let mut s = serde_json::to_string_pretty(&map).unwrap_or_default();
        s.push('\n');
        s
    }

    /// `report.md`; `plots` are the SVG file names beside it.
    pub fn markdown(&self, plots: &[&str]) -> String {
        let mut s = String::from(
            "# Tandem performance report\n\n\
             QEMU 10 `-M virt`, cortex-a72, GICv3, `-icount shift=0,sleep=off`: one instruction is one\n\
             nanosecond of virtual time, so every figure is a path length and repeats run to run.\n\
             Everything is measured from inside the guests. `docs/performance.md` puts these figures\n\
             beside the anchors (Xen on this same QEMU, published hardware numbers).\n",
        );
        if !self.micro.is_empty() {
            s.push_str(
                "\n## Micro-benchmarks (instructions)\n\n\
                 | benchmark | key | figure | statistic | median / p99 / max | min..max | target | |\n\
                 |---|---|---:|---|---|---|---:|---|\n",
            );
            for m in &self.micro {
                let range = m
                    .range
                    .map_or("-".into(), |(a, b)| format!("{a:.0}..{b:.0}"));
                let spread = m
                    .spread
                    .map_or("-".into(), |(a, b, c)| format!("{a:.0} / {b:.0} / {c:.0}"));
                let (target, verdict) = match m.target {
                    Some(t) if m.value <= t => (format!("≤ {t:.0}"), "met"),
                    Some(t) => (format!("≤ {t:.0}"), "**missed**"),
                    None => ("-".into(), ""),
                };
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {:.1} | {} | {spread} | {range} | {target} | {verdict} |",
                    m.what, m.key, m.value, m.statistic
                );
            }
            s.push_str(
                "\nThe probe times each hypercall and trap as a loop of 20,000 to 100,000 identical\n\
                 round trips minus the same loop without the exit: under -icount every iteration takes\n\
                 the same path, so the mean is also the median, p99 and max (the 16 ns counter cannot\n\
                 time one iteration). An interrupt cannot be looped: its figure is the exact mean of\n\
                 dithered samples (64 for the virtual timer, 1,024 for the others), each sample a whole\n\
                 number of 16 ns ticks; their median, p99 and max are given at that resolution. The\n\
                 virtual IPI and the doorbell cross pCPUs, which QEMU runs in turn on one timeline:\n\
                 they also count what the sending pCPU runs before QEMU switches to the receiver.\n",
            );
        }
        if !self.macros.is_empty() {
            s.push_str(
                "\n## Linux on Tandem against Linux natively\n\n\
                 The same Image and initramfs, natively (EL1, no hypervisor, the VM's 2 CPUs and RAM)\n\
                 and on Tandem, timed with CNTVCT by `tandem-bench` (power-on -> shell by\n\
                 `machine-uptime`).\n\n\
                 | benchmark | native | Tandem, Linux alone | ratio | Tandem, beside the RTOS | ratio |\n\
                 |---|---:|---:|---:|---:|---:|\n",
            );
            for m in &self.macros {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.4} | {} | {:.4} |",
                    m.what,
                    duration(m.native, m.ops),
                    duration(m.alone, m.ops),
                    m.ratio(),
                    duration(m.beside, m.ops),
                    m.ratio_beside()
                );
            }
            s.push_str(
                "\n\"Linux alone\" is `--vms linux` (4 pCPUs, 2 of them idle); \"beside the RTOS\" the\n\
                 default set. Under -icount QEMU runs all CPUs in turn on one virtual timeline: the\n\
                 RTOS's instructions and Tandem's tick on the other pCPUs advance the same clock and\n\
                 so take time from Linux's, which silicon would run in parallel. The hypervisor's own\n\
                 overhead is the \"alone\" ratio; the other shows the sharing of one emulator thread.\n",
            );
        }
        if !self.latency.is_empty() {
            s.push_str(
                "\n## RTOS release latency (µs)\n\n\
                 | setup | min | mean | p99 | max | misses |\n|---|---:|---:|---:|---:|---:|\n",
            );
            for l in &self.latency {
                let _ = writeln!(
                    s,
                    "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                    l.label,
                    l.min / 1000.0,
                    l.mean / 1000.0,
                    l.p99 / 1000.0,
                    l.max / 1000.0,
                    l.misses
                );
            }
            if let Some(first) = self.latency.iter().find(|l| !l.hist.is_empty()) {
                s.push_str(
                    "\n### RTOS latency histogram (timer interrupts per bin)\n\n\
                     From the RTOS's `rtos-hist:` line, printed with the `rtos-stats:` line above:\n\
                     `ltN` counts latencies in [N/2, N) ns (the first from 0), `geN` those from N.\n\n| setup |",
                );
                for (bin, _) in &first.hist {
                    let _ = write!(s, " {bin} |");
                }
                s.push_str("\n|---|");
                s.push_str(&"---:|".repeat(first.hist.len()));
                s.push('\n');
                for l in self.latency.iter().filter(|l| !l.hist.is_empty()) {
                    let _ = write!(s, "| {} |", l.label);
                    for (_, n) in &l.hist {
                        let _ = write!(s, " {n} |");
                    }
                    s.push('\n');
                }
            }
        }
        if let Some(fp) = &self.footprint {
            let _ = write!(
                s,
                "\n## Footprint\n\n\
                 | figure | value |\n|---|---:|\n\
                 | `tandem-novm.bin` (the hypervisor, no VMs) | {} bytes |\n\
                 | EL2 RAM in use after boot: image incl. stacks and bss + {} EL2 page tables | {} KiB |\n\
                 | non-test code lines of `kernel/src` ({} files) | {} |\n\n\
                 EL2 RAM is what Tandem's boot log reports (`image … KiB incl. stacks, N EL2 tables`);\n\
                 the per-VM structures Tandem allocates from its heap are not logged and not included.\n\
                 Lines: every `.rs` file under `kernel/src` except `tests.rs` files, without blank lines,\n\
                 `//` comments and doc comments, and without `#[cfg(test)]` items (a `mod` block up to\n\
                 its closing brace at the same indentation).\n",
                fp.image_bytes,
                fp.el2_tables,
                fp.el2_image_kib + 4 * fp.el2_tables,
                fp.kernel_files,
                fp.kernel_lines
            );
        }
        if !plots.is_empty() {
            s.push_str("\n## Plots\n\n");
            for p in plots {
                let _ = writeln!(s, "![{p}]({p})\n");
            }
        }
        for a in &self.appendix {
            s.push_str(a);
        }
        s
    }

    /// Draws the plots into `dir`; returns their file names.
    pub fn plots(&self, dir: &Path) -> Result<Vec<&'static str>, String> {
        let mut out = Vec::new();
        if !self.macros.is_empty() {
            let groups: Vec<(String, Vec<f64>)> = self
                .macros
                .iter()
                .map(|m| (m.stem.replace('_', " "), vec![m.ratio(), m.ratio_beside()]))
                .collect();
            bars(
                &dir.join("ratios.svg"),
                "Linux on Tandem / native",
                "ratio",
                &["Linux alone", "beside the RTOS"],
                &groups,
                Some(1.0),
                Scale::Linear,
            )?;
            out.push("ratios.svg");
        }
        if !self.latency.is_empty() {
            let groups: Vec<(String, Vec<f64>)> = self
                .latency
                .iter()
                .map(|l| {
                    (
                        l.label.clone(),
                        vec![
                            l.min / 1000.0,
                            l.mean / 1000.0,
                            l.p99 / 1000.0,
                            l.max / 1000.0,
                        ],
                    )
                })
                .collect();
            bars(
                &dir.join("rtos-latency.svg"),
                "RTOS release latency per setup",
                "µs (log scale)",
                &["min", "mean", "p99", "max"],
                &groups,
                None,
                Scale::Log,
            )?;
            out.push("rtos-latency.svg");
        }
        let with_hist: Vec<&Latency> = self.latency.iter().filter(|l| !l.hist.is_empty()).collect();
        if let Some(first) = with_hist.first() {
            let bins: Vec<&str> = first.hist.iter().map(|(b, _)| b.as_str()).collect();
            let groups: Vec<(String, Vec<f64>)> = with_hist
                .iter()
                .map(|l| {
                    let total: u64 = l.hist.iter().map(|(_, n)| n).sum();
                    let share = |n: u64| 100.0 * n as f64 / total.max(1) as f64;
                    (
                        l.label.clone(),
                        l.hist.iter().map(|(_, n)| share(*n)).collect(),
                    )
                })
                .collect();
            bars(
                &dir.join("rtos-latency-hist.svg"),
                "RTOS timer-interrupt latency histogram per setup (bins in ns)",
                "% of interrupts (log scale)",
                &bins,
                &groups,
                None,
                Scale::Log,
            )?;
            out.push("rtos-latency-hist.svg");
        }
        Ok(out)
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// A whole run's time, or per operation when it covers many.
fn duration(ns: f64, ops: u64) -> String {
    if ops > 1 {
        format!("{:.1} ns/op", ns / ops as f64)
    } else {
        format!("{:.3} ms", ns / 1e6)
    }
}

/// The x axis of [`bars`].
#[derive(Clone, Copy)]
enum Scale {
    Linear,
    /// Logarithmic from `LOG_FLOOR` (smaller values get no bar).
    Log,
}

const LOG_FLOOR: f64 = 0.1;

/// Horizontal grouped bars: one group per row of `groups`, one bar per series.
fn bars(
    file: &PathBuf,
    title: &str,
    unit: &str,
    series: &[&str],
    groups: &[(String, Vec<f64>)],
    baseline: Option<f64>,
    scale: Scale,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", file.display());
    // Drawn in axis units: the value, or its log10.
    let x = |v: f64| match scale {
        Scale::Linear => v,
        Scale::Log => v.max(LOG_FLOOR).log10(),
    };
    let max = groups
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(baseline.unwrap_or(0.0), f64::max);
    let (left, top) = match scale {
        Scale::Linear => (0.0, max * 1.1),
        Scale::Log => (x(LOG_FLOOR), x(max).ceil()),
    };
    let rows = groups.len() as f64;
    let height = 120 + 26 * series.len() as u32 * groups.len() as u32;
    let root = SVGBackend::new(file, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(300)
        .build_cartesian_2d(left..top, 0f64..rows)
        .map_err(|e| err(&e))?;
    let labels: Vec<String> = groups.iter().map(|(l, _)| l.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(unit)
        .x_label_formatter(&|v| match scale {
            Scale::Linear => format!("{v:.1}"),
            Scale::Log if (v - v.round()).abs() < 1e-9 => format!("{}", 10f64.powf(*v)),
            Scale::Log => String::new(),
        })
        .y_labels(groups.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let i = (rows - y - 0.5).round();
            if (rows - y - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(|e| err(&e))?;
    let h = 0.8 / series.len() as f64;
    for (si, name) in series.iter().enumerate() {
        let colour = Palette99::pick(si).to_rgba();
        chart
            .draw_series(groups.iter().enumerate().map(|(gi, (_, v))| {
                let y0 = rows - gi as f64 - 0.9 + si as f64 * h;
                Rectangle::new([(left, y0), (x(v[si]), y0 + h * 0.9)], colour.filled())
            }))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    if let Some(b) = baseline {
        chart
            .draw_series(LineSeries::new(
                [(x(b), 0.0), (x(b), rows)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Counts the non-test code lines of the `.rs` files under `dir` (see the
/// report's footprint section for the method); returns (files, lines).
pub fn count_code_lines(dir: &Path) -> Result<(u64, u64), String> {
    let mut files = Vec::new();
    collect_rs(dir, &mut files)?;
    files.sort();
    let mut lines = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        lines += code_lines(&text);
    }
    Ok((files.len() as u64, lines))
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries {
        let path = e.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Code lines of one file: not blank, not a `//` comment, not inside a
/// `#[cfg(test)]` item (from the attribute to the `}` at its indentation).
pub fn code_lines(text: &str) -> u64 {
    let mut count = 0;
    let mut skip_until: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if let Some(end) = &skip_until {
            if line.trim_end() == end {
                skip_until = None;
            }
            continue;
        }
        if t == "#[cfg(test)]" {
            let indent = &line[..line.len() - line.trim_start().len()];
            // A one-line item (`mod tests;`, `use …;`) ends with `;`.
            let next = lines.next().unwrap_or("");
            if !next.trim_end().ends_with(';') {
                skip_until = Some(format!("{indent}}}"));
            }
            continue;
        }
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        let (key, what, target) = probe_path("smccc-version");
        Run {
            micro: vec![
                Micro {
                    key,
                    what,
                    value: 134.0,
                    statistic: "mean of 100,000",
                    range: None,
                    spread: None,
                    target,
                },
                Micro {
                    key: "vtimer_latency_instructions".into(),
                    what: "vtimer".into(),
                    value: 492.0,
                    statistic: "mean of 64",
                    range: Some((480.0, 496.0)),
                    spread: None,
                    target: Some(400.0),
                },
                Micro {
                    key: "virtual_ipi_instructions".into(),
                    what: "virtual IPI".into(),
                    value: 1523.0,
                    statistic: "mean of 1,024 dithered samples",
                    range: Some((1520.0, 1536.0)),
                    spread: Some((1520.0, 1536.0, 1536.0)),
                    target: None,
                },
            ],
            macros: vec![Macro {
                stem: "cpu_loop",
                what: "CPU loop",
                ops: 1,
                native: 100e6,
                alone: 100.1e6,
                beside: 110e6,
            }],
            latency: vec![Latency {
                label: "native".into(),
                key: "native".into(),
                min: 480.0,
                mean: 1000.0,
                p99: 1500.0,
                max: 2000.0,
                misses: 0.0,
                hist: vec![
                    ("lt512".into(), 3),
                    ("lt1024".into(), 1),
                    ("ge1024".into(), 0),
                ],
            }],
            footprint: Some(Footprint {
                image_bytes: 172376,
                el2_image_kib: 1132,
                el2_tables: 3,
                kernel_lines: 100,
                kernel_files: 2,
            }),
            appendix: vec![],
        }
    }

    #[test]
    fn json_keys_are_named_after_the_benchmark() {
        let f = run().figures();
        assert_eq!(f["null_hypercall_instructions"], 134.0);
        assert_eq!(f["vtimer_latency_max_instructions"], 496.0);
        assert_eq!(f["virtual_ipi_median_instructions"], 1520.0);
        assert_eq!(f["virtual_ipi_p99_instructions"], 1536.0);
        assert_eq!(f["virtual_ipi_max_instructions"], 1536.0);
        assert_eq!(f["linux_cpu_loop_ratio"], 1.001);
        assert_eq!(f["linux_cpu_loop_beside_rtos_ratio"], 1.1);
        assert_eq!(f["rtos_latency_native_p99_ns"], 1500.0);
        assert_eq!(f["rtos_latency_native_hist_lt1024_ns"], 1.0);
        assert_eq!(f["el2_ram_in_use_kib"], 1144.0);
        assert_eq!(probe_path("gicd-read").0, "gicd_read_trap_instructions");
        assert_eq!(probe_path("new-path").0, "new_path_instructions");
        let json: serde_json::Value = serde_json::from_str(&run().json()).unwrap();
        assert_eq!(json["kernel_code_lines"], 100.0);
    }

    #[test]
    fn markdown_has_the_tables_and_says_when_a_target_is_missed() {
        let md = run().markdown(&["ratios.svg"]);
        assert!(md.contains("| null hypercall: HVC SMCCC_VERSION round trip | `null_hypercall_instructions` | 134.0 | mean of 100,000 | - | - | ≤ 150 | met |"), "{md}");
        assert!(
            md.contains("| 492.0 | mean of 64 | - | 480..496 | ≤ 400 | **missed** |"),
            "{md}"
        );
        assert!(
            md.contains("| 1523.0 | mean of 1,024 dithered samples | 1520 / 1536 / 1536 | 1520..1536 | - |  |"),
            "{md}"
        );
        assert!(
            md.contains("| CPU loop | 100.000 ms | 100.100 ms | 1.0010 | 110.000 ms | 1.1000 |"),
            "{md}"
        );
        assert!(
            md.contains("| native | 0.48 | 1.00 | 1.50 | 2.00 | 0 |"),
            "{md}"
        );
        assert!(md.contains("| 1144 KiB |"), "{md}");
        assert!(
            md.contains(
                "| setup | lt512 | lt1024 | ge1024 |\n|---|---:|---:|---:|\n| native | 3 | 1 | 0 |"
            ),
            "{md}"
        );
        assert!(md.contains("![ratios.svg](ratios.svg)"), "{md}");
    }

    #[test]
    fn plots_are_written() {
        let dir = std::env::temp_dir().join(format!("tandem-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = run().plots(&dir).unwrap();
        assert_eq!(
            names,
            ["ratios.svg", "rtos-latency.svg", "rtos-latency-hist.svg"]
        );
        for n in names {
            let svg = std::fs::read_to_string(dir.join(n)).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.contains("<rect"),
                "{n}: {svg}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn counts_code_lines_without_tests_and_comments() {
        let text = "//! doc\n\nfn a() {\n    // note\n    b();\n}\n\n#[cfg(test)]\nmod tests;\n\
                    #[cfg(test)]\nmod t {\n    fn x() {\n    }\n}\nfn c() {}\n";
        assert_eq!(code_lines(text), 4);
    }
}
