//! Running the long build steps: output to a log file, progress on the terminal.
//!
//! Kbuild prints one `  CC      path.o` line per compiled object. [`run_with_progress`]
//! counts them and reports the count and the elapsed time every few seconds
//! (on one rewritten line on a terminal, as separate lines otherwise). On
//! failure the last lines of the log and its path are printed.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::say;

/// How many log lines a failure shows.
const TAIL_LINES: usize = 40;
/// How often a progress line is printed when not on a terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `1m02.3s` or `4.7s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 {
        let m = (s / 60.0).floor();
        format!("{m:.0}m{:04.1}s", s - m * 60.0)
    } else {
        format!("{s:.1}s")
    }
}

/// Whether a kbuild output line reports a compiled object.
pub fn is_object_line(line: &str) -> bool {
    line.starts_with("  CC ") || line.starts_with("  AS ")
}

/// The progress text for `done` objects after `elapsed`, out of `expected` if known.
pub fn progress_text(done: usize, expected: Option<usize>, elapsed: Duration) -> String {
    match expected {
        Some(total) if total > 0 => {
            let pct = (done * 100 / total).min(99);
            format!(
                "{done}/~{total} objects ({pct}%), {}",
                fmt_duration(elapsed)
            )
        }
        _ => format!("{done} objects, {}", fmt_duration(elapsed)),
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

fn failure(what: &str, log: &Path, detail: String) -> String {
    format!(
        "{what} failed ({detail}); last {TAIL_LINES} lines of {}:\n{}\n(full log: {})",
        log.display(),
        tail(log),
        log.display()
    )
}

/// Runs `cmd` quietly, appending its output to `log`; on failure the error shows the log's tail.
pub fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<(), String> {
    let mut file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    writeln!(file, "$ {cmd:?}").map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    file.write_all(&out.stdout)
        .and_then(|()| file.write_all(&out.stderr))
        .map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failure(what, log, out.status.to_string()))
    }
}

/// Runs a kbuild `cmd` with its output in `log` (truncated first) and a
/// progress report; returns how many objects it compiled.
pub fn run_with_progress(
    cmd: &mut Command,
    log: &Path,
    what: &str,
    expected: Option<usize>,
) -> Result<usize, String> {
    let mut file =
        File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    writeln!(file, "$ {cmd:?}").map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;

    // Both pipes feed one channel, so the log keeps their interleaving.
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);

    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut last_report = start;
    let mut done = 0usize;
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                if is_object_line(&line) {
                    done += 1;
                }
                writeln!(file, "{line}")
                    .map_err(|e| format!("cannot write {}: {e}", log.display()))?;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let every = if tty {
            Duration::from_secs(1)
        } else {
            PROGRESS_EVERY
        };
        if last_report.elapsed() >= every {
            last_report = Instant::now();
            let text = format!(
                "linux: {what}: {}",
                progress_text(done, expected, start.elapsed())
            );
            if tty {
                eprint!("\r\x1b[2K\x1b[1mxtask:\x1b[0m {text}");
            } else {
                say(&text);
            }
        }
    }
    if tty {
        eprint!("\r\x1b[2K");
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {cmd:?}: {e}"))?;
    drop(file);
    if status.success() {
        Ok(done)
    } else {
        Err(failure(what, log, status.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations print compactly, with minutes past 60 s.
    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_millis(4_700)), "4.7s");
        assert_eq!(fmt_duration(Duration::from_millis(62_300)), "1m02.3s");
        assert_eq!(fmt_duration(Duration::from_secs(600)), "10m00.0s");
    }

    /// Only compile steps count as objects, not host tools, archives or links.
    #[test]
    fn counts_compile_lines() {
        assert!(is_object_line("  CC      kernel/fork.o"));
        assert!(is_object_line("  AS      arch/arm64/kernel/entry.o"));
        assert!(!is_object_line("  HOSTCC  scripts/basic/fixdep"));
        assert!(!is_object_line("  AR      kernel/built-in.a"));
        assert!(!is_object_line("  LD      vmlinux.o"));
    }

    /// Progress shows a capped percentage only when the total is known.
    #[test]
    fn progress_lines() {
        let t = Duration::from_secs(3);
        assert_eq!(progress_text(5, None, t), "5 objects, 3.0s");
        assert_eq!(
            progress_text(50, Some(200), t),
            "50/~200 objects (25%), 3.0s"
        );
        assert_eq!(
            progress_text(250, Some(200), t),
            "250/~200 objects (99%), 3.0s"
        );
    }

    /// A failing command's error carries the log tail and path.
    #[test]
    fn failure_shows_log() {
        let dir = std::env::temp_dir().join(format!("xtask-make-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("fail.log");
        let err = run_with_progress(
            Command::new("sh").args(["-c", "echo '  CC      a.o'; echo boom >&2; exit 3"]),
            &log,
            "test step",
            None,
        )
        .unwrap_err();
        assert!(
            err.contains("boom") && err.contains(&log.display().to_string()),
            "{err}"
        );
        let ok = run_with_progress(
            Command::new("sh").args(["-c", "echo '  CC      a.o'; echo '  CC      b.o'"]),
            &log,
            "test step",
            None,
        );
        assert_eq!(ok, Ok(2));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
