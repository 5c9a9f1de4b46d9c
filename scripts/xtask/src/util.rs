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

/// `args` as one shell line: words with spaces or shell metacharacters are single-quoted,
/// so a printed QEMU command can be pasted back.
pub fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=,./:+@%".contains(&b));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The cargo that runs xtask (so nested builds use the same toolchain).
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_line_quotes_what_needs_it() {
        let args: Vec<String> = [
            "-append",
            "console=ttyAMA0 earlycon",
            "-M",
            "virt,gic-version=3",
            "",
            "it's",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            shell_line(&args),
            "-append 'console=ttyAMA0 earlycon' -M virt,gic-version=3 '' 'it'\\''s'"
        );
    }
}
