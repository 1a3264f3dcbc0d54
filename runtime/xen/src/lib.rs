//! The xen target of mirage-nix: a unikernel as a Xen guest kernel.
//!
//! An image is one ELF64 executable, linked at 1 MiB by [`xen.ld`](../xen.ld) with the
//! target's rustc flags (the catalogue's `[targets.xen] rustflags`), that boots two ways:
//!
//! 1. **PV**, on the real Xen (as the initial domain, or as a domU through `xl`): Xen reads the
//!    image's ELF notes, fills its hypercall page and enters `_start` in 64-bit mode. The
//!    console is Xen's own (`console_io`) for the initial domain and the PV console ring
//!    otherwise; the clocks come from the shared-info page's `vcpu_time_info` and wall clock;
//!    sleeping is `SCHEDOP_poll` with a timeout, event upcalls masked.
//! 2. **PVH** (`XEN_ELFNOTE_PHYS32_ENTRY`), directly under `qemu-system-x86_64 -kernel` or as a
//!    PVH domU: `_start32` builds page tables and enters long mode. Without Xen underneath the
//!    console is COM1, the clocks are the time-stamp counter (rate measured against the PIT)
//!    and the CMOS clock, and the exit status goes to QEMU's `isa-debug-exit` port. With Xen
//!    detected through CPUID, the PV devices above are used.
//!
//! A domU also has PV devices: [`Net`] (netfront) and [`Block`] (blkfront), which the
//! toolstack gives it as the `vif` and `disk` lines of its `xl` config.
//!
//! The layers, bottom up:
//!
//! 1. `mirage-bare-metal` (`mem*`, the heap, panic reports, command-line words, shared with the
//!    solo5 target), `arch` (entries, ELF notes, CPU instructions) and `sys` (hypercalls,
//!    shared info and its event bits, shared pages, the grant table's frames, the console
//!    ring, PC devices, panic handler) hold every `unsafe` block;
//! 2. safe plumbing over them: `events` (event channels bound to the executor's wait),
//!    `grants` (grant references), `ring` (`ring.h`'s shared rings), `xenstore` (the store
//!    client), `frontend` (XenBus: finding a device, the state machine, every wait bounded),
//!    `control` (`xl shutdown`);
//! 3. the [`Xen`] platform for the shared executor, and the devices [`Console`], [`Time`],
//!    [`Mclock`], [`Pclock`], [`Random`], [`Net`] and [`Block`].
//!
//! A rendered crate's `main.rs` ends with `mirage_xen::main!("conduit_server", RUNTIME_KEYS,
//! unikernel, [("service", Net)]);`: the boot code calls it once the machine is set up, [`run`]
//! records the image's devices (by graph name, in its `xl` config's order), parses the command
//! line against the runtime keys and runs `unikernel`, and the domain shuts down with the
//! outcome (see [Exit](#exit)).
//!
//! # Exit
//!
//! Returning successfully shuts the domain down with reason *poweroff*, or *reboot* for the
//! initial domain (whose poweroff would only halt the machine; a reboot ends QEMU under
//! `-no-reboot`). A failure, bad boot arguments, `--help` and panics shut it down with reason
//! *crash*, which Xen logs and `xl`'s `on_crash` acts on. Under QEMU without Xen, the exit
//! code `c` becomes QEMU's status `2c + 1` (a panic is code 101: status 203).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Host builds (the workspace's checks and unit tests) leave out the boot code, the panic
// handler and the allocator, which only images compiled with `--cfg mirage_xen_image` (the
// target's rustc flags) contain; much of `sys` is unused without them.
#![cfg_attr(not(mirage_xen_image), allow(dead_code))]

extern crate alloc;

mod arch;
mod block;
mod control;
mod deadline;
mod devices;
mod events;
mod frontend;
mod grants;
mod net;
mod platform;
mod ring;
mod sys;
mod time;
mod xenstore;

use core::future::Future;

use mirage_runtime::{BootArgs, Failure, KeySpec};

pub use block::Block;
pub use devices::{Console, Mclock, Pclock, Random, Time};
pub use frontend::{Cause, ConnectError, DeviceKind, State};
pub use grants::GrantsError;
pub use net::Net;
pub use platform::Xen;
pub use xenstore::{Errno, XsError};

/// `main!(NAME, KEYS, unikernel, [("service", Net), ("disk", Block), ...])` defines the
/// image's entry, which the boot code calls once the machine is ready: it runs
/// [`run`]`(NAME, KEYS, DEVICES, unikernel)` and the domain shuts down with the resulting exit
/// code. The devices (none if the list is left out) are the image's network and block devices
/// by graph name, in the order the generated `xl` config lists their `vif` and `disk` lines.
#[macro_export]
macro_rules! main {
    ($name:expr, $keys:expr, $unikernel:expr $(,)?) => {
        $crate::main!($name, $keys, $unikernel, []);
    };
    ($name:expr, $keys:expr, $unikernel:expr, [$(($device:expr, $kind:ident)),* $(,)?] $(,)?) => {
        /// The image's entry, called by mirage-xen's boot code.
        #[no_mangle]
        pub fn __mirage_xen_main() -> i32 {
            static DEVICES: &[(&str, $crate::DeviceKind)] = &[
                $(($device, $crate::DeviceKind::$kind)),*
            ];
            $crate::run($name, $keys, DEVICES, $unikernel)
        }
    };
}

/// `run(name, keys, devices, unikernel)` records the image's devices, parses the domain's
/// command line against `keys` and runs `unikernel` with the result; it returns the exit code
/// ([`mirage_bare_metal::run`] says which).
pub fn run<F, Fut>(
    name: &str,
    keys: &'static [KeySpec],
    devices: &'static [(&'static str, DeviceKind)],
    unikernel: F,
) -> i32
where
    F: FnOnce(BootArgs) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    frontend::declare(devices);
    mirage_bare_metal::run(&Xen, sys::cmdline(), name, keys, |args| {
        // A domU honours `xl shutdown` and `xl reboot` (the toolstack's control node).
        if matches!(
            sys::machine_kind(),
            sys::MachineKind::Pv | sys::MachineKind::Pvh
        ) {
            mirage_runtime::spawn(control::watch());
        }
        unikernel(args)
    })
}
