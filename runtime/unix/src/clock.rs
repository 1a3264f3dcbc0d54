//! Clocks and sleeping: [`Time`], [`Mclock`] and [`Pclock`] over the host's clocks.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mirage_devices::Timestamp;

/// `now_ns()` is the nanoseconds since the first call in this process, on the host's
/// monotonic clock. The executor's timers and [`Mclock`] use it.
pub fn now_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let elapsed = ORIGIN.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// `Time` sleeps on the executor's timers.
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
        mirage_runtime::sleep_until(now_ns().saturating_add(ns)).await;
    }
}

/// `Mclock` reads the host's monotonic clock (`CLOCK_MONOTONIC`).
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
        now_ns()
    }
}

/// `Pclock` reads the host's wall clock (`CLOCK_REALTIME`).
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
        timestamp(SystemTime::now())
    }
}

/// `timestamp(t)` is `t` as POSIX time, negative before 1970.
pub(crate) fn timestamp(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos(),
        },
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => Timestamp {
                    secs: -secs,
                    nanos: 0,
                },
                n => Timestamp {
                    secs: -secs - 1,
                    nanos: 1_000_000_000 - n,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_devices::{Mclock as _, Pclock as _, Time as _};
    use std::time::Duration;

    #[test]
    fn sleep_waits_at_least_its_duration() {
        let start = Mclock::new().elapsed_ns();
        mirage_runtime::block_on(&crate::Unix, Time::new().sleep_ns(30_000_000));
        assert!(Mclock::new().elapsed_ns() - start >= 30_000_000);
    }

    #[test]
    fn wall_clock_is_after_2020_and_timestamps_round_down() {
        assert!(Pclock::new().now().secs > 1_577_836_800);
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(
            timestamp(before),
            Timestamp {
                secs: -2,
                nanos: 500_000_000
            }
        );
    }
}
