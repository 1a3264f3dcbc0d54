//! Grant references: which entries of the grant table are free, which are in use, and which
//! are held back because a peer still had their page mapped when we ended the grant.
//!
//! References 0 to 7 are reserved (the console's and the xenstore's among them) and never
//! handed out. Ending a grant that the peer still maps fails; then neither the reference nor
//! the page may be reused (XSA-396), so both go into quarantine and are retried when
//! references run short, instead of being returned to their owner.

use alloc::vec::Vec;
use core::fmt;

use crate::sys::grant::{GrantError, GrantTable, SetupError};
use crate::sys::page::Page;

/// The first reference this runtime uses.
pub(crate) const FIRST_FREE: u32 = 8;

/// `GrantsError` is why a page could not be granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantsError {
    /// Every reference is in use.
    Exhausted,
    /// The grant table could not be set up.
    Setup {
        /// What failed.
        step: &'static str,
        /// Xen's error.
        code: i64,
    },
    /// The page's frame does not fit a grant entry.
    FrameTooLarge,
}

impl fmt::Display for GrantsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted => f.write_str("no grant reference is free"),
            Self::Setup { step, code } => {
                write!(
                    f,
                    "the grant table cannot be set up: {step} failed (Xen error {code})"
                )
            }
            Self::FrameTooLarge => f.write_str("a page's frame does not fit a grant entry"),
        }
    }
}

impl From<SetupError> for GrantsError {
    fn from(e: SetupError) -> Self {
        GrantsError::Setup {
            step: e.step,
            code: e.code,
        }
    }
}

impl From<GrantError> for GrantsError {
    fn from(_: GrantError) -> Self {
        GrantsError::FrameTooLarge
    }
}

/// `Grants` is the grant table and its bookkeeping.
pub(crate) struct Grants {
    table: GrantTable,
    free: Vec<u32>,
    quarantine: Vec<(u32, Page)>,
}

impl Grants {
    /// `new(table)` manages `table`, every reference from [`FIRST_FREE`] free.
    pub(crate) fn new(table: GrantTable) -> Grants {
        let free = (FIRST_FREE..table.len()).rev().collect();
        Grants {
            table,
            free,
            quarantine: Vec::new(),
        }
    }

    /// `available()` is how many references are free.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.free.len()
    }

    /// `quarantined()` is how many references wait for their peer to unmap them.
    #[cfg(test)]
    pub(crate) fn quarantined(&self) -> usize {
        self.quarantine.len()
    }

    /// `grant(page, domid, readonly)` lets `domid` access `page` and is the reference to give
    /// it. The caller keeps `page` alive until [`end`](Grants::end) gives it back.
    pub(crate) fn grant(
        &mut self,
        page: &Page,
        domid: u16,
        readonly: bool,
    ) -> Result<u32, GrantsError> {
        if self.free.is_empty() {
            self.retry_quarantine();
        }
        let reference = self.free.pop().ok_or(GrantsError::Exhausted)?;
        let frame = crate::sys::frame_of(page.addr());
        if let Err(e) = self.table.grant(reference, domid, frame, readonly) {
            self.free.push(reference);
            return Err(e.into());
        }
        Ok(reference)
    }

    /// `end(reference, page)` ends the grant of `page` through `reference` and gives the page
    /// back, or, if the peer still maps it, keeps both in quarantine and is `None`.
    pub(crate) fn end(&mut self, reference: u32, page: Page) -> Option<Page> {
        if self.table.end(reference) {
            self.free.push(reference);
            Some(page)
        } else {
            log::warn!(target: "xen", "grant {reference} still mapped by its peer: held back");
            self.quarantine.push((reference, page));
            None
        }
    }

    /// `retry_quarantine()` frees the quarantined references whose peer has let go (their
    /// pages are dropped).
    pub(crate) fn retry_quarantine(&mut self) {
        let table = &self.table;
        let free = &mut self.free;
        self.quarantine.retain(|(reference, _)| {
            let ended = table.end(*reference);
            if ended {
                free.push(*reference);
            }
            !ended
        });
    }

    /// `flags(reference)` is the entry's flags (tests).
    #[cfg(test)]
    pub(crate) fn flags(&self, reference: u32) -> u16 {
        self.table.flags(reference)
    }
}

