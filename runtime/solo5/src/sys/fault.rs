//! CPU exceptions on hvt: the guest runs in ring 0 of its own virtual machine, so it takes
//! its exceptions itself. `mirage-bare-metal`'s IDT routes them, each on a stack of its own,
//! to [`on_fault`], which reports the vector, the faulting address and the instruction on the
//! console (a page fault in the stack's guard page as a stack overflow) and aborts as
//! `solo5_abort` does: the tender exits with 255 (`SOLO5_EXIT_ABORT`), not the 1 of an
//! orderly failure (which a triple fault, the only outcome without an IDT, also gave).
//!
//! spt images are Linux processes under the tender's seccomp filter: a fault there is a
//! signal that ends the tender (no handler can be installed: the filter forbids it).

use mirage_bare_metal::fault::{self, Fault};
use mirage_bare_metal::trap;

use super::{console_write, exit};

/// `SOLO5_EXIT_ABORT`: what `solo5_abort` gives the tender.
pub(crate) const EXIT_ABORT: i32 = 255;

/// `on_fault(fault)` reports `fault` (unless it struck while another was being reported) and
/// aborts.
fn on_fault(fault: &Fault) -> ! {
    if !fault.nested {
        console_write(fault.report(fault::stack_guard()).bytes());
    }
    exit(EXIT_ABORT)
}

/// `install(memory, guard)` switches to page tables that map the guest's `memory` bytes but
/// for page 0 (null pointers fault) and the stack's guard page at `guard`, and routes
/// exceptions to [`on_fault`].
///
/// # Safety
///
/// hvt only, at boot, once: ring 0, interrupts off, the tender's page tables mapping
/// `[0, memory)` one-to-one, and nothing the image uses in page 0 or the guard page.
pub(crate) unsafe fn install(memory: u64, guard: u64) {
    // SAFETY: as the caller guarantees.
    if let Err(e) = unsafe { trap::load_identity_map(memory, &[0, guard]) } {
        panic!("boot: the page tables: {e}");
    }
    fault::set_stack_guard(guard);
    // SAFETY: as the caller guarantees.
    unsafe { trap::install_ring0_traps(on_fault) };
}
