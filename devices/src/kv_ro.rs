//! The `kv_ro` signature: a read-only key-value store of files and directories, as Mirage's
//! `Mirage_kv.RO`.
//!
//! Keys are `/`-separated paths relative to the store's root, such as `secret` or
//! `dir/file.txt`. One leading `/` is accepted and names the same root (Mirage's `Key.v "/a"`
//! is `a`), so a key can never leave the store: keys with `..` or `.` segments, empty segments
//! (`a//b`), backslashes or NUL bytes are refused with [`KvError::InvalidKey`] by every
//! implementation, before anything is looked up. [`normalize`] is that rule.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::block::BlockError;
use crate::pclock::Timestamp;

/// `Kind` tells whether a key is bound to a value (a file) or to a dictionary (a directory).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The key is bound to bytes.
    Value,
    /// The key is a dictionary of further keys.
    Dictionary,
}

/// The largest value [`KvRo::get`] returns whole, on every store: 256 MiB. Larger values are
/// read in pieces with [`KvRo::get_partial`] (and hashed by [`KvRo::digest`], which streams),
/// so that a hostile size is an error, not an allocation that aborts the image.
pub const MAX_VALUE: u64 = 256 << 20;

/// `KvError` is why a key-value lookup failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvError {
    /// No value or dictionary is bound to the key.
    NotFound,
    /// The key is a dictionary where a value was expected (`get` on a directory).
    IsDictionary,
    /// The key is a value where a dictionary was expected (`list` on a file).
    NotDictionary,
    /// The key is not a valid store path (see the [module docs](self)).
    InvalidKey,
    /// The key resolves outside the store (a host symlink pointing out of a passthrough root).
    Forbidden,
    /// The backing data is corrupt (a damaged archive, a file that changed size under us).
    Corrupt,
    /// The value is larger than a whole read may be (or than the memory left for it); read
    /// it in pieces with [`KvRo::get_partial`].
    TooLarge {
        /// The value's size in bytes.
        size: u64,
    },
    /// The key names something a store does not serve: a FIFO, a socket or a device node.
    NotRegular,
    /// The store's block device failed.
    Block(BlockError),
    /// The target reported an I/O error; `errno` is its own code.
    Io {
        /// The target's error number (`errno` on unix).
        errno: i32,
    },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such key"),
            Self::IsDictionary => f.write_str("the key is a dictionary, not a value"),
            Self::NotDictionary => f.write_str("the key is a value, not a dictionary"),
            Self::InvalidKey => f.write_str(
                "invalid key (keys are /-separated names without `.`, `..` or empty segments)",
            ),
            Self::Forbidden => f.write_str("the key resolves outside the store"),
            Self::Corrupt => f.write_str("the store's data is corrupt"),
            Self::TooLarge { size } => write!(
                f,
                "the value ({size} bytes) is too large to read whole; read it in pieces"
            ),
            Self::NotRegular => f.write_str(
                "the key names a FIFO, a socket or a device, which a store does not serve",
            ),
            Self::Block(e) => write!(f, "the store's block device failed: {e}"),
            Self::Io { errno } => write!(f, "I/O error (errno {errno})"),
        }
    }
}

impl core::error::Error for KvError {}

impl From<BlockError> for KvError {
    fn from(e: BlockError) -> Self {
        Self::Block(e)
    }
}

/// `normalize(key)` is `key` in canonical form: its segments joined by `/`, without a leading
/// `/`; the root is `""`. It fails with [`KvError::InvalidKey`] on `.` or `..` segments, empty
/// segments, backslashes and NUL bytes.
pub fn normalize(key: &str) -> Result<&str, KvError> {
    let rel = key.strip_prefix('/').unwrap_or(key);
    if rel.is_empty() {
        return Ok(rel);
    }
    let bad = |s: &str| s.is_empty() || s == "." || s == ".." || s.contains(['\\', '\0']);
    if rel.split('/').any(bad) {
        return Err(KvError::InvalidKey);
    }
    Ok(rel)
}

/// A `KvRo` is a read-only store of values under `/`-separated keys: embedded files (crunch),
/// a host directory (passthrough), an archive on a block device (tar).
///
/// Every method takes the key as text and validates it with [`normalize`].
pub trait KvRo: Clone {
    /// `exists(key)` is what `key` is bound to, or `None` if nothing is.
    async fn exists(&self, key: &str) -> Result<Option<Kind>, KvError>;

    /// `get(key)` is the whole value bound to `key`; a value larger than [`MAX_VALUE`], or than
    /// the memory left, is [`KvError::TooLarge`].
    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError>;

    /// `get_partial(key, offset, length)` is at most `length` bytes of the value bound to
    /// `key`, starting at byte `offset`; it is shorter (possibly empty) past the value's end.
    /// More than [`MAX_VALUE`] bytes at once is [`KvError::TooLarge`].
    async fn get_partial(&self, key: &str, offset: u64, length: usize) -> Result<Vec<u8>, KvError>;

    /// `list(key)` is the entries of the dictionary `key` as `(name, kind)` pairs sorted by
    /// name; `name` is one segment, not a full key.
    async fn list(&self, key: &str) -> Result<Vec<(String, Kind)>, KvError>;

    /// `size(key)` is the length in bytes of the value bound to `key`.
    async fn size(&self, key: &str) -> Result<u64, KvError>;

    /// `last_modified(key)` is when the value or dictionary bound to `key` last changed.
    async fn last_modified(&self, key: &str) -> Result<Timestamp, KvError>;

    /// `digest(key)` is the SHA-256 of the value bound to `key`, for cache validation and
    /// integrity checks; dictionaries have none ([`KvError::IsDictionary`]).
    async fn digest(&self, key: &str) -> Result<[u8; 32], KvError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_accepts_store_paths() {
        assert_eq!(normalize("secret"), Ok("secret"));
        assert_eq!(normalize("/secret"), Ok("secret"));
        assert_eq!(normalize("dir/file.txt"), Ok("dir/file.txt"));
        assert_eq!(normalize(""), Ok(""));
        assert_eq!(normalize("/"), Ok(""));
        assert_eq!(normalize("..."), Ok("..."));
    }

    #[test]
    fn normalize_refuses_escapes_and_oddities() {
        for key in [
            "..",
            "../etc/passwd",
            "a/../../b",
            "a/./b",
            ".",
            "//etc",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
        ] {
            assert_eq!(normalize(key), Err(KvError::InvalidKey), "{key:?}");
        }
    }
}
