//! The single-threaded executor: one root future, spawned tasks, timers in a binary heap, and
//! a [`Platform`] that blocks until I/O or a deadline.
//!
//! Each round of [`block_on`]:
//!
//! 1. reads the platform clock and wakes every sleep whose deadline has passed;
//! 2. adopts tasks spawned since the last round;
//! 3. polls each task that was woken before the round began, once (a task that wakes itself
//!    runs again next round, so I/O and timers are never starved);
//! 4. calls [`Platform::wait`] with the earliest timer deadline, or with a deadline already
//!    passed when tasks are still ready, so that the platform can check its I/O sources
//!    without blocking.
//!
//! The root future's completion ends `block_on`, dropping the tasks left, as `Lwt_main.run`
//! does.
//!
//! Wakers are `Send` as the `Waker` contract requires, and a wake from another thread does
//! queue the task, but it does not interrupt a platform blocked in [`Platform::wait`]: the
//! task runs when the wait next returns. The runtime is built for one thread.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::{pin, Pin};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use spin::mutex::SpinMutex;

use crate::shared::{self, LocalTask, TimerEntry, TimerSlot};

/// A `Platform` is what a target gives the executor: a monotonic clock and a way to sleep
/// until something happens.
pub trait Platform {
    /// `now_ns()` is the monotonic clock in nanoseconds; sleeps' deadlines use the same clock.
    fn now_ns(&self) -> u64;

    /// `wait(deadline)` blocks until one of the platform's I/O sources is ready (waking the
    /// tasks waiting on it, see [`Readiness`](crate::Readiness)) or the clock reaches
    /// `deadline`. `None` means no deadline; a deadline already passed means "check the I/O
    /// sources without blocking". It may return early.
    fn wait(&self, deadline: Option<u64>);
}

/// The id of the root future in the ready queue.
const ROOT: usize = usize::MAX;

/// The queue of woken task ids. Wakers may be sent to other threads (the `Waker` contract),
/// so it is behind a lock; on one thread the lock is never contended.
#[derive(Default)]
struct ReadyQueue(SpinMutex<VecDeque<usize>>);

impl ReadyQueue {
    fn push(&self, id: usize) {
        self.0.lock().push_back(id);
    }

    fn pop(&self) -> Option<usize> {
        self.0.lock().pop_front()
    }

    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

/// A task's waker: wakes push the task's id once until the executor polls it.
struct TaskWaker {
    id: usize,
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.ready.push(self.id);
        }
    }
}

struct Task {
    future: LocalTask,
    state: Arc<TaskWaker>,
    waker: Waker,
}

/// Marks the executor as running and clears the shared state when `block_on` ends, however
/// it ends.
struct Running;

impl Running {
    fn enter() -> Running {
        let nested = shared::with(|s| s.running.replace(true));
        assert!(!nested, "mirage_runtime::block_on cannot run inside itself");
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let (spawned, timers) = shared::with(|s| {
            s.running.set(false);
            s.cancelled.set(0);
            (s.spawned.take(), s.timers.take())
        });
        // Dropped outside the borrow: a task's destructor may spawn or sleep.
        drop((spawned, timers));
    }
}

/// `block_on(platform, root)` runs `root` to completion on this thread, together with the
/// tasks it [`spawn`]s, and returns its output.
///
/// # Panics
///
/// If called while another `block_on` runs on the same thread.
pub fn block_on<P: Platform + ?Sized, F: Future>(platform: &P, root: F) -> F::Output {
    let _running = Running::enter();
    let ready = Arc::new(ReadyQueue::default());
    let root_state = Arc::new(TaskWaker {
        id: ROOT,
        queued: AtomicBool::new(true),
        ready: ready.clone(),
    });
    ready.push(ROOT);
    let root_waker = Waker::from(root_state.clone());
    let mut root = pin!(root);
    let mut tasks: Vec<Option<Task>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    loop {
        let now = platform.now_ns();
        shared::with(|s| s.now.set(now));
        fire_timers(now);
        adopt_spawned(&mut tasks, &mut free, &ready);
        for _ in 0..ready.len() {
            let Some(id) = ready.pop() else { break };
            if id == ROOT {
                root_state.queued.store(false, Ordering::Release);
                if let Poll::Ready(out) = root.as_mut().poll(&mut Context::from_waker(&root_waker))
                {
                    return out;
                }
            } else if let Some(slot) = tasks.get_mut(id) {
                if poll_task(slot) {
                    free.push(id);
                }
            }
            adopt_spawned(&mut tasks, &mut free, &ready);
        }
        let deadline = if ready.len() > 0 {
            Some(now)
        } else {
            next_deadline()
        };
        platform.wait(deadline);
    }
}

/// `poll_task(slot)` polls the task in `slot` once and empties the slot if it finished.
fn poll_task(slot: &mut Option<Task>) -> bool {
    let Some(task) = slot else { return false };
    task.state.queued.store(false, Ordering::Release);
    let mut cx = Context::from_waker(&task.waker);
    if task.future.as_mut().poll(&mut cx).is_ready() {
        // Drop the finished future outside the executor's bookkeeping.
        drop(slot.take());
        return true;
    }
    false
}

