//! The PV console ring of a domain that is not the initial domain (`public/io/console.h`):
//! the guest writes `out[]` and advances `out_prod`, the console daemon consumes up to
//! `out_cons`, and an event on the console's channel tells the other side to look.

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};

use super::hypercall;
use super::shared_info::SharedInfo;

/// Offsets in `struct xencons_interface`.
const OUT: usize = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: usize = 3080;
const OUT_PROD: usize = 3084;

/// `Ring` is a mapped console ring and its event channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ring {
    base: usize,
    port: u32,
}

impl Ring {
    /// `new(base, port)` is the ring mapped at `base`, signalled through `port`.
    ///
    /// # Safety
    ///
    /// `base` must be where the domain's console page is mapped for the rest of the program,
    /// and only this runtime's one thread of control writes it.
    pub(crate) unsafe fn new(base: usize, port: u32) -> Ring {
        Ring { base, port }
    }

    fn index(&self, offset: usize) -> *mut u32 {
        (self.base + offset) as *mut u32
    }

    /// `write(bytes, shared)` puts all of `bytes` in the ring, waiting on the event channel
    /// while the ring is full.
    pub(crate) fn write(&self, mut bytes: &[u8], shared: &SharedInfo) {
        while !bytes.is_empty() {
            // SAFETY: `new`'s contract: the indexes are in the mapped page; the daemon updates
            // `out_cons` concurrently, hence volatile.
            let (cons, prod) = unsafe {
                (
                    read_volatile(self.index(OUT_CONS)),
                    read_volatile(self.index(OUT_PROD)),
                )
            };
            fence(Ordering::SeqCst);
            let free = OUT_SIZE - prod.wrapping_sub(cons).min(OUT_SIZE);
            if free == 0 {
                shared.clear_pending(self.port);
                hypercall::notify(self.port);
                hypercall::poll(&[self.port], 0);
                continue;
            }
            let n = bytes.len().min(free as usize);
            for (i, &b) in bytes[..n].iter().enumerate() {
                let at = (prod.wrapping_add(i as u32) % OUT_SIZE) as usize;
                // SAFETY: `at` < 2048, inside `out[]` of the mapped page, which the daemon only
                // reads between `out_cons` and `out_prod`.
                unsafe { write_volatile((self.base + OUT + at) as *mut u8, b) };
            }
            fence(Ordering::SeqCst);
            // SAFETY: as above; publishing the bytes written before the fence.
            unsafe { write_volatile(self.index(OUT_PROD), prod.wrapping_add(n as u32)) };
            hypercall::notify(self.port);
            bytes = &bytes[n..];
        }
    }
}
