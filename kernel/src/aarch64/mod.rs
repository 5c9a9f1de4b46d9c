//! Pure AArch64 formats: syndrome decoding and translation descriptors.
#![forbid(unsafe_code)]

pub mod esr;
pub mod pte;
