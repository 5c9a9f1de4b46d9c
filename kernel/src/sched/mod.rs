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

/// How one vCPU is scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// Higher runs first; equal priorities share the CPU in slices.
    pub priority: u8,
    /// CPU time the vCPU may use per period, if limited.
    pub budget: Option<Budget>,
}

/// A CPU-time budget: at most `budget` ticks in every `period` ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Ticks of CPU time per period.
    pub budget: u64,
    /// Period length in ticks.
    pub period: u64,
}

/// How a physical CPU chooses among its vCPUs. Implementations see vCPUs by
/// local index only; whether one can run (power, blocked) is the caller's.
pub trait Policy {
    /// The vCPU to run next among those `runnable` says can run, or `None`.
    fn pick(&mut self, now: u64, runnable: &dyn Fn(usize) -> bool) -> Option<usize>;
    /// Whether `current` must give way now to another vCPU that can run:
    /// one of higher priority, or any if `current` is out of budget, or one
    /// of equal priority when `slice_over`.
    fn must_yield(
        &self,
        current: usize,
        slice_over: bool,
        runnable: &dyn Fn(usize) -> bool,
    ) -> bool;
    /// The slice `vcpu` gets while vCPUs of its priority compete, in ticks.
    fn slice(&self, vcpu: usize) -> u64;
    /// Accounts `ran` ticks of CPU time to `vcpu`, at time `now`.
    fn charge(&mut self, vcpu: usize, ran: u64, now: u64);
    /// Brings budgets up to `now` (periods that ended refill).
    fn advance(&mut self, now: u64);
    /// When the policy needs the CPU back: `running`'s budget running out
    /// (it was entered at `since`), or a throttled vCPU's next period.
    fn next_event(&self, running: Option<(usize, u64)>) -> Option<u64>;
    /// Whether `vcpu` used up its budget for this period.
    fn throttled(&self, vcpu: usize) -> bool;
}

/// Fixed-priority preemptive scheduling with optional budgets: the highest
/// priority vCPU that can run and has budget left runs; equal priorities
/// take turns (round robin, one slice each when several wait); a vCPU that
/// used its budget is throttled until its next period begins.
#[derive(Debug)]
pub struct FixedPriority {
    params: alloc::vec::Vec<Params>,
    /// Budget left in the current period, per vCPU.
    left: alloc::vec::Vec<u64>,
    /// When the current period ends, per vCPU (budgeted ones).
    period_end: alloc::vec::Vec<u64>,
    /// Round-robin position among equal priorities.
    next: usize,
    slice_ticks: u64,
}

impl FixedPriority {
    /// A policy for vCPUs with `params` (by local index), starting at `now`.
    pub fn new(params: alloc::vec::Vec<Params>, slice_ticks: u64, now: u64) -> Self {
        let left = params
            .iter()
            .map(|p| p.budget.map_or(u64::MAX, |b| b.budget))
            .collect();
        let period_end = params
            .iter()
            .map(|p| p.budget.map_or(u64::MAX, |b| now + b.period))
            .collect();
        Self {
            params,
            left,
            period_end,
            next: 0,
            slice_ticks: slice_ticks.max(1),
        }
    }

    /// Starts the periods that ended by `now`, refilling their budgets.
    fn replenish(&mut self, now: u64) {
        for (i, p) in self.params.iter().enumerate() {
            if let Some(b) = p.budget
                && self.period_end[i] <= now
            {
                // Periods missed entirely (the vCPU slept) are skipped, not banked.
                let behind = (now - self.period_end[i]) / b.period.max(1);
                self.period_end[i] += (behind + 1) * b.period.max(1);
                self.left[i] = b.budget;
            }
        }
    }

    fn eligible(&self, v: usize, runnable: &dyn Fn(usize) -> bool) -> bool {
        v < self.params.len() && self.left[v] > 0 && runnable(v)
    }
}

