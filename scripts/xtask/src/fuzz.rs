//! `cargo xtask fuzz`: the coverage-guided fuzz targets of `kernel/fuzz`.
//!
//! The targets are built with the project's stable toolchain: libFuzzer comes
//! from the `libfuzzer-sys` crate (compiled by the host C++ compiler) and the
//! coverage instrumentation is LLVM's SanitizerCoverage, asked for through
//! RUSTFLAGS, which is what cargo-fuzz passes on nightly too. No sanitizer:
//! the code under test is safe Rust, built with overflow checks and debug
//! assertions, so a crash is a panic. `--target` keeps the flags off build
//! scripts. Corpora grow in target/fuzz/corpus; the seeds in kernel/fuzz/seeds
//! are read, never written.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{cargo, say};

/// The targets, in the order they run.
pub const TARGETS: [&str; 7] = [
    "hypercall",
    "vgic_mmio",
    "stage2",
    "dtb",
    "package",
    "vm_config",
    "ring",
];

/// LLVM SanitizerCoverage as libFuzzer reads it (edge counters, the PC
/// table for its coverage figures, comparison tracing for its dictionaries).
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
     -Cllvm-args=-sanitizer-coverage-level=4 \
     -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
     -Cllvm-args=-sanitizer-coverage-pc-table \
     -Cllvm-args=-sanitizer-coverage-trace-compares \
     --cfg fuzzing";

/// One target's run, as libFuzzer reported it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Inputs executed.
    pub execs: u64,
    /// Coverage: edges (cov) and features (ft) at the last status line.
    pub cov: u64,
    /// Features.
    pub ft: u64,
    /// Inputs in the corpus at the end.
    pub corpus: u64,
    /// The input that crashed the target, if one did.
    pub crash: Option<String>,
}

/// Reads libFuzzer's output: the final stats, the last status line, and a
/// crash's "Test unit written to PATH".
pub fn parse_log(log: &str) -> Outcome {
    let mut out = Outcome::default();
    let field = |line: &str, key: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == key)?;
        words.next()?.split('/').next()?.parse().ok()
    };
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            out.execs = n.trim().parse().unwrap_or(out.execs);
        }
        if line.starts_with('#') {
            if let Some(n) = line[1..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
            {
                out.execs = out.execs.max(n);
            }
            out.cov = field(line, "cov:").unwrap_or(out.cov);
            out.ft = field(line, "ft:").unwrap_or(out.ft);
            out.corpus = field(line, "corp:").unwrap_or(out.corpus);
        }
        if let Some(at) = line.find("Test unit written to ") {
            out.crash = Some(
                line[at + "Test unit written to ".len()..]
                    .trim()
                    .to_string(),
            );
        }
    }
    out
}

fn host_triple() -> Result<String, String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV names no host".into())
}

/// Builds every target; returns the directory of the binaries.
pub fn build(root: &Path) -> Result<PathBuf, String> {
    let triple = host_triple()?;
    let target_dir = root.join("target/fuzz");
    say("building the fuzz targets (kernel/fuzz, libFuzzer + SanitizerCoverage)");
    let status = cargo()
        .current_dir(root)
        .env("RUSTFLAGS", RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(["build", "--release", "--bins", "--manifest-path"])
        .arg(root.join("kernel/fuzz/Cargo.toml"))
        .args(["--target", &triple, "--target-dir"])
        .arg(&target_dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the fuzz targets failed: {status}"));
    }
    Ok(target_dir.join(triple).join("release"))
}

/// Runs `targets` (all when empty) for `seconds` each and prints what each
/// did; an error if one crashed or would not run.
pub fn run(root: &Path, seconds: u64, targets: &[String]) -> Result<(), String> {
    for t in targets {
        if !TARGETS.contains(&t.as_str()) {
            return Err(format!(
                "no fuzz target \"{t}\"; the targets are {}",
                TARGETS.join(", ")
            ));
        }
    }
    let chosen: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        targets.iter().map(String::as_str).collect()
    };
    let bin_dir = build(root)?;
    let fuzz_dir = root.join("target/fuzz");
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for t in &chosen {
        let corpus = fuzz_dir.join("corpus").join(t);
        let artifacts = fuzz_dir.join("artifacts").join(t);
        let logs = fuzz_dir.join("logs");
        for d in [&corpus, &artifacts, &logs] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let seeds = root.join("kernel/fuzz/seeds").join(t);
        let log_path = logs.join(format!("{t}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let bin = bin_dir.join(t);
        say(&format!("fuzzing {t} for {seconds} s"));
        let started = Instant::now();
        let status = Command::new(&bin)
            .arg(&corpus)
            .arg(&seeds)
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .args(["-print_final_stats=1", "-timeout=10", "-rss_limit_mb=2048"])
            .stdout(Stdio::null())
            .stderr(log)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let elapsed = started.elapsed().as_secs_f64();
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let outcome = parse_log(&text);
        let rate = outcome.execs as f64 / elapsed.max(0.001);
        rows.push(format!(
            "{t:<10} {:>10} execs {:>8.0}/s  cov {:>5}  ft {:>6}  corpus {:>5}  crashes {}",
            outcome.execs,
            rate,
            outcome.cov,
            outcome.ft,
            outcome.corpus,
            u8::from(outcome.crash.is_some() || !status.success()),
        ));
        if !status.success() {
            let input = outcome
                .crash
                .clone()
                .unwrap_or_else(|| "(none written; see the log)".into());
            failures.push(format!(
                "{t} failed ({status}): input {input}\n  log: {}\n  re-run it: {} {input}",
                log_path.display(),
                bin.display()
            ));
        }
        eprintln!("  {}", rows.last().map_or("", String::as_str));
    }
    say(&format!("fuzzing, {seconds} s per target:"));
    for r in &rows {
        eprintln!("  {r}");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzzing found crashes:\n{}", failures.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_status_and_stats() {
        let log = "INFO: Seed: 1\n\
                   #2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #4096\tpulse  cov: 120 ft: 300 corp: 25/900b lim: 43 exec/s: 2048 rss: 40Mb\n\
                   #5000\tNEW    cov: 121 ft: 310 corp: 26/1Kb lim: 43 exec/s: 2500 rss: 40Mb L: 7/9 MS: 1 ChangeBit-\n\
                   Done 6000 runs in 2 second(s)\n\
                   stat::number_of_executed_units: 6001\n\
                   stat::average_exec_per_sec:     3000\n";
        assert_eq!(
            parse_log(log),
            Outcome {
                execs: 6001,
                cov: 121,
                ft: 310,
                corpus: 26,
                crash: None,
            }
        );
    }

    #[test]
    fn reads_a_crash() {
        let log = "#30\tNEW    cov: 5 ft: 5 corp: 2/3b\n\
                   ==1== ERROR: libFuzzer: deadly signal\n\
                   artifact_prefix='/t/a/'; Test unit written to /t/a/crash-abc\n";
        let out = parse_log(log);
        assert_eq!(out.crash.as_deref(), Some("/t/a/crash-abc"));
        assert_eq!(out.execs, 30);
    }
}
