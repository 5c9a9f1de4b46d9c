//! Writes the `package` fuzz target's seeds from the boot packages xtask
//! built: each package re-encoded with every blob cut to 256 bytes, so the
//! seeds stay small. Run by hand after `cargo xtask build` and
//! `cargo xtask build --vms hostile`:
//!
//! ```sh
//! cd kernel/fuzz && TANDEM_IMAGES=../../target/tandem/qemu-virt cargo run --example write_package_seeds
//! ```

use std::path::{Path, PathBuf};

use kernel::vm::package::{Package, VmSpec, encode_with_channels};

fn main() {
    let dir = PathBuf::from(std::env::var("TANDEM_IMAGES").expect("TANDEM_IMAGES"));
    for image in ["tandem.bin", "tandem-hostile.bin"] {
        let bytes = std::fs::read(dir.join(image)).unwrap();
        // The image holds the magic too (the kernel's constant): the package is the
        // occurrence that parses.
        let pkg = (0..bytes.len() - 8)
            .filter(|&at| &bytes[at..at + 8] == b"TNDMPKG1")
            .find_map(|at| Package::parse(&bytes[at..]).ok())
            .expect("a package");
        let vms: Vec<VmSpec> = (0..pkg.vm_count())
            .map(|i| {
                let d = pkg.vm(i).unwrap();
                VmSpec {
                    name: d.name().into(),
                    ram_ipa: d.ram_ipa,
                    ram_size: d.ram_size,
                    entry: d.entry,
                    x0: d.x0,
                    pcpus: d.pcpus[..d.vcpus as usize].to_vec(),
                    flags: d.flags,
                    console_intid: d.console_intid,
                    blobs: d
                        .blobs()
                        .iter()
                        .map(|b| {
                            let data = pkg.blob_bytes(b);
                            (data[..data.len().min(256)].to_vec(), b.load_ipa)
                        })
                        .collect(),
                    devices: d.devices().to_vec(),
                    priority: d.priority,
                    budget: (d.budget_us != 0).then_some((d.budget_us, d.period_us)),
                    pl011: d.pl011(),
                }
            })
            .collect();
        let channels: Vec<_> = (0..pkg.channel_count())
            .map(|i| pkg.channel(i).unwrap())
            .collect();
        let small = encode_with_channels(&vms, &channels, pkg.gic_version());
        Package::parse(&small).expect("the small package parses");
        let name = image.trim_start_matches("tandem-").trim_end_matches(".bin");
        let out = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds/package")
            .join(format!("{name}.pkg"));
        std::fs::write(&out, small).unwrap();
        println!("{}", out.display());
    }
}
