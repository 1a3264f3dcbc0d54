//! CPU exceptions: reported on the console (vector, faulting address, instruction; a page
//! fault in the stack's guard page as a stack overflow), then the crash shutdown (QEMU's
//! status 255 on a PC).
//!
//! - **PVH** (ring 0): `mirage-bare-metal`'s IDT, each exception on a stack of its own, so a
//!   stack overflow is reported like any other fault.
//! - **PV**: the same handlers in Xen's trap table. Xen delivers an exception to a PV guest on
//!   the stack it was using (a PV guest has no IST), so the handlers run for every fault but
//!   one: a stack overflow, whose page fault leaves Xen no room for its frame below the guard
//!   page. Xen then crashes the domain itself and logs the page walk of the guard address
//!   (`domain_crash_sync`, in `xl dmesg` or dom0's serial console) instead of this report.

use mirage_bare_metal::fault::{self, Fault, PAGE_FAULT};
use mirage_bare_metal::trap;

use super::hypercall::{self, TrapInfo, FLAT_KERNEL_CS};
use super::{console_write, crash, Machine, FAULT_EXIT, MACHINE};

/// `on_fault(fault)` reports `fault` (unless it struck while another was being reported) and
/// ends the image.
fn on_fault(fault: &Fault) -> ! {
    if !fault.nested {
        let mut fault = *fault;
        if fault.vector == PAGE_FAULT && fault.address.is_none() {
            if let Some(Machine::Xen { shared, .. }) = MACHINE.get() {
                fault.address = Some(shared.cr2());
            }
        }
        console_write(fault.report(fault::stack_guard()).bytes());
    }
    crash(FAULT_EXIT)
}

/// `install_ring0()` routes exceptions to [`on_fault`] through the image's own IDT (PVH).
///
/// # Safety
///
/// Ring 0, once, at boot (see `trap::install_ring0_traps`).
pub(crate) unsafe fn install_ring0() {
    // SAFETY: as the caller guarantees.
    unsafe { trap::install_ring0_traps(on_fault) };
}

/// `install_pv()` registers [`on_fault`] for every exception Xen delivers to a PV guest
/// (not NMI, #DF or #MC, which Xen handles, nor the reserved vectors), and is Xen's result.
pub(crate) fn install_pv() -> i64 {
    trap::set_fault_handler(on_fault);
    let entries = trap::pv_trap_entries();
    let mut table = [TrapInfo::default(); 21];
    let vectors = (0..20u8).filter(|v| !matches!(v, 2 | 8 | 9 | 15 | 18));
    for (slot, vector) in table.iter_mut().zip(vectors) {
        *slot = TrapInfo {
            vector,
            // `int3` and `into` may be raised from the guest's own code.
            flags: if matches!(vector, 3 | 4) { 3 } else { 0 },
            cs: FLAT_KERNEL_CS,
            address: entries[usize::from(vector)],
        };
    }
    let used = table.iter().take_while(|t| t.address != 0).count();
    hypercall::set_trap_table(&table[..=used])
}
