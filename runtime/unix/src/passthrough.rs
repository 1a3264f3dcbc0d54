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
//! Only regular files and directories are served. A FIFO, a socket or a device node is refused
//! with [`KvError::NotRegular`] from its metadata, without being opened: opening a FIFO for
//! reading would block the whole unikernel until a writer came, and a device node could be read
//! forever. A file is then opened non-blocking and checked again on the open descriptor, so
//! that one swapped for a FIFO in between is refused too. Listings leave such entries out.
//!
//! Every read is bounded: `get` reads at most the size the file had when opened and at most
//! [`MAX_VALUE`] bytes ([`KvError::TooLarge`] beyond), `get_partial` at most its length, and
//! `digest` streams in pieces of 64 KiB.
//!
//! Files are read synchronously: `poll(2)` never reports a regular file as not ready, so
//! there is nothing to wait for in the executor.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mirage_devices::kv_ro::{normalize, MAX_VALUE};
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

    /// `kind(key)` is the host path of `key` and what it is; special files are refused.
    fn kind(&self, key: &str) -> Result<(PathBuf, Kind), KvError> {
        let path = self.resolve(key)?;
        let meta = fs::metadata(&path).map_err(kv_error)?;
        Ok((path, kind_of(&meta)?))
    }

    /// `open(key)` is the regular file bound to `key`, open for reading, and its size.
    fn open(&self, key: &str) -> Result<(File, u64), KvError> {
        let (path, kind) = self.kind(key)?;
        if kind == Kind::Dictionary {
            return Err(KvError::IsDictionary);
        }
        // Non-blocking, so that a FIFO swapped in since the check cannot block the open.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(kv_error)?;
        let meta = file.metadata().map_err(kv_error)?;
        match kind_of(&meta)? {
            Kind::Value => Ok((file, meta.len())),
            Kind::Dictionary => Err(KvError::IsDictionary),
        }
    }
}

/// `kind_of(meta)` is what a host file is in a store: regular files are values, directories
/// dictionaries, and anything else [`KvError::NotRegular`].
fn kind_of(meta: &fs::Metadata) -> Result<Kind, KvError> {
    if meta.is_file() {
        Ok(Kind::Value)
    } else if meta.is_dir() {
        Ok(Kind::Dictionary)
    } else {
        Err(KvError::NotRegular)
    }
}

/// `read_at_most(file, len)` is up to `len` bytes of `file` from its position, in memory
/// reserved up front (a size the memory cannot hold is [`KvError::TooLarge`]).
fn read_at_most(file: File, len: u64) -> Result<Vec<u8>, KvError> {
    if len > MAX_VALUE {
        return Err(KvError::TooLarge { size: len });
    }
    let mut out = Vec::new();
    out.try_reserve_exact(len as usize)
        .map_err(|_| KvError::TooLarge { size: len })?;
    file.take(len).read_to_end(&mut out).map_err(kv_error)?;
    Ok(out)
}

impl KvRo for Passthrough {
    async fn exists(&self, key: &str) -> Result<Option<Kind>, KvError> {
        match self.kind(key) {
            Ok((_, kind)) => Ok(Some(kind)),
            Err(KvError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError> {
        let (file, size) = self.open(key)?;
        read_at_most(file, size)
    }

    async fn get_partial(&self, key: &str, offset: u64, length: usize) -> Result<Vec<u8>, KvError> {
        let (mut file, size) = self.open(key)?;
        let start = offset.min(size);
        file.seek(SeekFrom::Start(start)).map_err(kv_error)?;
        read_at_most(file, (size - start).min(length as u64))
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
            // FIFOs, sockets and devices are not part of the store either.
            let Ok(kind) = fs::metadata(&real)
                .map_err(kv_error)
                .and_then(|m| kind_of(&m))
            else {
                continue;
            };
            out.push((name, kind));
        }
        out.sort();
        Ok(out)
    }

    async fn size(&self, key: &str) -> Result<u64, KvError> {
        self.open(key).map(|(_, size)| size)
    }

    async fn last_modified(&self, key: &str) -> Result<Timestamp, KvError> {
        let (path, _) = self.kind(key)?;
        let meta = fs::metadata(path).map_err(kv_error)?;
        Ok(timestamp(meta.modified().map_err(kv_error)?))
    }

    async fn digest(&self, key: &str) -> Result<[u8; 32], KvError> {
        let (file, size) = self.open(key)?;
        // At most the size the file had when opened, however it grows.
        let mut file = file.take(size);
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

    /// FIFOs, sockets and device nodes are refused at once, without being opened, and the
    /// store keeps serving its files.
    #[test]
    fn special_files_are_refused_without_blocking() {
        let (tmp, kv) = store();
        let root = tmp.path().join("root");
        let fifo = root.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
        // A device node needs root; elsewhere a symlink to one inside the root stands in.
        let made = std::process::Command::new("mknod")
            .arg(root.join("null"))
            .args(["c", "1", "3"])
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            eprintln!("mknod needs root: testing a FIFO and a socket only");
        }
        let start = std::time::Instant::now();
        for key in ["fifo", "socket", "null"]
            .iter()
            .take(if made { 3 } else { 2 })
        {
            assert_eq!(block_on(kv.get(key)), Err(KvError::NotRegular), "{key}");
            assert_eq!(
                block_on(kv.get_partial(key, 0, 1)),
                Err(KvError::NotRegular)
            );
            assert_eq!(block_on(kv.digest(key)), Err(KvError::NotRegular));
            assert_eq!(block_on(kv.size(key)), Err(KvError::NotRegular));
            assert_eq!(block_on(kv.exists(key)), Err(KvError::NotRegular));
            assert_eq!(block_on(kv.get("secret")).unwrap(), b"s3cr3t\n");
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        let names: Vec<String> = block_on(kv.list(""))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["inner-link", "secret", "sub"]);
    }

    /// An 8 GiB sparse file is an error for `get`, never an 8 GiB allocation; pieces of it
    /// are read.
    #[test]
    fn values_past_the_limit_are_refused_whole_and_read_in_pieces() {
        let (tmp, kv) = store();
        let big = File::create(tmp.path().join("root/sparse")).unwrap();
        big.set_len(8 << 30).unwrap();
        assert_eq!(
            block_on(kv.get("sparse")),
            Err(KvError::TooLarge { size: 8 << 30 })
        );
        assert_eq!(block_on(kv.size("sparse")), Ok(8 << 30));
        assert_eq!(
            block_on(kv.get_partial("sparse", (8 << 30) - 2, 100)).unwrap(),
            [0, 0]
        );
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
