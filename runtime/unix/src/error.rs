//! [`OpenError`]: why a host-backed device could not be connected.

use std::fmt;
use std::io;

/// `OpenError` is why a device backed by a host path (a passthrough directory, a block file)
/// could not be opened; its text names the path.
#[derive(Debug)]
pub struct OpenError {
    /// The path as given to `connect`.
    pub path: String,
    /// What the host said.
    pub source: io::Error,
}

impl OpenError {
    pub(crate) fn new(path: &str, source: io::Error) -> OpenError {
        OpenError {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot open `{}`: {}", self.path, self.source)
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
