//! Memory management: translation tables, physical range bookkeeping, and
//! how memory is cleared.

pub mod canary;
pub mod el2map;
pub mod pagetable;
pub mod ranges;
pub mod zero;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod frames;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod heap;
