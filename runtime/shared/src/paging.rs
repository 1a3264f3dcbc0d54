//! Identity page tables with holes, for images that run in ring 0 (xen's PVH entry, hvt): the
//! first 4 GiB or less mapped one-to-one with 2 MiB pages, except the 2 MiB regions that
//! hold a hole, which are mapped with 4 KiB pages and the hole left out. The holes are the
//! stack's guard page, so that a stack overflow faults instead of running over what lies
//! below, and page 0, so that a null pointer dereference faults instead of reading the real
//! mode interrupt table.
//!
//! [`Tables::identity`] only fills a set of tables; `arch` loads it into CR3. The tables sit
//! in the image, which runs identity-mapped, so a table's address is its physical address.

/// The 2 MiB regions that can hold holes.
pub const MAX_SPLIT: usize = 4;
/// The most memory mapped: four page directories of 1 GiB.
pub const MAX_TOP: u64 = 4 << 30;

const ENTRIES: usize = 512;
const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const LARGE: u64 = 1 << 7;
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
const PAGE: u64 = 4096;
const LARGE_PAGE: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// A table of 512 entries, page-aligned.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
pub struct Table(pub [u64; ENTRIES]);

/// A set of page tables: the root, one pointer table, four directories and the 4 KiB tables
/// of the regions with holes.
#[repr(C, align(4096))]
pub struct Tables {
    pml4: Table,
    pdpt: Table,
    pd: [Table; 4],
    pt: [Table; MAX_SPLIT],
}

/// Why tables could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// More memory than the tables map ([`MAX_TOP`]).
    TooMuchMemory {
        /// The memory's end.
        top: u64,
    },
    /// Holes in more 2 MiB regions than [`MAX_SPLIT`].
    TooManyHoles,
    /// A hole outside the memory mapped.
    HoleOutside {
        /// The hole's address.
        hole: u64,
    },
}

impl core::fmt::Display for PagingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooMuchMemory { top } => write!(f, "memory up to {top:#x} exceeds 4 GiB"),
            Self::TooManyHoles => write!(f, "holes in more than {MAX_SPLIT} 2 MiB regions"),
            Self::HoleOutside { hole } => write!(f, "hole {hole:#x} outside the memory mapped"),
        }
    }
}

fn address_of(table: &Table) -> u64 {
    table.0.as_ptr() as u64
}

impl Tables {
    /// `new()` is a set of empty tables (for a `static`).
    pub const fn new() -> Tables {
        const EMPTY: Table = Table([0; ENTRIES]);
        Tables {
            pml4: EMPTY,
            pdpt: EMPTY,
            pd: [EMPTY; 4],
            pt: [EMPTY; MAX_SPLIT],
        }
    }

    /// `identity(top, holes)` fills the tables with an identity map of `[0, top)` (`top`
    /// rounded up to 2 MiB) in which the 4 KiB pages holding the addresses `holes` are not
    /// present, and is the address of the root table, for CR3.
    pub fn identity(&mut self, top: u64, holes: &[u64]) -> Result<u64, PagingError> {
        let top = top.max(1).div_ceil(LARGE_PAGE) * LARGE_PAGE;
        if top > MAX_TOP {
            return Err(PagingError::TooMuchMemory { top });
        }
        for table in [&mut self.pml4, &mut self.pdpt]
            .into_iter()
            .chain(&mut self.pd)
            .chain(&mut self.pt)
        {
            table.0.fill(0);
        }
        self.pml4.0[0] = address_of(&self.pdpt) | PRESENT | WRITABLE;
        for gib in 0..top.div_ceil(GIB) as usize {
            self.pdpt.0[gib] = address_of(&self.pd[gib]) | PRESENT | WRITABLE;
        }
        for region in 0..top / LARGE_PAGE {
            let (pd, i) = (region as usize / ENTRIES, region as usize % ENTRIES);
            self.pd[pd].0[i] = (region * LARGE_PAGE) | PRESENT | WRITABLE | LARGE;
        }
        let mut split = 0;
        for &hole in holes {
            if hole >= top {
                return Err(PagingError::HoleOutside { hole });
            }
            let region = hole / LARGE_PAGE;
            let (pd, i) = (region as usize / ENTRIES, region as usize % ENTRIES);
            if self.pd[pd].0[i] & LARGE != 0 {
                if split == MAX_SPLIT {
                    return Err(PagingError::TooManyHoles);
                }
                let base = region * LARGE_PAGE;
                for (j, entry) in self.pt[split].0.iter_mut().enumerate() {
                    *entry = (base + j as u64 * PAGE) | PRESENT | WRITABLE;
                }
                self.pd[pd].0[i] = address_of(&self.pt[split]) | PRESENT | WRITABLE;
                split += 1;
            }
            let pt = self.pt[..split]
                .iter_mut()
                .find(|t| self.pd[pd].0[i] & ADDRESS == address_of(t))
                .ok_or(PagingError::TooManyHoles)?;
            pt.0[(hole % LARGE_PAGE / PAGE) as usize] = 0;
        }
        Ok(address_of(&self.pml4))
    }

