//! Paces the RTOS's statistics on the console of `cargo xtask run`.
//!
//! The default run keeps deterministic time (`-icount shift=0,sleep=off`): an
//! instruction is a nanosecond and idle time is skipped, so no host stall can
//! make the RTOS late. Virtual time then runs far ahead of the wall clock
//! while the guests idle, and the RTOS's `rtos-stats:` line (every 2 s of
//! *virtual* time) would scroll by dozens a second. The pacer passes every
//! byte through at once except those lines: of one VM's `rtos-stats:` line
//! and the lines that follow it each time (`rtos-detail:`, `rtos-hist:`, and the virtio
//! back-ends' `rtos-net:` and `rtos-at:`) it shows at most one group per
//! interval of wall time. The lines are cumulative (periods, misses, worst
//! latency, packets since boot), so the newest group shown says everything
//! the dropped ones said.
//!
//! Partial lines (a shell prompt, typed characters) are never held: a line is
//! held only while it could still turn out to be a statistics line, which is
//! decided after the VM tag (`  rtos | `) and a dozen characters.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Line bodies (after the VM tag) that the pacer thins out: a group starts
/// with the first and the others follow it.
const PACED: [&str; 5] = [
    "rtos-stats:",
    "rtos-detail:",
    "rtos-hist:",
    "rtos-net:",
    "rtos-at:",
];

/// What the current line is, as far as known.
enum Line {
    /// Still undecided: held.
    Pending(Vec<u8>),
    /// Not a statistics line: its bytes pass through.
    Pass,
    /// A statistics line of VM `tag`, held until its newline.
    Stats { tag: String, bytes: Vec<u8> },
}

/// The output filter.
pub struct Pacer {
    interval: Duration,
    line: Line,
    /// Per VM tag: when its last statistics were shown, and whether the
    /// lines following its last `rtos-stats:` line are shown (it was).
    shown: HashMap<String, (Instant, bool)>,
}

impl Pacer {
    /// Shows each VM's statistics at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            line: Line::Pending(Vec::new()),
            shown: HashMap::new(),
        }
    }

    /// Feeds `input` read from QEMU at `now`; returns what to print.
    pub fn feed(&mut self, input: &[u8], now: Instant) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            self.byte(b, now, &mut out);
        }
        // Never sit on an undecided partial line: what is typed and prompts show at once.
        if let Line::Pending(held) = &self.line
            && !held.is_empty()
            && !could_be_stats(held)
        {
            out.extend_from_slice(held);
            self.line = Line::Pass;
        }
        out
    }

    fn byte(&mut self, b: u8, now: Instant, out: &mut Vec<u8>) {
        match &mut self.line {
            Line::Pass => {
                out.push(b);
                if b == b'\n' {
                    self.line = Line::Pending(Vec::new());
                }
            }
            Line::Pending(held) => {
                held.push(b);
                if b == b'\n' || !could_be_stats(held) {
                    out.extend_from_slice(held);
                    self.line = if b == b'\n' {
                        Line::Pending(Vec::new())
                    } else {
                        Line::Pass
                    };
                } else if let Some(tag) = stats_tag(held) {
                    let bytes = std::mem::take(held);
                    self.line = Line::Stats { tag, bytes };
                }
            }
            Line::Stats { tag, bytes } => {
                bytes.push(b);
                if b == b'\n' {
                    let (tag, bytes) = (std::mem::take(tag), std::mem::take(bytes));
                    if self.show(&tag, &bytes, now) {
                        out.extend_from_slice(&bytes);
                    }
                    self.line = Line::Pending(Vec::new());
                }
            }
        }
    }

    /// Whether the complete statistics line `bytes` of VM `tag` is shown.
    fn show(&mut self, tag: &str, bytes: &[u8], now: Instant) -> bool {
        let text = plain(bytes);
        let is_stats = text.contains(PACED[0]);
        match self.shown.get_mut(tag) {
            Some((last, detail)) if is_stats => {
                let due = now.duration_since(*last) >= self.interval;
                if due {
                    *last = now;
                }
                *detail = due;
                due
            }
            Some((_, shown)) => *shown,
            None if is_stats => {
                self.shown.insert(tag.to_string(), (now, true));
                true
            }
            None => false,
        }
    }
}

/// `bytes` without ANSI escape sequences and carriage returns.
fn plain(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut in_escape = false;
    for &b in bytes {
        match (in_escape, b) {
            (false, 0x1b) => in_escape = true,
            (true, b) if b.is_ascii_alphabetic() => in_escape = false,
            (true, _) | (false, b'\r') => {}
            (false, b) => out.push(b as char),
        }
    }
    out
}

/// The VM tag of a (partial) line `tag | body`, once the body shows it is a
/// statistics line.
fn stats_tag(held: &[u8]) -> Option<String> {
    let text = plain(held);
    let (tag, body) = text.split_once(" | ")?;
    PACED
        .iter()
        .any(|p| body.starts_with(p))
        .then(|| tag.trim().to_string())
}

