//! Blocking objects: counting semaphores, mutexes with priority inheritance, message queues.
//!
//! Every object lives in a fixed table in [`Objects`] and is named by index ([`SemId`],
//! [`MutexId`], [`QueueId`]). Waiters are not kept in lists: a blocked task records the object
//! in its state ([`WaitObj`]), and the waiter to wake is the one with the highest effective
//! priority, FIFO among equals ([`Kernel::best_waiter`]). With at most
//! [`MAX_TASKS`] tasks the scan is short and there is nothing to corrupt.
//!
//! Blocking operations return `Ok(true)` when the caller was blocked: the arch layer then
//! switches away, and the operation has completed (count taken, mutex owned, message in
//! [`Kernel::take_msg`]) by the time the task runs again. Nothing here times out.
//!
//! Priority inheritance (basic protocol, transitive): a task blocking on a mutex raises the
//! owner's effective priority to its own, along the chain of owners that are themselves blocked
//! on mutexes; unlocking recomputes the owner's priority from the mutexes it still holds and
//! hands the mutex to the best waiter.
#![forbid(unsafe_code)]

use super::{Error, Kernel, MAX_TASKS, Priority, State, TaskId, WaitObj};

/// Most semaphores per CPU.
pub const MAX_SEMS: usize = 16;
/// Most mutexes per CPU.
pub const MAX_MUTEXES: usize = 8;
/// Most message queues per CPU.
pub const MAX_QUEUES: usize = 8;
/// Most messages a queue holds.
pub const QUEUE_CAPACITY: usize = 16;

/// A counting semaphore, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemId(pub u8);
/// A mutex, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MutexId(pub u8);
/// A message queue, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueId(pub u8);

#[derive(Clone, Copy, Debug)]
struct Sem {
    count: u32,
    max: u32,
}

#[derive(Clone, Copy, Debug)]
struct Mutex {
    owner: Option<TaskId>,
}

#[derive(Clone, Copy, Debug)]
struct Queue {
    buf: [u64; QUEUE_CAPACITY],
    head: usize,
    len: usize,
    cap: usize,
}

impl Queue {
    fn push(&mut self, msg: u64) {
        debug_assert!(self.len < self.cap);
        self.buf[(self.head + self.len) % QUEUE_CAPACITY] = msg;
        self.len += 1;
    }

    fn pop(&mut self) -> u64 {
        debug_assert!(self.len > 0);
        let msg = self.buf[self.head];
        self.head = (self.head + 1) % QUEUE_CAPACITY;
        self.len -= 1;
        msg
    }
}

/// The object tables of one kernel.
#[derive(Debug)]
pub struct Objects {
    sems: [Option<Sem>; MAX_SEMS],
    mutexes: [Option<Mutex>; MAX_MUTEXES],
    queues: [Option<Queue>; MAX_QUEUES],
}

impl Objects {
    pub(crate) const fn new() -> Self {
        Self {
            sems: [None; MAX_SEMS],
            mutexes: [None; MAX_MUTEXES],
            queues: [None; MAX_QUEUES],
        }
    }
}

fn free_slot<T>(table: &[Option<T>]) -> Result<u8, Error> {
    table
        .iter()
        .position(Option::is_none)
        .map(|i| i as u8)
        .ok_or(Error::NoSlot)
}

impl Kernel {
    /// The waiter on `obj` to wake next: highest effective priority, then longest waiting.
    pub fn best_waiter(&self, obj: WaitObj) -> Option<TaskId> {
        self.ids()
            .filter(|&t| self.task(t).state == State::Blocked(obj))
            .max_by(|&a, &b| {
                let (a, b) = (self.task(a), self.task(b));
                a.eff_prio.cmp(&b.eff_prio).then(b.seq.cmp(&a.seq))
            })
    }

    // ---- semaphores ----

    fn sem(&mut self, s: SemId) -> Result<&mut Sem, Error> {
        self.objects
            .sems
            .get_mut(s.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::InvalidId)
    }

