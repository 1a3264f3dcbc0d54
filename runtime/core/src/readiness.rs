//! `Readiness`: the registry of futures waiting for a target's I/O sources to become ready.
//!
//! Registration is one-shot, as with `EPOLLONESHOT`: a future that finds its source not ready
//! registers its interest and returns `Pending`; when the platform's [`wait`] sees the source
//! ready it wakes and forgets the waiter, and the future retries its operation, registering
//! again if it would still block. The source is whatever the target's wait primitive watches:
//! a file descriptor for `poll(2)`, an event-channel port for `SCHEDOP_poll`, a Solo5 handle
//! for `solo5_yield`.
//!
//! [`wait`]: crate::Platform::wait

use alloc::vec::Vec;
use core::ops::BitOr;
use core::task::Waker;

/// `Interest` is the kinds of readiness a waiter wants, or a source has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Interest {
    /// Ready to read (or to accept, or at end of input, or in error).
    pub read: bool,
    /// Ready to write (or in error).
    pub write: bool,
}

impl Interest {
    /// Interest in reading.
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    /// Interest in writing.
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    /// Interest in both, also what an error condition reports.
    pub const BOTH: Interest = Interest {
        read: true,
        write: true,
    };

    /// `intersects(other)` is true if the two share a kind of readiness.
    pub fn intersects(self, other: Interest) -> bool {
        (self.read && other.read) || (self.write && other.write)
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, rhs: Interest) -> Interest {
        Interest {
            read: self.read || rhs.read,
            write: self.write || rhs.write,
        }
    }
}

struct Waiter<S> {
    source: S,
    interest: Interest,
    waker: Waker,
}

/// A `Readiness<S>` holds the waiters on sources of type `S` until the platform finds them
/// ready. A platform keeps one, lets its device futures [`register`](Readiness::register)
/// with it, and in [`wait`](crate::Platform::wait) watches [`sources`](Readiness::sources)
/// and calls [`ready`](Readiness::ready).
pub struct Readiness<S> {
    waiters: Vec<Waiter<S>>,
}

impl<S> Default for Readiness<S> {
    fn default() -> Self {
        Readiness {
            waiters: Vec::new(),
        }
    }
}

impl<S: Copy + Eq> Readiness<S> {
    /// `new()` is an empty registry.
    pub const fn new() -> Self {
        Readiness {
            waiters: Vec::new(),
        }
    }

    /// `register(source, interest, waker)` wakes `waker` once `source` is ready for
    /// `interest`. Registering the same waker twice for a source merges the interests.
    pub fn register(&mut self, source: S, interest: Interest, waker: &Waker) {
        let same = self
            .waiters
            .iter_mut()
            .find(|w| w.source == source && w.waker.will_wake(waker));
        match same {
            Some(w) => w.interest = w.interest | interest,
            None => self.waiters.push(Waiter {
                source,
                interest,
                waker: waker.clone(),
            }),
        }
    }

    /// `is_empty()` is true if nothing waits on any source.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// `sources()` is each waited-on source once, with the union of its waiters' interests, in
    /// first-registration order.
    pub fn sources(&self) -> Vec<(S, Interest)> {
        let mut out: Vec<(S, Interest)> = Vec::new();
        for w in &self.waiters {
            match out.iter_mut().find(|(s, _)| *s == w.source) {
                Some((_, i)) => *i = *i | w.interest,
                None => out.push((w.source, w.interest)),
            }
        }
        out
    }

    /// `ready(source, readiness)` wakes and forgets the waiters on `source` whose interest
    /// intersects `readiness`; it returns how many it woke.
    pub fn ready(&mut self, source: S, readiness: Interest) -> usize {
        let mut woken = 0;
        self.waiters.retain(|w| {
            let hit = w.source == source && w.interest.intersects(readiness);
            if hit {
                w.waker.wake_by_ref();
                woken += 1;
            }
            !hit
        });
        woken
    }

    /// `deregister(source, waker)` drops the waiter `waker` on `source` without waking it, for
    /// a future dropped before its source became ready.
    pub fn deregister(&mut self, source: S, waker: &Waker) {
        self.waiters
            .retain(|w| !(w.source == source && w.waker.will_wake(waker)));
    }

    /// `forget(source)` wakes and forgets every waiter on `source`, for a source that is being
    /// closed: the woken futures retry and see the closed source's error.
    pub fn forget(&mut self, source: S) -> usize {
        self.ready(source, Interest::BOTH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use core::sync::atomic::{AtomicUsize, Ordering};

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn wakes_matching_waiters_once() {
        let mut r = Readiness::new();
        let (a, wa) = counter();
        let (b, wb) = counter();
        r.register(3, Interest::READ, &wa);
        r.register(3, Interest::WRITE, &wa);
        r.register(3, Interest::WRITE, &wb);
        r.register(4, Interest::READ, &wb);
        assert_eq!(r.sources(), [(3, Interest::BOTH), (4, Interest::READ)]);
        assert_eq!(r.ready(3, Interest::READ), 1);
        assert_eq!(a.0.load(Ordering::Relaxed), 1);
        assert_eq!(b.0.load(Ordering::Relaxed), 0);
        assert_eq!(r.ready(3, Interest::READ), 0);
        assert_eq!(r.forget(3), 1);
        assert_eq!(b.0.load(Ordering::Relaxed), 1);
        assert_eq!(r.sources(), [(4, Interest::READ)]);
        r.deregister(4, &wa);
        assert_eq!(r.sources(), [(4, Interest::READ)]);
        r.deregister(4, &wb);
        assert!(r.is_empty());
        r.register(4, Interest::READ, &wb);
        assert_eq!(r.ready(4, Interest::BOTH), 1);
        assert!(r.is_empty());
    }
}
