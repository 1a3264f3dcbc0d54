//! The runtime every mirage-nix target shares: the executor, boot arguments and the plumbing
//! that turns a unikernel's result into an exit status.
//!
//! A generated `main.rs` uses this crate in three steps:
//!
//! 1. **Boot arguments.** The image's runtime keys are a `static` table of [`KeySpec`]s; the
//!    target's entry point parses its argument list (argv, the Xen command line, the Solo5
//!    tender's arguments) with [`BootArgs::parse`], printing [`usage`] on `--help`.
//! 2. **Connecting devices.** Each device's connect code runs in order; a fallible one is
//!    wrapped in [`connected`], so its error becomes a [`Failure::Connect`] naming the device.
//! 3. **Running the job.** The unikernel's `start` is awaited and its result turned into a
//!    [`Failure`] by [`JobOutput`]; the target maps the outcome to an [`exit`] code.
//!
//! All of that runs inside [`block_on`], a single-threaded executor with spawned tasks and
//! timers. The executor is the same on every target; a target only implements [`Platform`],
//! the one primitive "block until an I/O source is ready or a deadline passes" (`poll(2)` on
//! unix, `SCHEDOP_poll` on Xen, `solo5_yield` on Solo5), and keeps a [`Readiness`] registry of
//! the futures waiting on its I/O sources.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(any(feature = "std", feature = "bare-metal", test)))]
compile_error!("mirage-runtime needs the `std` feature (hosted) or `bare-metal` (Xen, Solo5)");

extern crate alloc;

pub mod args;
pub mod executor;
pub mod ipv4;
pub mod outcome;
pub mod readiness;
pub mod resources;
mod shared;
#[cfg(not(any(feature = "std", test)))]
mod sys;

pub use args::{usage, ArgError, BootArgs, KeyKind, KeySpec};
pub use executor::{block_on, sleep_until, spawn, yield_now, JoinHandle, Platform, Sleep};
pub use ipv4::Ipv4Prefix;
pub use outcome::{connected, exit, Failure, JobOutput};
pub use readiness::{Interest, Readiness};
pub use resources::{Heap, Resources};