static GRANTS: spin::Mutex<Option<Grants>> = spin::Mutex::new(None);

/// `with(f)` runs `f` on the domain's grants, setting the grant table up on first use.
pub(crate) fn with<R>(f: impl FnOnce(&mut Grants) -> R) -> Result<R, GrantsError> {
    let mut guard = GRANTS.lock();
    if guard.is_none() {
        *guard = Some(Grants::new(setup()?));
    }
    match guard.as_mut() {
        Some(g) => Ok(f(g)),
        None => Err(GrantsError::Exhausted),
    }
}

#[cfg(mirage_xen_image)]
fn setup() -> Result<GrantTable, GrantsError> {
    Ok(crate::sys::grant::setup()?)
}

#[cfg(all(not(mirage_xen_image), not(test)))]
fn setup() -> Result<GrantTable, GrantsError> {
    Err(GrantsError::Setup {
        step: "grant tables exist only in images",
        code: -38,
    })
}

/// Host tests: a table in heap pages, as [`testing::grants`] makes, so that device futures
/// run against simulated backends.
#[cfg(all(not(mirage_xen_image), test))]
fn setup() -> Result<GrantTable, GrantsError> {
    Ok(GrantTable::from_frames(
        (0..crate::sys::grant::FRAMES)
            .map(|_| Page::new())
            .collect(),
    ))
}

/// Test helpers: a grant table in heap pages, and a peer that maps or copies.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use core::sync::atomic::Ordering;

    /// `grants(frames)` is bookkeeping over a table of `frames` heap pages.
    pub(crate) fn grants(frames: usize) -> Grants {
        Grants::new(GrantTable::from_frames(
            (0..frames).map(|_| Page::new()).collect(),
        ))
    }

    /// `map(grants, reference)` marks `reference` as mapped by the peer (Xen's
    /// `GTF_writing`), or unmapped.
    pub(crate) fn set_mapped(grants: &Grants, reference: u32, mapped: bool) {
        let frame = (reference / crate::sys::grant::PER_FRAME) as usize;
        let at = (reference % crate::sys::grant::PER_FRAME) as usize * 8;
        let word = grants.table_frames()[frame].atomic_u16(at);
        if mapped {
            word.fetch_or(1 << 4, Ordering::SeqCst);
        } else {
            word.fetch_and(!(1 << 4), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
impl Grants {
    fn table_frames(&self) -> &[Page] {
        self.table.frames()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{grants, set_mapped};
    use super::*;

    #[test]
    fn references_start_at_8_and_come_back() {
        let mut g = grants(1);
        assert_eq!(g.available(), 512 - 8);
        let page = Page::new();
        let r = g.grant(&page, 0, true).unwrap();
        assert_eq!(r, 8);
        assert_eq!(g.flags(r), 1 | 4);
        let page = g.end(r, page).unwrap();
        assert_eq!(g.flags(r), 0);
        assert_eq!(g.available(), 512 - 8);
        drop(page);
    }

    #[test]
    fn a_reference_still_mapped_is_quarantined_with_its_page_never_reused() {
        let mut g = grants(1);
        let mut held = Vec::new();
        for _ in 0..(512 - 8) {
            let p = Page::new();
            let r = g.grant(&p, 0, false).unwrap();
            held.push((r, p));
        }
        assert_eq!(g.grant(&Page::new(), 0, false), Err(GrantsError::Exhausted));
        let (r, p) = held.pop().unwrap();
        set_mapped(&g, r, true);
        assert!(g.end(r, p).is_none(), "a mapped page came back");
        assert_eq!(g.quarantined(), 1);
        assert_eq!(g.grant(&Page::new(), 0, false), Err(GrantsError::Exhausted));
        set_mapped(&g, r, false);
        let again = g.grant(&Page::new(), 0, false).unwrap();
        assert_eq!(again, r, "the reference is reused once unmapped");
        assert_eq!(g.quarantined(), 0);
    }
}
