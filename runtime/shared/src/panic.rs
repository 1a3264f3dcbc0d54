//! Reporting a panic without the heap (the heap may be what failed): the runtimes' panic
//! handlers call [`report`] with their console, then end the image their own way.

use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

/// A writer over a console function.
struct Raw<F>(F);

impl<F: FnMut(&[u8])> Write for Raw<F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        (self.0)(s.as_bytes());
        Ok(())
    }
}

static PANICKING: AtomicBool = AtomicBool::new(false);

/// `report(info, write)` writes `panicked at FILE:LINE:COL:` and the message, then a newline,
/// through `write`; only the first panic is reported, so that a panic while reporting cannot
/// recurse.
pub fn report(info: &PanicInfo<'_>, write: impl FnMut(&[u8])) {
    if !PANICKING.swap(true, Ordering::SeqCst) {
        let _ = writeln!(Raw(write), "{info}");
    }
}