    /// Creates a semaphore with `initial` counts, at most `max`.
    pub fn sem_create(&mut self, initial: u32, max: u32) -> Result<SemId, Error> {
        let i = free_slot(&self.objects.sems)?;
        self.objects.sems[i as usize] = Some(Sem {
            count: initial.min(max),
            max,
        });
        Ok(SemId(i))
    }

    /// Takes a count, or blocks the current task until [`Kernel::sem_post`] hands it one.
    pub fn sem_wait(&mut self, s: SemId) -> Result<bool, Error> {
        let sem = self.sem(s)?;
        if sem.count > 0 {
            sem.count -= 1;
            return Ok(false);
        }
        self.block_current(WaitObj::Sem(s));
        Ok(true)
    }

    /// Takes a count if one is available; [`Error::Empty`] otherwise. Never blocks.
    pub fn sem_try_wait(&mut self, s: SemId) -> Result<(), Error> {
        let sem = self.sem(s)?;
        if sem.count == 0 {
            return Err(Error::Empty);
        }
        sem.count -= 1;
        Ok(())
    }

    /// Gives a count: directly to the best waiter if there is one. Never blocks, so it may be
    /// called from interrupt handlers. [`Error::Full`] if the count is already at its maximum.
    pub fn sem_post(&mut self, s: SemId) -> Result<(), Error> {
        self.sem(s)?;
        if let Some(w) = self.best_waiter(WaitObj::Sem(s)) {
            self.make_ready(w);
            return Ok(());
        }
        let sem = self.sem(s)?;
        if sem.count >= sem.max {
            return Err(Error::Full);
        }
        sem.count += 1;
        Ok(())
    }

    /// The current count.
    pub fn sem_count(&mut self, s: SemId) -> Result<u32, Error> {
        Ok(self.sem(s)?.count)
    }

    // ---- mutexes ----

    fn mutex(&mut self, m: MutexId) -> Result<&mut Mutex, Error> {
        self.objects
            .mutexes
            .get_mut(m.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::InvalidId)
    }

    /// Creates an unlocked mutex.
    pub fn mutex_create(&mut self) -> Result<MutexId, Error> {
        let i = free_slot(&self.objects.mutexes)?;
        self.objects.mutexes[i as usize] = Some(Mutex { owner: None });
        Ok(MutexId(i))
    }

    /// The owner of `m`.
    pub fn mutex_owner(&mut self, m: MutexId) -> Result<Option<TaskId>, Error> {
        Ok(self.mutex(m)?.owner)
    }

    /// Locks `m` for the current task, or blocks it and lends its priority to the owner chain.
    pub fn mutex_lock(&mut self, m: MutexId) -> Result<bool, Error> {
        let cur = self.cur();
        let mutex = self.mutex(m)?;
        match mutex.owner {
            None => {
                mutex.owner = Some(cur);
                Ok(false)
            }
            Some(o) if o == cur => Err(Error::Recursive),
            Some(_) => {
                self.block_current(WaitObj::Mutex(m));
                self.propagate_inheritance(m);
                Ok(true)
            }
        }
    }

    /// Unlocks `m`, which the current task must own: hands it to the best waiter (which becomes
    /// ready) and drops whatever priority the current task inherited through it.
    pub fn mutex_unlock(&mut self, m: MutexId) -> Result<(), Error> {
        let cur = self.cur();
        if self.mutex(m)?.owner != Some(cur) {
            return Err(Error::NotOwner);
        }
        self.hand_over(m);
        self.recompute_priority(cur);
        Ok(())
    }

    /// Gives `m` to its best waiter, or frees it.
    fn hand_over(&mut self, m: MutexId) {
        let next = self.best_waiter(WaitObj::Mutex(m));
        if let Ok(mutex) = self.mutex(m) {
            mutex.owner = next;
        }
        if let Some(w) = next {
            self.make_ready(w);
            self.recompute_priority(w);
        }
    }

