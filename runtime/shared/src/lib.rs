//! The groundwork of mirage-nix's bare-metal runtimes (`mirage-xen`, `mirage-solo5`), kept in
//! one place:
//!
//! - `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`, which the stable toolchain's prebuilt
//!   `compiler_builtins` for `x86_64-unknown-linux-gnu` leaves to a libc that images do not
//!   link (in `arch`, assembly);
//! - the global allocator, a linked-list heap that the runtime's boot code hands its free
//!   memory with [`heap::init`];
//! - [`panic::report`], which formats a panic's message once, without the heap;
//! - [`cmdline::split`], which turns a boot command line into words;
//! - [`tsc::TscScale`], time-stamp counter ticks to nanoseconds;
//! - [`random_u64`], a word from the processor's RDRAND;
//! - [`devices`]: time, clocks, console and random devices over a platform's primitives.
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
pub mod panic;
mod sys;
pub mod tsc;

pub use arch::random_u64;
pub use sys::heap;
