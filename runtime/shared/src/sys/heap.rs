//! The global allocator of an image: size-class caches in front of a linked-list heap over the
//! memory the runtime's boot code finds beyond the image. Host builds keep std's allocator,
//! and [`init`] does nothing there.
//!
//! A linked-list heap alone finds a block by walking its holes from the lowest address and
//! frees one by walking them to its place. A server with a thousand connections open keeps
//! thousands of small blocks live between its sockets' buffers, so the holes number in the
//! thousands and every allocation and free walks them: under 1,000-connection load on spt,
//! `alloc` and `dealloc` took 37% of the image's processor time. So blocks of up to 16 KiB
//! (with an alignment of at most 16) come in power-of-two size classes, and a freed block is
//! kept on its class's free list for the next allocation of that class, in constant time. The
//! lists hold at most an eighth of the heap together; a block freed beyond that goes back to
//! the linked-list heap, so a burst of one size cannot starve the others for long.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;

/// The smallest class: every cached block holds a free-list link, 16-byte aligned.
const MIN_CLASS: usize = 16;
/// Classes 16 B, 32 B, ..., 16 KiB.
const CLASSES: usize = 11;
/// The largest alignment a cached block honours.
const CLASS_ALIGN: usize = 16;
/// The free lists hold at most 1/2^CACHE_SHIFT of the heap, each class an equal share.
const CACHE_SHIFT: u32 = 3;

/// A free block on a class's list.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

/// `class(layout)` is the size class of `layout` (an index into the lists), or `None` if
/// blocks of that layout are not cached (too large, or aligned beyond 16).
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_ALIGN {
        return None;
    }
    let size = layout.size().max(MIN_CLASS).next_power_of_two();
    let index = (size.trailing_zeros() - MIN_CLASS.trailing_zeros()) as usize;
    (index < CLASSES).then_some(index)
}

/// `class_layout(index)` is the layout of a block of class `index`.
fn class_layout(index: usize) -> Layout {
    // A power of two from 16 to 16 KiB, aligned to 16: always a valid layout.
    Layout::from_size_align(MIN_CLASS << index, CLASS_ALIGN).unwrap_or(Layout::new::<u128>())
}

/// A linked-list heap with size-class caches in front (see the module's doc).
pub struct CachedHeap {
    heap: Heap,
    free: [Option<NonNull<FreeBlock>>; CLASSES],
    /// Bytes on the free lists.
    cached: usize,
    /// Bytes on each class's free list.
    class_cached: [usize; CLASSES],
}

// SAFETY: the free lists point into the heap's own memory, which the `CachedHeap` owns as the
// linked-list heap does; it is only used behind a lock.
unsafe impl Send for CachedHeap {}

impl CachedHeap {
    /// `empty()` is a heap with no memory yet.
    pub const fn empty() -> CachedHeap {
        CachedHeap {
            heap: Heap::empty(),
            free: [None; CLASSES],
            cached: 0,
            class_cached: [0; CLASSES],
        }
    }

    /// `init(start, size)` gives the heap `size` bytes at `start`.
    ///
    /// # Safety
    ///
    /// As `linked_list_allocator::Heap::init`: the range must be valid, writable and owned by
    /// the heap for its lifetime; called once, on an empty heap.
    pub unsafe fn init(&mut self, start: *mut u8, size: usize) {
        // SAFETY: as the caller guarantees.
        unsafe { self.heap.init(start, size) };
    }

    /// `size()` is the heap's size in bytes.
    pub fn size(&self) -> usize {
        self.heap.size()
    }

    /// `used()` is the bytes held by allocations (cached blocks, rounded up to their class,
    /// count as what they hold; the free lists do not count).
    pub fn used(&self) -> usize {
        self.heap.used() - self.cached
    }

