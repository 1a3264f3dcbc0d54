//! [`Passthrough`]: a [`KvRo`] over a host directory (Mirage's `direct_kv_ro` on unix),
//! confined to that directory.
//!
//! Confinement, in two steps: keys are validated with [`normalize`] (no `..`, `.` or empty
//! segments; a leading `/` is the store's root, never the host's), and the host path a key
//! names is resolved with `realpath(3)`, which must stay under the root's own resolved path,
//! so that a symlink pointing out of the directory is refused with [`KvError::Forbidden`].
//! Symlinks staying inside the root are followed. The check and the open are two steps: a
//! host user who can swap files inside the root while the unikernel runs can race them.
//!
//! Files are read synchronously: `poll(2)` never reports a regular file as not ready, so
//! there is nothing to wait for in the executor.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mirage_devices::kv_ro::normalize;
use mirage_devices::{Kind, KvError, KvRo, Timestamp};
use sha2::{Digest, Sha256};

use crate::clock::timestamp;
use crate::error::OpenError;

/// `Passthrough` serves the files under one host directory. Clones share the root.
#[derive(Clone, Debug)]
pub struct Passthrough {
    root: Rc<Path>,
}

/// `kv_error(e)` classifies a host I/O error.
fn kv_error(e: io::Error) -> KvError {
    match e.kind() {
        io::ErrorKind::NotFound => KvError::NotFound,
        io::ErrorKind::NotADirectory => KvError::NotFound,
        _ => KvError::Io {
            errno: e.raw_os_error().unwrap_or(0),
        },
    }
}

impl Passthrough {
    /// `connect(dir)` serves the directory `dir`, which must exist.
    pub fn connect(dir: &str) -> Result<Passthrough, OpenError> {
        let root = fs::canonicalize(dir).map_err(|e| OpenError::new(dir, e))?;
        if !root.is_dir() {
            let e = io::Error::from(io::ErrorKind::NotADirectory);
            return Err(OpenError::new(dir, e));
        }
        Ok(Passthrough { root: root.into() })
    }

    /// `root()` is the resolved host directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `resolve(key)` is the host path of `key`, checked to be inside the root.
    fn resolve(&self, key: &str) -> Result<PathBuf, KvError> {
        let key = normalize(key)?;
        let path =
            key.split('/')
                .filter(|s| !s.is_empty())
                .fold(self.root.to_path_buf(), |mut p, seg| {
                    p.push(seg);
                    p
                });
        let real = fs::canonicalize(&path).map_err(kv_error)?;
        if real.starts_with(&self.root) {
            Ok(real)
        } else {
            Err(KvError::Forbidden)
        }
    }

    fn file(&self, key: &str) -> Result<(PathBuf, fs::Metadata), KvError> {
        let path = self.resolve(key)?;
        let meta = fs::metadata(&path).map_err(kv_error)?;
        if meta.is_dir() {
            return Err(KvError::IsDictionary);
        }
        Ok((path, meta))
    }
}

