//! Event channels bound to the executor's one wait primitive.
//!
//! A device future that finds its ring without work registers its interest in the ring's
//! port ([`Channel::register`]) in a [`Readiness`] registry and returns `Pending`. The
//! platform's wait ([`wait`]) takes the pending bits of every registered port and, if none was
//! set, sleeps in `SCHEDOP_poll` on those ports with the next timer deadline as timeout; the
//! ports that had an event wake their waiters, which look at their rings again. Upcalls stay
//! masked: no interrupt or callback code exists.
//!
//! No event is lost: a future checks its ring (with the ring's final check, which asks the
//! backend for the next signal) before it registers, and the wait takes the pending bits after
//! the registration, so an event sent at any point either shows in the ring check or leaves a
//! bit set that ends the wait at once.

use alloc::vec::Vec;
use core::task::Waker;

use mirage_runtime::{Interest, Readiness};

use crate::sys;

/// The futures waiting on each port.
static WAITERS: spin::Mutex<Readiness<u32>> = spin::Mutex::new(Readiness::new());

/// `wait(deadline)` is the platform's wait: until an event on a port some future waits on, or
/// the clock reaches `deadline` (forever if `None`).
pub(crate) fn wait(deadline: Option<u64>) {
    let ports: Vec<u32> = WAITERS
        .lock()
        .sources()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let ready = sys::wait(&ports, deadline);
    if ready.is_empty() {
        return;
    }
    let mut waiters = WAITERS.lock();
    for port in ready {
        waiters.ready(port, Interest::BOTH);
    }
}

/// `Channel` is an event channel of ours: the xenstore's (bound by the toolstack), or one
/// allocated for a device's backend, closed when dropped.
#[derive(Debug)]
pub(crate) struct Channel {
    port: u32,
    owned: bool,
}

impl Channel {
    /// `bound(port)` is the channel `port`, which the toolstack bound for us.
    pub(crate) fn bound(port: u32) -> Channel {
        Channel { port, owned: false }
    }

    /// `alloc(remote)` is a new channel for domain `remote` to bind (`EVTCHNOP_alloc_unbound`),
    /// or Xen's error.
    pub(crate) fn alloc(remote: u16) -> Result<Channel, i64> {
        sys::alloc_unbound(remote).map(|port| Channel { port, owned: true })
    }

    /// `port()` is the channel's port number, as written to xenstore.
    pub(crate) fn port(&self) -> u32 {
        self.port
    }

    /// `notify()` signals the other end.
    pub(crate) fn notify(&self) {
        sys::notify(self.port);
    }

    /// `register(waker)` wakes `waker` after the next event on the channel (once).
    pub(crate) fn register(&self, waker: &Waker) {
        WAITERS.lock().register(self.port, Interest::READ, waker);
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Futures still waiting see the device closed when they retry.
        WAITERS.lock().forget(self.port);
        if self.owned {
            sys::close(self.port);
        }
    }
}
