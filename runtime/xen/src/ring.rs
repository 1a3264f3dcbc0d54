//! [`FrontRing`]: the frontend's side of a Xen shared I/O ring (`public/io/ring.h`), the
//! producer-consumer page netif and blkif requests and responses travel through.
//!
//! The page starts with a 64-byte header (`req_prod@0`, `req_event@4`, `rsp_prod@8`,
//! `rsp_event@12`) and holds a power-of-two number of entries, each the size of the larger of
//! a request and a response. The frontend keeps two private indices: `req_prod_pvt`, the
//! requests written but not yet published, and `rsp_cons`, the responses consumed. All indices
//! are free-running `u32`s; an entry's slot is its index modulo the ring size.
//!
//! The rules the backend relies on, each in one method: requests are published after their
//! contents ([`FrontRing::push_requests`]), and the backend is signalled only if it asked to
//! be (`req_event`, the `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY` test); before waiting for
//! responses the frontend asks to be signalled and then looks again
//! ([`FrontRing::final_check_for_responses`]), so none slips between the look and the wait;
//! a response is copied out once ([`FrontRing::response`]) and a backend that claims more
//! responses than the ring holds is refused ([`RingError::Overrun`]).

use core::fmt;
use core::sync::atomic::{fence, Ordering};

use crate::sys::page::{Page, PAGE_SIZE};

/// The size of the shared ring's header.
const HEADER: usize = 64;
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;

/// `RingError` is a backend breaking the ring's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RingError {
    /// `rsp_prod` claims more unconsumed responses than the ring has entries, or responses to
    /// requests never made.
    Overrun {
        /// The backend's `rsp_prod`.
        rsp_prod: u32,
        /// Our `rsp_cons`.
        rsp_cons: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overrun { rsp_prod, rsp_cons } => write!(
                f,
                "the backend broke the ring protocol (rsp_prod {rsp_prod}, rsp_cons {rsp_cons})"
            ),
        }
    }
}

/// `FrontRing` is a shared ring seen from the frontend.
#[derive(Debug)]
pub(crate) struct FrontRing {
    page: Page,
    entry_size: usize,
    size: u32,
    req_prod_pvt: u32,
    rsp_cons: u32,
}

/// `ring_size(entry_size)` is how many entries of `entry_size` bytes a one-page ring holds:
/// the room after the header, rounded down to a power of two (`__RING_SIZE`).
pub(crate) const fn ring_size(entry_size: usize) -> u32 {
    let fit = ((PAGE_SIZE - HEADER) / entry_size) as u32;
    if fit == 0 {
        0
    } else {
        1 << (31 - fit.leading_zeros())
    }
}

impl FrontRing {
    /// `new(page, entry_size)` initialises `page` as an empty ring of entries of `entry_size`
    /// bytes (`SHARED_RING_INIT` then `FRONT_RING_INIT`): producers at 0, both event indices
    /// at 1, so the first request and the first response are signalled.
    pub(crate) fn new(page: Page, entry_size: usize) -> FrontRing {
        page.zero();
        page.store::<u32>(REQ_EVENT, 1);
        page.store::<u32>(RSP_EVENT, 1);
        FrontRing {
            page,
            entry_size,
            size: ring_size(entry_size),
            req_prod_pvt: 0,
            rsp_cons: 0,
        }
    }

    /// `page()` is the ring's page (to grant it to the backend).
    pub(crate) fn page(&self) -> &Page {
        &self.page
    }

