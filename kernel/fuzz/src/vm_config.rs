//! xtask's VM configuration (`platforms/<board>/vms.toml`): the parser and
//! checks `cargo xtask` runs on the file, then the selection of the default
//! set and of every layout, and `--guest`/`--memory` arguments.
//!
//! Checked: no panic, whatever the text; every problem is an error string.
//! (A bad file only stops a build on the host, but a panic there hides which
//! line was wrong.)

use std::path::Path;

use crate::Bytes;
use crate::vms::{Board, Config, GuestArg, Machine, parse_qemu_size};

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let head = b.u8();
    let Ok(text) = std::str::from_utf8(b.take(usize::MAX)) else {
        return;
    };
    let _ = parse_qemu_size(text);
    let _ = GuestArg::parse(text);
    let (platform, machine) = match head % 4 {
        0 => ("qemu-virt", Machine::DEFAULT),
        1 => ("qemu-virt", Machine::DEFAULT.with_gic(2)),
        2 => (
            "qemu-virt",
            Machine {
                cpus: 1 + u32::from(head >> 2 & 7),
                ram: 256 << 20,
                gic: 3,
            },
        ),
        _ => ("rpi4", Machine::RPI4),
    };
    let board = Board::of(platform).expect("a known board");
    let file = format!("platforms/{platform}/vms.toml");
    let Ok(config) = Config::parse_in(board, &file, text, Path::new("/nonexistent")) else {
        return;
    };
    let _ = config.select(None, machine);
    for name in config.layouts.keys() {
        let _ = config.select_layout(name, machine);
    }
    let names: Vec<String> = config.vms.iter().map(|vm| vm.name.clone()).collect();
    let _ = config.select(Some(&names), machine);
}
