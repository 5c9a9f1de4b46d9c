//! The scheduler core: tasks, priorities, the ready choice, sleeping and periodic release.
//!
//! This is plain Rust with no hardware access, so the whole policy is host-tested. The arch
//! layer (`arch::kernel`) owns one [`Kernel`] per CPU behind an IRQ-masking lock and calls it
//! from exception context; a context switch is "save the interrupted task's frame pointer,
//! ask [`Kernel::switch`] for the next one, restore that".
//!
//! Policy:
//! - **Fixed priority, preemptive.** A higher [`Priority`] number is more urgent; the highest
//!   ready effective priority always runs. Among equals the one that became ready first runs
//!   (FIFO); a preempted task keeps its place at the head (POSIX `SCHED_FIFO`).
//! - **Tickless.** Sleeping tasks carry an absolute wake instant; [`Kernel::next_deadline`] is
//!   the only thing the timer is programmed with, and [`Kernel::expire`] releases due tasks in
//!   deadline order.
//! - **Periodic release** is sleep-until on an absolute release grid, so releases do not drift.
//! - **Blocking objects** (semaphores, mutexes with priority inheritance, message queues) live
//!   in [`sync`]; a blocked task names the object it waits on ([`WaitObj`]).
//!
//! Invariants: exactly one task is `current` once started; the current task's state is
//! [`State::Ready`] while it runs; an idle task (priority 0, never blocks) always exists, so
//! [`Kernel::pick`] always finds a task.
#![forbid(unsafe_code)]

pub mod sync;

use crate::time::Ticks;

/// Most tasks per CPU.
pub const MAX_TASKS: usize = 16;

/// A task priority: higher numbers are more urgent; 0 is reserved for the idle task.
pub type Priority = u8;

/// The idle task's priority.
pub const IDLE_PRIORITY: Priority = 0;

/// A task, named by its slot in the task table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u8);

impl TaskId {
    /// The slot index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// The address of a task's saved exception frame on its own stack (opaque to the core).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SavedFrame(pub usize);

/// What a blocked task waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitObj {
    /// A semaphore count.
    Sem(sync::SemId),
    /// Ownership of a mutex.
    Mutex(sync::MutexId),
    /// A message from a queue.
    QueueRecv(sync::QueueId),
    /// Room in a queue (the message waits in the task's slot).
    QueueSend(sync::QueueId),
}

/// A task's scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The slot is unused.
    Free,
    /// Runnable (or running, if it is the current task).
    Ready,
    /// Waiting for the timer: `Task::wake_at`.
    Sleeping,
    /// Waiting on a blocking object.
    Blocked(WaitObj),
    /// Returned from its entry function; the slot is reclaimed once another task runs.
    Exited,
}

/// Kernel errors: a small `Copy` enum, surfaced to tasks unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No free slot in a fixed table (tasks, semaphores, mutexes, queues).
    NoSlot,
    /// The id names nothing that exists.
    InvalidId,
    /// The caller does not own the mutex it unlocks.
    NotOwner,
    /// The caller already owns the mutex it locks (would deadlock).
    Recursive,
    /// A non-blocking send found the queue full, or a post overflowed a semaphore.
    Full,
    /// A non-blocking receive or wait found nothing.
    Empty,
    /// A priority outside `1..=255` for an ordinary task.
    BadPriority,
}

/// Periodic-release parameters and the current job's release instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Periodic {
    /// The release interval.
    pub period: Ticks,
    /// The relative deadline of each job.
    pub deadline: Ticks,
    /// The current job's (ideal) release instant.
    pub release: Ticks,
    /// Jobs completed so far.
    pub jobs: u64,
    /// Jobs that completed after their deadline.
    pub misses: u64,
}

/// How a job of a periodic task ended: the result of [`Kernel::wait_next_period`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobEnd {
    /// Completion time: from the job's release to the call.
    pub response: Ticks,
    /// Whether the job finished after its deadline.
    pub missed: bool,
    /// The next job's release instant.
    pub next_release: Ticks,
}

/// One task control block.
#[derive(Clone, Copy, Debug)]
pub struct Task {
    /// Scheduling state.
    pub state: State,
    /// A short name for diagnostics.
    pub name: &'static str,
    /// The priority it was created with.
    pub base_prio: Priority,
    /// The priority it runs at: the base raised by priority inheritance.
    pub eff_prio: Priority,
    /// Order stamp: when it became ready or started waiting (FIFO among equals).
    pub seq: u64,
    /// Wake instant while [`State::Sleeping`].
    pub wake_at: Ticks,
    /// The saved frame while not running.
    pub frame: SavedFrame,
    /// A message in transit through a queue (pending send, or delivered receive).
    pub msg: u64,
    /// Periodic parameters, if the task is periodic.
    pub periodic: Option<Periodic>,
}

