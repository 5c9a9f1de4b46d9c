//! Memory management: translation tables and physical range bookkeeping.

pub mod pagetable;
pub mod ranges;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod frames;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod heap;
