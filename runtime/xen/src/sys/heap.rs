//! The global allocator: a linked-list heap over the memory the domain owns beyond the image.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// `init(start, end)` gives `[start, end)` to the allocator.
///
/// # Safety
///
/// The range must be mapped, writable, owned by nothing else for the rest of the program, and
/// this must be called once, before the first allocation.
pub(crate) unsafe fn init(start: u64, end: u64) {
    // SAFETY: the caller guarantees the range and the single call.
    unsafe {
        HEAP.lock()
            .init(start as *mut u8, end.saturating_sub(start) as usize)
    };
}
