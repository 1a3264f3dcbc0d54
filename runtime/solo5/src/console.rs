//! [`Console`]: the tender's standard output.

use mirage_devices::ConsoleError;

use crate::sys;

/// `Console` writes to the tender's standard output (hvt `PUTS`, spt `write(1)`). It has no
/// input: Solo5 gives a guest none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

impl Console {
    /// `connect()` is the console.
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
