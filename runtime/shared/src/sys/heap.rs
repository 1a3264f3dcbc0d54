//! The global allocator of an image: a linked-list heap over the memory the runtime's boot code
//! finds beyond the image. Host builds keep std's allocator, and [`init`] does nothing there.

#[cfg(any(mirage_xen_image, mirage_solo5_image))]
#[global_allocator]
static HEAP: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

/// `init(start, end)` gives `[start, end)` to the allocator (nothing if `end <= start`).
///
/// # Safety
///
/// The range must be mapped, writable, owned by nothing else for the rest of the program, and
/// this must be called once, before the first allocation.
pub unsafe fn init(start: u64, end: u64) {
    #[cfg(any(mirage_xen_image, mirage_solo5_image))]
    // SAFETY: the caller guarantees the range and the single call.
    unsafe {
        HEAP.lock()
            .init(start as *mut u8, end.saturating_sub(start) as usize)
    };
    #[cfg(not(any(mirage_xen_image, mirage_solo5_image)))]
    let _ = (start, end);
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
