//! The panic handler: the message and its location on the console, then the crash reason (or
//! QEMU's exit status 101 on a PC).

use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use super::hypercall::{self, Reason};
use super::{console_write, pc, Machine, MACHINE};

/// A console writer that needs no heap (the heap may be what failed).
struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        console_write(s.as_bytes());
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if !PANICKING.swap(true, Ordering::SeqCst) {
        let _ = writeln!(Raw, "{info}");
    }
    match MACHINE.get() {
        Some(Machine::Xen { .. }) => hypercall::shutdown(Reason::Crash),
        Some(Machine::Pc { .. }) | None => pc::exit(101),
    }
}
