//! Clocks and sleeping: [`Time`], [`Mclock`] and [`Pclock`].

use mirage_devices::Timestamp;

use crate::sys;

/// `Time` sleeps on the executor's timers, which the [`Xen`](crate::Xen) platform waits for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Time;

impl Time {
    /// `new()` is the time device.
    pub fn new() -> Time {
        Time
    }
}

impl mirage_devices::Time for Time {
    async fn sleep_ns(&self, ns: u64) {
        mirage_runtime::sleep_until(sys::now_ns().saturating_add(ns)).await;
    }
}

/// `Mclock` is Xen's system time from the shared-info page's `vcpu_time_info` (ns since the
/// host booted), or the ns since the image booted without Xen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mclock;

impl Mclock {
    /// `new()` is the monotonic clock device.
    pub fn new() -> Mclock {
        Mclock
    }
}

impl mirage_devices::Mclock for Mclock {
    fn elapsed_ns(&self) -> u64 {
        sys::now_ns()
    }
}

/// `Pclock` is Xen's wall clock (the shared-info page's `wc_sec`/`wc_nsec` plus system time),
/// or the CMOS clock at boot plus the time since, without Xen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pclock;

impl Pclock {
    /// `new()` is the wall clock device.
    pub fn new() -> Pclock {
        Pclock
    }
}

impl mirage_devices::Pclock for Pclock {
    fn now(&self) -> Timestamp {
        sys::wall_clock()
    }
}
