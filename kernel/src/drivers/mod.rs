//! Drivers for the devices Tandem itself uses (target only: MMIO).

pub mod gicv2;
pub mod gicv3;
pub mod pl011;
