//! Per-physical-CPU scheduling of vCPUs: the policy and the preemption timer.
//!
//! Most layouts pin one vCPU per physical CPU, where scheduling reduces to
//! "run it when it is runnable" and no slice clock runs at all. When several
//! vCPUs share a CPU, the [`Policy`] picks one, it runs until it blocks,
//! yields, or its slice ends while another is runnable; the slice end is
//! enforced by the EL2 timer ([`next_deadline`]), not by polling on exits, so
//! a guest that masks its interrupts still loses the CPU on time.
//!
//! Time here is in generic-counter ticks, the unit the hardware timer takes:
//! no division sits on the exit path.
#![forbid(unsafe_code)]

/// Slice length in nanoseconds when vCPUs share a physical CPU.
pub const SLICE_NS: u64 = 10_000_000;

/// Converts nanoseconds to counter ticks at `hz` (at least one tick).
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    ((u128::from(ns) * u128::from(hz)) / 1_000_000_000).max(1) as u64
}

/// Converts counter ticks at `hz` to nanoseconds.
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    ((u128::from(ticks) * 1_000_000_000) / u128::from(hz.max(1))) as u64
}

/// How a physical CPU chooses among its vCPUs. Implementations see vCPUs by
/// local index only; runnability is decided by the caller.
pub trait Policy {
    /// The vCPU to run next among `count`, or `None` if none is runnable.
    fn pick(&mut self, count: usize, runnable: &dyn Fn(usize) -> bool) -> Option<usize>;
    /// The slice `vcpu` gets when others compete for the CPU, in counter ticks.
    fn slice(&self, vcpu: usize) -> u64;
}

/// Round robin with one slice length for everyone.
#[derive(Debug)]
pub struct RoundRobin {
    next: usize,
    slice_ticks: u64,
}

impl RoundRobin {
    /// Round robin with slices of `slice_ticks` counter ticks.
    pub fn new(slice_ticks: u64) -> Self {
        Self {
            next: 0,
            slice_ticks: slice_ticks.max(1),
        }
    }
}

impl Policy for RoundRobin {
    fn pick(&mut self, count: usize, runnable: &dyn Fn(usize) -> bool) -> Option<usize> {
        for k in 0..count {
            let i = (self.next + k) % count;
            if runnable(i) {
                self.next = (i + 1) % count;
                return Some(i);
            }
        }
        None
    }

    fn slice(&self, _vcpu: usize) -> u64 {
        self.slice_ticks
    }
}

/// When the EL2 timer must fire next: the earliest of the running slice's end
/// (only when another vCPU waits for this CPU), the virtual-timer deadlines of
/// vCPUs that are not loaded (their timers are not in the hardware), and the
/// board's emulator tick. `None`: nothing needs the timer.
pub fn next_deadline(
    slice_end: Option<u64>,
    unloaded_vtimers: impl IntoIterator<Item = u64>,
    emulator_tick: Option<u64>,
) -> Option<u64> {
    unloaded_vtimers
        .into_iter()
        .chain(slice_end)
        .chain(emulator_tick)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Picks rotate among runnable entries and skip blocked ones.
    #[test]
    fn round_robin_rotates() {
        let mut rr = RoundRobin::new(100);
        let runnable = |i: usize| i != 1;
        assert_eq!(rr.pick(3, &runnable), Some(0));
        assert_eq!(rr.pick(3, &runnable), Some(2));
        assert_eq!(rr.pick(3, &runnable), Some(0));
        assert_eq!(rr.pick(3, &|_| false), None);
        assert_eq!(rr.pick(0, &|_| true), None);
    }

    /// The timer follows the earliest need, and is off when nothing needs it.
    #[test]
    fn deadline_is_earliest_need() {
        assert_eq!(next_deadline(None, [], None), None);
        assert_eq!(next_deadline(Some(50), [70, 30], Some(90)), Some(30));
        assert_eq!(next_deadline(Some(50), [], Some(90)), Some(50));
        assert_eq!(next_deadline(None, [], Some(90)), Some(90));
    }

    /// Unit conversions round down but never give a zero-length slice.
    #[test]
    fn conversions() {
        assert_eq!(ns_to_ticks(SLICE_NS, 62_500_000), 625_000);
        assert_eq!(ns_to_ticks(1, 62_500_000), 1);
        assert_eq!(ticks_to_ns(625_000, 62_500_000), SLICE_NS);
        assert_eq!(ticks_to_ns(5, 0), 5_000_000_000);
    }
}
