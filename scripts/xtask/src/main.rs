//! `cargo xtask`: build, run and test Tandem.
//!
//! `run` boots the default platform in QEMU with the console on this terminal;
//! `test` runs the host unit tests and then the QEMU system tests. Both
//! install what they need first (QEMU 10, dtc, Rust targets) and say so.
//! `build` and `run` pack the VMs of `platforms/<board>/vms.toml` (the
//! `default = true` ones, or those named by `--vms`) into the boot image.

mod bench;
mod channels;
mod examples;
mod fuzz;
mod guest_dt;
mod image;
mod linux;
mod native;
mod pacer;
mod package;
mod report;
mod rpi4;
mod setup;
mod util;
mod vms;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Args, Parser, Subcommand};
use system_tests::qemu::{MachineConfig, QEMU};

use crate::native::NativeGuest;
use crate::package::Vms;
use crate::setup::Need;
use crate::util::{cargo, run, say, shell_line};
use crate::vms::{GuestArg, HostileRun, Machine};

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
    /// Fuzz Tandem's input parsers and guest-facing code on the host (kernel/fuzz, libFuzzer
    /// with coverage, stable Rust): each target runs --seconds, then executions, coverage
    /// and crashes are printed. A crash fails the command, naming the input and how to re-run
    /// it. Corpora grow in target/fuzz/corpus.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Targets to run (default: all): hypercall, vgic_mmio, stage2, dtb, package,
        /// vm_config, ring.
        targets: Vec<String>,
    },
    /// Build the Linux guest (kernel Image with guest-linux-patches, initramfs), cached.
    Linux,
    /// Build an example guest of pv-abi (hello-rust, hello-c) into
    /// target/tandem/examples/NAME.bin; boot it with `cargo xtask run --guest PATH`.
    Example {
        /// hello-rust (pv-abi/examples/hello-rust) or hello-c (pv-abi/examples/hello-c).
        #[arg(value_parser = examples::parse)]
        name: String,
    },
    /// Write a Raspberry Pi 4 boot folder into DIR (the SD card's mounted boot partition,
    /// or a folder to copy onto it): kernel8.img (Tandem with the rpi4 default VMs),
    /// config.txt and a README naming the firmware files to add and the serial wiring.
    Sdcard {
        /// The folder to write into (must exist and be writable).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Measure Tandem and write the report (deterministic, under -icount). With no NAME:
    /// every benchmark, then DIR/report.md, DIR/figures.json and SVG plots. `micro`: the
    /// probe's exit paths and the doorbell. `linux`: the Linux VM natively, on Tandem alone
    /// and beside the RTOS (power-on -> shell, tandem-bench), as ratios. `footprint`: image,
    /// EL2 RAM, kernel/ lines. `latency`: the RTOS's release latency natively, alone on
    /// Tandem, and in each layout beside an idle and a stressed Linux (DIR/latency.md).
    /// `io`: the doorbell, and Linux reaching the modem over virtio (DIR/io.md).
    Bench {
        /// Run only this benchmark (default: all of them, and the whole report).
        #[arg(value_parser = ["micro", "linux", "footprint", "latency", "io"])]
        what: Option<String>,
        /// Where the report goes (relative to the workspace root).
        #[arg(long, value_name = "DIR", default_value = "target/tandem/bench")]
        out: PathBuf,
    },
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
    /// Boot Tandem with no VM of vms.toml: alone (target/tandem/<platform>/tandem-novm.bin),
    /// or with only the --guest VM.
    #[arg(long, conflicts_with = "vms")]
    no_vms: bool,
    /// Boot your own image as one more VM, after the others (the default set, or --vms,
    /// --layout, --no-vms): a raw binary (kind bare, loaded at 0x4008_0000), or an arm64
    /// Linux Image with kind=linux. Options after the path, comma-separated:
    /// pcpus=N,N… (default 0,1), memory_mib=N (16; linux 256), name=NAME (from the file
    /// name), kind=bare|linux, initramfs=PATH (linux), priority=N (0).
    /// No file is edited: the boot image is tandem-…-guest-NAME.bin.
    #[arg(long, value_name = "PATH[,pcpus=N,N][,memory_mib=N]", value_parser = GuestArg::parse)]
    guest: Option<GuestArg>,
    /// Place the VMs as layout NAME of platforms/<platform>/vms.toml says (its
    /// [layouts] table lists them; `default` is the default set)
    /// (target/tandem/<platform>/tandem-layout-NAME.bin).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["vms", "no_vms"])]
    layout: Option<String>,
    /// Number of physical CPUs (the VMs' pcpus are checked against it)
    /// [default: 4; for `run --native linux`, the Linux VM's vCPU count].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=8))]
    smp: Option<u32>,
    /// Memory size in QEMU syntax (the VMs' RAM is checked against it)
    /// [default: 1G; for `run --native linux`, the Linux VM's RAM].
    #[arg(long)]
    memory: Option<String>,
    /// GIC version of the emulated machine (qemu-virt; rpi4 has a GIC-400, a GICv2) [default:
    /// 3 on qemu-virt]; the VMs' device trees describe the same, and a qemu-virt GICv2 image
    /// is named …-gic2.bin.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
    gic: Option<u8>,
    /// Add the seeded hostile guest, vm "chaos" of vms.toml, after the other VMs: from its
    /// seed it derives random hypercalls, MMIO over its whole IPA space, system-register
    /// accesses, odd instructions, CPU_ON races and resets, then prints `hostile: done` with
    /// its counts. On qemu-virt its vCPUs share pCPUs 2 and 3 with the RTOS, below the RTOS's
    /// priority (target/tandem/<platform>/tandem-…-hostile-seed<N>.bin).
    #[arg(long)]
    with_hostile: bool,
    /// The hostile guest's seed, decimal or 0x-hex (default: one from the clock, printed):
    /// the same seed repeats the same run.
    #[arg(long, requires = "with_hostile", value_parser = parse_seed)]
    seed: Option<u64>,
    /// Operations of the hostile guest's last boot [default: 1000000].
    #[arg(long, value_name = "N", requires = "with_hostile", value_parser = clap::value_parser!(u64).range(1..))]
    hostile_ops: Option<u64>,
}

