//! `cargo xtask`: build, run and test Tandem.
//!
//! `run` boots the default platform in QEMU with the console on this terminal;
//! `test` runs the host unit tests and then the QEMU system tests. Both
//! install what they need first (QEMU 10, dtc, Rust targets) and say so.
//! `build` and `run` pack the VMs of `platforms/<board>/vms.toml` (the
//! `default = true` ones, or those named by `--vms`) into the boot image.

mod guest_dt;
mod image;
mod linux;
mod package;
mod setup;
mod util;
mod vms;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Args, Parser, Subcommand};
use system_tests::qemu::{MachineConfig, QEMU};

use crate::package::Vms;
use crate::setup::Need;
use crate::util::{cargo, run, say};
use crate::vms::Machine;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, run and test the Tandem hypervisor",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build Tandem and boot it in QEMU, console on this terminal (leave with Ctrl-A X).
    Run(RunArgs),
    /// Run every test: host unit tests, then QEMU system tests.
    Test(TestArgs),
    /// Build the boot image only: target/tandem/<platform>/tandem.bin for the default VMs,
    /// tandem-<vm>-….bin for --vms, tandem-novm.bin for --no-vms.
    Build(MachineArgs),
    /// Install the host tools the build and tests need (run and test do this themselves).
    Setup,
    /// Build the Linux guest (kernel Image with guest-linux-patches, initramfs), cached.
    Linux,
}

#[derive(Args, Clone)]
struct MachineArgs {
    /// Board to build for and boot: qemu-virt (QEMU -M virt) or rpi4.
    #[arg(long, default_value = "qemu-virt", value_parser = ["qemu-virt", "rpi4"])]
    platform: String,
    /// Build without optimisations (slower, easier to debug).
    #[arg(long)]
    debug: bool,
    /// VMs to pack and boot, by name from platforms/<platform>/vms.toml, in this order
    /// (default: the VMs with `default = true`).
    #[arg(long, value_delimiter = ',', value_name = "VM,...")]
    vms: Option<Vec<String>>,
    /// Boot Tandem with no VMs (target/tandem/<platform>/tandem-novm.bin).
    #[arg(long, conflicts_with = "vms")]
    no_vms: bool,
    /// Number of physical CPUs (the VMs' pcpus are checked against it).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=8))]
    smp: u32,
    /// Memory size in QEMU syntax (the VMs' RAM is checked against it).
    #[arg(long, default_value = "1G")]
    memory: String,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    machine: MachineArgs,
    /// GIC version of the emulated machine (qemu-virt only).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    gic: u8,
    /// CPU model (cortex-a72, cortex-a53, max).
    #[arg(long, default_value = "cortex-a72")]
    cpu: String,
    /// Deterministic timing: one instruction = 1 ns of virtual time, idle time skipped
    /// (-icount shift=0,sleep=off); runs are repeatable to the instruction.
    #[arg(long, conflicts_with = "realtime")]
    icount: bool,
    /// Let QEMU run its CPUs on host threads in real time (no -icount). Faster on big hosts,
    /// but an emulated CPU can stall when the host is busy, so the RTOS may miss deadlines
    /// that real hardware would meet. By default time is instruction-paced (-icount shift=0).
    #[arg(long)]
    realtime: bool,
    /// Boot a guest natively on the emulated machine, without Tandem (the latency baseline).
    #[arg(long, value_parser = ["rtos"], conflicts_with_all = ["vms", "no_vms"])]
    native: Option<String>,
    /// Build the guest's in-guest self-test variant (with --native).
    #[arg(long, requires = "native")]
    selftest: bool,
    /// Extra QEMU arguments, after `--`.
    #[arg(last = true)]
    qemu_args: Vec<String>,
}

#[derive(Args)]
struct TestArgs {
    /// Only run tests whose names contain this string.
    filter: Option<String>,
    /// Skip the host unit tests.
    #[arg(long)]
    system_only: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Cmd::Run(args) => cmd_run(&root, args),
        Cmd::Test(args) => cmd_test(&root, args),
        Cmd::Build(args) => prepare(&[]).and_then(|_| build(&root, &args).map(|_| ())),
        Cmd::Setup => prepare(&[Need::Qemu, Need::Dtc, Need::LinuxBuild]),
        Cmd::Linux => prepare(&[Need::LinuxBuild]).and_then(|_| {
            linux::build(&root).map(|a| {
                say(&format!("kernel: {}", a.image.display()));
                say(&format!("initramfs: {}", a.initramfs.display()));
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\x1b[1;31mxtask: error:\x1b[0m {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn prepare(needs: &[Need]) -> Result<(), String> {
    setup::ensure_rust_targets()?;
    setup::ensure(needs)
}

fn build(root: &Path, m: &MachineArgs) -> Result<PathBuf, String> {
    if m.platform == "rpi4" {
        return Err(
            "the rpi4 platform is a placeholder in this version: see platforms/rpi4/README.md"
                .into(),
        );
    }
    let machine = Machine::new(m.smp, &m.memory)?;
    let vms = match (&m.vms, m.no_vms) {
        (_, true) => Vms::None,
        (Some(names), false) => Vms::Named(names),
        (None, false) => Vms::Default,
    };
    package::build(root, &m.platform, !m.debug, vms, machine)
}

fn cmd_run(root: &Path, args: RunArgs) -> Result<(), String> {
    prepare(&[Need::Qemu, Need::Dtc])?;
    let native = args.native.is_some();
    let image = match args.native.as_deref() {
        Some(_) => {
            let features: &[&str] = if args.selftest { &["selftest"] } else { &[] };
            image::build_guest(root, "rtos-guest", "rtos", features)?
        }
        None => build(root, &args.machine)?,
    };
    let mut config = MachineConfig::new(&args.machine.platform, image);
    // A native guest runs at EL1, as it would on firmware without a hypervisor.
    config.virtualization = !native;
    config.gic = args.gic;
    config.smp = args.machine.smp;
    config.memory = args.machine.memory;
    config.cpu = args.cpu;
    config.icount = args.icount;
    config.paced = !args.realtime;
    // Coloured VM tags when a person is watching.
    if std::io::IsTerminal::is_terminal(&std::io::stdout())
        && !args.qemu_args.iter().any(|a| a == "-append")
    {
        config
            .extra
            .extend(["-append".to_string(), "tandem.color=on".to_string()]);
    }
    config.extra.extend(args.qemu_args);
    let qemu_args = config.args()?;
    say(&format!("{QEMU} {}", qemu_args.join(" ")));
    say(&format!(
        "booting {}; leave QEMU with Ctrl-A X",
        if native {
            "the guest natively"
        } else {
            "Tandem"
        }
    ));
    run(Command::new(QEMU).args(&qemu_args))
}

fn cmd_test(root: &Path, args: TestArgs) -> Result<(), String> {
    prepare(&[Need::Qemu, Need::Dtc])?;
    if !args.system_only {
        say("host unit tests");
        let mut cmd = cargo();
        cmd.current_dir(root)
            .args(["test", "--workspace", "--exclude", "system-tests"]);
        if let Some(f) = &args.filter {
            cmd.arg(f);
        }
        run(&mut cmd)?;
    }
    say("building boot images for the system tests");
    package::build_test_images(root)?;
    say("QEMU system tests");
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--package", "system-tests"]);
    if let Some(f) = &args.filter {
        cmd.arg(f);
    }
    cmd.args(["--", "--test-threads=2"]);
    run(&mut cmd)
}