    /// `allocate(layout)` is a block for `layout`, or null if the heap has no room.
    pub fn allocate(&mut self, layout: Layout) -> *mut u8 {
        let Some(index) = class(layout) else {
            return self
                .heap
                .allocate_first_fit(layout)
                .map_or(ptr::null_mut(), NonNull::as_ptr);
        };
        match self.free[index] {
            Some(block) => {
                // SAFETY: a block on a free list is a free block of the class, holding its
                // link, which nothing else uses.
                self.free[index] = unsafe { block.as_ref().next };
                self.cached -= MIN_CLASS << index;
                self.class_cached[index] -= MIN_CLASS << index;
                block.as_ptr().cast()
            }
            None => self
                .heap
                .allocate_first_fit(class_layout(index))
                .map_or(ptr::null_mut(), NonNull::as_ptr),
        }
    }

    /// `deallocate(block, layout)` frees `block`, allocated for `layout`.
    ///
    /// # Safety
    ///
    /// `block` must come from [`allocate`](CachedHeap::allocate) of this heap with `layout`,
    /// and not be used again.
    pub unsafe fn deallocate(&mut self, block: *mut u8, layout: Layout) {
        let Some(block) = NonNull::new(block) else {
            return;
        };
        let Some(index) = class(layout) else {
            // SAFETY: an uncached block came from the linked-list heap with `layout`.
            unsafe { self.heap.deallocate(block, layout) };
            return;
        };
        let bytes = MIN_CLASS << index;
        if self.class_cached[index] + bytes > (self.heap.size() >> CACHE_SHIFT) / CLASSES {
            // SAFETY: a cached class's block came from the linked-list heap with its class
            // layout.
            unsafe { self.heap.deallocate(block, class_layout(index)) };
            return;
        }
        let link: NonNull<FreeBlock> = block.cast();
        // SAFETY: the block is free, at least 16 bytes and 16-byte aligned: room for the link.
        unsafe {
            link.as_ptr().write(FreeBlock {
                next: self.free[index],
            })
        };
        self.free[index] = Some(link);
        self.cached += bytes;
        self.class_cached[index] += bytes;
    }

    /// `same_class(old, new_size)` is true if a block allocated for `old` also serves
    /// `new_size` bytes of the same alignment (both in one size class): growing or shrinking
    /// it in place.
    pub fn same_class(old: Layout, new_size: usize) -> bool {
        let new = Layout::from_size_align(new_size, old.align());
        matches!((class(old), new.map(class)), (Some(a), Ok(Some(b))) if a == b)
    }
}

/// The allocator images install: a [`CachedHeap`] behind a spin lock (images run on one
/// processor; the lock is never contended, only required).
pub struct LockedHeap(spin::Mutex<CachedHeap>);

impl LockedHeap {
    /// `empty()` is the allocator with no memory yet.
    pub const fn empty() -> LockedHeap {
        LockedHeap(spin::Mutex::new(CachedHeap::empty()))
    }

    /// `lock()` is the heap, locked.
    pub fn lock(&self) -> spin::MutexGuard<'_, CachedHeap> {
        self.0.lock()
    }
}

// SAFETY: blocks come from the heap's memory with the layout asked for (size classes are at
// least the size and the alignment asked for), are handed out once until freed, and realloc
// keeps a block only when its class serves the new size.
unsafe impl GlobalAlloc for LockedHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate(layout)
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract is `deallocate`'s.
        unsafe { self.0.lock().deallocate(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if CachedHeap::same_class(layout, new_size) {
            return block;
        }
        // SAFETY: the caller's layout has a nonzero size and a valid alignment; `new_size`
        // with it is valid per realloc's contract.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`.
        let fresh = unsafe { self.alloc(new_layout) };
        if !fresh.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap (the old
            // one is still allocated).
            unsafe { ptr::copy_nonoverlapping(block, fresh, layout.size().min(new_size)) };
            // SAFETY: `block` was allocated with `layout` and is no longer used.
            unsafe { self.dealloc(block, layout) };
        }
        fresh
    }
}

