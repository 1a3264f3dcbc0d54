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

/// The shifts [`scale_delta`] honours: Xen picks `tsc_shift` so that a second's worth of ticks
/// shifted fits 32 bits (a few steps either way for any real counter); a value outside this
/// range is clamped to it, so that a hypervisor's nonsense gives a wrong rate, never an
/// overflow or a panic.
pub(crate) const TSC_SHIFTS: core::ops::RangeInclusive<i8> = -32..=32;

impl TimeInfo {
    /// `system_time_at(tsc)` is Xen's system time when the counter read `tsc`, extrapolated
    /// from the sample. The counter's distance from `tsc_timestamp` is taken modulo 2^64 and
    /// signed, as Xen and Linux's pvclock compute it (an HVM guest's counter starts near 0, and
    /// Xen's sample of it may be from just before that: `tsc_timestamp` near 2^64): forwards for
    /// a counter past the sample, backwards for one before it (a reading from before Xen's
    /// update), never ~2^64 ticks (centuries) ahead, and never below 0.
    pub(crate) fn system_time_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp) as i64;
        if delta >= 0 {
            self.system_time
                .saturating_add(scale_delta(delta.unsigned_abs(), self))
        } else {
            self.system_time
                .saturating_sub(scale_delta(delta.unsigned_abs(), self))
        }
    }
}

/// `scale_delta(delta, info)` is `delta` counter ticks in ns:
/// `((delta << tsc_shift) * tsc_to_system_mul) >> 32`, with the shift clamped to
/// [`TSC_SHIFTS`] and the result saturated at `u64::MAX`.
pub(crate) fn scale_delta(delta: u64, info: &TimeInfo) -> u64 {
    let shift = info.tsc_shift.clamp(*TSC_SHIFTS.start(), *TSC_SHIFTS.end());
    // At most 64 + 32 bits shifted, times 32 bits: within u128.
    let shifted = if shift >= 0 {
        u128::from(delta) << shift
    } else {
        u128::from(delta) >> -shift
    };
    u64::try_from((shifted * u128::from(info.tsc_to_system_mul)) >> 32).unwrap_or(u64::MAX)
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
    fn a_counter_below_the_timestamp_extrapolates_backwards_not_centuries_ahead() {
        // 1 tick = 1 ns.
        let info = TimeInfo {
            tsc_timestamp: 1_000_000,
            system_time: 5_000_000_000,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 1,
        };
        assert_eq!(info.system_time_at(1_000_100), 5_000_000_100);
        // A counter read before Xen's sample: a little before its system time. (The old
        // wrapping subtraction gave ~2^64 ticks: centuries ahead.)
        assert_eq!(info.system_time_at(999_900), 4_999_999_900);
        assert!(info.system_time_at(0) <= 5_000_000_000);
        // A sample taken just before the counter passed 0 (seen with a PVH dom0: the guest's
        // counter starts near 0, the timestamp is 2^64 - 75,919,700): forwards, across 0.
        let across = TimeInfo {
            tsc_timestamp: 0u64.wrapping_sub(75_919_700),
            ..info
        };
        assert_eq!(across.system_time_at(248_564_264), 5_324_483_964);
        // Never below zero either.
        let early = TimeInfo {
            system_time: 10,
            ..info
        };
        assert_eq!(early.system_time_at(0), 0);
    }

    #[test]
    fn tsc_shifts_out_of_range_are_clamped_not_panics() {
        let info = |tsc_shift| TimeInfo {
            tsc_timestamp: 0,
            system_time: 0,
            tsc_to_system_mul: 1 << 31,
            tsc_shift,
        };
        // Shifts a debug build's `<<` or `>>` would panic on (>= 64 bits) or that overflow.
        for shift in [33, 63, 64, 100, i8::MAX] {
            assert_eq!(scale_delta(2, &info(shift)), 2 << 31, "shift {shift}");
            assert_eq!(
                scale_delta(u64::MAX, &info(shift)),
                u64::MAX,
                "shift {shift}"
            );
        }
        for shift in [-33, -64, -100, i8::MIN] {
            assert_eq!(scale_delta(1 << 40, &info(shift)), 1 << 7, "shift {shift}");
        }
        assert_eq!(scale_delta(u64::MAX, &info(32)), u64::MAX);
        assert_eq!(scale_delta(1 << 40, &info(-32)), 1 << 7);
        // Within the range, the formula.
        assert_eq!(scale_delta(1000, &info(3)), 4000);
        assert_eq!(scale_delta(1000, &info(-3)), 62);
    }

    #[test]
    fn recalibration_never_takes_the_clock_back() {
        // Extrapolation from an old sample runs a little fast; Xen's next sample says the
        // counter's moment is 300 ns earlier than that extrapolation. The clock holds.
        let clock = mirage_bare_metal::tsc::Monotonic::new();
        let old = TimeInfo {
            tsc_timestamp: 0,
            system_time: 1_000_000,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 1,
        };
        let before = clock.clamp(old.system_time_at(10_000));
        assert_eq!(before, 1_010_000);
        let new = TimeInfo {
            tsc_timestamp: 9_000,
            system_time: 1_008_700,
            ..old
        };
        let raw = new.system_time_at(10_000);
        assert_eq!(raw, 1_009_700);
        assert_eq!(clock.clamp(raw), before);
        assert_eq!(clock.clamp(new.system_time_at(10_400)), 1_010_100);
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
