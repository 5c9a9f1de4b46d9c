//! Boards and the device tree.
//!
//! The board is chosen by one cargo feature (`board-qemu-virt`, default, or
//! `board-rpi4`); its description lives in `platforms/<board>/board.rs`.
//! Everything else is discovered from the device tree at boot.

pub mod desc;
pub mod fdt;

#[cfg(not(feature = "board-rpi4"))]
#[path = "../../../platforms/qemu-virt/board.rs"]
mod board;

#[cfg(feature = "board-rpi4")]
#[path = "../../../platforms/rpi4/board.rs"]
mod board;

pub use board::BOARD;

#[cfg(test)]
#[path = "../../../platforms/qemu-virt/board.rs"]
mod qemu_virt_board;

#[cfg(test)]
#[path = "../../../platforms/rpi4/board.rs"]
mod rpi4_board;

#[cfg(test)]
mod tests {
    /// The qemu-virt description is consistent.
    #[test]
    fn qemu_virt_board_is_valid() {
        super::qemu_virt_board::BOARD.validate().unwrap();
    }

    /// The rpi4 description is consistent, even on machines that never build it.
    #[test]
    fn rpi4_board_is_valid() {
        super::rpi4_board::BOARD.validate().unwrap();
    }
}