/// Whether the partial line `held` may still become a statistics line.
fn could_be_stats(held: &[u8]) -> bool {
    let text = plain(held);
    let text = text.trim_end_matches('\n');
    match text.split_once(" | ") {
        None => {
            // The tag: right-aligned VM name, then " |".
            let name = text.trim_start();
            text.len() <= 24
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b' ' | b'|'))
        }
        Some((_, body)) => PACED
            .iter()
            .any(|p| p.starts_with(body) || body.starts_with(p)),
    }
}

/// Runs `cmd` (QEMU on the console) with its output through a [`Pacer`];
/// input goes to it directly. Returns when it exits.
pub fn run_paced(cmd: &mut std::process::Command, interval: Duration) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let mut from = child.stdout.take().ok_or("no output pipe from QEMU")?;
    let mut pacer = Pacer::new(interval);
    let mut to = std::io::stdout().lock();
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let out = pacer.feed(&buf[..n], Instant::now());
                // The terminal going away ends the session like QEMU's own exit.
                if to.write_all(&out).and_then(|()| to.flush()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading QEMU's output: {e}")),
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Pacer, chunks: &[(&str, u64)]) -> String {
        let t0 = Instant::now();
        let mut out = Vec::new();
        for (text, ms) in chunks {
            out.extend(p.feed(text.as_bytes(), t0 + Duration::from_millis(*ms)));
        }
        String::from_utf8(out).unwrap()
    }

    /// Statistics lines of a VM are thinned to one pair per interval; the
    /// first is shown, other lines always pass.
    #[test]
    fn stats_are_paced_per_vm() {
        let mut p = Pacer::new(Duration::from_secs(2));
        let out = run(
            &mut p,
            &[
                ("  rtos | rtos-stats: periods=1 misses=0\n", 0),
                ("  rtos | rtos-detail: a=1\n", 0),
                ("  rtos | rtos-stats: periods=2 misses=0\n", 100),
                ("  rtos | rtos-detail: a=2\n", 100),
                (" linux | hello\n", 150),
                ("  rtos | rtos-stats: periods=3 misses=0\n", 2100),
                ("  rtos | rtos-detail: a=3\n", 2100),
            ],
        );
        assert_eq!(
            out,
            "  rtos | rtos-stats: periods=1 misses=0\n  rtos | rtos-detail: a=1\n linux | hello\n  rtos | rtos-stats: periods=3 misses=0\n  rtos | rtos-detail: a=3\n"
        );
    }

    /// A prompt without a newline and typed characters are shown at once.
    #[test]
    fn partial_lines_are_not_held() {
        let mut p = Pacer::new(Duration::from_secs(2));
        assert_eq!(
            run(&mut p, &[(" linux | tandem:/root# ", 0)]),
            " linux | tandem:/root# "
        );
        assert_eq!(run(&mut p, &[("l", 0)]), "l");
        assert_eq!(run(&mut p, &[("s\n", 0)]), "s\n");
        assert_eq!(
            run(&mut p, &[("[    0.001] cpu0 INFO  x", 0)]),
            "[    0.001] cpu0 INFO  x"
        );
    }

    /// Coloured tags and lines split across reads are recognised.
    #[test]
    fn colours_and_split_reads() {
        let mut p = Pacer::new(Duration::from_secs(2));
        let line = "\x1b[33m  rtos |\x1b[0m rtos-stats: periods=1\r\n";
        let (a, b) = line.split_at(14);
        assert_eq!(run(&mut p, &[(a, 0), (b, 0)]), line);
        assert_eq!(run(&mut p, &[(line, 10)]), "");
        assert_eq!(run(&mut p, &[(line, 2010)]), line);
    }

    /// The back-ends' lines go with their group: shown when its `rtos-stats:`
    /// line is, dropped with it otherwise.
    #[test]
    fn back_end_lines_follow_their_group() {
        let mut p = Pacer::new(Duration::from_secs(2));
        let out = run(
            &mut p,
            &[
                ("  rtos | rtos-stats: periods=1 misses=0\n", 0),
                ("  rtos | rtos-detail: a=1\n", 0),
                ("  rtos | rtos-net: ch=0 rx=1\n", 0),
                ("  rtos | rtos-at: ch=1 in=0\n", 0),
                ("  rtos | rtos-stats: periods=2 misses=0\n", 100),
                ("  rtos | rtos-detail: a=2\n", 100),
                ("  rtos | rtos-net: ch=0 rx=2\n", 100),
                ("  rtos | rtos-at: ch=1 in=2\n", 100),
                ("  rtos | rtos-stats: periods=3 misses=0\n", 2100),
                ("  rtos | rtos-net: ch=0 rx=3\n", 2100),
            ],
        );
        assert_eq!(
            out,
            "  rtos | rtos-stats: periods=1 misses=0\n  rtos | rtos-detail: a=1\n  rtos | rtos-net: ch=0 rx=1\n  rtos | rtos-at: ch=1 in=0\n  rtos | rtos-stats: periods=3 misses=0\n  rtos | rtos-net: ch=0 rx=3\n"
        );
    }
}