impl Task {
    const FREE: Task = Task {
        state: State::Free,
        name: "",
        base_prio: 0,
        eff_prio: 0,
        seq: 0,
        wake_at: Ticks(0),
        frame: SavedFrame(0),
        msg: 0,
        periodic: None,
    };
}

/// The per-CPU kernel state: the task table and the blocking objects.
#[derive(Debug)]
pub struct Kernel {
    tasks: [Task; MAX_TASKS],
    current: Option<TaskId>,
    seq: u64,
    switches: u64,
    pub(crate) objects: sync::Objects,
}

impl Default for Kernel {
    fn default() -> Self {
        Self::new()
    }
}

impl Kernel {
    /// An empty kernel: no tasks, no objects.
    pub const fn new() -> Self {
        Self {
            tasks: [Task::FREE; MAX_TASKS],
            current: None,
            seq: 0,
            switches: 0,
            objects: sync::Objects::new(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The task table entry of `t`.
    pub fn task(&self, t: TaskId) -> &Task {
        &self.tasks[t.index()]
    }

    pub(crate) fn task_mut(&mut self, t: TaskId) -> &mut Task {
        &mut self.tasks[t.index()]
    }

    /// Iterates over the ids of every slot.
    pub(crate) fn ids(&self) -> impl Iterator<Item = TaskId> + use<> {
        (0..MAX_TASKS as u8).map(TaskId)
    }

    /// The running task, once the kernel has started.
    pub fn current(&self) -> Option<TaskId> {
        self.current
    }

    /// The running task; panics before start (a kernel-internal invariant: task-context APIs
    /// are only reachable from tasks).
    pub fn cur(&self) -> TaskId {
        self.current
            .expect("task-context call before the scheduler started")
    }

    /// Context switches performed (a switch to a different task).
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// Creates a ready task. `frame` builds its initial frame in the slot's stack and returns
    /// its address; it runs only once a slot is found. Priority 0 is allowed only for the
    /// idle task (`idle = true`), which must never block.
    pub fn spawn(
        &mut self,
        name: &'static str,
        prio: Priority,
        idle: bool,
        frame: impl FnOnce(TaskId) -> SavedFrame,
    ) -> Result<TaskId, Error> {
        if (prio == IDLE_PRIORITY) != idle {
            return Err(Error::BadPriority);
        }
        let current = self.current;
        let id = self
            .ids()
            .find(|&t| match self.task(t).state {
                State::Free => true,
                State::Exited => Some(t) != current,
                _ => false,
            })
            .ok_or(Error::NoSlot)?;
        let seq = self.next_seq();
        self.tasks[id.index()] = Task {
            state: State::Ready,
            name,
            base_prio: prio,
            eff_prio: prio,
            seq,
            frame: frame(id),
            ..Task::FREE
        };
        Ok(id)
    }

    /// Makes `t` ready, queued behind tasks of its priority that are already ready.
    pub(crate) fn make_ready(&mut self, t: TaskId) {
        let seq = self.next_seq();
        let task = self.task_mut(t);
        task.state = State::Ready;
        task.seq = seq;
    }

    /// Blocks the current task on `obj` (FIFO among equal-priority waiters).
    pub(crate) fn block_current(&mut self, obj: WaitObj) {
        let cur = self.cur();
        let seq = self.next_seq();
        let task = self.task_mut(cur);
        task.state = State::Blocked(obj);
        task.seq = seq;
    }

    /// The ready task that should run: highest effective priority, then earliest ready.
    pub fn pick(&self) -> Option<TaskId> {
        let mut best: Option<(usize, &Task)> = None;
        for (i, task) in self.tasks.iter().enumerate() {
            if task.state != State::Ready {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, b)) => {
                    task.eff_prio > b.eff_prio || (task.eff_prio == b.eff_prio && task.seq < b.seq)
                }
            };
            if better {
                best = Some((i, task));
            }
        }
        best.map(|(i, _)| TaskId(i as u8))
    }

    /// Whether [`Kernel::switch`] would run a different task now: the current task stopped
    /// being ready, or a more urgent task is ready.
    pub fn need_resched(&self) -> bool {
        match self.current {
            None => true,
            Some(c) => self.pick() != Some(c),
        }
    }

    /// The context switch decision, called at every exception exit: records `saved` as the
    /// current task's frame, releases sleepers due at `now`, and returns the frame to resume.
    pub fn switch(&mut self, now: Ticks, saved: SavedFrame) -> SavedFrame {
        if let Some(c) = self.current {
            self.task_mut(c).frame = saved;
        }
        self.expire(now);
        let next = self.pick().expect("the idle task is always ready");
        if let Some(c) = self.current
            && c != next
        {
            self.switches += 1;
            if self.task(c).state == State::Exited {
                // Its stack is no longer in use once `next` runs: reclaim the slot.
                self.task_mut(c).state = State::Free;
            }
        }
        self.current = Some(next);
        self.task(next).frame
    }

    /// Puts the current task to sleep until `at` (absolute). A past instant still goes through
    /// the timer queue and is released by the next [`Kernel::switch`].
    pub fn sleep_until(&mut self, at: Ticks) {
        let cur = self.cur();
        let task = self.task_mut(cur);
        task.state = State::Sleeping;
        task.wake_at = at;
    }

    /// Moves the current task behind the other ready tasks of its priority.
    pub fn yield_now(&mut self) {
        let cur = self.cur();
        self.make_ready(cur);
    }

    /// Ends the current task: releases the mutexes it holds; its slot is reclaimed after the
    /// switch away from it.
    pub fn exit(&mut self) {
        let cur = self.cur();
        self.release_all_mutexes(cur);
        self.task_mut(cur).state = State::Exited;
    }

    /// The earliest wake instant of any sleeping task: what the timer must be programmed with.
    pub fn next_deadline(&self) -> Option<Ticks> {
        let mut next: Option<Ticks> = None;
        for task in &self.tasks {
            if task.state == State::Sleeping && next.is_none_or(|n| task.wake_at < n) {
                next = Some(task.wake_at);
            }
        }
        next
    }

    /// Releases every sleeper whose wake instant is at or before `now`, earliest first (ties
    /// by higher priority, then slot); returns how many. One pass over the table plus a sort
    /// of the (usually one) due tasks: this runs in the timer interrupt.
    pub fn expire(&mut self, now: Ticks) -> usize {
        let mut due = [TaskId(0); MAX_TASKS];
        let mut n = 0;
        for (i, task) in self.tasks.iter().enumerate() {
            if task.state == State::Sleeping && task.wake_at <= now {
                due[n] = TaskId(i as u8);
                n += 1;
            }
        }
        let key =
            |k: &Kernel, t: TaskId| (k.task(t).wake_at, core::cmp::Reverse(k.task(t).eff_prio), t);
        // Insertion sort: n is tiny.
        for i in 1..n {
            let mut j = i;
            while j > 0 && key(self, due[j]) < key(self, due[j - 1]) {
                due.swap(j, j - 1);
                j -= 1;
            }
        }
        for &t in &due[..n] {
            self.make_ready(t);
        }
        n
    }

    /// Makes the current task periodic: first release at `first`, then every `period`, each
    /// job due `deadline` after its release. The caller then waits for `first` with
    /// [`Kernel::sleep_until`].
    pub fn set_periodic(&mut self, first: Ticks, period: Ticks, deadline: Ticks) {
        let cur = self.cur();
        self.task_mut(cur).periodic = Some(Periodic {
            period,
            deadline,
            release: first,
            jobs: 0,
            misses: 0,
        });
    }

    /// Ends the current job of the current (periodic) task at `now` and sleeps until the next
    /// release. A job that overran keeps the release grid: the next release may already be
    /// due, and then the task runs again at once. `None` if the task is not periodic.
    pub fn wait_next_period(&mut self, now: Ticks) -> Option<JobEnd> {
        let cur = self.cur();
        let p = self.task_mut(cur).periodic.as_mut()?;
        let response = now.since(p.release);
        let missed = response > p.deadline;
        p.jobs += 1;
        p.misses += u64::from(missed);
        p.release = p.release.plus(p.period);
        let next_release = p.release;
        self.sleep_until(next_release);
        Some(JobEnd {
            response,
            missed,
            next_release,
        })
    }

    /// The current job's release instant of a periodic task.
    pub fn release_of(&self, t: TaskId) -> Option<Ticks> {
        self.task(t).periodic.map(|p| p.release)
    }

    /// `(base, effective)` priority of `t`.
    pub fn priority(&self, t: TaskId) -> (Priority, Priority) {
        let task = self.task(t);
        (task.base_prio, task.eff_prio)
    }

    /// The state of `t`.
    pub fn state(&self, t: TaskId) -> State {
        self.task(t).state
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A kernel with an idle task, started (idle current).
    pub(crate) fn started() -> Kernel {
        let mut k = Kernel::new();
        k.spawn("idle", 0, true, |t| SavedFrame(0x1000 * (t.index() + 1)))
            .unwrap();
        k.switch(Ticks(0), SavedFrame(0));
        k
    }

    /// Spawns an ordinary task whose frame address encodes its slot.
    pub(crate) fn spawn(k: &mut Kernel, prio: Priority) -> TaskId {
        k.spawn("t", prio, false, |t| SavedFrame(0x1000 * (t.index() + 1)))
            .unwrap()
    }

    /// Runs the switch decision and returns the task now current.
    pub(crate) fn run(k: &mut Kernel, now: u64) -> TaskId {
        let f = k.task(k.cur()).frame;
        k.switch(Ticks(now), f);
        k.cur()
    }

    /// The highest-priority ready task is picked.
    #[test]
    fn highest_priority_runs() {
        let mut k = started();
        let _a = spawn(&mut k, 3);
        let b = spawn(&mut k, 7);
        let _c = spawn(&mut k, 5);
        assert_eq!(run(&mut k, 0), b);
    }

    /// Equal priorities run in the order they became ready.
    #[test]
    fn equal_priority_is_fifo() {
        let mut k = started();
        let a = spawn(&mut k, 4);
        let b = spawn(&mut k, 4);
        assert_eq!(run(&mut k, 0), a);
        k.yield_now();
        assert_eq!(run(&mut k, 0), b);
        k.yield_now();
        assert_eq!(run(&mut k, 0), a);
    }

    /// A preempted task resumes before equal-priority tasks that became ready later.
    #[test]
    fn preempted_task_keeps_head_of_queue() {
        let mut k = started();
        let a = spawn(&mut k, 4);
        assert_eq!(run(&mut k, 0), a);
        let b = spawn(&mut k, 4);
        let h = spawn(&mut k, 9);
        assert_eq!(run(&mut k, 0), h);
        k.exit();
        assert_eq!(run(&mut k, 0), a);
        let _ = b;
    }

    /// The idle task runs when nothing else is ready.
    #[test]
    fn idle_runs_when_nothing_ready() {
        let mut k = started();
        let a = spawn(&mut k, 4);
        assert_eq!(run(&mut k, 0), a);
        k.sleep_until(Ticks(100));
        let t = run(&mut k, 0);
        assert_eq!(k.task(t).base_prio, IDLE_PRIORITY);
    }

    /// `switch` saves the outgoing frame and returns the incoming task's frame.
    #[test]
    fn switch_saves_and_restores_frames() {
        let mut k = started();
        let idle = k.cur();
        let a = spawn(&mut k, 4);
        let resumed = k.switch(Ticks(0), SavedFrame(0xdead0));
        assert_eq!(k.task(idle).frame, SavedFrame(0xdead0));
        assert_eq!(resumed, k.task(a).frame);
        assert_eq!(k.switches(), 1);
    }

    /// The timer is programmed with the earliest wake instant only.
    #[test]
    fn next_deadline_is_earliest_sleeper() {
        let mut k = started();
        for (prio, at) in [(3, 500), (4, 200), (5, 900)] {
            let t = spawn(&mut k, prio);
            assert_eq!(run(&mut k, 0), t);
            k.sleep_until(Ticks(at));
        }
        assert_eq!(k.next_deadline(), Some(Ticks(200)));
    }

    /// With no sleepers there is no deadline: the timer stays off (tickless).
    #[test]
    fn no_sleepers_no_deadline() {
        let k = started();
        assert_eq!(k.next_deadline(), None);
    }

    /// Sleepers are released only once due, earliest first.
    #[test]
    fn expire_releases_due_sleepers_in_deadline_order() {
        let mut k = started();
        let mut ids = [TaskId(0); 3];
        for (i, at) in [300, 100, 200].into_iter().enumerate() {
            ids[i] = spawn(&mut k, 5);
            assert_eq!(run(&mut k, 0), ids[i]);
            k.sleep_until(Ticks(at));
        }
        run(&mut k, 0);
        assert_eq!(k.expire(Ticks(99)), 0);
        assert_eq!(k.expire(Ticks(250)), 2);
        // Same priority: the one released first (deadline 100) runs first.
        assert_eq!(run(&mut k, 250), ids[1]);
        k.yield_now();
        assert_eq!(run(&mut k, 250), ids[2]);
        assert_eq!(k.next_deadline(), Some(Ticks(300)));
    }

    /// A sleep until a past instant is released by the very next switch.
    #[test]
    fn past_sleep_wakes_at_next_switch() {
        let mut k = started();
        let a = spawn(&mut k, 5);
        assert_eq!(run(&mut k, 10), a);
        k.sleep_until(Ticks(5));
        assert_eq!(run(&mut k, 10), a);
    }

    /// Periodic releases stay on the grid `first + k * period`.
    #[test]
    fn periodic_release_does_not_drift() {
        let mut k = started();
        let a = spawn(&mut k, 5);
        run(&mut k, 0);
        k.set_periodic(Ticks(1000), Ticks(100), Ticks(100));
        k.sleep_until(Ticks(1000));
        for job in 0..5u64 {
            let release = 1000 + job * 100;
            assert_ne!(run(&mut k, release - 1), a);
            assert_eq!(run(&mut k, release + 7), a);
            assert_eq!(k.release_of(a), Some(Ticks(release)));
            let end = k.wait_next_period(Ticks(release + 30)).unwrap();
            assert_eq!(
                end,
                JobEnd {
                    response: Ticks(30),
                    missed: false,
                    next_release: Ticks(release + 100)
                }
            );
        }
    }

    /// A job finishing after its deadline is a miss, and the next release stays on the grid.
    #[test]
    fn late_job_counts_a_miss() {
        let mut k = started();
        let a = spawn(&mut k, 5);
        run(&mut k, 0);
        k.set_periodic(Ticks(0), Ticks(100), Ticks(50));
        let end = k.wait_next_period(Ticks(60)).unwrap();
        assert!(end.missed);
        assert_eq!(end.next_release, Ticks(100));
        assert_eq!(k.task(a).periodic.unwrap().misses, 1);
    }

    /// An overrun past the next release makes the task ready again at once.
    #[test]
    fn overrun_releases_immediately() {
        let mut k = started();
        let a = spawn(&mut k, 5);
        run(&mut k, 0);
        k.set_periodic(Ticks(0), Ticks(100), Ticks(100));
        k.wait_next_period(Ticks(250)).unwrap();
        assert_eq!(run(&mut k, 250), a);
        assert_eq!(k.release_of(a), Some(Ticks(100)));
    }

    /// A non-periodic task has no period to wait for.
    #[test]
    fn wait_next_period_needs_periodic() {
        let mut k = started();
        spawn(&mut k, 5);
        run(&mut k, 0);
        assert_eq!(k.wait_next_period(Ticks(0)), None);
    }

    /// An exited task's slot is reused only after another task has run.
    #[test]
    fn exited_slot_is_reclaimed_after_switch() {
        let mut k = started();
        let a = spawn(&mut k, 5);
        assert_eq!(run(&mut k, 0), a);
        k.exit();
        assert_eq!(k.state(a), State::Exited);
        let b = spawn(&mut k, 5);
        assert_ne!(a, b);
        run(&mut k, 0);
        assert_eq!(k.state(a), State::Free);
    }

    /// Only the idle task may have priority 0, and it must have priority 0.
    #[test]
    fn priority_zero_is_idle_only() {
        let mut k = Kernel::new();
        assert_eq!(
            k.spawn("x", 0, false, |_| SavedFrame(0)),
            Err(Error::BadPriority)
        );
        assert_eq!(
            k.spawn("x", 1, true, |_| SavedFrame(0)),
            Err(Error::BadPriority)
        );
    }

    /// The task table is finite and says so.
    #[test]
    fn task_table_full_is_an_error() {
        let mut k = started();
        for _ in 1..MAX_TASKS {
            spawn(&mut k, 1);
        }
        assert_eq!(
            k.spawn("x", 1, false, |_| SavedFrame(0)),
            Err(Error::NoSlot)
        );
    }

    /// `need_resched` is true exactly when a more urgent task is ready or the current blocked.
    #[test]
    fn need_resched_tracks_the_ready_set() {
        let mut k = started();
        let a = spawn(&mut k, 5);
        assert!(k.need_resched());
        assert_eq!(run(&mut k, 0), a);
        assert!(!k.need_resched());
        spawn(&mut k, 3);
        assert!(!k.need_resched());
        spawn(&mut k, 6);
        assert!(k.need_resched());
    }
}
