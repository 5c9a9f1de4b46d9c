//! The RTOS as tasks see it: spawning, sleeping, periodic release, semaphores, mutexes and
//! queues; and the exception handler that switches between tasks.
//!
//! CPU 0 runs one [`Kernel`] (the policy, host-tested in [`crate::sched`]) behind an
//! [`IrqLock`]. Every task has its own stack in [`STACKS`]; a task that is not running has
//! its complete [`Frame`] on top of its stack. Switching is done in exactly one place,
//! [`guest_exception`]: after handling the exception it asks the kernel which frame to resume
//! and reprograms the timer with the kernel's next deadline. A task that blocks or sleeps
//! updates the kernel state and then issues `svc #0`, which enters that same path.
//!
//! Interrupt handlers may only use the non-blocking calls (`post`, `try_*`); blocking calls
//! from an interrupt handler or before [`start`] panic (they are kernel invariants, not inputs).

use core::cell::UnsafeCell;
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, Ordering};

use aarch64_cpu::registers::{ESR_EL1, Readable};

use super::cpu::{self, IrqLock};
use super::frame::{Frame, new_task};
use super::{channel, fault, gic, smp, timer};
use crate::board::{SGI_PING, SGI_PONG, TIMER_VIRT_INTID};
use crate::sched::sync::{MutexId, QueueId, SemId};
use crate::sched::{Error, JobEnd, Kernel, MAX_TASKS, Priority, SavedFrame, TaskId};
use crate::time::Ticks;

/// Stack size of every task.
pub const STACK_SIZE: usize = 16 * 1024;
/// Written at the lowest word of every task stack; checked at each switch.
const STACK_CANARY: u64 = 0x5354_4143_4B21_2121;

#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; STACK_SIZE]>);

struct Stacks([Stack; MAX_TASKS]);

// SAFETY: a stack is written only by the task that owns its slot, or by `spawn` while the slot
// is free (under the kernel lock); the kernel never hands one slot to two tasks.
unsafe impl Sync for Stacks {}

static STACKS: Stacks = Stacks([const { Stack(UnsafeCell::new([0; STACK_SIZE])) }; MAX_TASKS]);

static KERNEL: IrqLock<Kernel> = IrqLock::new(Kernel::new());
static STARTED: AtomicBool = AtomicBool::new(false);

/// Exception kinds passed by guest-rt's vectors.
const KIND_SYNC: u64 = guest_rt::KIND_SYNC;
const KIND_IRQ: u64 = guest_rt::KIND_IRQ;
/// `ESR_EL1.EC` of an SVC from AArch64.
const EC_SVC64: u64 = 0x15;

/// Whether the scheduler runs (CPU 0).
pub fn started() -> bool {
    STARTED.load(Ordering::Acquire)
}

fn stack_base(t: TaskId) -> usize {
    STACKS.0[t.index()].0.get() as usize
}

/// Where every task starts (`x0` = its entry function, `x1` = its argument).
extern "C" fn task_trampoline(entry: usize, arg: usize) -> ! {
    // SAFETY: `initial_frame` put a `fn(usize)` in x0, so `entry` is a valid function pointer.
    let entry = unsafe { core::mem::transmute::<usize, fn(usize)>(entry) };
    entry(arg);
    exit()
}

/// Builds a new task's first frame at the top of its stack.
fn initial_frame(t: TaskId, entry: fn(usize), arg: usize) -> SavedFrame {
    let base = stack_base(t);
    let frame = base + STACK_SIZE - size_of::<Frame>();
    let trampoline: extern "C" fn(usize, usize) -> ! = task_trampoline;
    // SAFETY: the slot is free (the kernel is choosing it for this task under its lock), so
    // nothing else uses this stack; `base` is 16-aligned and the canary word lies inside it.
    unsafe { (base as *mut u64).write(STACK_CANARY) };
    // SAFETY: as above; `frame` is 16-aligned (STACK_SIZE and size_of::<Frame>() are multiples
    // of 16) and the whole Frame lies inside the stack.
    unsafe {
        (frame as *mut Frame).write(new_task(
            trampoline as usize as u64,
            entry as usize as u64,
            arg as u64,
        ))
    };
    SavedFrame(frame)
}

fn check_canary(t: TaskId, name: &str) {
    // SAFETY: the canary word is inside the task's stack, which stays allocated; a plain read.
    let canary = unsafe { (stack_base(t) as *const u64).read_volatile() };
    if canary != STACK_CANARY {
        panic!("stack overflow in task {name}");
    }
}

