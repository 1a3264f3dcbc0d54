//! The `random` signature: cryptographically strong random bytes, as Mirage's `RANDOM`.

use core::fmt;

/// `RandomError` is why no random bytes could be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomError {
    /// The target has no entropy source available.
    Unavailable,
    /// The target's entropy source failed; `errno` is its own error code.
    Io {
        /// The target's error number.
        errno: i32,
    },
}

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable => f.write_str("no entropy source is available"),
            Self::Io { errno } => write!(f, "the entropy source failed (errno {errno})"),
        }
    }
}

impl core::error::Error for RandomError {}

/// A `Random` device fills buffers with unpredictable bytes, suitable for keys, TCP initial
/// sequence numbers and DNS ids.
pub trait Random: Clone {
    /// `fill(buf)` overwrites all of `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;

    /// `next_u64()` is a random 64-bit number.
    fn next_u64(&self) -> Result<u64, RandomError> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}
