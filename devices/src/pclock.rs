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

    /// `from_utc(year, month, day, hour, minute, second)` is that UTC date and time
    /// (proleptic Gregorian calendar; `month` 1-12, `day` 1-31), as a FAT entry or an RTC
    /// gives it.
    pub fn from_utc(year: i64, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Timestamp {
        // Days from 1970-01-01, counting years from March so that February is last.
        let (m, d) = (i64::from(month), i64::from(day));
        let y = if m <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        Timestamp { secs, nanos: 0 }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(Timestamp::from_utc(1970, 1, 1, 0, 0, 0), Timestamp::EPOCH);
        assert_eq!(
            Timestamp::from_utc(2023, 11, 14, 22, 13, 20).secs,
            1_700_000_000
        );
        assert_eq!(Timestamp::from_utc(2000, 2, 29, 0, 0, 0).secs, 951_782_400);
        assert_eq!(Timestamp::from_utc(1969, 12, 31, 23, 59, 59).secs, -1);
    }
}
