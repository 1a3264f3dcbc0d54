//! The grant table (v1, `public/grant_table.h`): where a domain lists the pages it lets other
//! domains map or copy, one 8-byte `grant_entry_v1 { flags u16, domid u16, frame u32 }` per
//! reference.
//!
//! [`setup`] gets the table's frames from Xen and maps them at pages reserved in the image:
//! a PV guest asks for them with `GNTTABOP_setup_table` (machine frames) and maps them with
//! `update_va_mapping`; a PVH guest asks Xen to place them over its own frames with
//! `XENMEM_add_to_physmap`. [`GrantTable`] then writes entries in the order the header
//! prescribes: domain and frame first, a write barrier, then the flags that make the entry
//! live; and ends access with a compare-and-swap that fails while the peer still has the page
//! mapped, so the caller never reuses a page another domain can still write.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{compiler_fence, Ordering};

use super::page::{Page, PAGE_SIZE};

/// The frames of the table this runtime asks for (Mini-OS, Unikraft and mirage use 4).
pub(crate) const FRAMES: usize = 4;
/// Entries per frame.
pub(crate) const PER_FRAME: u32 = (PAGE_SIZE / ENTRY_SIZE) as u32;
/// The size of a `grant_entry_v1`.
const ENTRY_SIZE: usize = 8;

/// `GTF_permit_access`: the entry grants access to `frame`.
const PERMIT_ACCESS: u16 = 1;
/// `GTF_readonly`: the peer may only read.
const READONLY: u16 = 1 << 2;
/// `GTF_reading` / `GTF_writing`: Xen sets these while the peer has the frame mapped.
const IN_USE: u16 = (1 << 3) | (1 << 4);

/// `GrantTable` is the mapped grant table.
pub(crate) struct GrantTable {
    frames: Vec<Page>,
}

/// Why a grant could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrantError {
    /// The frame number does not fit a v1 entry's 32 bits.
    FrameTooLarge {
        /// The frame.
        frame: u64,
    },
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FrameTooLarge { frame } => {
                write!(f, "frame {frame:#x} does not fit a grant entry")
            }
        }
    }
}

impl GrantTable {
    /// `from_frames(frames)` is the table made of `frames`, in order.
    pub(crate) fn from_frames(frames: Vec<Page>) -> GrantTable {
        GrantTable { frames }
    }

    /// `len()` is how many entries the table has.
    pub(crate) fn len(&self) -> u32 {
        self.frames.len() as u32 * PER_FRAME
    }

    fn entry(&self, reference: u32) -> (&Page, usize) {
        assert!(
            reference < self.len(),
            "grant reference {reference} out of the table"
        );
        (
            &self.frames[(reference / PER_FRAME) as usize],
            (reference % PER_FRAME) as usize * ENTRY_SIZE,
        )
    }

    /// `grant(reference, domid, frame, readonly)` lets domain `domid` map or copy `frame`
    /// (read-only or not) through entry `reference`.
    pub(crate) fn grant(
        &self,
        reference: u32,
        domid: u16,
        frame: u64,
        readonly: bool,
    ) -> Result<(), GrantError> {
        let frame32 = u32::try_from(frame).map_err(|_| GrantError::FrameTooLarge { frame })?;
        let (page, at) = self.entry(reference);
        page.store::<u16>(at + 2, domid);
        page.store::<u32>(at + 4, frame32);
        // Domain and frame are written before the flags make the entry valid (a compiler
        // barrier is the write barrier on x86, says grant_table.h).
        compiler_fence(Ordering::SeqCst);
        let flags = PERMIT_ACCESS | if readonly { READONLY } else { 0 };
        page.atomic_u16(at).store(flags, Ordering::SeqCst);
        Ok(())
    }

    /// `end(reference)` withdraws the grant of entry `reference` and says whether it could:
    /// not while the peer has the frame mapped (Xen's reading or writing flag is set), and
    /// then the caller must keep both the entry and the page and try again later.
    pub(crate) fn end(&self, reference: u32) -> bool {
        let (page, at) = self.entry(reference);
        let flags = page.atomic_u16(at);
        let mut current = flags.load(Ordering::SeqCst);
        loop {
            if current & IN_USE != 0 {
                return false;
            }
            match flags.compare_exchange(current, 0, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// `frames()` is the table's pages (tests).
    #[cfg(test)]
    pub(crate) fn frames(&self) -> &[Page] {
        &self.frames
    }

    /// `flags(reference)` is entry `reference`'s flags (tests).
    #[cfg(test)]
    pub(crate) fn flags(&self, reference: u32) -> u16 {
        let (page, at) = self.entry(reference);
        page.atomic_u16(at).load(Ordering::SeqCst)
    }
}

/// Why the grant table could not be set up: the hypercall and Xen's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SetupError {
    /// What failed.
    pub(crate) step: &'static str,
    /// Xen's (negative) error code.
    pub(crate) code: i64,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed (Xen error {})", self.step, self.code)
    }
}

#[cfg(mirage_xen_image)]
mod setup {
    use super::*;
    use crate::sys::{hypercall, machine_kind, MachineKind};