fn adopt_spawned(tasks: &mut Vec<Option<Task>>, free: &mut Vec<usize>, ready: &Arc<ReadyQueue>) {
    let spawned = shared::with(|s| s.spawned.take());
    for future in spawned {
        let id = free.pop().unwrap_or(tasks.len());
        let state = Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(true),
            ready: ready.clone(),
        });
        ready.push(id);
        let waker = Waker::from(state.clone());
        let task = Some(Task {
            future,
            state,
            waker,
        });
        if id == tasks.len() {
            tasks.push(task);
        } else {
            tasks[id] = task;
        }
    }
}

/// `fire_timers(now)` wakes every sleep due at `now` and drops cancelled entries.
fn fire_timers(now: u64) {
    let mut due = Vec::new();
    shared::with(|s| {
        let mut timers = s.timers.borrow_mut();
        while timers.peek().is_some_and(|t| t.deadline <= now) {
            if let Some(t) = timers.pop() {
                if t.slot.cancelled.get() {
                    s.cancelled.set(s.cancelled.get().saturating_sub(1));
                } else {
                    t.slot.fired.set(true);
                    due.extend(t.slot.waker.take());
                }
            }
        }
        // Dropped sleeps stay in the heap until their deadline; compact when they dominate.
        if s.cancelled.get() > 64 && s.cancelled.get() > timers.len() / 2 {
            timers.retain(|t| !t.slot.cancelled.get());
            s.cancelled.set(0);
        }
    });
    due.into_iter().for_each(Waker::wake);
}

/// `next_deadline()` is the earliest deadline of a live sleep.
fn next_deadline() -> Option<u64> {
    shared::with(|s| {
        let mut timers = s.timers.borrow_mut();
        while timers.peek().is_some_and(|t| t.slot.cancelled.get()) {
            timers.pop();
            s.cancelled.set(s.cancelled.get().saturating_sub(1));
        }
        timers.peek().map(|t| t.deadline)
    })
}

/// `spawn(future)` runs `future` as a new task of the running executor, concurrently with the
/// others; the returned handle can be awaited for its output or dropped to detach it.
///
/// Tasks spawned outside [`block_on`] start when it next runs.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let state = Rc::new(RefCell::new(JoinState::Running(None)));
    let result = state.clone();
    let task: LocalTask = Box::pin(async move {
        let out = future.await;
        let previous = result.replace(JoinState::Done(out));
        if let JoinState::Running(Some(waker)) = previous {
            waker.wake();
        }
    });
    shared::with(|s| s.spawned.borrow_mut().push(task));
    JoinHandle { state }
}

enum JoinState<T> {
    Running(Option<Waker>),
    Done(T),
    Taken,
}

/// A `JoinHandle` is a spawned task's result, available once the task finishes.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> JoinHandle<T> {
    /// `is_finished()` is true once the task has returned.
    pub fn is_finished(&self) -> bool {
        !matches!(*self.state.borrow(), JoinState::Running(_))
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.borrow_mut();
        match core::mem::replace(&mut *state, JoinState::Taken) {
            JoinState::Done(out) => Poll::Ready(out),
            JoinState::Running(_) => {
                *state = JoinState::Running(Some(cx.waker().clone()));
                Poll::Pending
            }
            JoinState::Taken => panic!("a JoinHandle was polled after it completed"),
        }
    }
}

/// `now_ns()` is the platform clock as read at the start of the current executor round (0
/// outside [`block_on`]): a cheap clock for portable devices, such as the direct TCP/IP stack,
/// that have no clock device of their own.
pub fn now_ns() -> u64 {
    shared::with(|s| s.now.get())
}

/// `sleep_until(deadline)` completes once the platform clock reaches `deadline` (in
/// [`Platform::now_ns`] nanoseconds). Targets' `Time` devices are built on it.
pub fn sleep_until(deadline: u64) -> Sleep {
    Sleep {
        deadline,
        slot: None,
    }
}

/// A `Sleep` is the future returned by [`sleep_until`]. Dropping it cancels the timer.
pub struct Sleep {
    deadline: u64,
    slot: Option<Rc<TimerSlot>>,
}

