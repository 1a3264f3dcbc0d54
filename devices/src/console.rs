//! The `console` signature: a byte stream for human-readable output and, where the target has
//! one, input.

use core::fmt;

/// `ConsoleError` is why a console operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleError {
    /// The console has no input side on this target (a Xen or Solo5 console, a closed stdin).
    Unsupported,
    /// The console's backend went away (the other end of the ring or pipe closed).
    Disconnected,
    /// The target reported an I/O error; `errno` is the target's own code.
    Io {
        /// The target's error number (`errno` on unix).
        errno: i32,
    },
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported => f.write_str("this console cannot be read from"),
            Self::Disconnected => f.write_str("the console is disconnected"),
            Self::Io { errno } => write!(f, "console I/O error (errno {errno})"),
        }
    }
}

impl core::error::Error for ConsoleError {}

/// A `Console` is a text console: the unikernel's stdout on unix, the PV console on Xen, the
/// tender's console on Solo5.
///
/// Mirage's `CONSOLE`: [`write`](Console::write) and [`log`](Console::log) are the way a
/// unikernel talks to its operator, as in the talk's `Console.log c "hello"`.
pub trait Console: Clone {
    /// `write(data)` writes all of `data`, waiting for the console to take it.
    async fn write(&self, data: &[u8]) -> Result<(), ConsoleError>;

    /// `log(line)` writes `line` followed by a newline, as one write so that lines from
    /// concurrent tasks do not interleave.
    async fn log(&self, line: &str) -> Result<(), ConsoleError> {
        let mut buf = alloc::vec::Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.write(&buf).await
    }

    /// `read(buf)` waits for input and returns how many bytes it put at the start of `buf`;
    /// `Ok(0)` means the input has ended. Targets without console input return
    /// [`ConsoleError::Unsupported`].
    async fn read(&self, buf: &mut [u8]) -> Result<usize, ConsoleError>;

    /// `write_blocking(data)` writes all of `data` before returning, stalling the whole
    /// unikernel if it must.
    ///
    /// This is for callers that cannot `.await`: the `log` facade (see `logs::Reporter`) and
    /// panic reports. Everything else should use [`write`](Console::write).
    fn write_blocking(&self, data: &[u8]) -> Result<(), ConsoleError>;
}
