//! `Crunch`: a [`KvRo`] over files embedded in the image at render time (Mirage's
//! `crunch`), needing no device at all.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::kv_ro::{normalize, Kind, KvError, KvRo};
use crate::pclock::Timestamp;

/// An `Entry` is one embedded file. The generator emits a sorted `static` table of them.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The file's key: `/`-separated, relative to the crunched directory, in normal form
    /// (see [`normalize`]).
    pub path: &'static str,
    /// The file's contents.
    pub data: &'static [u8],
    /// The SHA-256 of `data`, computed by the generator.
    pub digest: [u8; 32],
}

/// `Crunch` serves a static table of [`Entry`]s. Directories are implied by the paths. Every
/// key's modification time is the epoch, so that images are reproducible.
#[derive(Clone, Copy, Debug)]
pub struct Crunch {
    files: &'static [Entry],
}

/// What a key names in the table.
enum Found {
    File(&'static Entry),
    /// A dictionary: the entries under it, as a range of the table.
    Dir(&'static [Entry]),
}

impl Crunch {
    /// `new(files)` serves `files`, which must be sorted by `path` (byte order) and have no
    /// duplicate paths, as the generator emits them.
    pub fn new(files: &'static [Entry]) -> Crunch {
        debug_assert!(
            files.windows(2).all(|w| w[0].path < w[1].path),
            "crunch entries must be sorted by path without duplicates"
        );
        Crunch { files }
    }

    /// `len()` is the number of embedded files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// `is_empty()` is true if no file is embedded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn find(&self, key: &str) -> Result<Found, KvError> {
        let key = normalize(key)?;
        if key.is_empty() {
            return Ok(Found::Dir(self.files));
        }
        if let Ok(i) = self.files.binary_search_by(|e| e.path.cmp(key)) {
            return Ok(Found::File(&self.files[i]));
        }
        // Every path under `key/` sorts into one contiguous run of the table.
        let prefix = alloc::format!("{key}/");
        let lo = self.files.partition_point(|e| e.path < prefix.as_str());
        let run = self.files[lo..]
            .iter()
            .take_while(|e| e.path.starts_with(&prefix))
            .count();
        if run == 0 {
            return Err(KvError::NotFound);
        }
        Ok(Found::Dir(&self.files[lo..lo + run]))
    }

    fn file(&self, key: &str) -> Result<&'static Entry, KvError> {
        match self.find(key)? {
            Found::File(e) => Ok(e),
            Found::Dir(_) => Err(KvError::IsDictionary),
        }
    }
}

