//! Time as the generic timer counts it: ticks of `CNTVCT_EL0` and their conversion to ns.
//!
//! The RTOS keeps every instant and interval in counter ticks ([`Ticks`]) and converts to
//! nanoseconds only to report. The counter frequency comes from `CNTFRQ_EL0` at boot (62.5 MHz on
//! QEMU's cortex-a72; 1 GHz on `-cpu max`); [`Clock`] holds it. Conversions round to nearest
//! and go through `u128`, so no realistic value overflows.
#![forbid(unsafe_code)]

/// A number of generic-timer ticks: an instant (since counter reset) or an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticks(pub u64);

impl Ticks {
    /// The largest instant: "never".
    pub const NEVER: Ticks = Ticks(u64::MAX);

    /// `self + d`, saturating at [`Ticks::NEVER`].
    pub const fn plus(self, d: Ticks) -> Ticks {
        Ticks(self.0.saturating_add(d.0))
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub const fn since(self, earlier: Ticks) -> Ticks {
        Ticks(self.0.saturating_sub(earlier.0))
    }
}

/// The counter frequency, and conversions between ticks and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    hz: u64,
}

impl Clock {
    /// A clock counting at `hz` (from `CNTFRQ_EL0`); zero is replaced by QEMU's 62.5 MHz so
    /// that a firmware that forgot to program the register cannot cause a division by zero.
    pub const fn new(hz: u64) -> Self {
        Self {
            hz: if hz == 0 { 62_500_000 } else { hz },
        }
    }

    /// The frequency in Hz.
    pub const fn hz(&self) -> u64 {
        self.hz
    }

    /// Ticks to nanoseconds, rounded to nearest. Exact and cheap (one multiply, no 128-bit
    /// division: this runs in the timer interrupt) when the frequency divides 1 GHz, as
    /// QEMU's 62.5 MHz and 1 GHz do.
    pub const fn to_ns(&self, t: Ticks) -> u64 {
        if 1_000_000_000 % self.hz == 0 {
            return t.0.saturating_mul(1_000_000_000 / self.hz);
        }
        let ns = (t.0 as u128 * 1_000_000_000 + self.hz as u128 / 2) / self.hz as u128;
        if ns > u64::MAX as u128 {
            u64::MAX
        } else {
            ns as u64
        }
    }

    /// Nanoseconds to ticks, rounded to nearest (at least 1 for a non-zero interval).
    pub const fn from_ns(&self, ns: u64) -> Ticks {
        let t = (ns as u128 * self.hz as u128 + 500_000_000) / 1_000_000_000;
        let t = if t > u64::MAX as u128 {
            u64::MAX
        } else {
            t as u64
        };
        Ticks(if t == 0 && ns != 0 { 1 } else { t })
    }

    /// Microseconds to ticks.
    pub const fn from_us(&self, us: u64) -> Ticks {
        self.from_ns(us.saturating_mul(1000))
    }

    /// Milliseconds to ticks.
    pub const fn from_ms(&self, ms: u64) -> Ticks {
        self.from_ns(ms.saturating_mul(1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At QEMU's 62.5 MHz one tick is 16 ns.
    #[test]
    fn qemu_tick_is_16_ns() {
        let c = Clock::new(62_500_000);
        assert_eq!(c.to_ns(Ticks(1)), 16);
        assert_eq!(c.from_ns(16), Ticks(1));
        assert_eq!(c.from_ms(1), Ticks(62_500));
    }

    /// The GSM frame period 4.615 ms is a whole number of ticks at 62.5 MHz and at 1 GHz.
    #[test]
    fn gsm_frame_converts_exactly() {
        assert_eq!(Clock::new(62_500_000).from_us(4615), Ticks(288_437 + 1));
        assert_eq!(Clock::new(1_000_000_000).from_us(4615), Ticks(4_615_000));
    }

    /// A frequency that does not divide 1 GHz takes the rounding path.
    #[test]
    fn odd_frequency_rounds_to_nearest() {
        let c = Clock::new(19_200_000);
        assert_eq!(c.to_ns(Ticks(1)), 52);
        assert_eq!(c.to_ns(Ticks(19_200_000)), 1_000_000_000);
    }

    /// A zero frequency is replaced instead of dividing by zero.
    #[test]
    fn zero_frequency_is_replaced() {
        assert_eq!(Clock::new(0).hz(), 62_500_000);
    }

    /// Huge values saturate instead of wrapping.
    #[test]
    fn conversions_saturate() {
        let c = Clock::new(1_000);
        assert_eq!(c.from_ns(u64::MAX), Ticks(18_446_744_073_710));
        assert_eq!(Clock::new(1).to_ns(Ticks(u64::MAX)), u64::MAX);
        assert_eq!(Ticks(5).plus(Ticks::NEVER), Ticks::NEVER);
        assert_eq!(Ticks(5).since(Ticks(9)), Ticks(0));
    }

    /// A non-zero interval never rounds down to zero ticks.
    #[test]
    fn tiny_interval_is_one_tick() {
        assert_eq!(Clock::new(62_500_000).from_ns(1), Ticks(1));
        assert_eq!(Clock::new(62_500_000).from_ns(0), Ticks(0));
    }
}
