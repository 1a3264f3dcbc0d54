//! [`Random`]: the host's entropy (`getrandom(2)`).

use mirage_devices::RandomError;

/// `Random` fills buffers from the host kernel's cryptographic random number generator.
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
        getrandom::fill(buf).map_err(|e| match e.raw_os_error() {
            Some(errno) => RandomError::Io { errno },
            None => RandomError::Unavailable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_devices::Random as _;

    #[test]
    fn fills_with_varying_bytes() {
        let r = Random::new();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        r.fill(&mut a).unwrap();
        r.fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(r.next_u64().unwrap(), r.next_u64().unwrap());
    }
}
