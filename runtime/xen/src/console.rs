//! [`Console`]: the domain's console, for output.

use mirage_devices::ConsoleError;

use crate::sys;

/// `Console` writes to Xen's console (the initial domain), the domain's PV console ring
/// (other domains) or COM1 (PVH without Xen). It has no input on this target.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

impl Console {
    /// `connect()` is the domain's console.
    pub fn connect() -> Console {
        Console
    }
}

impl mirage_devices::Console for Console {
    async fn write(&self, data: &[u8]) -> Result<(), ConsoleError> {
        self.write_blocking(data)
    }

    async fn read(&self, _buf: &mut [u8]) -> Result<usize, ConsoleError> {
        Err(ConsoleError::Unsupported)
    }

    fn write_blocking(&self, data: &[u8]) -> Result<(), ConsoleError> {
        sys::console_write(data);
        Ok(())
    }
}
