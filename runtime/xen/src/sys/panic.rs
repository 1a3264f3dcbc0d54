//! The panic handler: the message and its location on the console, then the crash reason (or
//! QEMU's exit status 203, code 101, on a PC).

use core::panic::PanicInfo;

use super::{console_write, crash};

/// The exit code of a panic on a PC (QEMU's status 203), Rust's own.
const PANIC_EXIT: u8 = 101;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    mirage_bare_metal::panic::report(info, console_write);
    crash(PANIC_EXIT)
}