#[cfg(any(mirage_xen_image, mirage_solo5_image))]
#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// The alignment the heap's ends are rounded to (inwards).
const ALIGN: u64 = 16;
/// The smallest range worth a heap: `linked_list_allocator` needs room for its first hole's
/// metadata and panics with less.
const MIN_SIZE: u64 = 64;

/// `usable(start, end)` is the part of `[start, end)` the heap takes, as its bottom and size:
/// the range rounded inwards to [`ALIGN`], or `None` if less than [`MIN_SIZE`] is left (an
/// empty or reversed range included).
pub(crate) fn usable(start: u64, end: u64) -> Option<(u64, u64)> {
    let bottom = start.checked_next_multiple_of(ALIGN)?;
    let top = end & !(ALIGN - 1);
    let size = top.checked_sub(bottom)?;
    (size >= MIN_SIZE).then_some((bottom, size))
}

/// `init(start, end)` gives `[start, end)` to the allocator, rounded inwards to 16 bytes; a
/// range too small for the allocator's bookkeeping (fewer than 64 bytes, or `end <= start`)
/// is left alone, and every allocation then fails, rather than the boot panicking.
///
/// # Safety
///
/// The range must be mapped, writable, owned by nothing else for the rest of the program, and
/// this must be called once, before the first allocation.
pub unsafe fn init(start: u64, end: u64) {
    let Some((bottom, size)) = usable(start, end) else {
        return;
    };
    #[cfg(any(mirage_xen_image, mirage_solo5_image))]
    // SAFETY: the caller guarantees the range and the single call; `usable` keeps inside it
    // and leaves the allocator enough room.
    unsafe {
        HEAP.lock().init(bottom as *mut u8, size as usize)
    };
    #[cfg(not(any(mirage_xen_image, mirage_solo5_image)))]
    let _ = (bottom, size);
}