/// Creates a task running `entry(arg)` at priority `prio` (1..=255, higher is more urgent).
/// May be called before [`start`] or from a task (it then preempts if more urgent).
pub fn spawn(
    name: &'static str,
    prio: Priority,
    entry: fn(usize),
    arg: usize,
) -> Result<TaskId, Error> {
    let id = KERNEL.with(|k| k.spawn(name, prio, false, |t| initial_frame(t, entry, arg)))?;
    preempt_if_needed();
    Ok(id)
}

fn idle(_: usize) {
    loop {
        cpu::wfi();
    }
}

/// Starts scheduling on CPU 0 with the tasks spawned so far (plus the idle task). IRQs are
/// unmasked by the first task's frame.
pub fn start() -> ! {
    let first = KERNEL.with(|k| {
        k.spawn("idle", 0, true, |t| initial_frame(t, idle, 0))
            .expect("a free slot for the idle task");
        let first = k.switch(cpu::now(), SavedFrame(0));
        timer::program(k.next_deadline());
        first
    });
    STARTED.store(true, Ordering::Release);
    // SAFETY: `first` is a complete initial frame on the first task's own stack (EL1h, the
    // task trampoline); guest-rt switches SP to it and ERETs into the task, never returning.
    unsafe { guest_rt::resume(first.0 as *mut Frame) }
}

/// Enters the scheduler (`svc #0`): the current task continues only when it is again the most
/// urgent ready task.
fn reschedule() {
    assert!(
        started() && !cpu::irqs_masked(),
        "blocking call outside task context"
    );
    // SAFETY: the SVC exception saves and restores the complete context (entry.S), so no
    // register is clobbered; it is not `nomem` because the kernel state changes meanwhile.
    unsafe { core::arch::asm!("svc #0") };
}

fn preempt_if_needed() {
    if started() && !cpu::irqs_masked() && KERNEL.with(|k| k.need_resched()) {
        reschedule();
    }
}

/// Runs a kernel operation; if it blocked the caller (`Ok(true)`), switch away until it
/// completes; otherwise preempt if it made a more urgent task ready.
fn blocking(op: impl FnOnce(&mut Kernel) -> Result<bool, Error>) -> Result<(), Error> {
    if KERNEL.with(op)? {
        reschedule();
    } else {
        preempt_if_needed();
    }
    Ok(())
}

/// Now.
pub fn now() -> Ticks {
    cpu::now()
}

/// The running task.
pub fn current() -> TaskId {
    KERNEL.with(|k| k.cur())
}

/// `(base, effective)` priority of `t`.
pub fn priority(t: TaskId) -> (Priority, Priority) {
    KERNEL.with(|k| k.priority(t))
}

/// Context switches so far.
pub fn switches() -> u64 {
    KERNEL.with(|k| k.switches())
}

/// Sleeps until the absolute instant `at`.
pub fn sleep_until(at: Ticks) {
    KERNEL.with(|k| k.sleep_until(at));
    reschedule();
}

/// Sleeps for `d`.
pub fn sleep(d: Ticks) {
    sleep_until(now().plus(d));
}

/// Lets other ready tasks of the same priority run.
pub fn yield_now() {
    KERNEL.with(|k| k.yield_now());
    reschedule();
}

/// Ends the calling task (also what returning from its entry function does).
pub fn exit() -> ! {
    KERNEL.with(|k| k.exit());
    reschedule();
    unreachable!("an exited task was resumed");
}

/// Makes the calling task periodic (first release `first`, then every `period`, deadline
/// `deadline` after each release) and waits for the first release. Returns the release
/// latency (release instant → running).
pub fn start_periodic(first: Ticks, period: Ticks, deadline: Ticks) -> Ticks {
    KERNEL.with(|k| k.set_periodic(first, period, deadline));
    sleep_until(first);
    now().since(first)
}

/// Ends the current job and waits for the next release. Returns how the job ended and the
/// next job's release latency (release instant → running again).
pub fn wait_next_period() -> (JobEnd, Ticks) {
    let end = KERNEL
        .with(|k| k.wait_next_period(now()))
        .expect("wait_next_period in a non-periodic task");
    reschedule();
    (end, now().since(end.next_release))
}

/// A counting semaphore.
#[derive(Clone, Copy, Debug)]
pub struct Semaphore(SemId);

impl Semaphore {
    /// A semaphore with `initial` counts, at most `max`.
    pub fn new(initial: u32, max: u32) -> Result<Self, Error> {
        KERNEL.with(|k| k.sem_create(initial, max)).map(Self)
    }

    /// Takes a count, blocking until one is available.
    pub fn wait(&self) {
        blocking(|k| k.sem_wait(self.0)).expect("valid semaphore");
    }

    /// Takes a count if available, without blocking.
    pub fn try_wait(&self) -> bool {
        KERNEL.with(|k| k.sem_try_wait(self.0)).is_ok()
    }