    /// Releases every mutex `t` owns (used when a task exits).
    pub(crate) fn release_all_mutexes(&mut self, t: TaskId) {
        for i in 0..MAX_MUTEXES {
            if matches!(self.objects.mutexes[i], Some(Mutex { owner: Some(o) }) if o == t) {
                self.hand_over(MutexId(i as u8));
            }
        }
        self.recompute_priority(t);
    }

    /// The priority `t` inherits: its base, raised to its most urgent waiter on any mutex it owns.
    fn inherited_priority(&self, t: TaskId) -> Priority {
        let mut prio = self.task(t).base_prio;
        for (i, m) in self.objects.mutexes.iter().enumerate() {
            if matches!(m, Some(Mutex { owner: Some(o) }) if *o == t)
                && let Some(w) = self.best_waiter(WaitObj::Mutex(MutexId(i as u8)))
            {
                prio = prio.max(self.task(w).eff_prio);
            }
        }
        prio
    }

    fn recompute_priority(&mut self, t: TaskId) {
        let prio = self.inherited_priority(t);
        self.task_mut(t).eff_prio = prio;
    }

    /// Walks the owner chain from `m`, recomputing each owner's effective priority. The walk
    /// is bounded by the task count, so a deadlock cycle cannot make it loop forever.
    fn propagate_inheritance(&mut self, mut m: MutexId) {
        for _ in 0..MAX_TASKS {
            let Ok(Some(owner)) = self.mutex_owner(m) else {
                return;
            };
            self.recompute_priority(owner);
            match self.task(owner).state {
                State::Blocked(WaitObj::Mutex(next)) => m = next,
                _ => return,
            }
        }
    }

    // ---- message queues ----

    fn queue(&mut self, q: QueueId) -> Result<&mut Queue, Error> {
        self.objects
            .queues
            .get_mut(q.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::InvalidId)
    }

    /// Creates a queue holding up to `capacity` messages (at most [`QUEUE_CAPACITY`]; 0 makes a
    /// rendezvous channel where every send waits for a receiver).
    pub fn queue_create(&mut self, capacity: usize) -> Result<QueueId, Error> {
        let i = free_slot(&self.objects.queues)?;
        let cap = capacity.min(QUEUE_CAPACITY);
        self.objects.queues[i as usize] = Some(Queue {
            buf: [0; QUEUE_CAPACITY],
            head: 0,
            len: 0,
            cap,
        });
        Ok(QueueId(i))
    }

    /// Sends `msg`: straight to a waiting receiver, else into the queue, else blocks the
    /// current task until a receiver makes room.
    pub fn queue_send(&mut self, q: QueueId, msg: u64) -> Result<bool, Error> {
        match self.queue_try_send(q, msg) {
            Err(Error::Full) => {
                let cur = self.cur();
                self.task_mut(cur).msg = msg;
                self.block_current(WaitObj::QueueSend(q));
                Ok(true)
            }
            other => other.map(|()| false),
        }
    }

    /// Sends `msg` without blocking (interrupt-safe); [`Error::Full`] if there is no room.
    pub fn queue_try_send(&mut self, q: QueueId, msg: u64) -> Result<(), Error> {
        self.queue(q)?;
        if let Some(r) = self.best_waiter(WaitObj::QueueRecv(q)) {
            self.task_mut(r).msg = msg;
            self.make_ready(r);
            return Ok(());
        }
        let queue = self.queue(q)?;
        if queue.len >= queue.cap {
            return Err(Error::Full);
        }
        queue.push(msg);
        Ok(())
    }

