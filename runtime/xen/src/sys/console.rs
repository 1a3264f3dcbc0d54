//! The PV console ring of a domain that is not the initial domain (`public/io/console.h`):
//! the guest writes `out[]` and advances `out_prod`, the console daemon (`xenconsoled`)
//! consumes up to `out_cons`, and an event on the console's channel tells the other side to
//! look.
//!
//! When the ring is full the writer waits for the daemon in the standard event-channel order
//! (clear the pending bit, re-check the ring, then poll), so an event the daemon sends at any
//! moment is never lost, and every poll has a timeout: a daemon that went silent stalls the
//! console for [`GIVE_UP_NS`] once, after which output that does not fit is dropped (and
//! counted) until the ring has room again, rather than hanging the domain.

use core::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

use super::hypercall;
use super::page::Page;
use super::shared_info::SharedInfo;

/// Offsets in `struct xencons_interface`.
const OUT: usize = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: usize = 3080;
const OUT_PROD: usize = 3084;

/// How long one poll for room in a full ring lasts before the ring is checked again.
const POLL_SLICE_NS: u64 = 100_000_000;
/// How long a writer waits for a daemon that frees no room before dropping output.
pub(crate) const GIVE_UP_NS: u64 = 5_000_000_000;

/// `Stall` is what a ring's writer remembers between writes about a daemon that made no room.
#[derive(Debug, Default)]
pub(crate) struct Stall {
    /// Set once a write gave up on a silent daemon: later writes to a full ring drop at once.
    stalled: AtomicBool,
    /// Bytes dropped because the daemon did not make room.
    dropped: AtomicU64,
}

impl Stall {
    const fn new() -> Stall {
        Stall {
            stalled: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    /// `dropped()` is how many bytes of output were dropped because the daemon made no room.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The domain's console ring's [`Stall`].
pub(crate) static STALL: Stall = Stall::new();

/// What the ring writer needs from the event channel and the clock; [`XenDoorbell`] is the
/// real one, tests use their own.
pub(crate) trait Doorbell {
    /// Clears the channel's pending bit.
    fn clear(&self);
    /// Signals the daemon.
    fn notify(&self);
    /// The monotonic clock, ns.
    fn now(&self) -> u64;
    /// Blocks until an event is pending on the channel or the clock reaches `deadline`.
    fn poll(&self, deadline: u64);
}

/// The console ring's event channel on Xen.
pub(crate) struct XenDoorbell<'a> {
    pub(crate) shared: &'a SharedInfo,
    pub(crate) port: u32,
}

impl Doorbell for XenDoorbell<'_> {
    fn clear(&self) {
        self.shared.clear_pending(self.port);
    }
    fn notify(&self) {
        hypercall::notify(self.port);
    }
    fn now(&self) -> u64 {
        self.shared.system_time_ns()
    }
    fn poll(&self, deadline: u64) {
        hypercall::poll(&[self.port], hypercall::poll_timeout(Some(deadline)));
    }
}

/// `Ring` is a mapped console ring and its event channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ring {
    base: usize,
    port: u32,
}

impl Ring {
    /// `new(base, port)` is the ring mapped at `base`, signalled through `port`.
    ///
    /// # Safety
    ///
    /// `base` must be where the domain's console page is mapped for the rest of the program,
    /// and only this runtime's one thread of control writes it.
    pub(crate) unsafe fn new(base: usize, port: u32) -> Ring {
        Ring { base, port }
    }

    fn page(&self) -> Page {
        // SAFETY: `new`'s contract: the page is mapped for good; `Page::mapped` never frees it.
        unsafe { Page::mapped(self.base) }
    }

    /// `write(bytes, shared)` puts all of `bytes` in the ring, waiting on the event channel
    /// while the ring is full (see the module's doc for how long).
    pub(crate) fn write(&self, bytes: &[u8], shared: &SharedInfo) {
        write(
            &self.page(),
            bytes,
            &XenDoorbell {
                shared,
                port: self.port,
            },
            &STALL,
        );
    }
}

impl Ring {
    /// `write_unwaited(bytes)` puts what fits of `bytes` in the ring and signals the daemon,
    /// without waiting for room: for a boot failure before the shared-info page, which
    /// waiting needs, is mapped (the ring is empty then, and a report fits).
    pub(crate) fn write_unwaited(&self, bytes: &[u8]) {
        put(&self.page(), bytes);
        hypercall::notify(self.port);
    }
}

/// `free(page)` is the room in the ring now, and `out_prod`.
fn free(page: &Page) -> (u32, u32) {
    let cons: u32 = page.load(OUT_CONS);
    let prod: u32 = page.load(OUT_PROD);
    fence(Ordering::SeqCst);
    (OUT_SIZE - prod.wrapping_sub(cons).min(OUT_SIZE), prod)
}

/// `put(page, bytes)` copies as much of `bytes` as fits into the ring and publishes it; it
/// returns how much.
fn put(page: &Page, bytes: &[u8]) -> usize {
    let (room, prod) = free(page);
    let n = bytes.len().min(room as usize);
    for (i, &b) in bytes[..n].iter().enumerate() {
        let at = (prod.wrapping_add(i as u32) % OUT_SIZE) as usize;
        page.store::<u8>(OUT + at, b);
    }
    // The bytes before the index that publishes them.
    fence(Ordering::SeqCst);
    page.store::<u32>(OUT_PROD, prod.wrapping_add(n as u32));
    n
}

