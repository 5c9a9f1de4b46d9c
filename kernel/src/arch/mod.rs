//! The architecture layer: everything that executes privileged instructions.
//!
//! Compiled only for the bare-metal target; the rest of the crate reaches the
//! hardware through values this layer captures or through the functions here.

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod aarch64;
