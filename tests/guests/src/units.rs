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

/// A count of tenths, shown as `X.Y` (the guests print fractions without floating point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deci(pub u64);

impl core::fmt::Display for Deci {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

/// How many start phases a dithered latency measurement sweeps: the nanoseconds in one tick
/// of a `hz` counter (16 at 62.5 MHz), at least 1 and at most 64. Under `-icount shift=0` a
/// nanosecond is one instruction, so delaying the start by 0, 1, .. `steps - 1` instructions
/// puts it once at every instant within a tick. `hz` must be non-zero.
pub const fn dither_steps(hz: u64) -> u64 {
    let ns = 1_000_000_000 / hz;
    if ns < 1 {
        1
    } else if ns > 64 {
        64
    } else {
        ns
    }
}

/// The nearest-rank `percent` percentile of `sorted` (ascending, non-empty): the smallest
/// sample with at least `percent` % of the samples at or below it.
pub fn percentile(sorted: &[u16], percent: u64) -> u16 {
    let n = sorted.len() as u64;
    let rank = (n * percent).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

/// Median, p99 and max of `samples` (sorted in place), or zeros for none.
pub fn median_p99_max(samples: &mut [u16]) -> (u16, u16, u16) {
    if samples.is_empty() {
        return (0, 0, 0);
    }
    samples.sort_unstable();
    (
        percentile(samples, 50),
        percentile(samples, 99),
        samples[samples.len() - 1],
    )
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

    /// Tenths print with one decimal.
    #[test]
    fn deci_display() {
        assert_eq!(Deci(9270).to_string(), "927.0");
        assert_eq!(Deci(53).to_string(), "5.3");
        assert_eq!(Deci(7).to_string(), "0.7");
    }

    /// One phase per nanosecond of a tick: 16 at 62.5 MHz, 1 at 1 GHz, capped for slow counters.
    #[test]
    fn dither() {
        assert_eq!(dither_steps(62_500_000), 16);
        assert_eq!(dither_steps(1_000_000_000), 1);
        assert_eq!(dither_steps(4_000_000_000), 1);
        assert_eq!(dither_steps(1_000_000), 64);
    }

    /// Nearest rank: of 1..=100, the median is 50 and p99 is 99; of 1..=1024, p99 is 1014.
    #[test]
    fn percentiles() {
        let mut v: [u16; 100] = core::array::from_fn(|i| 100 - i as u16);
        assert_eq!(median_p99_max(&mut v), (50, 99, 100));
        let mut w: [u16; 1024] = core::array::from_fn(|i| i as u16 + 1);
        assert_eq!(median_p99_max(&mut w), (512, 1014, 1024));
        assert_eq!(median_p99_max(&mut [7]), (7, 7, 7));
        assert_eq!(median_p99_max(&mut []), (0, 0, 0));
    }
}
