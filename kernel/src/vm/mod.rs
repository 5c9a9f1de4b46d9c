//! Virtual machines: their description, console and memory.

pub mod console;
pub mod package;
