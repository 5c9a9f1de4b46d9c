//! Building QEMU command lines from platform data, and driving a QEMU boot.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::paths;

/// What to boot and on what emulated machine.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// Platform directory name under `platforms/` (`qemu-virt`, `rpi4`).
    pub platform: String,
    /// GIC version for `-M virt` (2 or 3).
    pub gic: u8,
    /// CPU count.
    pub smp: u32,
    /// RAM (QEMU syntax, e.g. `1G`).
    pub memory: String,
    /// CPU model.
    pub cpu: String,
    /// Expose EL2 to the image (`virtualization=on`).
    pub virtualization: bool,
    /// Deterministic instruction counting (`-icount shift=0,sleep=off`).
    pub icount: bool,
    /// Instruction-paced time that follows the wall clock while idle
    /// (`-icount shift=0`); ignored when `icount` is set.
    pub paced: bool,
    /// The raw image given to `-kernel`.
    pub kernel: PathBuf,
    /// Further arguments, appended as given.
    pub extra: Vec<String>,
}

impl MachineConfig {
    /// The default machine of a platform with the given kernel image.
    pub fn new(platform: &str, kernel: impl Into<PathBuf>) -> Self {
        Self {
            platform: platform.into(),
            gic: 3,
            smp: 4,
            memory: "1G".into(),
            cpu: "cortex-a72".into(),
            virtualization: true,
            icount: false,
            paced: false,
            kernel: kernel.into(),
            extra: Vec::new(),
        }
    }

    /// The full QEMU argument list (without the program name).
    pub fn args(&self) -> Result<Vec<String>, String> {
        let file = paths::platform_dir(&self.platform).join("qemu.args");
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut args = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            for word in line.split_whitespace() {
                args.push(
                    word.replace("{gic}", &self.gic.to_string())
                        .replace("{smp}", &self.smp.to_string())
                        .replace("{mem}", &self.memory)
                        .replace("{cpu}", &self.cpu)
                        .replace(
                            "{images}",
                            &paths::image_dir(&self.platform).display().to_string(),
                        )
                        .replace(
                            "{virtualization}",
                            if self.virtualization { "on" } else { "off" },
                        ),
                );
            }
        }
        if self.icount {
            args.extend(["-icount".into(), "shift=0,sleep=off".into()]);
            // QEMU's real-time clock (the PL031 a VM may own) counts host time by default:
            // from a fixed date on the virtual clock instead, so that runs repeat exactly.
            args.extend(["-rtc".into(), DETERMINISTIC_RTC.into()]);
        } else if self.paced {
            args.extend(["-icount".into(), "shift=0".into()]);
        }
        args.extend(["-kernel".into(), self.kernel.display().to_string()]);
        args.extend(self.extra.iter().cloned());
        Ok(args)
    }
}

/// The QEMU binary for AArch64 guests.
pub const QEMU: &str = "qemu-system-aarch64";

/// The `-rtc` of deterministic runs: the RTC starts at a fixed date and follows the
/// virtual clock, so a guest that reads it (or arms its alarm) sees the same values in
/// every run.
pub const DETERMINISTIC_RTC: &str = "base=2026-01-01T00:00:00,clock=vm";

/// A running QEMU whose console output is being collected.
pub struct Qemu {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<String>>,
    /// QEMU's own messages (stderr), kept apart so they never split a console line.
    errors: Arc<Mutex<String>>,
    started: Instant,
    name: String,
}

impl Qemu {
    /// Starts QEMU for a test named `name`.
    pub fn spawn(name: &str, config: &MachineConfig) -> Result<Self, String> {
        let args = config.args()?;
        let mut child = Command::new(QEMU)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot start {QEMU} (run `cargo xtask test` to install it): {e}")
            })?;
        let log = Arc::new(Mutex::new(String::new()));
        let errors = Arc::new(Mutex::new(String::new()));
        for (stream, sink) in [
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                Arc::clone(&log),
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                Arc::clone(&errors),
            ),
        ] {
            if let Some(stream) = stream {
                thread::spawn(move || pump(stream, &sink));
            }
        }
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            log,
            errors,
            started: Instant::now(),
            name: name.into(),
        })
    }

    /// Everything the console has printed so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the console has printed `marker`, QEMU exits, or `timeout` passes.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(marker) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the readers drain what QEMU printed last.
                thread::sleep(Duration::from_millis(100));
                if self.log().contains(marker) {
                    return Ok(());
                }
                return Err(self.failure(&format!(
                    "QEMU exited ({status}) before printing {marker:?}"
                )));
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!(
                    "timed out after {timeout:?} waiting for {marker:?}"
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for QEMU to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<i32, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(100));
                return Ok(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!("QEMU still running after {timeout:?}")));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `text` on the console.
    pub fn send(&mut self, text: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(text.as_bytes())
            .and_then(|_| stdin.flush())
            .map_err(|e| e.to_string())
    }

    /// A failure message with the whole console log.
    pub fn failure(&self, what: &str) -> String {
        format!(
            "[{}] {what} ({:.1}s)\n----- QEMU stderr -----\n{}\n----- console log -----\n{}\n----- end of log -----",
            self.name,
            self.started.elapsed().as_secs_f64(),
            self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            self.log()
        )
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pump(mut stream: Box<dyn Read + Send>, log: &Mutex<String>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Ok(mut l) = log.lock() {
            l.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

/// The boot image xtask built for `platform`, or an explanation of how to build it.
pub fn built_image(platform: &str, name: &str) -> Result<PathBuf, String> {
    let path = paths::image_dir(platform).join(name);
    if Path::new(&path).exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist: run the system tests through `cargo xtask test`",
            path.display()
        ))
    }
}