    extern "C" {
        /// Pages of the image reserved for the grant table's frames (arch::boot).
        static mut mirage_xen_grant_frames: [u8; FRAMES * PAGE_SIZE];
    }

    /// `setup()` maps the grant table (see the module's doc).
    pub(crate) fn setup() -> Result<GrantTable, SetupError> {
        let base = (&raw mut mirage_xen_grant_frames) as u64;
        match machine_kind() {
            MachineKind::Pv => {
                let mut mfns = [0u64; FRAMES];
                hypercall::grant_table_setup(&mut mfns).map_err(|code| SetupError {
                    step: "GNTTABOP_setup_table",
                    code,
                })?;
                for (i, mfn) in mfns.iter().enumerate() {
                    let va = base + (i * PAGE_SIZE) as u64;
                    // SAFETY: the page is reserved in the bss for this frame and used for
                    // nothing else; `mfn` is a frame of our grant table, which Xen lets us map.
                    let rc = unsafe { hypercall::map_frame(va, mfn << 12) };
                    if rc != 0 {
                        return Err(SetupError {
                            step: "update_va_mapping of a grant frame",
                            code: rc,
                        });
                    }
                }
            }
            MachineKind::Pvh => {
                for i in 0..FRAMES {
                    let gpfn = (base >> 12) + i as u64;
                    // SAFETY: the reserved pages hold nothing; Xen frees their RAM and puts
                    // grant frame `i` there.
                    let rc = unsafe {
                        hypercall::add_to_physmap(hypercall::MAPSPACE_GRANT_TABLE, i as u64, gpfn)
                    };
                    if rc != 0 {
                        return Err(SetupError {
                            step: "XENMEM_add_to_physmap of a grant frame",
                            code: rc,
                        });
                    }
                }
            }
            MachineKind::Initial | MachineKind::Pc => {
                return Err(SetupError {
                    step: "grant tables need a domU on Xen",
                    code: -38,
                })
            }
        }
        let frames = (0..FRAMES)
            .map(|i| {
                // SAFETY: the frame is now mapped at this page for good, and nothing else in
                // the image uses it.
                unsafe { Page::mapped(base as usize + i * PAGE_SIZE) }
            })
            .collect();
        Ok(GrantTable::from_frames(frames))
    }
}

#[cfg(mirage_xen_image)]
pub(crate) use setup::setup;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_written_flags_last_and_end_only_when_unmapped() {
        let table = GrantTable::from_frames(alloc::vec![Page::new(), Page::new()]);
        assert_eq!(table.len(), 1024);
        table.grant(600, 0, 0x1234, true).unwrap();
        let (page, at) = table.entry(600);
        assert_eq!(
            (page.load::<u16>(at + 2), page.load::<u32>(at + 4)),
            (0, 0x1234)
        );
        assert_eq!(table.flags(600), PERMIT_ACCESS | READONLY);
        table.grant(9, 7, 0x55, false).unwrap();
        assert_eq!(table.flags(9), PERMIT_ACCESS);
        // The backend maps it: Xen sets GTF_writing; ending must fail and leave it.
        page_of(&table, 9)
            .atomic_u16(9 * 8)
            .fetch_or(1 << 4, Ordering::SeqCst);
        assert!(!table.end(9));
        assert_eq!(table.flags(9), PERMIT_ACCESS | (1 << 4));
        // Unmapped: ending succeeds and clears the entry.
        page_of(&table, 9)
            .atomic_u16(9 * 8)
            .fetch_and(!(1 << 4), Ordering::SeqCst);
        assert!(table.end(9));
        assert_eq!(table.flags(9), 0);
        assert_eq!(
            table.grant(10, 0, 1 << 32, false),
            Err(GrantError::FrameTooLarge { frame: 1 << 32 })
        );
    }

    fn page_of(table: &GrantTable, reference: u32) -> &Page {
        table.entry(reference).0
    }
}