/// `--seed`: a 64-bit number, decimal or `0x` hex.
fn parse_seed(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| {
        format!(
            "the seed must be a number from 0 to {} (decimal or 0x-hex), not \"{text}\"",
            u64::MAX
        )
    })
}

impl MachineArgs {
    /// `--smp`, or 4.
    fn smp(&self) -> u32 {
        self.smp.unwrap_or(Machine::DEFAULT.cpus)
    }

    /// `--memory`, or 1G.
    fn memory(&self) -> String {
        self.memory.clone().unwrap_or_else(|| "1G".into())
    }

    /// `--gic`, or the board's: 3 on qemu-virt, 2 on rpi4.
    fn gic(&self) -> u8 {
        self.gic
            .unwrap_or(if self.platform == "rpi4" { 2 } else { 3 })
    }

    /// The hostile guest's run (`--with-hostile`), with a seed from the clock when `--seed` is
    /// not given; says which seed, so that any run can be repeated.
    fn hostile(&self) -> Option<HostileRun> {
        if !self.with_hostile {
            return None;
        }
        let seed = self.seed.unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_secs() ^ u64::from(now.subsec_nanos())
        });
        let ops = self.hostile_ops.unwrap_or(HostileRun::DEFAULT_OPS);
        say(&format!(
            "hostile guest: seed {seed}, {ops} operations (repeat with --with-hostile --seed {seed})"
        ));
        Some(HostileRun { seed, ops })
    }

    /// The machine the VMs must fit on; the options rpi4 does not have are errors.
    fn machine(&self) -> Result<Machine, String> {
        if self.platform != "rpi4" {
            return Ok(Machine::new(self.smp(), &self.memory())?.with_gic(self.gic()));
        }
        let fixed = [
            (
                self.gic == Some(3),
                "--gic 3 (the Raspberry Pi 4 has a GIC-400, a GICv2)",
            ),
            (self.smp.is_some(), "--smp (the Raspberry Pi 4 has 4 CPUs)"),
            (
                self.memory.is_some(),
                "--memory (Tandem uses the RAM the board's device tree describes)",
            ),
        ];
        if let Some((_, what)) = fixed.iter().find(|(given, _)| *given) {
            return Err(format!("--platform rpi4 takes no {what}"));
        }
        Ok(Machine::RPI4)
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    machine: MachineArgs,
    /// CPU model (cortex-a72, cortex-a53, max).
    #[arg(long, default_value = "cortex-a72")]
    cpu: String,
    /// Deterministic time, the default: one instruction = 1 ns of virtual time, idle
    /// time skipped (-icount shift=0,sleep=off); runs are repeatable to the instruction and
    /// no host stall can make a guest late. RTOS statistics are shown at most every 2 s.
    #[arg(long, conflicts_with_all = ["realtime", "paced"])]
    icount: bool,
    /// Instruction-paced time that follows the wall clock while the CPUs idle
    /// (-icount shift=0): a natural pace, but a stall of QEMU on a busy host shows up
    /// as a late RTOS release (a miss real hardware would not have).
    #[arg(long, conflicts_with = "realtime")]
    paced: bool,
    /// Let QEMU run its CPUs on host threads in real time (no -icount). Faster on big hosts,
    /// but an emulated CPU can stall when the host is busy, so the RTOS may miss deadlines
    /// that real hardware would meet.
    #[arg(long)]
    realtime: bool,
    /// Boot a guest natively on the emulated machine, without Tandem (the baseline):
    /// rtos, or linux (the Linux VM's Image and initramfs, its vCPUs and RAM, its command
    /// line with console=ttyAMA0).
    #[arg(long, value_name = "GUEST", value_parser = NativeGuest::parse, conflicts_with_all = ["vms", "no_vms", "layout", "guest"])]
    native: Option<NativeGuest>,
    /// Build the guest's in-guest self-test variant (with --native rtos).
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
        Cmd::Setup => prepare(&[Need::Qemu, Need::Dtc, Need::LinuxBuild, Need::Cxx]),
        Cmd::Fuzz { seconds, targets } => {
            setup::ensure(&[Need::Cxx]).and_then(|_| fuzz::run(&root, seconds, &targets))
        }
        Cmd::Example { name } => prepare(&[]).and_then(|_| {
            let bin = examples::build(&root, &name)?;
            say(&format!("{}", bin.display()));
            say(&format!(
                "boot it beside Linux and the RTOS: cargo xtask run --guest {}",
                bin.strip_prefix(&root).unwrap_or(&bin).display()
            ));
            Ok(())
        }),
        Cmd::Sdcard { out } => rpi4::check_boot_folder(&out).and_then(|_| {
            prepare(&[Need::Dtc, Need::LinuxBuild])?;
            let image = package::build(
                &root,
                "rpi4",
                true,
                Vms::Default,
                None,
                None,
                vms::Machine::RPI4,
            )?;
            let bytes =
                std::fs::read(&image).map_err(|e| format!("{}: {e}", image.display()))?;
            rpi4::write_boot_folder(&out, &bytes)?;
            say(&format!(
                "add start4.elf, fixup4.dat, bcm2711-rpi-4-b.dtb and overlays/disable-bt.dtbo from the Raspberry Pi firmware release: see {}",
                out.join("README.txt").display()
            ));
            Ok(())
        }),
        Cmd::Bench { what, out } => {
            prepare(&[Need::Qemu, Need::Dtc, Need::LinuxBuild]).and_then(|_| {
                use bench::Part;
                let out = root.join(out);
                match what.as_deref() {
                    Some("latency") => bench::report(&root, &out, &[Part::Latency]),
                    Some("io") => bench::io(&root, &out),
                    Some("micro") => bench::report(&root, &out, &[Part::Micro]),
                    Some("linux") => bench::report(&root, &out, &[Part::Linux]),
                    Some("footprint") => bench::report(&root, &out, &[Part::Footprint]),
                    _ => bench::report(
                        &root,
                        &out,
                        &[
                            Part::Micro,
                            Part::Io,
                            Part::Linux,
                            Part::Latency,
                            Part::Footprint,
                        ],
                    ),
                }
            })
        }
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

/// The tree xtask works on, found at run time (from the manifest directory `cargo xtask`
/// passes, or `cargo locate-project`), so a copy of the tree builds into its own `target/`.
fn workspace_root() -> PathBuf {
    system_tests::paths::find_workspace_root().unwrap_or_else(|e| {
        eprintln!("\x1b[1;31mxtask: error:\x1b[0m {e}");
        std::process::exit(1)
    })
}

fn prepare(needs: &[Need]) -> Result<(), String> {
    setup::ensure_rust_targets()?;
    setup::ensure(needs)
}

fn build(root: &Path, m: &MachineArgs) -> Result<PathBuf, String> {
    let machine = m.machine()?;
    let vms = match (&m.vms, m.no_vms, &m.layout) {
        (_, true, _) => Vms::None,
        (Some(names), false, _) => Vms::Named(names),
        (None, false, Some(layout)) => Vms::Layout(layout),
        (None, false, None) => Vms::Default,
    };
    let image = package::build(
        root,
        &m.platform,
        !m.debug,
        vms,
        m.guest.as_ref(),
        m.hostile(),
        machine,
    )?;
    if m.platform == "rpi4" {
        // QEMU raspi4b boots with the board's device tree (-dtb), beside the image.
        rpi4::dtb(root, image.parent().unwrap_or(root))?;
    }
    Ok(image)
}

fn cmd_run(root: &Path, args: RunArgs) -> Result<(), String> {
    prepare(&[Need::Qemu, Need::Dtc])?;
    let native = args.native;
    if native.is_some() && args.machine.platform != "qemu-virt" {
        return Err(format!(
            "--native boots a guest on QEMU virt only, not on --platform {}",
            args.machine.platform
        ));
    }
    if native == Some(NativeGuest::Linux) {
        return run_native_linux(root, args);
    }
    let image = match native {
        Some(_) => {
            let features: &[&str] = if args.selftest { &["selftest"] } else { &[] };
            image::build_guest(root, "rtos-guest", "rtos", features)?
        }
        None => build(root, &args.machine)?,
    };
    let mut config = machine_config(&args, image);
    // A native guest runs at EL1, as it would on firmware without a hypervisor.
    config.virtualization = native.is_none();
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && !args.qemu_args.iter().any(|a| a == "-append");
    config.extra.extend(args.qemu_args);
    let mut qemu_args = config.args()?;
    // Coloured VM tags when a person is watching (beside the platform's own boot arguments).
    if colour {
        add_boot_argument(&mut qemu_args, "tandem.color=on");
    }
    say(&format!("{QEMU} {}", shell_line(&qemu_args)));
    say(&format!(
        "booting {}; leave QEMU with Ctrl-A X",
        if native.is_some() {
            "the guest natively"
        } else {
            "Tandem"
        }
    ));
    if config.icount {
        say(
            "deterministic time (1 instruction = 1 ns, idle time skipped): virtual time runs \
             ahead of the clock on the wall while the guests idle; RTOS statistics are shown \
             every 2 s (--paced: wall-clock pace)",
        );
        return pacer::run_paced(
            Command::new(QEMU).args(&qemu_args),
            std::time::Duration::from_secs(2),
        );
    }
    run(Command::new(QEMU).args(&qemu_args))
}

/// Adds `arg` to the `-append` boot arguments in `qemu_args` (the platform's, if any).
fn add_boot_argument(qemu_args: &mut Vec<String>, arg: &str) {
    match qemu_args.iter().position(|a| a == "-append") {
        Some(i) if i + 1 < qemu_args.len() => {
            qemu_args[i + 1] = format!("{} {arg}", qemu_args[i + 1]);
        }
        _ => qemu_args.extend(["-append".to_string(), arg.to_string()]),
    }
}

/// The emulated machine of `run`, booting `kernel`.
fn machine_config(args: &RunArgs, kernel: PathBuf) -> MachineConfig {
    let mut config = MachineConfig::new(&args.machine.platform, kernel);
    config.gic = args.machine.gic();
    config.smp = args.machine.smp();
    config.memory = args.machine.memory();
    config.cpu = args.cpu.clone();
    config.icount = !args.paced && !args.realtime;
    config.paced = args.paced;
    config
}

/// `run --native linux`: the Linux VM's Image and initramfs on the bare machine at EL1,
/// shaped like the VM, with a reproducible device tree (see `native.rs`).
fn run_native_linux(root: &Path, mut args: RunArgs) -> Result<(), String> {
    if args.machine.platform != "qemu-virt" {
        return Err(format!(
            "--native linux runs on qemu-virt only in this version, not {}",
            args.machine.platform
        ));
    }
    if args.selftest {
        return Err("--selftest is for --native rtos (Linux has no self-test build)".into());
    }
    let config_file = vms::Config::load(root, &args.machine.platform)?;
    let vm = native::linux_vm(&config_file)?;
    args.machine.smp.get_or_insert(vm.pcpus.len() as u32);
    args.machine
        .memory
        .get_or_insert_with(|| format!("{}M", vm.memory_mib));
    prepare(&[Need::LinuxBuild])?;
    let linux = linux::build(root)?;
    let bootargs = native::native_bootargs(vm.bootargs.as_deref());

    let mut config = machine_config(&args, linux.image.clone());
    config.virtualization = false;
    config.extra.extend([
        "-initrd".to_string(),
        linux.initramfs.display().to_string(),
        "-append".to_string(),
        bootargs.clone(),
        "-seed".to_string(),
        native::QEMU_SEED.to_string(),
    ]);
    let mut qemu_args = config.args()?;
    native::add_machine_option(&mut qemu_args, "dtb-randomness=off")?;
    let out_dir = root.join("target/tandem").join(&args.machine.platform);
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let dtb = native::make_dtb(
        QEMU,
        &qemu_args,
        &out_dir.join("native-linux.dtb"),
        &guest_dt::rng_seed(&vm.name),
    )?;
    qemu_args.extend(["-dtb".to_string(), dtb.display().to_string()]);
    qemu_args.extend(args.qemu_args);
    say(&format!(
        "native linux: vm \"{}\" of {}: {} CPUs, {} RAM, command line \"{bootargs}\"",
        vm.name,
        config_file.file,
        args.machine.smp(),
        args.machine.memory()
    ));
    say(&format!("{QEMU} {}", shell_line(&qemu_args)));
    say("booting Linux natively; leave QEMU with Ctrl-A X");
    run(Command::new(QEMU).args(&qemu_args))
}

/// Seconds per fuzz target in `cargo xtask test`: enough to replay the seeds and
/// run a few thousand mutations of each.
const FUZZ_SMOKE_SECONDS: u64 = 3;

fn cmd_test(root: &Path, args: TestArgs) -> Result<(), String> {
    prepare(&[Need::Qemu, Need::Dtc, Need::Cxx])?;
    if !args.system_only {
        say("host unit tests");
        let mut cmd = cargo();
        cmd.current_dir(root)
            .args(["test", "--workspace", "--exclude", "system-tests"]);
        if let Some(f) = &args.filter {
            cmd.arg(f);
        }
        run(&mut cmd)?;
        if args.filter.is_none() {
            say("fuzz smoke run (cargo xtask fuzz for longer runs)");
            fuzz::run(root, FUZZ_SMOKE_SECONDS, &[])?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> Result<RunArgs, String> {
        let cli = Cli::try_parse_from(["cargo xtask", "run"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        match cli.command {
            Cmd::Run(r) => Ok(r),
            _ => unreachable!(),
        }
    }

    #[test]
    fn native_names() {
        assert_eq!(
            run_args(&["--native", "linux"]).unwrap().native,
            Some(NativeGuest::Linux)
        );
        assert_eq!(
            run_args(&["--native", "rtos"]).unwrap().native,
            Some(NativeGuest::Rtos)
        );
        let Err(e) = run_args(&["--native", "freertos"]) else {
            panic!("--native freertos was accepted");
        };
        assert!(
            e.contains(
                "unknown native guest \"freertos\": --native boots rtos (the RTOS) or linux"
            ),
            "{e}"
        );
        assert!(run_args(&["--native", "linux", "--vms", "linux"]).is_err());
        assert!(run_args(&["--selftest"]).is_err());
    }

    /// --guest takes PATH[,key=value…], beside --vms, --layout or --no-vms but not --native;
    /// a bad option is a usage error that says which.
    #[test]
    fn guest_option() {
        let r = run_args(&["--guest", "out/hello.bin,pcpus=2,3", "--vms", "rtos"]).unwrap();
        let g = r.machine.guest.unwrap();
        assert_eq!(
            (g.path.as_str(), g.pcpus),
            ("out/hello.bin", Some(vec![2, 3]))
        );
        assert_eq!(r.machine.vms, Some(vec!["rtos".to_string()]));
        assert!(run_args(&["--guest", "h.bin", "--no-vms"]).is_ok());
        assert!(run_args(&["--guest", "h.bin", "--layout", "shared"]).is_ok());
        let Err(e) = run_args(&["--guest", "h.bin,colour=red"]) else {
            panic!("colour= was accepted");
        };
        assert!(
            e.contains("unknown option \"colour\" (known: pcpus, memory_mib"),
            "{e}"
        );
        assert!(run_args(&["--guest", "h.bin", "--native", "rtos"]).is_err());
        let cli = Cli::try_parse_from(["cargo xtask", "build", "--guest", "h.bin"]).unwrap();
        assert!(matches!(cli.command, Cmd::Build(m) if m.guest.is_some()));
    }

    /// `example NAME` knows the examples and names them when it does not.
    #[test]
    fn example_names() {
        let cli = Cli::try_parse_from(["cargo xtask", "example", "hello-c"]).unwrap();
        assert!(matches!(cli.command, Cmd::Example { name } if name == "hello-c"));
        let Err(e) = Cli::try_parse_from(["cargo xtask", "example", "hello-go"]) else {
            panic!("hello-go was accepted");
        };
        assert!(e.to_string().contains("known: hello-rust"), "{e}");
    }

    /// --smp and --memory keep their defaults unless given (native linux fills them from the VM).
    #[test]
    fn machine_defaults() {
        let r = run_args(&[]).unwrap();
        assert_eq!((r.machine.smp, r.machine.memory.as_deref()), (None, None));
        assert_eq!((r.machine.smp(), r.machine.memory()), (4, "1G".to_string()));
        let r = run_args(&["--smp", "2", "--memory", "512M"]).unwrap();
        assert_eq!(
            (r.machine.smp(), r.machine.memory()),
            (2, "512M".to_string())
        );
        assert!(run_args(&["--smp", "9"]).is_err());
    }

    /// The GIC follows the board (3 on qemu-virt, 2 on rpi4); rpi4 refuses what it cannot
    /// change, naming the option.
    #[test]
    fn gic_and_rpi4_machine() {
        let m = |args: &[&str]| run_args(args).unwrap().machine;
        assert_eq!(m(&[]).machine().unwrap().gic, 3);
        assert_eq!(m(&["--gic", "2"]).machine().unwrap().gic, 2);
        assert!(run_args(&["--gic", "4"]).is_err());
        assert_eq!(m(&["--platform", "rpi4"]).machine().unwrap(), Machine::RPI4);
        assert_eq!(
            m(&["--platform", "rpi4", "--gic", "2"]).machine().unwrap(),
            Machine::RPI4
        );
        for (args, named) in [
            (&["--platform", "rpi4", "--gic", "3"][..], "--gic 3"),
            (&["--platform", "rpi4", "--smp", "2"][..], "--smp"),
            (&["--platform", "rpi4", "--memory", "2G"][..], "--memory"),
        ] {
            let e = m(args).machine().unwrap_err();
            assert!(
                e.starts_with(&format!("--platform rpi4 takes no {named}")),
                "{e}"
            );
        }
    }

    /// --with-hostile takes --seed (decimal or hex) and --hostile-ops; either without it, or a
    /// seed that is no number, is a usage error that says so.
    #[test]
    fn hostile_options() {
        let r = run_args(&["--with-hostile", "--seed", "7"]).unwrap();
        assert!(r.machine.with_hostile);
        assert_eq!(r.machine.seed, Some(7));
        assert_eq!(
            r.machine.hostile(),
            Some(HostileRun {
                seed: 7,
                ops: 1_000_000
            })
        );
        let r = run_args(&["--with-hostile", "--seed", "0x10", "--hostile-ops", "5"]).unwrap();
        assert_eq!(r.machine.hostile(), Some(HostileRun { seed: 16, ops: 5 }));
        assert!(
            run_args(&["--with-hostile"])
                .unwrap()
                .machine
                .hostile()
                .is_some()
        );
        assert_eq!(run_args(&[]).unwrap().machine.hostile(), None);
        for args in [&["--seed", "7"][..], &["--hostile-ops", "5"][..]] {
            let Err(e) = run_args(args) else {
                panic!("{args:?} was accepted");
            };
            assert!(e.contains("--with-hostile"), "{args:?}: {e}");
        }
        let Err(e) = run_args(&["--with-hostile", "--seed", "seven"]) else {
            panic!("--seed seven was accepted");
        };
        assert!(
            e.contains("the seed must be a number from 0 to 18446744073709551615 (decimal or 0x-hex), not \"seven\""),
            "{e}"
        );
        assert!(run_args(&["--with-hostile", "--seed", "-1"]).is_err());
        assert!(run_args(&["--with-hostile", "--hostile-ops", "0"]).is_err());
        let cli =
            Cli::try_parse_from(["cargo xtask", "build", "--with-hostile", "--seed", "3"]).unwrap();
        assert!(matches!(cli.command, Cmd::Build(m) if m.seed == Some(3)));
    }
}
