//! The panic handler: the message and its location on the console, then the crash reason (or
//! QEMU's exit status 101 on a PC).

use core::panic::PanicInfo;

use super::hypercall::{self, Reason};
use super::{console_write, pc, Machine, MACHINE};

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    mirage_bare_metal::panic::report(info, console_write);
    match MACHINE.get() {
        Some(Machine::Xen { .. }) => hypercall::shutdown(Reason::Crash),
        Some(Machine::Pc { .. }) | None => pc::exit(101),
    }
}
