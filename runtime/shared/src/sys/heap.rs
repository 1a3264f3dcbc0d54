//! The global allocator of an image: a linked-list heap over the memory the runtime's boot code
//! finds beyond the image. Host builds keep std's allocator, and [`init`] does nothing there.

#[cfg(any(mirage_xen_image, mirage_solo5_image))]
#[global_allocator]
static HEAP: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

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
}
