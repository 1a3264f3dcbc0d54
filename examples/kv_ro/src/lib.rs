//! The talk's kv_ro example (slides 26-37): `kv_ro @-> job` over `generic_kv_ro "t"`, whatever
//! the store turns out to be (crunch, passthrough, tar). It lists the store, then prints the
//! secret and a file in a subdirectory with their SHA-256 digests, so that runs over different
//! stores can be compared line by line.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;
use core::fmt::{self, Write as _};
use mirage_devices::{Kind, KvError, KvRo};

/// The keys this unikernel reads; `t/` in the example's directory holds them.
pub const FILES: [&str; 2] = ["secret", "subdir/hello.txt"];

/// `Error` is which key could not be read, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// The key being read.
    pub key: &'static str,
    /// What the store said.
    pub cause: KvError,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading `{}`: {}", self.key, self.cause)
    }
}

impl core::error::Error for Error {}

/// `start(kv)` lists the store's root and prints each of [`FILES`] with its digest.
pub async fn start<K: KvRo>(kv: K) -> Result<(), Error> {
    let root = kv
        .list("")
        .await
        .map_err(|cause| Error { key: "", cause })?;
    for (name, kind) in root {
        let tag = match kind {
            Kind::Value => "",
            Kind::Dictionary => "/",
        };
        log::info!("store has {name}{tag}");
    }
    for key in FILES {
        let read = async {
            let data = kv.get(key).await?;
            Ok::<_, KvError>((data, kv.digest(key).await?))
        };
        let (data, digest) = read.await.map_err(|cause| Error { key, cause })?;
        log::info!("{key} ({} bytes, sha256 {}):", data.len(), hex(&digest));
        log::info!("{}", String::from_utf8_lossy(&data).trim_end());
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

    static T: &[Entry] = &[
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
    }

    #[test]
    fn a_missing_file_names_its_key() {
        let e = block_on(start(Crunch::new(&T[..1]))).unwrap_err();
        assert_eq!(e.to_string(), "reading `subdir/hello.txt`: no such key");
    }

    #[test]
    fn hex_digests() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
