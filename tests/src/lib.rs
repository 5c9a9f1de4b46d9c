//! QEMU driver for Tandem's system tests and for `cargo xtask run`.
//!
//! One boot per scenario: [`Qemu::spawn`] starts QEMU with the platform's
//! arguments, a reader thread collects the serial console, and
//! [`Qemu::wait_for`] waits for textual markers with a timeout. On failure the
//! whole console log is printed, so a red test explains itself.
//!
//! [`figures`] reads the committed exit-path figures (`tests/figures/exit-costs.toml`) and
//! holds the probe's `exit-cost:` lines to them.

pub mod figures;
pub mod log;
pub mod paths;
pub mod qemu;
pub mod shell;