/// `write(page, bytes, bell, stall)` is [`Ring::write`] over any [`Doorbell`].
pub(crate) fn write(page: &Page, mut bytes: &[u8], bell: &impl Doorbell, stall: &Stall) {
    let mut stalled_since = None;
    while !bytes.is_empty() {
        let n = put(page, bytes);
        if n > 0 {
            bell.notify();
            bytes = &bytes[n..];
            stalled_since = None;
            stall.stalled.store(false, Ordering::Relaxed);
            continue;
        }
        if stall.stalled.load(Ordering::Relaxed) {
            break;
        }
        // Full: clear the pending bit, then look again, so that room the daemon made (and
        // signalled) before the clear is seen now and an event after it ends the poll.
        bell.clear();
        if free(page).0 > 0 {
            continue;
        }
        bell.notify();
        let now = bell.now();
        let since = *stalled_since.get_or_insert(now);
        if now.saturating_sub(since) >= GIVE_UP_NS {
            stall.stalled.store(true, Ordering::Relaxed);
            break;
        }
        bell.poll(now.saturating_add(POLL_SLICE_NS));
    }
    stall
        .dropped
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A console daemon that reads the ring when told to, and a clock that polls advance.
    struct Daemon<'a> {
        page: &'a Page,
        /// Drain the ring (and signal) when the writer clears the pending bit, as a daemon
        /// that ran just before the clear would have.
        drain_on_clear: bool,
        /// Drain the ring after this many polls (never if None).
        drain_after_polls: Option<usize>,
        now: Cell<u64>,
        polls: RefCell<Vec<u64>>,
        out: RefCell<Vec<u8>>,
    }

    impl Daemon<'_> {
        fn drain(&self) {
            let cons: u32 = self.page.load(OUT_CONS);
            let prod: u32 = self.page.load(OUT_PROD);
            let mut c = cons;
            while c != prod {
                let b: u8 = self.page.load(OUT + (c % OUT_SIZE) as usize);
                self.out.borrow_mut().push(b);
                c = c.wrapping_add(1);
            }
            self.page.store(OUT_CONS, prod);
        }
    }

    impl Doorbell for Daemon<'_> {
        fn clear(&self) {
            if self.drain_on_clear {
                self.drain();
            }
        }
        fn notify(&self) {}
        fn now(&self) -> u64 {
            self.now.get()
        }
        fn poll(&self, deadline: u64) {
            assert!(deadline > self.now.get(), "a poll without a timeout");
            self.polls.borrow_mut().push(deadline - self.now.get());
            self.now.set(deadline);
            if self.drain_after_polls == Some(self.polls.borrow().len()) {
                self.drain();
            }
        }
    }

    fn daemon(page: &Page) -> Daemon<'_> {
        Daemon {
            page,
            drain_on_clear: false,
            drain_after_polls: None,
            now: Cell::new(1000),
            polls: RefCell::new(Vec::new()),
            out: RefCell::new(Vec::new()),
        }
    }

    /// Starts the ring's indices near the top of u32, so they wrap.
    fn wrapping_page() -> Page {
        let page = Page::new();
        page.store::<u32>(OUT_CONS, u32::MAX - 100);
        page.store::<u32>(OUT_PROD, u32::MAX - 100);
        page
    }

    #[test]
    fn room_made_before_the_pending_bit_is_cleared_is_not_lost() {
        // The defect: the ring is full, the daemon drains it and signals, then the writer
        // clears the pending bit and polls with no timeout: nothing ever wakes it. Now the
        // writer re-checks after clearing and never polls.
        let page = wrapping_page();
        let d = Daemon {
            drain_on_clear: true,
            ..daemon(&page)
        };
        let text: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        write(&page, &text, &d, &Stall::new());
        d.drain();
        assert_eq!(*d.out.borrow(), text);
        assert!(
            d.polls.borrow().is_empty(),
            "polled: {:?}",
            d.polls.borrow()
        );
    }

    #[test]
    fn a_slow_daemon_is_waited_for_with_bounded_polls() {
        let page = wrapping_page();
        let d = Daemon {
            drain_after_polls: Some(3),
            ..daemon(&page)
        };
        let text = vec![b'x'; 3000];
        let stall = Stall::new();
        write(&page, &text, &d, &stall);
        d.drain();
        assert_eq!(d.out.borrow().len(), 3000);
        assert_eq!(*d.polls.borrow(), [POLL_SLICE_NS; 3]);
        assert_eq!(stall.dropped(), 0);
    }

    #[test]
    fn a_silent_daemon_costs_one_bounded_stall_then_output_is_dropped() {
        let page = Page::new();
        let d = daemon(&page);
        let stall = Stall::new();
        write(&page, &[b'y'; 2048 + 10], &d, &stall);
        let polls = d.polls.borrow().len() as u64;
        assert_eq!(polls, GIVE_UP_NS / POLL_SLICE_NS);
        assert_eq!(stall.dropped(), 10);
        // Later writes to the still-full ring drop at once.
        write(&page, b"more", &d, &stall);
        assert_eq!(d.polls.borrow().len() as u64, polls);
        assert_eq!(stall.dropped(), 14);
        // Once the daemon drains, output flows again.
        d.drain();
        write(&page, b"back", &d, &stall);
        d.drain();
        assert_eq!(d.out.borrow().len(), 2048 + 4);
        assert!(d.out.borrow().ends_with(b"back"));
    }
}
