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

/// `read_when_ready(fd, buf)` waits until `fd` is readable, then reads it once. Standard
/// input is left in blocking mode (its file description is the parent shell's), so the wait
/// must come first.
async fn read_when_ready(fd: RawFd, buf: &mut [u8]) -> Result<usize, ConsoleError> {
    loop {
        reactor::ready(fd, Interest::READ).await;
        match sys::read(fd, buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return r.map_err(|e| console_error(&e)),
        }
    }
}

impl mirage_devices::Console for Console {
    async fn write(&self, data: &[u8]) -> Result<(), ConsoleError> {
        self.write_blocking(data)
    }

    async fn read(&self, buf: &mut [u8]) -> Result<usize, ConsoleError> {
        read_when_ready(STDIN, buf).await
    }

    fn write_blocking(&self, data: &[u8]) -> Result<(), ConsoleError> {
        let mut out = io::stdout().lock();
        out.write_all(data)
            .and_then(|()| out.flush())
            .map_err(|e| console_error(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::block_on;
    use mirage_devices::Time as _;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn input_is_read_once_ready_until_its_end() {
        let (mut tx, rx) = UnixStream::pair().unwrap();
        let fd = rx.as_raw_fd();
        let got = block_on(async move {
            mirage_runtime::spawn(async move {
                crate::Time::new().sleep_ns(10_000_000).await;
                tx.write_all(b"typed\n").unwrap();
            });
            let mut buf = [0u8; 64];
            let n = read_when_ready(fd, &mut buf).await.unwrap();
            let end = read_when_ready(fd, &mut buf[n..]).await.unwrap();
            (buf[..n].to_vec(), end)
        });
        assert_eq!(got, (b"typed\n".to_vec(), 0));
        drop(rx);
    }
}
