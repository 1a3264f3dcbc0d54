//! The groundwork of mirage-nix's bare-metal runtimes (`mirage-xen`, `mirage-solo5`), kept in
//! one place:
//!
//! - `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`, which the stable toolchain's prebuilt
//!   `compiler_builtins` for `x86_64-unknown-linux-gnu` leaves to a libc that images do not
//!   link (in `arch`, assembly);
//! - the global allocator, size-class caches in front of a linked-list heap, to which the
//!   runtime's boot code hands its free memory with [`heap::init`];
//! - [`panic::report`], which formats a panic's message once, without the heap;
//! - [`cmdline::split`], which turns a boot command line into words ([`cmdline::lossy`] makes
//!   its bytes text);
//! - [`rdtsc`], the time-stamp counter ordered after earlier loads, and [`tsc`]: ticks to
//!   nanoseconds without wrapping, and a floor that keeps a clock from going back;
//! - [`random_u64`], a word from the processor's RDRAND;
//! - [`devices`]: time, clocks, console and random devices over a platform's primitives;
//! - [`fault`]: CPU exceptions reported (a stack overflow as such), [`paging`]: identity page
//!   tables with guard holes, and (images only) `trap`: the exception entries and the ring 0
//!   tables that route them to a runtime's handler on stacks of their own;
//! - [`run`]: boot arguments, the executor and the exit code, the same on every target;
//! - [`linux`]: an image executed as a Linux process says what it is and exits 64.
//!
//! The `mem*` functions and the allocator exist only in images, which the targets' rustc flags
//! mark with `--cfg mirage_xen_image` or `--cfg mirage_solo5_image`; host builds (the
//! workspace's checks and tests) use std's.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod arch;
pub mod cmdline;
pub mod devices;
pub mod fault;
pub mod paging;
pub mod panic;
mod sys;
pub mod tsc;

#[cfg(any(mirage_xen_image, mirage_solo5_image))]
pub use arch::trap;
pub use arch::{random_u64, rdtsc};
pub use sys::{heap, linux};

use core::future::Future;

use mirage_runtime::{exit, BootArgs, Failure, KeySpec, Platform};

/// `run(platform, cmdline, name, keys, unikernel)` tells the portable devices the machine's
/// resources (RDRAND for entropy, the heap's size and use), parses the boot command line (words
/// separated by blanks, with shell-like quotes and backslashes) against `keys` and runs
/// `unikernel` with the result on the executor over `platform`; it returns the exit code,
/// printing what went wrong on the platform's console:
///
/// - `--help`: the usage, [`exit::HELP`] (63);
/// - bad arguments: the error naming the key, then the usage, [`exit::BAD_ARGUMENTS`] (64);
/// - a [`Failure`]: `error: ...`, [`exit::FAILURE`] (1);
/// - success: [`exit::SUCCESS`] (0).
pub fn run<P, F, Fut>(
    platform: &P,
    cmdline: &str,
    name: &str,
    keys: &'static [KeySpec],
    unikernel: F,
) -> i32
where
    P: Platform + devices::Primitives,
    F: FnOnce(BootArgs) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let say = |text: &str| P::console_write(text.as_bytes());
    mirage_runtime::resources::install(mirage_runtime::Resources {
        entropy: random_u64,
        heap: heap::stats,
    });
    let args = match BootArgs::parse(keys, cmdline::split(cmdline)) {
        Ok(args) => args,
        Err(e @ mirage_runtime::ArgError::Help) => {
            say(&mirage_runtime::usage(name, keys));
            return e.exit_code();
        }
        Err(e) => {
            say(&alloc::format!("{name}: {e}\n"));
            say(&mirage_runtime::usage(name, keys));
            return e.exit_code();
        }
    };
    match mirage_runtime::block_on(platform, unikernel(args)) {
        Ok(()) => exit::SUCCESS,
        Err(failure) => {
            say(&alloc::format!("error: {failure}\n"));
            exit::FAILURE
        }
    }
}
