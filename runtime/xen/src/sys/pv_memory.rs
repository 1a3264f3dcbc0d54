//! Mapping the rest of a PV domain's memory.
//!
//! Xen maps only the bootstrap region for a PV guest: the image, the page-frame list, start
//! info, the bootstrap page tables and stack, and padding up to a 4 MiB boundary
//! (`public/xen.h`, "start of day memory layout"); pseudo-physical page `p` of that region is at
//! virtual address `p * 4096`. This module extends that map over the domain's other pages, up
//! to 1 GiB (the span of the bootstrap region's level-2 table), so the heap can use them:
//!
//! 1. for each 2 MiB chunk past the region, take the domain's last free page for a level-1
//!    table, map it at a scratch address, fill it with the chunk's entries (the machine frames
//!    come from the page-frame list), and unmap it, so that no writable mapping of it is left;
//! 2. install it in the level-2 table with `mmu_update`, which checks it and makes it a page
//!    table.
//!
//! The page tables themselves are found by walking from `pt_base` through the
//! machine-to-physical table that Xen maps read-only for every PV guest. A hypercall Xen
//! refuses stops the boot with a panic naming it.

use super::boot::check;
use super::hypercall;

extern "C" {
    static mut mirage_xen_scratch_page: [u8; 4096];
}

/// Where Xen maps the machine-to-physical table for 64-bit PV guests (`MACH2PHYS_VIRT_START`).
const MACH2PHYS: u64 = 0xffff_8000_0000_0000;
/// The address bits of a page-table entry.
const ADDR: u64 = 0x000f_ffff_ffff_f000;
/// Present, writable, user (Xen requires it of 64-bit PV kernels), accessed, dirty.
const PTE: u64 = 0x1 | 0x2 | 0x4 | 0x20 | 0x40;
/// The pages one level-1 table maps.
const PER_TABLE: u64 = 512;

/// `read(va)` reads a word that Xen maps for the guest.
///
/// # Safety
///
/// `va` must be mapped and 8-byte aligned.
unsafe fn read(va: u64) -> u64 {
    // SAFETY: as the caller guarantees; page tables and the tables of frames may change under
    // us only through our own hypercalls.
    unsafe { core::ptr::read_volatile(va as *const u64) }
}

/// `pfn_of_mfn(mfn)` is the pseudo-physical frame of machine frame `mfn`, from the
/// machine-to-physical table.
///
/// # Safety
///
/// `mfn` must be a frame of the host (the table covers every one).
pub(crate) unsafe fn pfn_of_mfn(mfn: u64) -> u64 {
    // SAFETY: as the caller guarantees; Xen maps the table read-only for every PV guest.
    unsafe { read(MACH2PHYS + 8 * mfn) }
}

/// `table_va(entry)` is the virtual address of the page table that `entry` points to: its
/// pseudo-physical page, which lies in the bootstrap region (mapped one-to-one).
///
/// # Safety
///
/// `entry` must be a present entry of one of the domain's bootstrap page tables.
unsafe fn table_va(entry: u64) -> u64 {
    // SAFETY: the entry's machine frame is one of the host's.
    let pfn = unsafe { pfn_of_mfn((entry & ADDR) >> 12) };
    pfn << 12
}

/// `extend(region_end, nr_pages, mfn_list, pt_base)` maps pseudo-physical pages from
/// `region_end` (the end of the bootstrap region, 4 MiB aligned) up to the domain's last page
/// or 1 GiB, whichever is lower, less the pages it takes for level-1 tables; it returns the
/// end of the mapped memory.
///
/// # Safety
///
/// Only at boot, once: `nr_pages`, `mfn_list` and `pt_base` must be those of `start_info`,
/// the pages past `region_end` must be unused, and `mirage_xen_scratch_page` must be a page of
/// the image that nothing else uses (its frame is abandoned).
pub(crate) unsafe fn extend(region_end: u64, nr_pages: u64, mfn_list: u64, pt_base: u64) -> u64 {
    let first = region_end >> 12;
    let last = nr_pages.min((1 << 30) >> 12);
    if last <= first {
        return region_end;
    }
    // One level-1 table per 2 MiB chunk, taken from the top.
    let tables = (last - first).div_ceil(PER_TABLE);
    let usable = last - tables;
    // SAFETY: `pt_base` is the level-4 table, mapped (read-only) in the bootstrap region, and
    // the bootstrap region's entries at index 0 of levels 4 and 3 are present.
    let l2 = unsafe {
        let l3 = table_va(read(pt_base));
        table_va(read(l3))
    };
    let l2_entry_maddr = |chunk: u64| {
        // SAFETY: `l2` is mapped; its own machine frame is where Xen reads the entries.
        let l2_mfn = unsafe { read(mfn_list + 8 * (l2 >> 12)) };
        (l2_mfn << 12) + 8 * chunk
    };
    let scratch = (&raw mut mirage_xen_scratch_page) as u64;
    let mut next_table = usable;
    let mut chunk = first / PER_TABLE;
    while chunk * PER_TABLE < usable {
        // SAFETY: the level-2 table is mapped; entries past the bootstrap region are empty.
        if unsafe { read(l2 + 8 * chunk) } & 1 == 0 {
            // SAFETY: `next_table` < `nr_pages`: the list has its machine frame.
            let table_mfn = unsafe { read(mfn_list + 8 * next_table) };
            next_table += 1;
            // SAFETY: the scratch page is reserved for this, and the table page is unused.
            let rc = unsafe { hypercall::map_frame(scratch, table_mfn << 12) };
            check("mapping a new page table (update_va_mapping)", rc);
            for i in 0..PER_TABLE {
                let pfn = chunk * PER_TABLE + i;
                let entry = if (first..usable).contains(&pfn) {
                    // SAFETY: `pfn` < `nr_pages`.
                    (unsafe { read(mfn_list + 8 * pfn) } << 12) | PTE
                } else {
                    0
                };
                // SAFETY: the scratch page now shows the table page, writable.
                unsafe { core::ptr::write_volatile((scratch + 8 * i) as *mut u64, entry) };
            }
            // SAFETY: the scratch page is not used again until the next map_frame.
            let rc = unsafe { hypercall::unmap_page(scratch) };
            check("unmapping a new page table (update_va_mapping)", rc);
            // SAFETY: the entry of chunk `chunk` in the level-2 table, pointing at a table
            // whose only mappings were just removed and which maps unused pages of ours.
            let rc = unsafe { hypercall::set_pte(l2_entry_maddr(chunk), (table_mfn << 12) | PTE) };
            check("installing a new page table (mmu_update)", rc);
        }
        chunk += 1;
    }
    usable << 12
}