impl KvRo for Crunch {
    async fn exists(&self, key: &str) -> Result<Option<Kind>, KvError> {
        match self.find(key) {
            Ok(Found::File(_)) => Ok(Some(Kind::Value)),
            Ok(Found::Dir(_)) => Ok(Some(Kind::Dictionary)),
            Err(KvError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError> {
        Ok(self.file(key)?.data.to_vec())
    }

    async fn get_partial(&self, key: &str, offset: u64, length: usize) -> Result<Vec<u8>, KvError> {
        let data = self.file(key)?.data;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(length).min(data.len());
        Ok(data[start..end].to_vec())
    }

    async fn list(&self, key: &str) -> Result<Vec<(String, Kind)>, KvError> {
        let dir = match self.find(key)? {
            Found::Dir(run) => run,
            Found::File(_) => return Err(KvError::NotDictionary),
        };
        let prefix_len = match normalize(key)? {
            "" => 0,
            k => k.len() + 1,
        };
        let mut children = BTreeMap::new();
        for e in dir {
            let rest = &e.path[prefix_len..];
            match rest.split_once('/') {
                Some((child, _)) => children.insert(child, Kind::Dictionary),
                None => children.insert(rest, Kind::Value),
            };
        }
        Ok(children
            .into_iter()
            .map(|(name, kind)| (name.to_string(), kind))
            .collect())
    }

    async fn size(&self, key: &str) -> Result<u64, KvError> {
        Ok(self.file(key)?.data.len() as u64)
    }

    async fn last_modified(&self, key: &str) -> Result<Timestamp, KvError> {
        self.find(key).map(|_| Timestamp::EPOCH)
    }

    async fn digest(&self, key: &str) -> Result<[u8; 32], KvError> {
        Ok(self.file(key)?.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::block_on;
    use sha2::{Digest, Sha256};

    // What the generator emits: sorted paths, precomputed digests (checked below).
    static FILES: &[Entry] = &[
        Entry {
            path: "a.txt",
            data: b"A",
            digest: hex("559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd"),
        },
        Entry {
            path: "dir.txt",
            data: b"",
            digest: hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        },
        Entry {
            path: "dir/sub/deep",
            data: b"deep",
            digest: hex("74611c1d6455b534323a21f8133a6f43dc3a8188e7b946f96dcc28dde932fcb2"),
        },
        Entry {
            path: "dir/x",
            data: b"hello world",
            digest: hex("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
        },
    ];

    const fn hex(s: &str) -> [u8; 32] {
        let b = s.as_bytes();
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            out[i] = nibble(b[2 * i]) << 4 | nibble(b[2 * i + 1]);
            i += 1;
        }
        out
    }

    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        }
    }

    fn kv() -> Crunch {
        Crunch::new(FILES)
    }

    #[test]
    fn fixture_digests_are_sha256() {
        for e in FILES {
            assert_eq!(
                <[u8; 32]>::from(Sha256::digest(e.data)),
                e.digest,
                "{}",
                e.path
            );
        }
    }

    #[test]
    fn get_values_and_kinds() {
        let kv = kv();
        assert_eq!(block_on(kv.get("dir/x")).unwrap(), b"hello world");
        assert_eq!(block_on(kv.get("/a.txt")).unwrap(), b"A");
        assert_eq!(block_on(kv.exists("dir")), Ok(Some(Kind::Dictionary)));
        assert_eq!(block_on(kv.exists("dir/sub")), Ok(Some(Kind::Dictionary)));
        assert_eq!(block_on(kv.exists("dir.txt")), Ok(Some(Kind::Value)));
        assert_eq!(block_on(kv.exists("di")), Ok(None));
        assert_eq!(block_on(kv.exists("dir/s")), Ok(None));
        assert_eq!(block_on(kv.get("dir")), Err(KvError::IsDictionary));
        assert_eq!(block_on(kv.get("nope")), Err(KvError::NotFound));
        assert_eq!(block_on(kv.get("dir/../a.txt")), Err(KvError::InvalidKey));
        assert_eq!(block_on(kv.size("dir/x")), Ok(11));
        assert_eq!(block_on(kv.digest("dir/x")), Ok(FILES[3].digest));
        assert_eq!(block_on(kv.last_modified("dir")), Ok(Timestamp::EPOCH));
    }

    #[test]
    fn get_partial_clamps() {
        let kv = kv();
        assert_eq!(block_on(kv.get_partial("dir/x", 6, 100)).unwrap(), b"world");
        assert_eq!(block_on(kv.get_partial("dir/x", 0, 5)).unwrap(), b"hello");
        assert!(block_on(kv.get_partial("dir/x", u64::MAX, 5))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn list_is_sorted_and_one_level() {
        let kv = kv();
        let root = block_on(kv.list("")).unwrap();
        let names: Vec<(&str, Kind)> = root.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("a.txt", Kind::Value),
                ("dir", Kind::Dictionary),
                ("dir.txt", Kind::Value)
            ]
        );
        let dir = block_on(kv.list("dir")).unwrap();
        assert_eq!(
            dir,
            [
                (String::from("sub"), Kind::Dictionary),
                (String::from("x"), Kind::Value)
            ]
        );
        assert_eq!(block_on(kv.list("a.txt")), Err(KvError::NotDictionary));
    }
}
