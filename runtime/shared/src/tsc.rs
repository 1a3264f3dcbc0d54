//! Time from the time-stamp counter, in integer arithmetic only (hvt guests on some hosts fault
//! on floating point): [`TscScale`] turns ticks into nanoseconds, [`ticks_since`] measures
//! from a starting reading without wrapping, and [`Monotonic`] keeps a clock from ever going
//! back. The counter itself is read with [`rdtsc`](crate::rdtsc) (`lfence; rdtsc`).

use core::sync::atomic::{AtomicU64, Ordering};

/// `TscScale` turns counter ticks into ns for a counter of known rate, as a 32.32 multiplier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TscScale {
    mul: u64,
}

impl TscScale {
    /// `new(hz)` is the scale of a counter ticking `hz` times a second (at least 1).
    pub fn new(hz: u64) -> TscScale {
        TscScale {
            mul: ((1_000_000_000u128 << 32) / u128::from(hz.max(1))) as u64,
        }
    }

    /// `ns(ticks)` is `ticks` in nanoseconds (`u64::MAX` if that does not fit).
    pub fn ns(&self, ticks: u64) -> u64 {
        u64::try_from((u128::from(ticks) * u128::from(self.mul)) >> 32).unwrap_or(u64::MAX)
    }
}

/// `ticks_since(start, now)` is how far the counter moved from `start` to `now`, modulo 2^64
/// (a counter that passed 2^64 in between still counts forwards): 0 if `now` is behind
/// `start` (a counter read on another processor, or not yet synchronised), never the ~2^64
/// ticks (centuries) that a wrapping subtraction alone would give.
pub fn ticks_since(start: u64, now: u64) -> u64 {
    u64::try_from(now.wrapping_sub(start) as i64).unwrap_or(0)
}

/// `Monotonic` is a clock's floor: [`Monotonic::clamp`] passes readings through but never
/// returns less than it returned before, so the clock never goes back, whatever the readings
/// do (a counter behind its calibration point, a recalibration that lands a little earlier
/// than the old extrapolation).
#[derive(Debug, Default)]
pub struct Monotonic {
    last: AtomicU64,
}

impl Monotonic {
    /// `new()` is a clock that has returned nothing yet.
    pub const fn new() -> Monotonic {
        Monotonic {
            last: AtomicU64::new(0),
        }
    }

    /// `clamp(reading)` is `reading`, or the greatest value returned so far if that is more.
    pub fn clamp(&self, reading: u64) -> u64 {
        self.last.fetch_max(reading, Ordering::Relaxed).max(reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_scale() {
        assert_eq!(TscScale::new(1_000_000_000).ns(123_456_789), 123_456_789);
        assert_eq!(TscScale::new(3_000_000_000).ns(3_000_000_000), 999_999_999);
        assert_eq!(TscScale::new(0).ns(1), 1_000_000_000);
        // A slow counter's whole range does not fit in ns: saturated, not truncated.
        assert_eq!(TscScale::new(1).ns(u64::MAX), u64::MAX);
        assert_eq!(TscScale::new(1000).ns(u64::MAX / 2), u64::MAX);
    }

    #[test]
    fn a_counter_behind_its_start_is_no_time_not_centuries() {
        assert_eq!(ticks_since(1000, 1500), 500);
        assert_eq!(ticks_since(1000, 999), 0);
        assert_eq!(ticks_since(u64::MAX - 9, 5), 15);
        assert_eq!(
            ticks_since(5, u64::MAX),
            0,
            "behind by 6, not 2^64 - 6 ahead"
        );
        assert_eq!(TscScale::new(1_000_000_000).ns(ticks_since(u64::MAX, 3)), 4);
    }

    #[test]
    fn a_monotonic_clock_never_goes_back() {
        let clock = Monotonic::new();
        assert_eq!(clock.clamp(10), 10);
        assert_eq!(clock.clamp(25), 25);
        // A reading behind the last one (a recalibration) holds the clock where it was...
        assert_eq!(clock.clamp(20), 25);
        assert_eq!(clock.clamp(0), 25);
        // ...until the readings catch up.
        assert_eq!(clock.clamp(26), 26);
    }
}
