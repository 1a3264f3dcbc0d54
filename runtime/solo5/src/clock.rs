//! Clocks and sleeping: [`Time`], [`Mclock`] and [`Pclock`].

use mirage_devices::Timestamp;

use crate::sys;

/// `Time` sleeps on the executor's timers, which the [`Solo5`](crate::Solo5) platform waits for
/// in the tender.
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

/// `Mclock` is the monotonic clock: ns since boot from the time-stamp counter (hvt), the host's
/// `CLOCK_MONOTONIC` (spt).
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

/// `Pclock` is the host's wall clock (hvt `WALLTIME`, spt `CLOCK_REALTIME`).
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
