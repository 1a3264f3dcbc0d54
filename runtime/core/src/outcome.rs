//! How a unikernel's run ends: [`Failure`], the [`connected`] and [`JobOutput`] adapters used
//! by generated code, and the [`exit`] codes every target reports.

use alloc::string::{String, ToString};
use core::fmt::{self, Display};

/// The exit codes of an image, as Mirage's.
pub mod exit {
    /// The unikernel's job returned successfully.
    pub const SUCCESS: i32 = 0;
    /// A device failed to connect or the job returned an error.
    pub const FAILURE: i32 = 1;
    /// `--help` was given: the usage was printed.
    pub const HELP: i32 = 63;
    /// The boot arguments were wrong.
    pub const BAD_ARGUMENTS: i32 = 64;
}

/// A `Failure` is why a unikernel stopped unsuccessfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A device of the graph could not be connected.
    Connect {
        /// The device's name in the graph, such as `block_of_file_2`.
        device: &'static str,
        /// The device's error, as text.
        reason: String,
    },
    /// The unikernel's `start` returned an error.
    Job(String),
}

impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { device, reason } => {
                write!(f, "cannot connect device `{device}`: {reason}")
            }
            Self::Job(reason) => write!(f, "the unikernel failed: {reason}"),
        }
    }
}

impl core::error::Error for Failure {}

/// `connected(device, r)` is the device that `r` connected, or a [`Failure::Connect`] naming
/// `device`. Generated code wraps each fallible connect in it:
/// `let b = mirage_runtime::connected("block_of_file_2", BlockFile::connect("disk.img"))?;`.
pub fn connected<T, E: Display>(device: &'static str, r: Result<T, E>) -> Result<T, Failure> {
    r.map_err(|e| Failure::Connect {
        device,
        reason: e.to_string(),
    })
}

/// `JobOutput` is what a unikernel's `start` may return: nothing, or a `Result` whose error
/// can be displayed.
pub trait JobOutput {
    /// `into_outcome(self)` is `Ok(())` for success, or the [`Failure`] to report.
    fn into_outcome(self) -> Result<(), Failure>;
}

impl JobOutput for () {
    fn into_outcome(self) -> Result<(), Failure> {
        Ok(())
    }
}

impl<E: Display> JobOutput for Result<(), E> {
    fn into_outcome(self) -> Result<(), Failure> {
        self.map_err(|e| Failure::Job(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(().into_outcome(), Ok(()));
        assert_eq!(Ok::<(), &str>(()).into_outcome(), Ok(()));
        let failed = Err::<(), _>("disk full").into_outcome().unwrap_err();
        assert_eq!(failed.to_string(), "the unikernel failed: disk full");
        let c = connected::<(), _>("block_of_file_2", Err("no such file")).unwrap_err();
        assert_eq!(
            c.to_string(),
            "cannot connect device `block_of_file_2`: no such file"
        );
        assert_eq!(connected::<u8, &str>("x", Ok(7)), Ok(7));
    }
}
