//! The Solo5 targets of mirage-nix: a unikernel as a Solo5 guest, run by the real, unmodified
//! `solo5-hvt` (a KVM virtual machine) or `solo5-spt` (a seccomp-sandboxed Linux process)
//! tender.
//!
//! An image is one static ELF64 `ET_EXEC`, linked at 1 MiB by [`solo5.ld`](../solo5.ld) with
//! the target's rustc flags (the catalogue's `[targets.hvt]` / `[targets.spt]` `rustflags`),
//! which set `--cfg mirage_solo5_image` and `--cfg mirage_solo5_hvt` or `mirage_solo5_spt`. It
//! carries Solo5's two notes ([`notes`]): the ABI note, which the runtime emits for the ABI
//! selected, and the manifest note listing the network and block devices the tender must
//! attach, which the image's crate declares with [`manifest!`] (the generator writes that call
//! from the plan).
//!
//! One device layer sits on two ABIs (module `sys`):
//!
//! - **hvt**: hypercalls, a 32-bit `out` to port `0x500 + nr` with the address of the call's
//!   structure; the monotonic clock is the time-stamp counter at the rate the boot info gives;
//! - **spt**: the raw system calls the tender's seccomp filter allows.
//!
//! The layers, bottom up: `mirage-bare-metal` (`mem*`, the heap, panic reports, command-line
//! words, shared with the xen target), `arch` (`_start`, instructions) and `sys` (boot info,
//! the two ABIs, the panic handler) hold every `unsafe` block; the modules below are safe: the
//! [`Solo5`] platform for the shared executor (its wait is `solo5_yield`: sleep in the tender
//! until a net device has a frame or the next timer's deadline), and the devices [`Console`],
//! [`Time`], [`Mclock`], [`Pclock`], [`Random`], [`Net`] and [`Block`].
//!
//! A rendered crate's `main.rs` holds `mirage_solo5::manifest!(...)` and
//! `mirage_solo5::main!("hello", RUNTIME_KEYS, unikernel);`: the entry calls the latter once
//! the heap and devices are ready, [`run`] parses the tender's arguments after the image
//! against the runtime keys and runs `unikernel`, and the tender exits with the resulting code
//! (a panic prints its message and exits with 255, `SOLO5_EXIT_ABORT`).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Host builds (the workspace's checks and unit tests) leave out the entry, the panic handler
// and the allocator, which only images compiled with `--cfg mirage_solo5_image` contain; the
// ABI not selected is compiled but unused.
#![allow(dead_code)]

extern crate alloc;

mod arch;
mod block;
mod devices;
mod net;
pub mod notes;
mod platform;
mod sys;

use core::future::Future;

use mirage_runtime::{BootArgs, Failure, KeySpec};

pub use block::{Block, ConnectError};
pub use devices::{Console, Mclock, Pclock, Random, Time};
pub use net::Net;
pub use platform::Solo5;

/// `main!(NAME, KEYS, unikernel)` defines the image's entry, which the boot code calls once
/// the heap and devices are ready: it runs [`run`]`(NAME, KEYS, unikernel)` and the tender
/// exits with the resulting code.
#[macro_export]
macro_rules! main {
    ($name:expr, $keys:expr, $unikernel:expr $(,)?) => {
        /// The image's entry, called by mirage-solo5's boot code.
        #[no_mangle]
        pub fn __mirage_solo5_main() -> i32 {
            $crate::run($name, $keys, $unikernel)
        }
    };
}

/// `manifest!(("service", Net), ("disk", Block), ...)` declares the image's Solo5 manifest:
/// the `MFT1` note (section `.note.solo5.manifest`) with the reserved entry 0 and one entry per
/// device, in order (a device's Solo5 handle is its index). Names (1 to 67 ASCII letters and
/// digits, distinct) and the count (at most 63) are checked when the image is compiled.
/// `manifest!()` declares a manifest without devices, which every image needs.
#[macro_export]
macro_rules! manifest {
    ($(($name:expr, $kind:ident)),* $(,)?) => {
        const __MIRAGE_SOLO5_DEVICES: &[$crate::notes::MftEntry] = &[
            $($crate::notes::MftEntry::new($name, $crate::notes::Kind::$kind)),*
        ];
        /// The image's Solo5 manifest, which the tender reads to attach its devices.
        #[used]
        #[link_section = ".note.solo5.manifest"]
        static __MIRAGE_SOLO5_MANIFEST: $crate::notes::MftNote<
            { __MIRAGE_SOLO5_DEVICES.len() + 1 },
        > = $crate::notes::MftNote::new(__MIRAGE_SOLO5_DEVICES);
    };
}

/// `run(name, keys, unikernel)` parses the tender's arguments after the image against `keys` and runs `unikernel`
/// with the result; it returns the exit code ([`mirage_bare_metal::run`] says which).
pub fn run<F, Fut>(name: &str, keys: &'static [KeySpec], unikernel: F) -> i32
where
    F: FnOnce(BootArgs) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    mirage_bare_metal::run(&Solo5, sys::cmdline(), name, keys, unikernel)
}
