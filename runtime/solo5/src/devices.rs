//! The base devices of this target: the shared bare-metal ones
//! ([`mirage_bare_metal::devices`]) over [`Solo5`]'s clock and console.

use mirage_bare_metal::devices;
use mirage_devices::Timestamp;

use crate::{sys, Solo5};

impl devices::Primitives for Solo5 {
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

/// `Time` sleeps on the executor's timers, which the [`Solo5`] platform waits for in the
/// tender.
pub type Time = devices::Time<Solo5>;

/// `Mclock` is the monotonic clock: ns since boot from the time-stamp counter (hvt), the host's
/// `CLOCK_MONOTONIC` (spt).
pub type Mclock = devices::Mclock<Solo5>;

/// `Pclock` is the host's wall clock (hvt `WALLTIME`, spt `CLOCK_REALTIME`).
pub type Pclock = devices::Pclock<Solo5>;

/// `Console` writes to the tender's standard output (hvt `PUTS`, spt `write(1)`). It has no
/// input: Solo5 gives a guest none.
pub type Console = devices::Console<Solo5>;

/// `Random` fills buffers from RDRAND, with no fallback: run on hardware that has it.
pub type Random = devices::Random<Solo5>;