/// `stats()` is the heap's size and the bytes allocated from it, in an image (`None` in host
/// builds, whose allocator is std's).
pub fn stats() -> Option<mirage_runtime::Heap> {
    #[cfg(any(mirage_xen_image, mirage_solo5_image))]
    {
        let heap = HEAP.lock();
        Some(mirage_runtime::Heap {
            size: Some(heap.size()),
            used: heap.used(),
        })
    }
    #[cfg(not(any(mirage_xen_image, mirage_solo5_image)))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_empty_ranges_are_left_alone() {
        assert_eq!(usable(0, 0), None);
        assert_eq!(usable(4096, 4096), None);
        assert_eq!(usable(8192, 4096), None);
        assert_eq!(usable(0x1001, 0x1040), None);
        assert_eq!(usable(u64::MAX - 3, u64::MAX), None);
        assert_eq!(usable(0x1001, 0x1051), Some((0x1010, 0x40)));
        assert_eq!(usable(0x1000, 0x3000), Some((0x1000, 0x2000)));
        // The host build's `init` is a no-op, but must not panic either.
        // SAFETY: nothing is given to any allocator on the host.
        unsafe { init(10, 20) };
    }

    #[test]
    fn the_allocator_takes_every_range_usable_accepts() {
        // Each small range of a real buffer that `usable` accepts initialises a heap that
        // serves an allocation; those it refuses are the ones the allocator would panic on.
        let mut buffer = vec![0u64; 64];
        let base = buffer.as_mut_ptr() as u64;
        for start in 0..24u64 {
            for len in 0..160u64 {
                let Some((bottom, size)) = usable(base + start, base + start + len) else {
                    continue;
                };
                assert!(bottom >= base + start && bottom + size <= base + start + len);
                let mut heap = linked_list_allocator::Heap::empty();
                // SAFETY: the range lies inside `buffer`, which outlives `heap`.
                unsafe { heap.init(bottom as *mut u8, size as usize) };
                let layout = core::alloc::Layout::from_size_align(16, 8).unwrap();
                assert!(heap.allocate_first_fit(layout).is_ok(), "{start}+{len}");
            }
        }
        drop(buffer);
    }

    /// `heap(bytes)` is a heap over a fresh, leaked buffer of `bytes`.
    fn heap(bytes: usize) -> CachedHeap {
        let memory = std::vec![0u128; bytes / 16].leak();
        let mut heap = CachedHeap::empty();
        // SAFETY: the buffer is leaked: valid and the heap's for the rest of the test.
        unsafe { heap.init(memory.as_mut_ptr().cast(), bytes) };
        heap
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn sizes_fall_in_power_of_two_classes_up_to_16_kib_aligned_to_16() {
        assert_eq!(class(layout(1, 1)), Some(0));
        assert_eq!(class(layout(16, 8)), Some(0));
        assert_eq!(class(layout(17, 8)), Some(1));
        assert_eq!(class(layout(1518, 2)), Some(7)); // a frame: 2 KiB
        assert_eq!(class(layout(8192, 1)), Some(9)); // a socket buffer
        assert_eq!(class(layout(16384, 1)), Some(10));
        assert_eq!(class(layout(16385, 1)), None);
        assert_eq!(class(layout(64, 32)), None);
        assert!(CachedHeap::same_class(layout(100, 8), 128));
        assert!(!CachedHeap::same_class(layout(100, 8), 129));
        assert!(!CachedHeap::same_class(layout(1 << 20, 8), 1 << 20));
    }

    #[test]
    fn a_freed_block_serves_the_next_allocation_of_its_class() {
        let mut h = heap(1 << 20);
        let a = h.allocate(layout(8000, 1));
        assert!(!a.is_null());
        assert_eq!(h.used(), 8192);
        // SAFETY: `a` came from `h` with this layout.
        unsafe { h.deallocate(a, layout(8000, 1)) };
        assert_eq!(h.used(), 0);
        let b = h.allocate(layout(8192, 1));
        assert_eq!(a, b);
        let small = h.allocate(layout(24, 8));
        assert_eq!(small as usize % 16, 0);
        assert_eq!(h.used(), 8192 + 32);
    }

    #[test]
    fn each_class_caches_its_share_of_an_eighth_of_the_heap_and_gives_the_rest_back() {
        let mut h = heap(1 << 20);
        let blocks: std::vec::Vec<*mut u8> =
            (0..100).map(|_| h.allocate(layout(8192, 1))).collect();
        assert!(blocks.iter().all(|b| !b.is_null()));
        for &b in &blocks {
            // SAFETY: each came from `h` with this layout, once.
            unsafe { h.deallocate(b, layout(8192, 1)) };
        }
        assert_eq!(h.used(), 0);
        // One 8 KiB block fits the class's share (128 KiB / 11); the rest is back in the
        // linked-list heap, whole again, for a block of another size.
        assert_eq!(h.cached, 8192);
        let large = h.allocate(layout(900 * 1024, 8));
        assert!(!large.is_null());
        // Small classes keep their own share.
        let small: std::vec::Vec<*mut u8> = (0..100).map(|_| h.allocate(layout(32, 8))).collect();
        for &b in &small {
            // SAFETY: each came from `h` with this layout, once.
            unsafe { h.deallocate(b, layout(32, 8)) };
        }
        assert_eq!(h.class_cached[1], 100 * 32);
    }

    #[test]
    fn blocks_aligned_beyond_16_or_larger_than_16_kib_bypass_the_caches() {
        let mut h = heap(1 << 20);
        let aligned = h.allocate(layout(64, 64));
        assert_eq!(aligned as usize % 64, 0);
        let big = h.allocate(layout(20_000, 8));
        // SAFETY: both came from `h` with these layouts.
        unsafe {
            h.deallocate(aligned, layout(64, 64));
            h.deallocate(big, layout(20_000, 8));
        }
        assert_eq!((h.used(), h.cached), (0, 0));
    }

    #[test]
    fn no_room_is_a_null_block() {
        let mut h = heap(64 * 1024);
        assert!(h.allocate(layout(128 * 1024, 8)).is_null());
    }
}
