//! vCPUs: register state, exit decoding and the decisions an exit leads to.

pub mod exit;
pub mod inject;
pub mod regs;
pub mod sysreg;
