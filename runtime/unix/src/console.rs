//! [`Console`]: standard output, and standard input where the process has one.

use std::io::{self, Write};
use std::os::fd::RawFd;

use mirage_devices::ConsoleError;
use mirage_runtime::Interest;

use crate::reactor;
use crate::sys;

/// `Console` writes to the process's standard output and reads its standard input.
///
/// Writes block the process until the terminal or pipe takes the bytes (standard output is
/// shared with the parent shell, so it is not made non-blocking); reads wait in the executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

const STDIN: RawFd = 0;

impl Console {
    /// `connect()` is the process's console.
    pub fn connect() -> Console {
        Console
    }
}

/// `console_error(e)` classifies a standard stream error.
fn console_error(e: &io::Error) -> ConsoleError {
    match e.kind() {
        io::ErrorKind::BrokenPipe => ConsoleError::Disconnected,
        _ => match e.raw_os_error() {
            Some(libc::EBADF) => ConsoleError::Unsupported,
            Some(errno) => ConsoleError::Io { errno },
            None => ConsoleError::Io { errno: 0 },
        },
    }
}

impl mirage_devices::Console for Console {
    async fn write(&self, data: &[u8]) -> Result<(), ConsoleError> {
        self.write_blocking(data)
    }

    async fn read(&self, buf: &mut [u8]) -> Result<usize, ConsoleError> {
        loop {
            reactor::ready(STDIN, Interest::READ).await;
            match sys::read(STDIN, buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r.map_err(|e| console_error(&e)),
            }
        }
    }

    fn write_blocking(&self, data: &[u8]) -> Result<(), ConsoleError> {
        let mut out = io::stdout().lock();
        out.write_all(data)
            .and_then(|()| out.flush())
            .map_err(|e| console_error(&e))
    }
}
