//! The `pclock` signature: the POSIX wall clock, as Mirage's `PCLOCK`.

use core::fmt;

/// A `Timestamp` is a point in POSIX time: seconds and nanoseconds since
/// 1970-01-01T00:00:00Z, leap seconds not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since the epoch; negative before 1970.
    pub secs: i64,
    /// Nanoseconds within the second, below 1_000_000_000.
    pub nanos: u32,
}

impl Timestamp {
    /// `EPOCH` is 1970-01-01T00:00:00Z, the modification time of files in reproducible images.
    pub const EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

/// A `Pclock` tells the current date and time. It can jump (the operator sets it, NTP steps it);
/// measure durations with an [`Mclock`](crate::Mclock) instead.
pub trait Pclock: Clone {
    /// `now()` is the current POSIX time.
    fn now(&self) -> Timestamp;

    /// `tz_offset_s()` is the local time zone's offset from UTC in seconds, if known.
    fn tz_offset_s(&self) -> Option<i32> {
        None
    }
}
