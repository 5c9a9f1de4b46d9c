//! The in-guest test harness: `[T] suite::name PASS|FAIL (detail)` and `N passed, N failed`.
//!
//! The format follows `rtos-guest`'s self-test (Hafnium's and bao-tests' markers), so the
//! system tests parse all guests alike. A check also fails when an unexpected exception was
//! taken since the previous check (see [`crate::rt::unexpected_exceptions`]).

use core::fmt;

use crate::{println, rt};

/// Counts passes and failures and prints one marker line per check.
#[derive(Debug, Default)]
pub struct Harness {
    passed: u32,
    failed: u32,
    unexpected_seen: u64,
}

impl Harness {
    /// A harness with nothing run.
    pub const fn new() -> Self {
        Self {
            passed: 0,
            failed: 0,
            unexpected_seen: 0,
        }
    }

    /// Records check `name` (`suite::test`) as passed if `ok`, printing `detail`; returns the
    /// verdict. Use the [`check!`](crate::check) macro.
    pub fn record(&mut self, name: &str, ok: bool, detail: fmt::Arguments<'_>) -> bool {
        let unexpected = rt::unexpected_exceptions();
        let surprise = unexpected != self.unexpected_seen;
        self.unexpected_seen = unexpected;
        let ok = ok && !surprise;
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        println!(
            "[T] {name} {} ({detail}{})",
            if ok { "PASS" } else { "FAIL" },
            if surprise {
                "; an unexpected exception was taken"
            } else {
                ""
            }
        );
        ok
    }

    /// A harness that goes on counting from `passed` and `failed` checks, e.g. those of an
    /// earlier boot of the same VM.
    pub const fn resume(passed: u32, failed: u32) -> Self {
        Self {
            passed,
            failed,
            unexpected_seen: 0,
        }
    }

    /// Checks run and passed.
    pub fn passed(&self) -> u32 {
        self.passed
    }

    /// Checks run and failed.
    pub fn failed(&self) -> u32 {
        self.failed
    }

    /// Prints the final `N passed, N failed` line.
    pub fn summary(&self) {
        println!("{} passed, {} failed", self.passed, self.failed);
    }
}

/// `check!(harness, "suite::name", condition, "detail {}", args...)`: records one check.
#[macro_export]
macro_rules! check {
    ($h:expr, $name:expr, $ok:expr) => {
        $h.record($name, $ok, format_args!(""))
    };
    ($h:expr, $name:expr, $ok:expr, $($fmt:tt)+) => {
        $h.record($name, $ok, format_args!($($fmt)+))
    };
}
