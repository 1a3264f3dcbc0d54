//! [`Page`]: a 4 KiB page of memory that Xen or another domain reads and writes while we do,
//! with a safe surface of bounds-checked volatile and atomic accesses.
//!
//! Rings, grant-table frames, the xenstore and console pages and the buffers granted to a
//! backend are all such pages. The compiler must neither cache nor elide accesses to them, nor
//! assume they do not change between two reads, so nothing here hands out a Rust reference to
//! their bytes: every access is a volatile load or store through a raw pointer, or an atomic
//! operation, and each is checked to lie inside the page.

use alloc::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use core::ptr::{read_volatile, write_volatile, NonNull};
use core::sync::atomic::AtomicU16;

/// The size of a page.
pub(crate) const PAGE_SIZE: usize = 4096;

const LAYOUT: Layout = match Layout::from_size_align(PAGE_SIZE, PAGE_SIZE) {
    Ok(l) => l,
    Err(_) => panic!("a page is a valid layout"),
};

/// A `Page` is one page of shared memory: either allocated from the heap (zeroed, freed when
/// dropped) or a page the hypervisor mapped for us (never freed).
#[derive(Debug)]
pub(crate) struct Page {
    ptr: NonNull<u8>,
    owned: bool,
}

// SAFETY: a `Page` is plain memory, not tied to a thread; every access through it is volatile
// or atomic, and the image has one thread of control.
unsafe impl Send for Page {}

impl Page {
    /// `new()` is a fresh zeroed page from the heap (zeroed so that sharing it shows the peer
    /// nothing it should not see).
    pub(crate) fn new() -> Page {
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(LAYOUT) };
        match NonNull::new(ptr) {
            Some(ptr) => Page { ptr, owned: true },
            None => handle_alloc_error(LAYOUT),
        }
    }

    /// `mapped(addr)` is the page the hypervisor maps at `addr`, which stays mapped for the
    /// rest of the program.
    ///
    /// # Safety
    ///
    /// `addr` must be page-aligned and mapped, readable and writable, for good, and hold no
    /// Rust object.
    pub(crate) unsafe fn mapped(addr: usize) -> Page {
        debug_assert_eq!(addr % PAGE_SIZE, 0);
        Page {
            // The caller guarantees a mapped page, so not address 0; `dangling` is never used.
            ptr: NonNull::new(addr as *mut u8).unwrap_or(NonNull::dangling()),
            owned: false,
        }
    }

    /// `addr()` is the page's virtual address (on this target, also its pseudo-physical one).
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// `at::<T>(offset)` is a pointer to a `T` at `offset`, checked to lie inside the page and
    /// to be aligned.
    fn at<T>(&self, offset: usize) -> *mut T {
        let size = core::mem::size_of::<T>();
        assert!(
            offset.checked_add(size).is_some_and(|end| end <= PAGE_SIZE)
                && offset.is_multiple_of(core::mem::align_of::<T>()),
            "access of {size} bytes at {offset} outside a page or misaligned"
        );
        // SAFETY: `offset + size <= PAGE_SIZE`: the result stays inside the page.
        unsafe { self.ptr.as_ptr().add(offset) }.cast()
    }

    /// `load::<T>(offset)` reads the `T` at `offset` (a volatile load: the peer may write it).
    pub(crate) fn load<T: Scalar>(&self, offset: usize) -> T {
        // SAFETY: `at` checks bounds and alignment; the page is mapped for `self`'s life; any
        // bit pattern is a valid `Scalar`.
        unsafe { read_volatile(self.at::<T>(offset)) }
    }

    /// `store::<T>(offset, v)` writes `v` at `offset` (a volatile store).
    pub(crate) fn store<T: Scalar>(&self, offset: usize, v: T) {
        // SAFETY: as `load`; the page holds no Rust object whose invariants a write could break.
        unsafe { write_volatile(self.at::<T>(offset), v) }
    }

    /// `read(offset, out)` copies `out.len()` bytes from `offset` into `out`.
    pub(crate) fn read(&self, offset: usize, out: &mut [u8]) {
        self.check_range(offset, out.len());
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: the range is inside the page (checked above).
            *b = unsafe { read_volatile(self.ptr.as_ptr().add(offset + i)) };
        }
    }

    /// `write(offset, data)` copies `data` into the page at `offset`.
    pub(crate) fn write(&self, offset: usize, data: &[u8]) {
        self.check_range(offset, data.len());
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: the range is inside the page (checked above).
            unsafe { write_volatile(self.ptr.as_ptr().add(offset + i), b) };
        }
    }

    /// `zero()` clears the whole page.
    pub(crate) fn zero(&self) {
        for i in (0..PAGE_SIZE).step_by(8) {
            self.store::<u64>(i, 0);
        }
    }

    fn check_range(&self, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= PAGE_SIZE),
            "{len} bytes at {offset} outside a page"
        );
    }

    /// `atomic_u16(offset)` is the 16-bit word at `offset` as an atomic (grant entries' flags).
    pub(crate) fn atomic_u16(&self, offset: usize) -> &AtomicU16 {
        // SAFETY: `at` checks bounds and alignment; the word lives as long as the page, which
        // `self` keeps mapped; all accesses to it by us are atomic or volatile.
        unsafe { AtomicU16::from_ptr(self.at::<u16>(offset)) }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: an owned page was allocated by `new` with `LAYOUT`. Owners of granted
            // pages keep them alive until the grant is ended (see `grants`).
            unsafe { dealloc(self.ptr.as_ptr(), LAYOUT) }
        }
    }
}

/// `alias_for_tests(page)` is a second, unowned view of `page`, as a peer domain has of a
/// granted page; the caller keeps `page` alive longer than the view (tests only).
#[cfg(test)]
pub(crate) fn alias_for_tests(page: &Page) -> Page {
    Page {
        ptr: page.ptr,
        owned: false,
    }
}

/// A `Scalar` is a plain integer that any bit pattern makes valid, so it can be read from
/// memory another domain writes.
pub(crate) trait Scalar: Copy + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! scalars {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Scalar for $t {}
    )*};
}
scalars!(u8, u16, u32, u64, i8, i16, i32, i64);

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;

    #[test]
    fn pages_are_zeroed_aligned_and_bounds_checked() {
        let p = Page::new();
        assert_eq!(p.addr() % PAGE_SIZE, 0);
        assert_eq!(p.load::<u64>(4088), 0);
        p.store::<u32>(8, 0xdead_beef);
        assert_eq!(p.load::<u16>(8), 0xbeef);
        p.write(4090, b"abcdef");
        let mut out = [0u8; 6];
        p.read(4090, &mut out);
        assert_eq!(&out, b"abcdef");
        assert_eq!(p.atomic_u16(10).swap(1, Ordering::SeqCst), 0xdead);
        assert_eq!(p.load::<u32>(8), 0x0001_beef);
        p.zero();
        assert_eq!(p.load::<u64>(8), 0);
        let beyond = std::panic::catch_unwind(|| Page::new().load::<u32>(4094));
        assert!(beyond.is_err());
        let misaligned = std::panic::catch_unwind(|| Page::new().load::<u32>(2));
        assert!(misaligned.is_err());
        let long = std::panic::catch_unwind(|| Page::new().write(4000, &[0; 100]));
        assert!(long.is_err());
    }
}