impl Policy for FixedPriority {
    fn pick(&mut self, now: u64, runnable: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.replenish(now);
        let count = self.params.len();
        let best = (0..count)
            .filter(|&v| self.eligible(v, runnable))
            .map(|v| self.params[v].priority)
            .max()?;
        for k in 0..count {
            let v = (self.next + k) % count;
            if self.params[v].priority == best && self.eligible(v, runnable) {
                self.next = (v + 1) % count;
                return Some(v);
            }
        }
        None
    }

    fn must_yield(
        &self,
        current: usize,
        slice_over: bool,
        runnable: &dyn Fn(usize) -> bool,
    ) -> bool {
        let Some(mine) = self.params.get(current).map(|p| p.priority) else {
            return true;
        };
        let throttled = self.throttled(current);
        (0..self.params.len())
            .filter(|&v| v != current && self.eligible(v, runnable))
            .any(|v| {
                let p = self.params[v].priority;
                throttled || p > mine || (slice_over && p == mine)
            })
            || throttled
    }

    fn slice(&self, _vcpu: usize) -> u64 {
        self.slice_ticks
    }

    fn charge(&mut self, vcpu: usize, ran: u64, now: u64) {
        if let Some(left) = self.left.get_mut(vcpu)
            && self.params[vcpu].budget.is_some()
        {
            *left = left.saturating_sub(ran);
        }
        self.replenish(now);
    }

    fn advance(&mut self, now: u64) {
        self.replenish(now);
    }

    fn next_event(&self, running: Option<(usize, u64)>) -> Option<u64> {
        // A running vCPU already out of budget is leaving: its refill counts.
        let exhaust = running.and_then(|(v, since)| {
            let left = *self.left.get(v)?;
            (self.params[v].budget.is_some() && left > 0).then(|| since.saturating_add(left))
        });
        let refill = (0..self.params.len())
            .filter(|&v| self.params[v].budget.is_some() && self.left[v] == 0)
            .map(|v| self.period_end[v])
            .min();
        exhaust.into_iter().chain(refill).min()
    }

    fn throttled(&self, vcpu: usize) -> bool {
        self.left.get(vcpu).is_some_and(|&l| l == 0)
    }
}

/// When the EL2 timer must fire next: the earliest of the running slice's end
/// (only when another vCPU waits for this CPU) and the other deadlines (the
/// virtual-timer deadlines of vCPUs that are not loaded, budgets, ...).
/// `None`: nothing needs the timer.
pub fn next_deadline(
    slice_end: Option<u64>,
    deadlines: impl IntoIterator<Item = u64>,
) -> Option<u64> {
    deadlines.into_iter().chain(slice_end).min()
}