    /// Gives a count (also from interrupt handlers). `Err(Full)` at the maximum.
    pub fn post(&self) -> Result<(), Error> {
        KERNEL.with(|k| k.sem_post(self.0))?;
        preempt_if_needed();
        Ok(())
    }

    /// The current count.
    pub fn count(&self) -> u32 {
        KERNEL.with(|k| k.sem_count(self.0)).unwrap_or(0)
    }
}

/// A mutex with priority inheritance. [`Mutex::lock`] returns a guard that unlocks on drop.
#[derive(Clone, Copy, Debug)]
pub struct Mutex(MutexId);

/// Holds a [`Mutex`] until dropped.
#[must_use = "the mutex is unlocked when the guard is dropped"]
pub struct MutexGuard(MutexId);

impl Mutex {
    /// An unlocked mutex.
    pub fn new() -> Result<Self, Error> {
        KERNEL.with(|k| k.mutex_create()).map(Self)
    }

    /// The mutex with raw id `raw` (see [`Mutex::raw`]).
    pub const fn from_raw(raw: u8) -> Self {
        Self(MutexId(raw))
    }

    /// The raw id.
    pub const fn raw(&self) -> u8 {
        self.0.0
    }

    /// Locks, blocking (and lending the caller's priority to the owner) while it is taken.
    pub fn lock(&self) -> MutexGuard {
        blocking(|k| k.mutex_lock(self.0)).expect("valid, non-recursive mutex lock");
        MutexGuard(self.0)
    }

    /// The owner, if locked.
    pub fn owner(&self) -> Option<TaskId> {
        KERNEL.with(|k| k.mutex_owner(self.0)).ok().flatten()
    }
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        KERNEL
            .with(|k| k.mutex_unlock(self.0))
            .expect("the guard's task owns the mutex");
        preempt_if_needed();
    }
}

/// A queue of `u64` messages.
#[derive(Clone, Copy, Debug)]
pub struct Queue(QueueId);

impl Queue {
    /// A queue of up to `capacity` messages (0: rendezvous).
    pub fn new(capacity: usize) -> Result<Self, Error> {
        KERNEL.with(|k| k.queue_create(capacity)).map(Self)
    }

    /// Sends, blocking while the queue is full.
    pub fn send(&self, msg: u64) {
        blocking(|k| k.queue_send(self.0, msg)).expect("valid queue");
    }

    /// Sends without blocking (also from interrupt handlers); `Err(Full)` if no room.
    pub fn try_send(&self, msg: u64) -> Result<(), Error> {
        KERNEL.with(|k| k.queue_try_send(self.0, msg))?;
        preempt_if_needed();
        Ok(())
    }

    /// Receives, blocking while the queue is empty.
    pub fn recv(&self) -> u64 {
        let got = KERNEL.with(|k| k.queue_recv(self.0)).expect("valid queue");
        match got {
            Some(msg) => {
                preempt_if_needed();
                msg
            }
            None => {
                reschedule();
                KERNEL.with(|k| k.take_msg(k.cur()))
            }
        }
    }

    /// Receives without blocking; `Err(Empty)` if nothing is there.
    pub fn try_recv(&self) -> Result<u64, Error> {
        let msg = KERNEL.with(|k| k.queue_try_recv(self.0))?;
        preempt_if_needed();
        Ok(msg)
    }
}

/// Takes and dispatches every pending interrupt.
fn handle_irqs(entry: Ticks) {
    while let Some((intid, iar)) = gic::ack() {
        match intid {
            TIMER_VIRT_INTID => timer::on_irq(entry),
            SGI_PING => smp::on_ping(),
            SGI_PONG => smp::on_pong(entry),
            _ => {
                channel::on_irq(intid);
            }
        }
        gic::eoi(iar);
    }
}

/// Called by guest-rt's vectors for every exception with the saved frame, the exception kind
/// and the counter value at vector entry; returns the frame to resume.
#[unsafe(no_mangle)]
extern "C" fn guest_exception(frame: *mut Frame, kind: u64, entry: u64) -> *mut Frame {
    match kind {
        KIND_IRQ => handle_irqs(Ticks(entry)),
        KIND_SYNC if ESR_EL1.read(ESR_EL1::EC) == EC_SVC64 => {}
        _ => {
            // SAFETY: `frame` is the complete frame guest-rt's vectors just saved on this stack.
            fault::exception(unsafe { &*frame }, kind)
        }
    }
    if cpu::index() != 0 || !started() {
        return frame;
    }
    KERNEL.with(|k| {
        let next = k.switch(cpu::now(), SavedFrame(frame as usize));
        timer::program(k.next_deadline());
        let cur = k.cur();
        check_canary(cur, k.task(cur).name);
        next.0 as *mut Frame
    })
}
