//! Driving a guest's shell on the console, and reading the RTOS's statistics lines.

use std::time::{Duration, Instant};

use crate::qemu::Qemu;

/// The Linux guest's shell prompt.
pub const PROMPT: &str = "tandem:/root# ";
/// How long one shell command may take.
pub const STEP: Duration = Duration::from_secs(120);

/// Sends a shell command and waits until `expect` appears in the output after it; returns
/// that output (carriage returns removed).
pub fn run(q: &mut Qemu, command: &str, expect: &str) -> String {
    let before = q.log().len();
    q.send(&format!("{command}\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + STEP;
    loop {
        let output = q.log()[before..].replace('\r', "");
        if output.contains(expect) {
            return output;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            q.failure(&format!("`{command}` did not print {expect:?}"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last complete `rtos-stats:` line printed after byte `from` of the log, if any.
pub fn rtos_stats_after(log: &str, from: usize) -> Option<String> {
    crate::log::complete(log)
        .get(from..)?
        .lines()
        .filter(|l| l.contains("rtos-stats:"))
        .next_back()
        .map(str::to_string)
}

/// The number after `key=` in a statistics line; panics without one.
pub fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_lines() {
        let log =
            "x\n  rtos | rtos-stats: periods=1 misses=0\n  rtos | rtos-stats: periods=9 misses=2\n";
        let last = rtos_stats_after(log, 0).unwrap();
        assert_eq!((field(&last, "periods"), field(&last, "misses")), (9, 2));
        assert_eq!(rtos_stats_after(log, log.len()), None);
        let arriving = format!("{log}  rtos | rtos-stats: periods=12");
        assert_eq!(rtos_stats_after(&arriving, 0), Some(last));
    }
}
