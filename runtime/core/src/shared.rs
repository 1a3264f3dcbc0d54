//! The executor's state that futures reach without a handle: timers, tasks spawned but not yet
//! adopted, the cached clock. It lives in a static only in bare-metal images (the
//! `mirage_xen_image` or `mirage_solo5_image` cfg, without `std`), which have one thread of
//! control; every other build, including a hosted build with only the `bare-metal` feature
//! (the bare-metal runtimes' own tests and checks), keeps it in a thread-local, so that the
//! safe [`spawn`](crate::spawn) and [`block_on`](crate::block_on) stay sound on any number of
//! threads. [`with`] is the only way to it.

use alloc::boxed::Box;
use alloc::collections::BinaryHeap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::cmp::Ordering;
use core::future::Future;
use core::pin::Pin;
use core::task::Waker;

/// A spawned task's future.
pub(crate) type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// One pending sleep, shared between its [`Sleep`](crate::Sleep) future and the timer heap.
#[derive(Default)]
pub(crate) struct TimerSlot {
    pub(crate) waker: RefCell<Option<Waker>>,
    pub(crate) fired: Cell<bool>,
    pub(crate) cancelled: Cell<bool>,
}

/// A timer heap entry, ordered so that the earliest deadline is the heap's maximum.
pub(crate) struct TimerEntry {
    pub(crate) deadline: u64,
    pub(crate) seq: u64,
    pub(crate) slot: Rc<TimerSlot>,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for TimerEntry {}

impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

/// The executor's shared state.
pub(crate) struct Shared {
    /// Whether [`block_on`](crate::block_on) is running.
    pub(crate) running: Cell<bool>,
    /// The platform clock as read at the start of the current executor round.
    pub(crate) now: Cell<u64>,
    pub(crate) timers: RefCell<BinaryHeap<TimerEntry>>,
    /// Sequence numbers keep timers with equal deadlines in registration order.
    pub(crate) next_seq: Cell<u64>,
    /// How many heap entries belong to dropped sleeps.
    pub(crate) cancelled: Cell<usize>,
    pub(crate) spawned: RefCell<Vec<LocalTask>>,
}

impl Shared {
    const fn new() -> Shared {
        Shared {
            running: Cell::new(false),
            now: Cell::new(0),
            timers: RefCell::new(BinaryHeap::new()),
            next_seq: Cell::new(0),
            cancelled: Cell::new(0),
            spawned: RefCell::new(Vec::new()),
        }
    }
}

#[cfg(not(all(
    any(mirage_xen_image, mirage_solo5_image),
    not(any(feature = "std", test))
)))]
std::thread_local! {
    static SHARED: Shared = const { Shared::new() };
}

/// `with(f)` runs `f` on this thread's executor state.
#[cfg(not(all(
    any(mirage_xen_image, mirage_solo5_image),
    not(any(feature = "std", test))
)))]
pub(crate) fn with<R>(f: impl FnOnce(&Shared) -> R) -> R {
    SHARED.with(f)
}

#[cfg(all(
    any(mirage_xen_image, mirage_solo5_image),
    not(any(feature = "std", test))
))]
static SHARED: crate::sys::SingleCore<Shared> = crate::sys::SingleCore(Shared::new());

/// `with(f)` runs `f` on the executor state.
#[cfg(all(
    any(mirage_xen_image, mirage_solo5_image),
    not(any(feature = "std", test))
))]
pub(crate) fn with<R>(f: impl FnOnce(&Shared) -> R) -> R {
    f(&SHARED.0)
}