    /// `translate(va)` is the physical address `va` maps to, walking these tables (`None` if
    /// not present): what the processor would do, for tests.
    pub fn translate(&self, va: u64) -> Option<u64> {
        let tables: [&Table; 2 + 4 + MAX_SPLIT] = [
            &self.pml4,
            &self.pdpt,
            &self.pd[0],
            &self.pd[1],
            &self.pd[2],
            &self.pd[3],
            &self.pt[0],
            &self.pt[1],
            &self.pt[2],
            &self.pt[3],
        ];
        let find = |entry: u64| {
            tables
                .iter()
                .find(|t| address_of(t) == entry & ADDRESS)
                .copied()
        };
        let mut table = &self.pml4;
        for (level, shift) in [(4, 39), (3, 30), (2, 21), (1, 12)] {
            let entry = table.0[(va >> shift) as usize % ENTRIES];
            if entry & PRESENT == 0 {
                return None;
            }
            if level == 2 && entry & LARGE != 0 {
                return Some((entry & ADDRESS) + va % LARGE_PAGE);
            }
            if level == 1 {
                return Some((entry & ADDRESS) + va % PAGE);
            }
            table = find(entry)?;
        }
        None
    }
}

impl Default for Tables {
    fn default() -> Tables {
        Tables::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Box<Tables> {
        Box::new(Tables::new())
    }

    #[test]
    fn memory_is_identity_mapped_but_for_the_holes() {
        let mut t = tables();
        let guard = 0x1ff_f000;
        let root = t.identity(32 << 20, &[0, guard]).unwrap();
        assert_eq!(root, address_of(&t.pml4));
        for va in [0x1000, 0x10_0000, 0x1f_ffff, 2 << 20, 31 << 20, guard - 1] {
            assert_eq!(t.translate(va), Some(va), "{va:#x}");
        }
        assert_eq!(t.translate(0), None, "page 0");
        assert_eq!(t.translate(0xfff), None, "page 0");
        assert_eq!(t.translate(guard), None, "the guard page");
        assert_eq!(t.translate(guard + 0xff8), None, "the guard page");
        assert_eq!(t.translate(32 << 20), None, "past the top");
    }

    #[test]
    fn four_gib_with_holes_in_two_regions_and_one_shared() {
        let mut t = tables();
        t.identity(MAX_TOP, &[0, 0x3000, 0xfff0_0000]).unwrap();
        assert_eq!(t.translate(0x2000), Some(0x2000));
        assert_eq!(t.translate(0x3000), None);
        assert_eq!(t.translate(0xffef_f000), Some(0xffef_f000));
        assert_eq!(t.translate(0xfff0_0123), None);
        assert_eq!(t.translate(0xffff_ffff), Some(0xffff_ffff));
        assert_eq!(t.translate(MAX_TOP), None);
    }

    #[test]
    fn what_cannot_be_mapped_is_an_error() {
        let mut t = tables();
        assert_eq!(
            t.identity(MAX_TOP + 1, &[]),
            Err(PagingError::TooMuchMemory {
                top: MAX_TOP + LARGE_PAGE
            })
        );
        assert_eq!(
            t.identity(4 << 20, &[4 << 20]),
            Err(PagingError::HoleOutside { hole: 4 << 20 })
        );
        let five: Vec<u64> = (0..5).map(|i| i * LARGE_PAGE).collect();
        assert_eq!(t.identity(16 << 20, &five), Err(PagingError::TooManyHoles));
        // Memory that ends inside a 2 MiB page is mapped to the page's end.
        t.identity(3 << 20, &[]).unwrap();
        assert_eq!(t.translate((4 << 20) - 8), Some((4 << 20) - 8));
    }
}
