//! The talk's kv_ro example (slides 26-37): `kv_ro @-> job` over `generic_kv_ro "t"`, whatever
//! the store turns out to be (crunch, passthrough, tar, fat). It lists the store's root, then
//! reads every file of the store, in key order, and prints each with its size and SHA-256 (and
//! its text, when it is a short line or two), so that runs over different stores and targets
//! can be compared line by line.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use mirage_devices::{Kind, KvError, KvRo};

/// Files of at most this many bytes that are UTF-8 text are printed, not only hashed.
const SHOWN: usize = 256;

/// `Error` is which key could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The key being read (`""` for the root).
    pub key: String,
    /// What the store said.
    pub cause: KvError,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading `{}`: {}", self.key, self.cause)
    }
}

impl core::error::Error for Error {}

/// `files(kv)` is every key of `kv` bound to a value, sorted, found by listing the
/// dictionaries from the root down.
pub async fn files<K: KvRo>(kv: &K) -> Result<Vec<String>, Error> {
    let mut dirs = alloc::vec![String::new()];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        let entries = kv.list(&dir).await.map_err(|cause| Error {
            key: dir.clone(),
            cause,
        })?;
        for (name, kind) in entries {
            let key = if dir.is_empty() {
                name
            } else {
                alloc::format!("{dir}/{name}")
            };
            match kind {
                Kind::Value => files.push(key),
                Kind::Dictionary => dirs.push(key),
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `start(kv)` lists the store's root and prints every file with its digest.
pub async fn start<K: KvRo>(kv: K) -> Result<(), Error> {
    let root = kv.list("").await.map_err(|cause| Error {
        key: String::new(),
        cause,
    })?;
    for (name, kind) in root {
        let tag = match kind {
            Kind::Value => "",
            Kind::Dictionary => "/",
        };
        log::info!("store has {name}{tag}");
    }
    for key in files(&kv).await? {
        let read = async {
            let data = kv.get(&key).await?;
            Ok::<_, KvError>((data, kv.digest(&key).await?))
        };
        let (data, digest) = read.await.map_err(|cause| Error {
            key: key.clone(),
            cause,
        })?;
        log::info!("{key} ({} bytes, sha256 {}):", data.len(), hex(&digest));
        match core::str::from_utf8(&data) {
            Ok(text) if data.len() <= SHOWN => log::info!("{}", text.trim_end()),
            _ => {}
        }
    }
    Ok(())
}

/// `hex(bytes)` is `bytes` in lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use mirage_devices::kv::{Crunch, Entry};
    use mirage_devices::testing::block_on;
    use mirage_devices::Timestamp;

    static T: &[Entry] = &[
        Entry {
            path: "a/b/c",
            data: b"deep",
            digest: [2; 32],
        },
        Entry {
            path: "secret",
            data: b"foobar\n",
            digest: [0; 32],
        },
        Entry {
            path: "subdir/hello.txt",
            data: b"hi\n",
            digest: [1; 32],
        },
    ];

    #[test]
    fn reads_every_file() {
        assert_eq!(block_on(start(Crunch::new(T))), Ok(()));
        assert_eq!(
            block_on(files(&Crunch::new(T))).unwrap(),
            ["a/b/c", "secret", "subdir/hello.txt"]
        );
    }

    /// A store whose `subdir/hello.txt` is corrupt.
    #[derive(Clone)]
    struct Damaged(Crunch);

    impl KvRo for Damaged {
        async fn exists(&self, key: &str) -> Result<Option<Kind>, KvError> {
            self.0.exists(key).await
        }
        async fn get(&self, key: &str) -> Result<Vec<u8>, KvError> {
            match key {
                "subdir/hello.txt" => Err(KvError::Corrupt),
                _ => self.0.get(key).await,
            }
        }
        async fn get_partial(&self, key: &str, o: u64, l: usize) -> Result<Vec<u8>, KvError> {
            self.0.get_partial(key, o, l).await
        }
        async fn list(&self, key: &str) -> Result<Vec<(String, Kind)>, KvError> {
            self.0.list(key).await
        }
        async fn size(&self, key: &str) -> Result<u64, KvError> {
            self.0.size(key).await
        }
        async fn last_modified(&self, key: &str) -> Result<Timestamp, KvError> {
            self.0.last_modified(key).await
        }
        async fn digest(&self, key: &str) -> Result<[u8; 32], KvError> {
            self.0.digest(key).await
        }
    }

    #[test]
    fn a_file_that_cannot_be_read_names_its_key() {
        let e = block_on(start(Damaged(Crunch::new(T)))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reading `subdir/hello.txt`: the store's data is corrupt"
        );
    }

    #[test]
    fn hex_digests() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