    /// Receives the oldest message, or blocks the current task (`Ok(None)`); after it runs
    /// again the message is in [`Kernel::take_msg`].
    pub fn queue_recv(&mut self, q: QueueId) -> Result<Option<u64>, Error> {
        match self.queue_try_recv(q) {
            Err(Error::Empty) => {
                self.block_current(WaitObj::QueueRecv(q));
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Receives without blocking; [`Error::Empty`] if nothing is queued or waiting to be sent.
    pub fn queue_try_recv(&mut self, q: QueueId) -> Result<u64, Error> {
        let sender = self.best_waiter(WaitObj::QueueSend(q));
        let queue = self.queue(q)?;
        let msg = if queue.len > 0 {
            let msg = queue.pop();
            if let Some(s) = sender {
                let pending = self.task(s).msg;
                self.queue(q)?.push(pending);
            }
            msg
        } else if let Some(s) = sender {
            self.task(s).msg
        } else {
            return Err(Error::Empty);
        };
        if let Some(s) = sender {
            self.make_ready(s);
        }
        Ok(msg)
    }

    /// Messages currently queued in `q`.
    pub fn queue_len(&mut self, q: QueueId) -> Result<usize, Error> {
        Ok(self.queue(q)?.len)
    }

    /// The message delivered to `t` while it was blocked in [`Kernel::queue_recv`].
    pub fn take_msg(&self, t: TaskId) -> u64 {
        self.task(t).msg
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, spawn, started};
    use super::*;
    use crate::time::Ticks;

    /// A semaphore with counts is taken without blocking.
    #[test]
    fn sem_with_count_does_not_block() {
        let mut k = started();
        let s = k.sem_create(2, 2).unwrap();
        spawn(&mut k, 5);
        run(&mut k, 0);
        assert_eq!(k.sem_wait(s), Ok(false));
        assert_eq!(k.sem_wait(s), Ok(false));
        assert_eq!(k.sem_count(s), Ok(0));
    }

    /// Waiting on an empty semaphore blocks until a post, which hands the count over directly.
    #[test]
    fn sem_post_wakes_waiter() {
        let mut k = started();
        let s = k.sem_create(0, 4).unwrap();
        let a = spawn(&mut k, 5);
        run(&mut k, 0);
        assert_eq!(k.sem_wait(s), Ok(true));
        assert_ne!(run(&mut k, 0), a);
        k.sem_post(s).unwrap();
        assert_eq!(run(&mut k, 0), a);
        assert_eq!(k.sem_count(s), Ok(0));
    }

    /// The highest-priority waiter is woken first, FIFO among equals.
    #[test]
    fn sem_wakes_by_priority_then_fifo() {
        let mut k = started();
        let s = k.sem_create(0, 4).unwrap();
        let lo = spawn(&mut k, 3);
        let hi1 = spawn(&mut k, 6);
        let hi2 = spawn(&mut k, 6);
        for t in [hi1, hi2, lo] {
            assert_eq!(run(&mut k, 0), t);
            k.sem_wait(s).unwrap();
        }
        assert_eq!(k.best_waiter(WaitObj::Sem(s)), Some(hi1));
        k.sem_post(s).unwrap();
        assert_eq!(k.best_waiter(WaitObj::Sem(s)), Some(hi2));
        k.sem_post(s).unwrap();
        assert_eq!(k.best_waiter(WaitObj::Sem(s)), Some(lo));
    }

    /// Posting past the maximum is reported, not wrapped.
    #[test]
    fn sem_post_saturates() {
        let mut k = started();
        let s = k.sem_create(1, 1).unwrap();
        assert_eq!(k.sem_post(s), Err(Error::Full));
        assert_eq!(k.sem_try_wait(s), Ok(()));
        assert_eq!(k.sem_try_wait(s), Err(Error::Empty));
    }

    /// An unknown id is an error, not a panic.
    #[test]
    fn unknown_ids_are_errors() {
        let mut k = started();
        assert_eq!(k.sem_post(SemId(3)), Err(Error::InvalidId));
        assert_eq!(k.mutex_owner(MutexId(200)), Err(Error::InvalidId));
        assert_eq!(k.queue_try_recv(QueueId(1)), Err(Error::InvalidId));
    }

    /// A free mutex is taken; a second locker blocks until the unlock hands it over.
    #[test]
    fn mutex_hand_over_on_unlock() {
        let mut k = started();
        let m = k.mutex_create().unwrap();
        let a = spawn(&mut k, 5);
        let b = spawn(&mut k, 5);
        assert_eq!(run(&mut k, 0), a);
        assert_eq!(k.mutex_lock(m), Ok(false));
        k.yield_now();
        assert_eq!(run(&mut k, 0), b);
        assert_eq!(k.mutex_lock(m), Ok(true));
        assert_eq!(run(&mut k, 0), a);
        k.mutex_unlock(m).unwrap();
        assert_eq!(k.mutex_owner(m), Ok(Some(b)));
        assert_eq!(k.state(b), State::Ready);
    }

    /// A blocked high-priority task lends its priority to the owner, which gets it back on unlock.
    #[test]
    fn mutex_priority_inheritance() {
        let mut k = started();
        let m = k.mutex_create().unwrap();
        let lo = spawn(&mut k, 2);
        assert_eq!(run(&mut k, 0), lo);
        k.mutex_lock(m).unwrap();
        let hi = spawn(&mut k, 8);
        let mid = spawn(&mut k, 5);
        assert_eq!(run(&mut k, 0), hi);
        assert_eq!(k.mutex_lock(m), Ok(true));
        assert_eq!(k.priority(lo), (2, 8));
        // The owner now outranks the medium task: no unbounded priority inversion.
        assert_eq!(run(&mut k, 0), lo);
        k.mutex_unlock(m).unwrap();
        assert_eq!(k.priority(lo), (2, 2));
        assert_eq!(run(&mut k, 0), hi);
        let _ = mid;
    }

    /// Inheritance is transitive along a chain of owners blocked on mutexes.
    #[test]
    fn mutex_inheritance_is_transitive() {
        let mut k = started();
        let (m1, m2) = (k.mutex_create().unwrap(), k.mutex_create().unwrap());
        let a = spawn(&mut k, 2);
        assert_eq!(run(&mut k, 0), a);
        k.mutex_lock(m1).unwrap();
        let b = spawn(&mut k, 4);
        assert_eq!(run(&mut k, 0), b);
        k.mutex_lock(m2).unwrap();
        assert_eq!(k.mutex_lock(m1), Ok(true));
        let c = spawn(&mut k, 9);
        assert_eq!(run(&mut k, 0), c);
        assert_eq!(k.mutex_lock(m2), Ok(true));
        assert_eq!(k.priority(b), (4, 9));
        assert_eq!(k.priority(a), (2, 9));
    }

    /// With two mutexes held, unlocking one keeps the priority inherited through the other.
    #[test]
    fn unlock_keeps_inheritance_from_other_mutexes() {
        let mut k = started();
        let (m1, m2) = (k.mutex_create().unwrap(), k.mutex_create().unwrap());
        let lo = spawn(&mut k, 1);
        assert_eq!(run(&mut k, 0), lo);
        k.mutex_lock(m1).unwrap();
        k.mutex_lock(m2).unwrap();
        let h6 = spawn(&mut k, 6);
        assert_eq!(run(&mut k, 0), h6);
        k.mutex_lock(m1).unwrap();
        let h9 = spawn(&mut k, 9);
        assert_eq!(run(&mut k, 0), h9);
        k.mutex_lock(m2).unwrap();
        assert_eq!(run(&mut k, 0), lo);
        k.mutex_unlock(m2).unwrap();
        assert_eq!(k.priority(lo), (1, 6));
    }

    /// Unlocking a mutex one does not own, or relocking one's own, is an error.
    #[test]
    fn mutex_misuse_is_reported() {
        let mut k = started();
        let m = k.mutex_create().unwrap();
        spawn(&mut k, 5);
        run(&mut k, 0);
        assert_eq!(k.mutex_unlock(m), Err(Error::NotOwner));
        k.mutex_lock(m).unwrap();
        assert_eq!(k.mutex_lock(m), Err(Error::Recursive));
    }

    /// A task that exits releases its mutexes to their waiters.
    #[test]
    fn exit_releases_mutexes() {
        let mut k = started();
        let m = k.mutex_create().unwrap();
        let a = spawn(&mut k, 5);
        let b = spawn(&mut k, 4);
        assert_eq!(run(&mut k, 0), a);
        k.mutex_lock(m).unwrap();
        k.sleep_until(Ticks(10));
        assert_eq!(run(&mut k, 0), b);
        k.mutex_lock(m).unwrap();
        assert_eq!(run(&mut k, 10), a);
        k.exit();
        assert_eq!(k.mutex_owner(m), Ok(Some(b)));
    }

    /// Messages come out in the order they went in.
    #[test]
    fn queue_is_fifo() {
        let mut k = started();
        let q = k.queue_create(4).unwrap();
        for m in 1..=4 {
            k.queue_try_send(q, m).unwrap();
        }
        assert_eq!(k.queue_try_send(q, 5), Err(Error::Full));
        for m in 1..=4 {
            assert_eq!(k.queue_try_recv(q), Ok(m));
        }
        assert_eq!(k.queue_try_recv(q), Err(Error::Empty));
    }

    /// The ring buffer wraps around its storage correctly.
    #[test]
    fn queue_wraps_around() {
        let mut k = started();
        let q = k.queue_create(QUEUE_CAPACITY).unwrap();
        for round in 0..3u64 {
            for m in 0..QUEUE_CAPACITY as u64 {
                k.queue_try_send(q, round * 100 + m).unwrap();
            }
            for m in 0..QUEUE_CAPACITY as u64 {
                assert_eq!(k.queue_try_recv(q), Ok(round * 100 + m));
            }
        }
    }

    /// A blocked receiver gets the next message directly and becomes ready.
    #[test]
    fn queue_send_wakes_receiver() {
        let mut k = started();
        let q = k.queue_create(2).unwrap();
        let r = spawn(&mut k, 7);
        assert_eq!(run(&mut k, 0), r);
        assert_eq!(k.queue_recv(q), Ok(None));
        run(&mut k, 0);
        k.queue_try_send(q, 42).unwrap();
        assert_eq!(run(&mut k, 0), r);
        assert_eq!(k.take_msg(r), 42);
        assert_eq!(k.queue_len(q), Ok(0));
    }

    /// A sender blocked on a full queue gets its message in when a receiver makes room.
    #[test]
    fn queue_full_blocks_sender_until_room() {
        let mut k = started();
        let q = k.queue_create(1).unwrap();
        let s = spawn(&mut k, 7);
        assert_eq!(run(&mut k, 0), s);
        assert_eq!(k.queue_send(q, 1), Ok(false));
        assert_eq!(k.queue_send(q, 2), Ok(true));
        assert_eq!(k.queue_try_recv(q), Ok(1));
        assert_eq!(k.state(s), State::Ready);
        assert_eq!(k.queue_try_recv(q), Ok(2));
    }

    /// A capacity-0 queue is a rendezvous: the receiver takes the message from the sender.
    #[test]
    fn queue_rendezvous() {
        let mut k = started();
        let q = k.queue_create(0).unwrap();
        let s = spawn(&mut k, 7);
        assert_eq!(run(&mut k, 0), s);
        assert_eq!(k.queue_send(q, 9), Ok(true));
        assert_eq!(k.queue_try_recv(q), Ok(9));
        assert_eq!(k.state(s), State::Ready);
    }

    /// Object tables are finite.
    #[test]
    fn object_tables_fill_up() {
        let mut k = started();
        for _ in 0..MAX_MUTEXES {
            k.mutex_create().unwrap();
        }
        assert_eq!(k.mutex_create(), Err(Error::NoSlot));
    }
}
