//! Clock arithmetic, free of machine access so that it is tested on the host: scaling
//! time-stamp counter deltas the way Xen's `vcpu_time_info` says, and turning the CMOS clock's
//! calendar fields into POSIX time. (A counter of known rate is `mirage-bare-metal`'s
//! `TscScale`.)

/// The fields of a `vcpu_time_info` needed to extrapolate system time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimeInfo {
    /// The time-stamp counter when `system_time` was sampled.
    pub(crate) tsc_timestamp: u64,
    /// Xen's system time, in ns, at `tsc_timestamp`.
    pub(crate) system_time: u64,
    /// Counter ticks to ns: a 32.32 fixed-point multiplier...
    pub(crate) tsc_to_system_mul: u32,
    /// ...applied after shifting the delta left by this (right if negative).
    pub(crate) tsc_shift: i8,
}

/// `scale_delta(delta, info)` is `delta` counter ticks in ns:
/// `((delta << tsc_shift) * tsc_to_system_mul) >> 32`.
pub(crate) fn scale_delta(delta: u64, info: &TimeInfo) -> u64 {
    let shifted = if info.tsc_shift >= 0 {
        delta << info.tsc_shift
    } else {
        delta >> -i32::from(info.tsc_shift)
    };
    ((u128::from(shifted) * u128::from(info.tsc_to_system_mul)) >> 32) as u64
}

/// `from_bcd(v)` is the binary value of the packed BCD byte `v`.
pub(crate) fn from_bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

/// `civil_to_unix(year, month, day, hour, minute, second)` is the POSIX time of that UTC date
/// (proleptic Gregorian calendar; `month` 1-12, `day` 1-31).
pub(crate) fn civil_to_unix(
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
) -> i64 {
    mirage_devices::Timestamp::from_utc(year, month, day, hour, minute, second).secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_scaling_matches_the_formula() {
        // A 2 GHz counter: mul = 2^31 with shift 0 halves ticks.
        let info = TimeInfo {
            tsc_timestamp: 0,
            system_time: 0,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 0,
        };
        assert_eq!(scale_delta(2_000_000_000, &info), 1_000_000_000);
        let shifted = TimeInfo {
            tsc_shift: -1,
            tsc_to_system_mul: u32::MAX,
            ..info
        };
        assert_eq!(scale_delta(1 << 33, &shifted), (1u64 << 32) - 1);
        let left = TimeInfo {
            tsc_shift: 2,
            tsc_to_system_mul: 1 << 30,
            ..info
        };
        assert_eq!(scale_delta(1000, &left), 1000);
    }

    #[test]
    fn calendar() {
        assert_eq!(from_bcd(0x59), 59);
        assert_eq!(civil_to_unix(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(civil_to_unix(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(civil_to_unix(2026, 11, 27, 12, 30, 5), 1_795_782_605);
        assert_eq!(civil_to_unix(1969, 12, 31, 23, 59, 59), -1);
    }
}