    /// `free_requests()` is how many requests can be written now (`RING_FREE_REQUESTS`).
    pub(crate) fn free_requests(&self) -> u32 {
        self.size - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    fn slot(&self, index: u32) -> usize {
        HEADER + (index & (self.size - 1)) as usize * self.entry_size
    }

    /// `next_request(entry)` writes `entry` (at most the entry size) as the next request,
    /// unpublished; it returns `false`, writing nothing, if the ring is full.
    pub(crate) fn next_request(&mut self, entry: &[u8]) -> bool {
        assert!(
            entry.len() <= self.entry_size,
            "a request larger than its ring's entries"
        );
        if self.free_requests() == 0 {
            return false;
        }
        self.page.write(self.slot(self.req_prod_pvt), entry);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        true
    }

    /// `push_requests()` publishes the requests written since the last push and says whether
    /// the backend must be signalled (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`): only if it set
    /// `req_event` within the requests just published.
    pub(crate) fn push_requests(&mut self) -> bool {
        let old: u32 = self.page.load(REQ_PROD);
        let new = self.req_prod_pvt;
        if old == new {
            return false;
        }
        // The requests' contents before the index that publishes them.
        fence(Ordering::SeqCst);
        self.page.store::<u32>(REQ_PROD, new);
        // The index before reading which event the backend waits for.
        fence(Ordering::SeqCst);
        let event: u32 = self.page.load(REQ_EVENT);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    /// `unconsumed()` is how many responses the backend has published that we have not
    /// consumed, checked against the ring's size and the requests outstanding.
    pub(crate) fn unconsumed(&self) -> Result<u32, RingError> {
        let prod: u32 = self.page.load(RSP_PROD);
        // The index before the responses it publishes.
        fence(Ordering::SeqCst);
        let n = prod.wrapping_sub(self.rsp_cons);
        let outstanding = self.req_prod_pvt.wrapping_sub(self.rsp_cons);
        if n > self.size || n > outstanding {
            return Err(RingError::Overrun {
                rsp_prod: prod,
                rsp_cons: self.rsp_cons,
            });
        }
        Ok(n)
    }

    /// `response(out)` copies the next unconsumed response into `out` (once: the backend may
    /// change the slot afterwards) and consumes it. The caller checks [`unconsumed`] first.
    ///
    /// [`unconsumed`]: FrontRing::unconsumed
    pub(crate) fn response(&mut self, out: &mut [u8]) {
        assert!(out.len() <= self.entry_size);
        self.page.read(self.slot(self.rsp_cons), out);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
    }

    /// `final_check_for_responses()` says whether responses are waiting; if none are, it
    /// first asks the backend to signal the next one (`rsp_event = rsp_cons + 1`) and looks
    /// again, so that a response published in between is not missed
    /// (`RING_FINAL_CHECK_FOR_RESPONSES`).
    pub(crate) fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.unconsumed()? > 0 {
            return Ok(true);
        }
        self.page
            .store::<u32>(RSP_EVENT, self.rsp_cons.wrapping_add(1));
        fence(Ordering::SeqCst);
        Ok(self.unconsumed()? > 0)
    }

    /// `rsp_cons()` is the index of the next response to consume.
    pub(crate) fn rsp_cons(&self) -> u32 {
        self.rsp_cons
    }

    /// `req_prod_pvt()` is the index the next request will take.
    pub(crate) fn req_prod_pvt(&self) -> u32 {
        self.req_prod_pvt
    }
}

/// A simulated backend for tests: consumes requests and produces responses on the same page,
/// following ring.h's back-ring rules.
#[cfg(test)]
pub(crate) mod backend {
    use super::*;

    /// `BackRing` is the backend's view of a ring page.
    pub(crate) struct BackRing {
        page: Page,
        entry_size: usize,
        size: u32,
        /// Requests consumed.
        pub(crate) req_cons: u32,
        /// Responses written, unpublished.
        pub(crate) rsp_prod_pvt: u32,
    }

    impl BackRing {
        /// `attach(ring)` is a backend view of `ring`'s page.
        pub(crate) fn attach(ring: &FrontRing) -> BackRing {
            // A second, unowned view of the same heap page: the test keeps the front ring
            // alive longer than this view.
            let page = page_alias(ring.page());
            BackRing {
                page,
                entry_size: ring.entry_size,
                size: ring.size,
                req_cons: 0,
                rsp_prod_pvt: 0,
            }
        }

        /// `requests()` reads every published, unconsumed request.
        pub(crate) fn requests(&mut self) -> Vec<Vec<u8>> {
            let prod: u32 = self.page.load(REQ_PROD);
            let mut out = Vec::new();
            while self.req_cons != prod {
                let mut e = vec![0u8; self.entry_size];
                self.page.read(self.slot(self.req_cons), &mut e);
                out.push(e);
                self.req_cons = self.req_cons.wrapping_add(1);
            }
            out
        }

        /// `wait_for_requests()` sets `req_event` so the next request is signalled.
        pub(crate) fn wait_for_requests(&self) {
            self.page
                .store::<u32>(REQ_EVENT, self.req_cons.wrapping_add(1));
        }

        fn slot(&self, index: u32) -> usize {
            HEADER + (index & (self.size - 1)) as usize * self.entry_size
        }

        /// `respond(entry)` writes a response, unpublished.
        pub(crate) fn respond(&mut self, entry: &[u8]) {
            self.page.write(self.slot(self.rsp_prod_pvt), entry);
            self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        }