/// The physical CPU that takes Tandem's console interrupt (input, and the
/// output that writers leave in the ring), given the `cpus` online and each
/// vCPU's (pCPU, priority): the CPU whose most urgent vCPU is least urgent. A
/// CPU with no vCPU comes first, then the lowest top priority, then the fewest
/// vCPUs, then the lowest index. So console work shares a CPU with a
/// real-time vCPU only when every CPU has one.
pub fn console_cpu(cpus: usize, vcpus: impl IntoIterator<Item = (usize, u8)>) -> usize {
    let mut load = alloc::vec![(None::<u8>, 0usize); cpus.max(1)];
    for (pcpu, priority) in vcpus {
        if let Some((top, count)) = load.get_mut(pcpu) {
            *top = (*top).max(Some(priority));
            *count += 1;
        }
    }
    (0..load.len())
        .min_by_key(|&c| (load[c].0.map_or(-1, i32::from), load[c].1, c))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Console work goes where it delays the least urgent vCPUs.
    #[test]
    fn console_cpu_avoids_real_time_vcpus() {
        // The default layout: Linux on 0-1, the RTOS (priority 10) on 2-3.
        assert_eq!(console_cpu(4, [(0, 0), (1, 0), (2, 10), (3, 10)]), 0);
        // `shared` on 4 CPUs: an idle CPU takes it.
        assert_eq!(console_cpu(4, [(0, 10), (0, 0), (1, 0)]), 2);
        // `shared` on 2 CPUs: Linux's lone vCPU 1, not the RTOS's CPU.
        assert_eq!(console_cpu(2, [(0, 10), (0, 0), (1, 0)]), 1);
        // Every CPU has a real-time vCPU: the one with fewer vCPUs.
        assert_eq!(console_cpu(2, [(0, 10), (0, 0), (1, 10)]), 1);
        // One CPU, or vCPUs placed beyond the CPUs online.
        assert_eq!(console_cpu(1, [(0, 10), (0, 0)]), 0);
        assert_eq!(console_cpu(0, [(5, 1)]), 0);
    }

    fn rr(n: usize) -> FixedPriority {
        FixedPriority::new(alloc::vec![Params::default(); n], 100, 0)
    }

    /// Equal priorities rotate among runnable vCPUs and skip blocked ones.
    #[test]
    fn equal_priorities_rotate() {
        let mut p = rr(3);
        let runnable = |i: usize| i != 1;
        assert_eq!(p.pick(0, &runnable), Some(0));
        assert_eq!(p.pick(0, &runnable), Some(2));
        assert_eq!(p.pick(0, &runnable), Some(0));
        assert_eq!(p.pick(0, &|_| false), None);
        assert_eq!(rr(0).pick(0, &|_| true), None);
    }

    /// A higher priority wins whenever it can run, and preempts at once;
    /// an equal one waits for the slice to end.
    #[test]
    fn higher_priority_preempts() {
        let rt = Params {
            priority: 10,
            budget: None,
        };
        let mut p = FixedPriority::new(alloc::vec![Params::default(), rt], 100, 0);
        assert_eq!(p.pick(0, &|_| true), Some(1));
        assert_eq!(p.pick(0, &|v| v == 0), Some(0));
        assert!(p.must_yield(0, false, &|_| true), "the RTOS woke up");
        assert!(
            !p.must_yield(1, true, &|_| true),
            "nobody outranks the RTOS"
        );
        let mut q = rr(2);
        assert!(!q.must_yield(0, false, &|_| true));
        assert!(q.must_yield(0, true, &|_| true));
        assert!(!q.must_yield(0, true, &|v| v == 0), "alone: keeps the CPU");
        assert_eq!(q.pick(0, &|_| true), Some(0));
    }

    /// A vCPU that used its budget is throttled until its next period, and
    /// the timer is planned for both moments.
    #[test]
    fn budgets_throttle_until_the_next_period() {
        let capped = Params {
            priority: 5,
            budget: Some(Budget {
                budget: 30,
                period: 100,
            }),
        };
        let mut p = FixedPriority::new(alloc::vec![capped, Params::default()], 1000, 0);
        assert_eq!(p.pick(0, &|_| true), Some(0));
        assert_eq!(
            p.next_event(Some((0, 10))),
            Some(40),
            "budget ends 30 ticks after entry"
        );
        p.charge(0, 30, 40);
        assert!(p.throttled(0));
        assert!(p.must_yield(0, false, &|_| true));
        assert_eq!(
            p.pick(40, &|_| true),
            Some(1),
            "the other vCPU runs meanwhile"
        );
        assert_eq!(
            p.next_event(Some((1, 40))),
            Some(100),
            "refill at the period's end"
        );
        assert_eq!(p.pick(100, &|_| true), Some(0), "refilled, and it outranks");
        assert!(!p.throttled(0));
        // Asleep for several periods: the budget is refilled once, not banked.
        p.charge(0, 30, 130);
        assert_eq!(p.pick(450, &|_| true), Some(0));
        p.charge(0, 10, 460);
        assert!(!p.throttled(0));
        p.charge(0, 25, 470);
        assert!(p.throttled(0));
    }

    /// The timer follows the earliest need, and is off when nothing needs it.
    #[test]
    fn deadline_is_earliest_need() {
        assert_eq!(next_deadline(None, []), None);
        assert_eq!(next_deadline(Some(50), [70, 30]), Some(30));
        assert_eq!(next_deadline(Some(50), [90]), Some(50));
        assert_eq!(next_deadline(None, [90]), Some(90));
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
