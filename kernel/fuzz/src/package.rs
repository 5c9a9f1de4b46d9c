//! The boot package ([`kernel::vm::package`]): xtask writes it after
//! Tandem's image, and Tandem trusts nothing in it it has not checked.
//!
//! Checked: no panic; a package that parses gives every VM and channel it
//! counts, each blob's bytes lie inside it, and each VM builds as the
//! hypervisor builds it at boot ([`Vm::new`], which panics on a description
//! the parser should have refused) and loads its images into its RAM.

use kernel::arch::fake::FakeCpu;
use kernel::hyp::Hypervisor;
use kernel::hyp::passthrough::SpiOwners;
use kernel::hyp::vm::Vm;
use kernel::vm::package::Package;

/// Runs one input.
pub fn run(data: &[u8]) {
    let _ = Package::peek_size(data);
    let Ok(pkg) = Package::parse(data) else {
        return;
    };
    let bytes = pkg.bytes();
    assert!(bytes.len() <= data.len());
    let _ = pkg.gic_version();
    for i in 0..pkg.channel_count() {
        let c = pkg.channel(i).expect("a channel the package counts");
        let _ = (c.name(), c.is_virtio(), c.end_of(0));
    }
    let mut descs = Vec::new();
    for i in 0..pkg.vm_count() {
        let vm = pkg.vm(i).expect("a VM the package counts");
        let _ = (vm.name(), vm.pl011(), vm.devices());
        for blob in vm.blobs() {
            let b = pkg.blob_bytes(blob);
            assert_eq!(b.len() as u64, blob.size, "blob bytes of another size");
        }
        descs.push(vm);
    }
    // SAFETY: `Vm` keeps the package for the life of the hypervisor (a
    // `'static` at boot). Here every `Vm` and the `Hypervisor` holding them
    // are dropped at the end of this function, while `data` still lives, and
    // nothing they built keeps a reference beyond them.
    let pkg: Package<'static> =
        unsafe { core::mem::transmute::<Package<'_>, Package<'static>>(pkg) };
    let vms: Vec<Vm> = descs
        .into_iter()
        .enumerate()
        .map(|(i, desc)| {
            let id = i as u64 + 1;
            Vm::new(i, desc, pkg, id << 32, (id << 48) | (id << 12), 0)
        })
        .collect();
    let hv = Hypervisor::new(vms, SpiOwners::default(), 62_500_000);
    let mut hw = FakeCpu::new(0, 4);
    for vm in &hv.vms {
        hv.load_images(vm, &mut hw);
        hw.events.clear();
    }
}