        /// `push()` publishes the responses and says whether the frontend asked to be told.
        pub(crate) fn push(&mut self) -> bool {
            let old: u32 = self.page.load(RSP_PROD);
            let new = self.rsp_prod_pvt;
            self.page.store::<u32>(RSP_PROD, new);
            let event: u32 = self.page.load(RSP_EVENT);
            new.wrapping_sub(event) < new.wrapping_sub(old)
        }

        /// `set_rsp_prod(v)` writes `rsp_prod` directly (a misbehaving backend).
        pub(crate) fn set_rsp_prod(&self, v: u32) {
            self.page.store::<u32>(RSP_PROD, v);
        }
    }

    /// `page_alias(page)` is an unowned view of `page` (tests only).
    pub(crate) fn page_alias(page: &Page) -> Page {
        crate::sys::page::alias_for_tests(page)
    }
}

#[cfg(test)]
mod tests {
    use super::backend::BackRing;
    use super::*;

    #[test]
    fn sizes_are_those_of_the_xen_headers() {
        // netif tx (12-byte union), netif rx (8), blkif (112): 256, 256 and 32 entries.
        assert_eq!(ring_size(12), 256);
        assert_eq!(ring_size(8), 256);
        assert_eq!(ring_size(112), 32);
        assert_eq!(ring_size(4032), 1);
    }

    #[test]
    fn requests_and_responses_travel_with_notifications_only_when_asked() {
        let mut front = FrontRing::new(Page::new(), 8);
        assert_eq!(front.page().load::<u32>(REQ_EVENT), 1);
        assert_eq!(front.page().load::<u32>(RSP_EVENT), 1);
        let mut back = BackRing::attach(&front);
        assert!(front.next_request(&[1; 8]));
        // req_event = 1: the first push notifies.
        assert!(front.push_requests());
        assert!(!front.push_requests(), "nothing new: no notification");
        assert_eq!(back.requests(), vec![vec![1; 8]]);
        // The backend does not wait: pushes do not notify.
        assert!(front.next_request(&[2; 8]));
        assert!(!front.push_requests());
        back.requests();
        back.wait_for_requests();
        assert!(front.next_request(&[3; 8]));
        assert!(front.push_requests());
        back.requests();

        // Responses: the frontend asks to be signalled only when it finds none.
        assert!(!front.final_check_for_responses().unwrap());
        assert_eq!(front.page().load::<u32>(RSP_EVENT), 1);
        back.respond(&[9; 8]);
        assert!(back.push(), "the frontend asked for the first response");
        assert_eq!(front.unconsumed(), Ok(1));
        let mut r = [0u8; 8];
        front.response(&mut r);
        assert_eq!(r, [9; 8]);
        back.respond(&[8; 8]);
        assert!(!back.push(), "the frontend did not ask again yet");
        assert!(front.final_check_for_responses().unwrap());
        front.response(&mut r);
        assert!(!front.final_check_for_responses().unwrap());
        back.respond(&[7; 8]);
        assert!(back.push());
    }

    #[test]
    fn a_full_ring_takes_no_more_and_indices_wrap() {
        let mut front = FrontRing::new(Page::new(), 112);
        let mut back = BackRing::attach(&front);
        for round in 0..300u32 {
            let n = 1 + round % 32;
            for i in 0..n {
                assert!(front.next_request(&[i as u8; 112]));
            }
            if n == 32 {
                assert!(!front.next_request(&[0; 112]), "a 33rd request fits");
            }
            front.push_requests();
            for req in back.requests() {
                back.respond(&req[..16]);
            }
            back.push();
            assert_eq!(front.unconsumed(), Ok(n));
            for i in 0..n {
                let mut r = [0u8; 16];
                front.response(&mut r);
                assert_eq!(r[0], i as u8);
            }
        }
        assert_eq!(front.free_requests(), 32);
    }

    #[test]
    fn a_backend_claiming_too_many_responses_is_refused() {
        let mut front = FrontRing::new(Page::new(), 8);
        let back = BackRing::attach(&front);
        assert!(front.next_request(&[0; 8]));
        front.push_requests();
        back.set_rsp_prod(2);
        assert_eq!(
            front.unconsumed(),
            Err(RingError::Overrun {
                rsp_prod: 2,
                rsp_cons: 0
            })
        );
        back.set_rsp_prod(1000);
        assert!(front.final_check_for_responses().is_err());
    }
}
