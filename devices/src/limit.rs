//! Limits that runtime keys set (the `tcp-*` and `http-*` keys), and the error of one out of
//! its range.

use core::fmt;

/// `LimitError` is a limit key's value out of its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitError {
    /// The key.
    pub key: &'static str,
    /// The value given.
    pub value: i64,
    /// The smallest value allowed.
    pub min: i64,
    /// The largest value allowed.
    pub max: i64,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--{}={} is out of range ({} to {})",
            self.key, self.value, self.min, self.max
        )
    }
}

impl core::error::Error for LimitError {}

/// `in_range(key, value, min, max)` is `value` if it lies in `min..=max` (`0 <= min`).
#[cfg_attr(not(any(feature = "net", feature = "http")), allow(dead_code))]
pub(crate) fn in_range(
    key: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<u64, LimitError> {
    if (min..=max).contains(&value) {
        Ok(value.unsigned_abs())
    } else {
        Err(LimitError {
            key,
            value,
            min,
            max,
        })
    }
}