impl KvRo for Passthrough {
    async fn exists(&self, key: &str) -> Result<Option<Kind>, KvError> {
        let path = match self.resolve(key) {
            Err(KvError::NotFound) => return Ok(None),
            r => r?,
        };
        let meta = fs::metadata(path).map_err(kv_error)?;
        Ok(Some(if meta.is_dir() {
            Kind::Dictionary
        } else {
            Kind::Value
        }))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError> {
        let (path, _) = self.file(key)?;
        fs::read(path).map_err(kv_error)
    }

    async fn get_partial(&self, key: &str, offset: u64, length: usize) -> Result<Vec<u8>, KvError> {
        let (path, _) = self.file(key)?;
        let mut file = File::open(path).map_err(kv_error)?;
        file.seek(SeekFrom::Start(offset)).map_err(kv_error)?;
        let mut out = Vec::new();
        file.take(length as u64)
            .read_to_end(&mut out)
            .map_err(kv_error)?;
        Ok(out)
    }

    async fn list(&self, key: &str) -> Result<Vec<(String, Kind)>, KvError> {
        let dir = self.resolve(key)?;
        if !dir.is_dir() {
            return Err(KvError::NotDictionary);
        }
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(kv_error)? {
            let entry = entry.map_err(kv_error)?;
            // Names that are not keys (not UTF-8, with a backslash) cannot be looked up.
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if normalize(&name).is_err() {
                continue;
            }
            // Entries whose symlinks leave the root, or dangle, are not part of the store.
            let Ok(real) = fs::canonicalize(entry.path()) else {
                continue;
            };
            if !real.starts_with(&self.root) {
                continue;
            }
            let kind = if real.is_dir() {
                Kind::Dictionary
            } else {
                Kind::Value
            };
            out.push((name, kind));
        }
        out.sort();
        Ok(out)
    }

    async fn size(&self, key: &str) -> Result<u64, KvError> {
        self.file(key).map(|(_, meta)| meta.len())
    }

    async fn last_modified(&self, key: &str) -> Result<Timestamp, KvError> {
        let meta = fs::metadata(self.resolve(key)?).map_err(kv_error)?;
        Ok(timestamp(meta.modified().map_err(kv_error)?))
    }

    async fn digest(&self, key: &str) -> Result<[u8; 32], KvError> {
        let (path, _) = self.file(key)?;
        let mut file = File::open(path).map_err(kv_error)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(kv_error(e)),
            }
        }
        Ok(hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{block_on, TempDir};
    use std::os::unix::fs::symlink;

    fn store() -> (TempDir, Passthrough) {
        let tmp = TempDir::new("passthrough");
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::write(root.join("secret"), "s3cr3t\n").unwrap();
        fs::write(root.join("sub/file.txt"), "hello world").unwrap();
        fs::write(tmp.path().join("outside"), "do not read").unwrap();
        symlink("../outside", root.join("escape")).unwrap();
        symlink("/etc", root.join("etc")).unwrap();
        symlink("sub/file.txt", root.join("inner-link")).unwrap();
        let kv = Passthrough::connect(root.to_str().unwrap()).unwrap();
        (tmp, kv)
    }

    #[test]
    fn serves_files_and_directories() {
        let (_tmp, kv) = store();
        assert_eq!(block_on(kv.get("secret")).unwrap(), b"s3cr3t\n");
        assert_eq!(block_on(kv.get("/sub/file.txt")).unwrap(), b"hello world");
        assert_eq!(block_on(kv.get("inner-link")).unwrap(), b"hello world");
        assert_eq!(
            block_on(kv.get_partial("sub/file.txt", 6, 3)).unwrap(),
            b"wor"
        );
        assert_eq!(block_on(kv.size("sub/file.txt")), Ok(11));
        assert_eq!(block_on(kv.exists("sub")), Ok(Some(Kind::Dictionary)));
        assert_eq!(block_on(kv.exists("nope")), Ok(None));
        assert_eq!(block_on(kv.get("sub")), Err(KvError::IsDictionary));
        assert_eq!(block_on(kv.list("secret")), Err(KvError::NotDictionary));
        let expect: [u8; 32] = Sha256::digest(b"hello world").into();
        assert_eq!(block_on(kv.digest("sub/file.txt")), Ok(expect));
        assert!(block_on(kv.last_modified("secret")).unwrap().secs > 0);
        let names: Vec<(String, Kind)> = block_on(kv.list("")).unwrap();
        assert_eq!(
            names,
            [
                ("inner-link".into(), Kind::Value),
                ("secret".into(), Kind::Value),
                ("sub".into(), Kind::Dictionary)
            ]
        );
    }

    #[test]
    fn refuses_to_leave_the_root() {
        let (_tmp, kv) = store();
        for key in ["../outside", "sub/../../outside", "..", "sub/./file.txt"] {
            assert_eq!(block_on(kv.get(key)), Err(KvError::InvalidKey), "{key}");
        }
        assert_eq!(block_on(kv.get("escape")), Err(KvError::Forbidden));
        assert_eq!(block_on(kv.get("etc/passwd")), Err(KvError::Forbidden));
        assert_eq!(block_on(kv.exists("escape")), Err(KvError::Forbidden));
        // A leading slash is the store's root, not the host's.
        assert_eq!(block_on(kv.get("/etc/passwd")), Err(KvError::Forbidden));
        assert_eq!(block_on(kv.get("/outside")), Err(KvError::NotFound));
    }

    #[test]
    fn connect_names_the_missing_directory() {
        let e = Passthrough::connect("/nonexistent/dir").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot open `/nonexistent/dir`: "),
            "{e}"
        );
    }
}
