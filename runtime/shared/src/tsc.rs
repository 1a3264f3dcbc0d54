//! [`TscScale`]: time-stamp counter ticks to nanoseconds, in integer arithmetic only (hvt
//! guests on some hosts fault on floating point).

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

    /// `ns(ticks)` is `ticks` in nanoseconds.
    pub fn ns(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.mul)) >> 32) as u64
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
    }
}
