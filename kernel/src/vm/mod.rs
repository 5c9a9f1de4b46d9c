//! Virtual machines: their description, console, memory and virtual UART.

pub mod console;
pub mod package;
pub mod txring;
pub mod vpl011;
