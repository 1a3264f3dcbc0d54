//! [`Random`]: the processor's RDRAND.

use mirage_devices::RandomError;

use crate::sys;

/// `Random` fills buffers from RDRAND. There is no fallback: on a processor without RDRAND
/// `fill` fails with [`RandomError::Unavailable`] rather
/// than hand out predictable bytes; run on hardware that has it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random;

impl Random {
    /// `new()` is the random device.
    pub fn new() -> Random {
        Random
    }
}

impl mirage_devices::Random for Random {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let word = sys::random_u64().ok_or(RandomError::Unavailable)?;
            chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}
