//! The base devices of this target: the shared bare-metal ones
//! ([`mirage_bare_metal::devices`]) over [`Xen`]'s clock and console.

use mirage_bare_metal::devices;
use mirage_devices::Timestamp;

use crate::{sys, Xen};

impl devices::Primitives for Xen {
    fn now_ns() -> u64 {
        sys::now_ns()
    }

    fn wall_clock() -> Timestamp {
        sys::wall_clock()
    }

    fn console_write(bytes: &[u8]) {
        sys::console_write(bytes);
    }
}

/// `Time` sleeps on the executor's timers, which the [`Xen`] platform waits for.
pub type Time = devices::Time<Xen>;

/// `Mclock` is Xen's system time from the shared-info page's `vcpu_time_info` (ns since the
/// host booted), or the ns since the image booted without Xen.
pub type Mclock = devices::Mclock<Xen>;

/// `Pclock` is Xen's wall clock (the shared-info page's `wc_sec`/`wc_nsec` plus system time),
/// or the CMOS clock at boot plus the time since, without Xen.
pub type Pclock = devices::Pclock<Xen>;

/// `Console` writes to Xen's console (the initial domain), the domain's PV console ring
/// (other domains) or COM1 (PVH without Xen). It has no input on this target.
pub type Console = devices::Console<Xen>;

/// `Random` fills buffers from RDRAND, with no fallback: give QEMU `-cpu max`, or run on
/// hardware that has it.
pub type Random = devices::Random<Xen>;
