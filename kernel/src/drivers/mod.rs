//! Drivers for the devices Tandem itself uses (target only: MMIO).

pub mod pl011;
