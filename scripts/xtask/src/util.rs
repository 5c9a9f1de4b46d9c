//! Small helpers: announcing steps and running commands.

use std::process::Command;

/// Prints an xtask status line.
pub fn say(what: &str) {
    eprintln!("\x1b[1mxtask:\x1b[0m {what}");
}

/// Runs a command with inherited stdio; an error names the command and its status.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// The cargo that runs xtask (so nested builds use the same toolchain).
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}