impl Sleep {
    /// `deadline()` is the clock value at which the sleep completes.
    pub fn deadline(&self) -> u64 {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.slot {
            Some(slot) if slot.fired.get() => Poll::Ready(()),
            Some(slot) => {
                let mut waker = slot.waker.borrow_mut();
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            None => {
                let deadline = self.deadline;
                if shared::with(|s| s.running.get() && s.now.get() >= deadline) {
                    return Poll::Ready(());
                }
                let slot = Rc::new(TimerSlot::default());
                *slot.waker.borrow_mut() = Some(cx.waker().clone());
                shared::with(|s| {
                    let seq = s.next_seq.get();
                    s.next_seq.set(seq.wrapping_add(1));
                    s.timers.borrow_mut().push(TimerEntry {
                        deadline,
                        seq,
                        slot: slot.clone(),
                    });
                });
                self.slot = Some(slot);
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            if !slot.fired.get() {
                slot.cancelled.set(true);
                shared::with(|s| s.cancelled.set(s.cancelled.get() + 1));
            }
        }
    }
}

/// `yield_now()` lets every other ready task run once before the caller continues.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::{Interest, Readiness};
    use alloc::vec;
    use core::cell::Cell;

    /// A platform on virtual time: waiting jumps the clock to the deadline.
    #[derive(Default)]
    struct Virtual {
        now: Cell<u64>,
        waits: Cell<usize>,
    }

    impl Platform for Virtual {
        fn now_ns(&self) -> u64 {
            self.now.get()
        }
        fn wait(&self, deadline: Option<u64>) {
            self.waits.set(self.waits.get() + 1);
            let deadline = deadline.expect("the executor waited with nothing to wait for");
            self.now.set(self.now.get().max(deadline));
        }
    }

    #[test]
    fn root_output_is_returned() {
        assert_eq!(block_on(&Virtual::default(), async { 42 }), 42);
    }

    #[test]
    fn sleeps_complete_in_deadline_order() {
        let p = Virtual::default();
        let log = Rc::new(RefCell::new(Vec::new()));
        let out = block_on(&p, async {
            let mut handles = Vec::new();
            for (name, at) in [("c", 30), ("a", 10), ("b", 20), ("a2", 10)] {
                let log = log.clone();
                handles.push(spawn(async move {
                    sleep_until(at).await;
                    log.borrow_mut().push((name, at));
                    at
                }));
            }
            let mut sum = 0;
            for h in handles {
                sum += h.await;
            }
            sum
        });
        assert_eq!(out, 70);
        assert_eq!(
            *log.borrow(),
            vec![("a", 10), ("a2", 10), ("b", 20), ("c", 30)]
        );
        assert_eq!(p.now.get(), 30);
    }

    #[test]
    fn past_deadlines_are_ready_and_dropped_sleeps_do_not_wake() {
        let p = Virtual::default();
        p.now.set(100);
        block_on(&p, async {
            sleep_until(50).await;
            let mut early = Box::pin(sleep_until(1_000));
            let waker = Waker::noop();
            assert!(early
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending());
            drop(early);
            sleep_until(200).await;
        });
        assert_eq!(
            p.now.get(),
            200,
            "the dropped sleep's deadline was waited for"
        );
    }

    #[test]
    fn yield_now_interleaves_tasks() {
        let log = Rc::new(RefCell::new(Vec::new()));
        block_on(&Virtual::default(), async {
            let tasks: Vec<_> = ["x", "y"]
                .into_iter()
                .map(|name| {
                    let log = log.clone();
                    spawn(async move {
                        for i in 0..3 {
                            log.borrow_mut().push((name, i));
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
        });
        let names: Vec<&str> = log.borrow().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["x", "y", "x", "y", "x", "y"]);
    }

    #[test]
    fn root_ends_the_run_and_drops_remaining_tasks() {
        let p = Virtual::default();
        let dropped = Rc::new(Cell::new(false));
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let flag = Flag(dropped.clone());
        block_on(&p, async move {
            spawn(async move {
                let _flag = flag;
                sleep_until(u64::MAX).await;
            });
            sleep_until(5).await;
        });
        assert!(dropped.get());
        // The executor's state is clean for the next run.
        assert_eq!(block_on(&p, async { 1 }), 1);
    }

    /// A platform whose one I/O source becomes ready at a given time.
    struct Io {
        clock: Virtual,
        ready_at: u64,
        waiters: RefCell<Readiness<u32>>,
    }

    impl Platform for Io {
        fn now_ns(&self) -> u64 {
            self.clock.now_ns()
        }
        fn wait(&self, deadline: Option<u64>) {
            let io = (!self.waiters.borrow().is_empty()).then_some(self.ready_at);
            let until = match (deadline, io) {
                (Some(d), Some(i)) => Some(d.min(i)),
                (d, i) => d.or(i),
            };
            self.clock.wait(until);
            if self.clock.now_ns() >= self.ready_at {
                self.waiters.borrow_mut().ready(7, Interest::READ);
            }
        }
    }

    #[test]
    fn io_readiness_wakes_the_waiting_task() {
        let p = Io {
            clock: Virtual::default(),
            ready_at: 40,
            waiters: RefCell::new(Readiness::new()),
        };
        let got = block_on(&p, async {
            let ticker = spawn(async {
                sleep_until(10).await;
                sleep_until(20).await;
            });
            core::future::poll_fn(|cx| {
                if p.now_ns() >= p.ready_at {
                    Poll::Ready(p.now_ns())
                } else {
                    p.waiters
                        .borrow_mut()
                        .register(7, Interest::READ, cx.waker());
                    Poll::Pending
                }
            })
            .await
            .max({
                ticker.await;
                0
            })
        });
        assert_eq!(got, 40);
    }

    #[test]
    #[should_panic(expected = "cannot run inside itself")]
    fn nested_block_on_panics() {
        let p = Virtual::default();
        block_on(&p, async { block_on(&Virtual::default(), async {}) });
    }
}
