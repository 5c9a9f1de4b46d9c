//! Counter arithmetic: ticks of CNTVCT to nanoseconds and back, without overflow.

/// `ticks` of a `hz` counter in nanoseconds (rounded down). `hz` must be non-zero.
pub const fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    (ticks as u128 * 1_000_000_000 / hz as u128) as u64
}

/// The ticks of a `hz` counter in `ns` nanoseconds (rounded up, so a deadline is never early).
pub const fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    (ns as u128 * hz as u128).div_ceil(1_000_000_000) as u64
}

/// Tenths of nanoseconds per call for `calls` calls taking `ticks` ticks of a `hz` counter,
/// for printing `X.Y` without floating point. `calls` and `hz` must be non-zero.
pub const fn deci_ns_per_call(ticks: u64, hz: u64, calls: u64) -> u64 {
    (ticks as u128 * 10_000_000_000 / hz as u128 / calls as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 62.5 MHz (QEMU virt, cortex-a72): one tick is 16 ns.
    #[test]
    fn qemu_counter() {
        let hz = 62_500_000;
        assert_eq!(ticks_to_ns(1, hz), 16);
        assert_eq!(ticks_to_ns(62_500, hz), 1_000_000);
        assert_eq!(ns_to_ticks(1_000_000, hz), 62_500);
        assert_eq!(ns_to_ticks(1, hz), 1);
    }

    /// Large tick counts do not overflow.
    #[test]
    fn no_overflow() {
        assert_eq!(ticks_to_ns(u64::MAX / 1000, 1_000_000_000), u64::MAX / 1000);
    }

    /// 100,000 calls in 1,000,000 ticks at 62.5 MHz are 160.0 ns per call.
    #[test]
    fn per_call() {
        assert_eq!(deci_ns_per_call(1_000_000, 62_500_000, 100_000), 1600);
        assert_eq!(deci_ns_per_call(1, 62_500_000, 3), 53);
    }
}
