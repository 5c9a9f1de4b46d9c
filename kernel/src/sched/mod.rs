//! Per-physical-CPU scheduling of vCPUs: round robin with a time slice.
//!
//! Most layouts pin one vCPU per physical CPU, where the policy reduces to
//! "run it when it is runnable". When several vCPUs share a CPU, each runs
//! until it blocks, yields, or its slice ends while another is runnable.
#![forbid(unsafe_code)]

/// Slice length in nanoseconds when vCPUs share a physical CPU.
pub const SLICE_NS: u64 = 10_000_000;

/// Round-robin selection over a fixed set of local vCPUs.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// The next runnable entry among `count`, starting after the last pick.
    pub fn pick(&mut self, count: usize, runnable: impl Fn(usize) -> bool) -> Option<usize> {
        for k in 0..count {
            let i = (self.next + k) % count;
            if runnable(i) {
                self.next = (i + 1) % count;
                return Some(i);
            }
        }
        None
    }
}

/// Whether the running vCPU should give way: its slice is over and someone else can run.
pub fn should_preempt(slice_start_ns: u64, now_ns: u64, others_runnable: bool) -> bool {
    others_runnable && now_ns.saturating_sub(slice_start_ns) >= SLICE_NS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Picks rotate among runnable entries and skip blocked ones.
    #[test]
    fn round_robin() {
        let mut rr = RoundRobin::default();
        let runnable = |i: usize| i != 1;
        assert_eq!(rr.pick(3, runnable), Some(0));
        assert_eq!(rr.pick(3, runnable), Some(2));
        assert_eq!(rr.pick(3, runnable), Some(0));
        assert_eq!(rr.pick(3, |_| false), None);
    }

    /// A slice ends only when another vCPU is waiting.
    #[test]
    fn preemption() {
        assert!(!should_preempt(0, SLICE_NS * 5, false));
        assert!(!should_preempt(0, SLICE_NS - 1, true));
        assert!(should_preempt(0, SLICE_NS, true));
    }
}
