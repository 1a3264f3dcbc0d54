//! `Index`: the tree of keys of a store read from a block device ([`Tar`](super::Tar),
//! [`Fat`](super::Fat)), built once at connect time and shared by the stores' clones.
//!
//! Memory is linear in the number of entries and the bytes of their names: a directory keeps
//! its children's names, one segment each, so a member `a/b/c` costs the bytes of `c` and one
//! node, never a copy of `a/b` per level. Hostile archives and filesystems are bounded by
//! [`Limits`]: too many entries, too deep a tree or too long a key is an [`IndexError`] naming
//! the limit, before memory grows.
//!
//! The [`KvRo`](crate::KvRo) operations that only need the tree (`exists`, `list`, `size`,
//! `last_modified`) live here, and so do the value reads (`get`, `get_partial`, `digest`),
//! written once over a [`Contents`] that reads a file's bytes from the device.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;

use sha2::{Digest, Sha256};

use crate::kv_ro::{normalize, Kind, KvError};
use crate::pclock::Timestamp;

/// The bounds an index enforces on untrusted input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most entries (files and directories) a store may hold.
    pub entries: usize,
    /// The most segments a key may have (`a/b/c` has 3).
    pub depth: usize,
    /// The longest key, in bytes.
    pub key_bytes: usize,
    /// The largest value [`KvRo::get`](crate::KvRo::get) returns whole; larger values are
    /// read with `get_partial` (and hashed by `digest`) in pieces.
    pub value_bytes: u64,
}

impl Limits {
    /// The limits of every store: a million entries, 128 levels, keys of 4 KiB (`PATH_MAX`)
    /// and whole values of 256 MiB.
    pub const DEFAULT: Limits = Limits {
        entries: 1 << 20,
        depth: 128,
        key_bytes: 4096,
        value_bytes: crate::kv_ro::MAX_VALUE,
    };
}

/// `IndexError` is why an entry could not be added to the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexError {
    /// The name is not a store key: absolute, with `..`, a NUL byte or a backslash.
    UnsafeName,
    /// The key is a file in one place and a directory in another.
    Conflict,
    /// A directory holds two entries of the same name.
    Duplicate,
    /// The store holds more than [`Limits::entries`] entries.
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// The key has more than [`Limits::depth`] segments.
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The key is longer than [`Limits::key_bytes`].
    NameTooLong {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsafeName => f.write_str("name is absolute, has `..` or is not a valid key"),
            Self::Conflict => f.write_str("name is both a file and a directory"),
            Self::Duplicate => f.write_str("name appears twice in one directory"),
            Self::TooManyEntries { limit } => write!(f, "more than {limit} entries"),
            Self::TooDeep { limit } => write!(f, "name is more than {limit} levels deep"),
            Self::NameTooLong { limit } => write!(f, "name is longer than {limit} bytes"),
        }
    }
}

/// One file of the tree: where its bytes are (`F`, the store's own locator), their length,
/// when it changed, and its SHA-256 once computed.
#[derive(Debug)]
pub(crate) struct File<F> {
    pub(crate) at: F,
    pub(crate) size: u64,
    pub(crate) mtime: i64,
    digest: Cell<Option<[u8; 32]>>,
}

impl<F> File<F> {
    /// `new(at, size, mtime)` is a file whose digest is not known yet.
    pub(crate) fn new(at: F, size: u64, mtime: i64) -> File<F> {
        File {
            at,
            size,
            mtime,
            digest: Cell::new(None),
        }
    }
}

/// A node: a file, or a directory and its children by name (one segment each).
#[derive(Debug)]
pub(crate) enum Node<F> {
    File(File<F>),
    Dir {
        mtime: i64,
        children: BTreeMap<Box<str>, u32>,
    },
}

impl<F> Node<F> {
    fn kind(&self) -> Kind {
        match self {
            Node::File(_) => Kind::Value,
            Node::Dir { .. } => Kind::Dictionary,
        }
    }

    fn empty_dir(mtime: i64) -> Node<F> {
        Node::Dir {
            mtime,
            children: BTreeMap::new(),
        }
    }
}

/// The id of a node; the root is [`Index::ROOT`].
pub(crate) type NodeId = u32;

/// `Index<F>` is the tree of a store whose files are located by `F`.
#[derive(Debug)]
pub(crate) struct Index<F> {
    nodes: Vec<Node<F>>,
    limits: Limits,
}

impl<F> Index<F> {
    /// The root directory.
    pub(crate) const ROOT: NodeId = 0;

    /// `new(limits)` is a tree holding only an empty root.
    pub(crate) fn new(limits: Limits) -> Index<F> {
        Index {
            nodes: alloc::vec![Node::empty_dir(0)],
            limits,
        }
    }

    /// `len()` is the number of entries, the root included.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    fn push(&mut self, node: Node<F>) -> Result<NodeId, IndexError> {
        if self.nodes.len() > self.limits.entries {
            return Err(IndexError::TooManyEntries {
                limit: self.limits.entries,
            });
        }
        self.nodes.push(node);
        Ok((self.nodes.len() - 1) as NodeId)
    }

    fn children_mut(&mut self, dir: NodeId) -> Result<&mut BTreeMap<Box<str>, u32>, IndexError> {
        match &mut self.nodes[dir as usize] {
            Node::Dir { children, .. } => Ok(children),
            Node::File(_) => Err(IndexError::Conflict),
        }
    }

    /// `child(dir, name)` is the entry `name` of directory `dir`, if any.
    fn child(&self, dir: NodeId, name: &str) -> Option<NodeId> {
        match &self.nodes[dir as usize] {
            Node::Dir { children, .. } => children.get(name).copied(),
            Node::File(_) => None,
        }
    }

    /// `add(dir, name, node)` adds `node` as the new entry `name` of directory `dir`; an
    /// entry already there is a [`IndexError::Duplicate`] (filesystems have no duplicates).
    pub(crate) fn add(
        &mut self,
        dir: NodeId,
        name: &str,
        node: Node<F>,
    ) -> Result<NodeId, IndexError> {
        if normalize(name).ok() != Some(name) || name.is_empty() || name.contains('/') {
            return Err(IndexError::UnsafeName);
        }
        if matches!(self.nodes[dir as usize], Node::File(_)) {
            return Err(IndexError::Conflict);
        }
        if self.child(dir, name).is_some() {
            return Err(IndexError::Duplicate);
        }
        let id = self.push(node)?;
        self.children_mut(dir)?.insert(name.into(), id);
        Ok(id)
    }

    /// `add_dir(dir, name, mtime)` adds an empty directory `name` under `dir`.
    pub(crate) fn add_dir(
        &mut self,
        dir: NodeId,
        name: &str,
        mtime: i64,
    ) -> Result<NodeId, IndexError> {
        self.add(dir, name, Node::empty_dir(mtime))
    }

    /// `insert_path(path, node)` binds the archive member `path` (`/`-separated, `.` segments
    /// and doubled slashes ignored) to `node`, creating the directories it implies. A later
    /// member replaces an earlier file of the same name, as extracting the archive would; a
    /// directory member only updates an existing directory's time.
    #[cfg_attr(not(feature = "tar"), allow(dead_code))]
    pub(crate) fn insert_path(&mut self, path: &str, node: Node<F>) -> Result<(), IndexError> {
        if path.starts_with('/') {
            return Err(IndexError::UnsafeName);
        }
        if path.len() > self.limits.key_bytes {
            return Err(IndexError::NameTooLong {
                limit: self.limits.key_bytes,
            });
        }
        let segments = || path.split('/').filter(|s| !s.is_empty() && *s != ".");
        if segments().count() > self.limits.depth {
            return Err(IndexError::TooDeep {
                limit: self.limits.depth,
            });
        }
        let mut segments = segments();
        let Some(mut name) = segments.next() else {
            // The archive's own root (`./`): only its time matters.
            if let (Node::Dir { mtime, .. }, Node::Dir { mtime: m, .. }) =
                (&mut self.nodes[0], &node)
            {
                *mtime = *m;
            }
            return Ok(());
        };
        let mut dir = Self::ROOT;
        for next in segments {
            dir = match self.child(dir, name) {
                Some(id) => id,
                None => self.add_dir(dir, name, 0)?,
            };
            name = next;
        }
        match (self.child(dir, name), node) {
            (None, node) => self.add(dir, name, node).map(drop),
            (Some(id), Node::Dir { mtime: m, .. }) => match &mut self.nodes[id as usize] {
                Node::Dir { mtime, .. } => {
                    *mtime = m;
                    Ok(())
                }
                Node::File(_) => Err(IndexError::Conflict),
            },
            (Some(id), node @ Node::File(_)) => match self.nodes[id as usize] {
                Node::File(_) => {
                    self.nodes[id as usize] = node;
                    Ok(())
                }
                Node::Dir { .. } => Err(IndexError::Conflict),
            },
        }
    }

    /// `file_at(path)` is the file bound to the archive member `path`, if it is one.
    #[cfg_attr(not(feature = "tar"), allow(dead_code))]
    pub(crate) fn file_at(&self, path: &str) -> Option<&File<F>> {
        let key = path
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .try_fold(Self::ROOT, |dir, seg| self.child(dir, seg))?;
        match &self.nodes[key as usize] {
            Node::File(f) => Some(f),
            Node::Dir { .. } => None,
        }
    }

    /// `node(key)` is what the store key `key` is bound to.
    pub(crate) fn node(&self, key: &str) -> Result<&Node<F>, KvError> {
        let key = normalize(key)?;
        let mut id = Self::ROOT;
        if !key.is_empty() {
            for seg in key.split('/') {
                id = self.child(id, seg).ok_or(KvError::NotFound)?;
            }
        }
        Ok(&self.nodes[id as usize])
    }

    /// `file(key)` is the file bound to `key`.
    pub(crate) fn file(&self, key: &str) -> Result<&File<F>, KvError> {
        match self.node(key)? {
            Node::File(f) => Ok(f),
            Node::Dir { .. } => Err(KvError::IsDictionary),
        }
    }

    /// `exists(key)` is [`KvRo::exists`](crate::KvRo::exists) over the tree.
    pub(crate) fn exists(&self, key: &str) -> Result<Option<Kind>, KvError> {
        match self.node(key) {
            Ok(node) => Ok(Some(node.kind())),
            Err(KvError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `list(key)` is [`KvRo::list`](crate::KvRo::list) over the tree.
    pub(crate) fn list(&self, key: &str) -> Result<Vec<(String, Kind)>, KvError> {
        match self.node(key)? {
            Node::File(_) => Err(KvError::NotDictionary),
            Node::Dir { children, .. } => Ok(children
                .iter()
                .map(|(name, &id)| (name.to_string(), self.nodes[id as usize].kind()))
                .collect()),
        }
    }

    /// `size(key)` is [`KvRo::size`](crate::KvRo::size) over the tree.
    pub(crate) fn size(&self, key: &str) -> Result<u64, KvError> {
        self.file(key).map(|f| f.size)
    }

    /// `last_modified(key)` is [`KvRo::last_modified`](crate::KvRo::last_modified) over the
    /// tree.
    pub(crate) fn last_modified(&self, key: &str) -> Result<Timestamp, KvError> {
        let secs = match self.node(key)? {
            Node::File(File { mtime, .. }) | Node::Dir { mtime, .. } => *mtime,
        };
        Ok(Timestamp { secs, nanos: 0 })
    }
}

/// `Contents` reads the bytes of a store's files from its device.
pub(crate) trait Contents {
    /// How a file's bytes are located on the device.
    type At;

    /// `read(file, offset, buf)` fills `buf` with the bytes of `file` from `offset`; the
    /// caller keeps `offset + buf.len()` within the file's size.
    async fn read(&self, file: &File<Self::At>, offset: u64, buf: &mut [u8])
        -> Result<(), KvError>;
}

/// The piece in which `digest` reads values.
const CHUNK: usize = 64 * 1024;

/// `buffer(len)` is a zeroed buffer of `len` bytes, or [`KvError::TooLarge`] if memory for it
/// cannot be had: a hostile size is an error, never an abort.
fn buffer(len: u64) -> Result<Vec<u8>, KvError> {
    let too_large = KvError::TooLarge { size: len };
    let n = usize::try_from(len).map_err(|_| too_large)?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(n).map_err(|_| too_large)?;
    buf.resize(n, 0);
    Ok(buf)
}

/// `get(index, contents, key)` is [`KvRo::get`](crate::KvRo::get): the whole value, up to
/// [`Limits::value_bytes`].
pub(crate) async fn get<C: Contents>(
    index: &Index<C::At>,
    contents: &C,
    key: &str,
) -> Result<Vec<u8>, KvError> {
    let f = index.file(key)?;
    if f.size > index.limits.value_bytes {
        return Err(KvError::TooLarge { size: f.size });
    }
    let mut buf = buffer(f.size)?;
    contents.read(f, 0, &mut buf).await?;
    Ok(buf)
}

/// `get_partial(index, contents, key, offset, length)` is
/// [`KvRo::get_partial`](crate::KvRo::get_partial), `length` bounded by
/// [`Limits::value_bytes`].
pub(crate) async fn get_partial<C: Contents>(
    index: &Index<C::At>,
    contents: &C,
    key: &str,
    offset: u64,
    length: usize,
) -> Result<Vec<u8>, KvError> {
    let f = index.file(key)?;
    let start = offset.min(f.size);
    let len = (f.size - start).min(length as u64);
    if len > index.limits.value_bytes {
        return Err(KvError::TooLarge { size: len });
    }
    let mut buf = buffer(len)?;
    contents.read(f, start, &mut buf).await?;
    Ok(buf)
}

/// `digest(index, contents, key)` is [`KvRo::digest`](crate::KvRo::digest), reading the value
/// in pieces of 64 KiB and remembering the result.
pub(crate) async fn digest<C: Contents>(
    index: &Index<C::At>,
    contents: &C,
    key: &str,
) -> Result<[u8; 32], KvError> {
    let f = index.file(key)?;
    if let Some(d) = f.digest.get() {
        return Ok(d);
    }
    let mut hasher = Sha256::new();
    let mut buf = buffer(f.size.min(CHUNK as u64))?;
    let mut done = 0;
    while done < f.size {
        let n = (f.size - done).min(CHUNK as u64) as usize;
        contents.read(f, done, &mut buf[..n]).await?;
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    f.digest.set(Some(digest));
    Ok(digest)
}

/// `kv_ro_over_index!(Store)` implements [`KvRo`](crate::KvRo) for `Store<B>`, a store over a
/// block device `B` with an `index: Rc<Index<_>>` field and [`Contents`]: every operation is the
/// index's, so tar and FAT stores answer alike. It also gives the store `len` and `is_empty`.
macro_rules! kv_ro_over_index {
    ($store:ident) => {
        impl<B: $crate::block::Block> $store<B> {
            /// `len()` is the number of entries in the store's tree, its root included.
            pub fn len(&self) -> usize {
                self.index.len()
            }

            /// `is_empty()` is true if the store holds nothing.
            pub fn is_empty(&self) -> bool {
                self.index.len() == 1
            }
        }

        impl<B: $crate::block::Block> $crate::kv_ro::KvRo for $store<B> {
            async fn exists(
                &self,
                key: &str,
            ) -> Result<Option<$crate::kv_ro::Kind>, $crate::kv_ro::KvError> {
                self.index.exists(key)
            }

            async fn get(&self, key: &str) -> Result<alloc::vec::Vec<u8>, $crate::kv_ro::KvError> {
                $crate::kv::index::get(&self.index, self, key).await
            }

            async fn get_partial(
                &self,
                key: &str,
                offset: u64,
                length: usize,
            ) -> Result<alloc::vec::Vec<u8>, $crate::kv_ro::KvError> {
                $crate::kv::index::get_partial(&self.index, self, key, offset, length).await
            }

            async fn list(
                &self,
                key: &str,
            ) -> Result<
                alloc::vec::Vec<(alloc::string::String, $crate::kv_ro::Kind)>,
                $crate::kv_ro::KvError,
            > {
                self.index.list(key)
            }

            async fn size(&self, key: &str) -> Result<u64, $crate::kv_ro::KvError> {
                self.index.size(key)
            }

            async fn last_modified(
                &self,
                key: &str,
            ) -> Result<$crate::pclock::Timestamp, $crate::kv_ro::KvError> {
                self.index.last_modified(key)
            }

            async fn digest(&self, key: &str) -> Result<[u8; 32], $crate::kv_ro::KvError> {
                $crate::kv::index::digest(&self.index, self, key).await
            }
        }
    };
}
pub(crate) use kv_ro_over_index;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `mutations(image, span, rounds, check)` runs `check` on `rounds` copies of `image`, each with
    /// a few bytes of its first `span` bytes changed (a fixed pseudo-random sequence).
    pub(crate) fn mutations(image: &[u8], span: usize, rounds: usize, check: impl Fn(&[u8])) {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..rounds {
            let mut m = image.to_vec();
            for _ in 0..1 + next() % 8 {
                let at = (next() % span as u64) as usize;
                m[at] = next() as u8;
            }
            check(&m);
        }
    }

    fn file(size: u64) -> Node<()> {
        Node::File(File::new((), size, 7))
    }

    #[test]
    fn paths_build_the_tree_once_per_segment() {
        let mut index = Index::new(Limits::DEFAULT);
        index.insert_path("./a/b/c", file(3)).unwrap();
        index.insert_path("a/b//d", file(4)).unwrap();
        index.insert_path("a/", Node::empty_dir(9)).unwrap();
        assert_eq!(index.len(), 5, "root, a, a/b, c, d");
        assert_eq!(index.size("a/b/c"), Ok(3));
        assert_eq!(index.last_modified("a").map(|t| t.secs), Ok(9));
        assert_eq!(
            index.list("a/b"),
            Ok(alloc::vec![
                ("c".into(), Kind::Value),
                ("d".into(), Kind::Value)
            ])
        );
        assert_eq!(index.list("a/b/c"), Err(KvError::NotDictionary));
        assert_eq!(index.exists("a/x"), Ok(None));
        assert_eq!(index.exists("a/../a"), Err(KvError::InvalidKey));
        assert!(index.file_at("./a/b/d").is_some());
    }

    #[test]
    fn later_files_replace_earlier_ones_but_not_directories() {
        let mut index = Index::new(Limits::DEFAULT);
        index.insert_path("f", file(1)).unwrap();
        index.insert_path("f", file(2)).unwrap();
        assert_eq!(index.size("f"), Ok(2));
        assert_eq!(index.insert_path("f/g", file(1)), Err(IndexError::Conflict));
        assert_eq!(
            index.insert_path("f", Node::empty_dir(0)),
            Err(IndexError::Conflict)
        );
        index.insert_path("d/x", file(1)).unwrap();
        assert_eq!(index.insert_path("d", file(1)), Err(IndexError::Conflict));
        assert_eq!(index.add(0, "f", file(1)), Err(IndexError::Duplicate));
    }

    #[test]
    fn hostile_names_hit_the_limits() {
        let limits = Limits {
            entries: 4,
            depth: 3,
            key_bytes: 16,
            value_bytes: 1,
        };
        let mut index: Index<()> = Index::new(limits);
        for bad in ["/abs", "a/../b", "a\\b"] {
            assert_eq!(
                index.insert_path(bad, file(0)),
                Err(IndexError::UnsafeName),
                "{bad}"
            );
        }
        assert_eq!(
            index.insert_path("a/b/c/d", file(0)),
            Err(IndexError::TooDeep { limit: 3 })
        );
        assert_eq!(
            index.insert_path(&"n".repeat(17), file(0)),
            Err(IndexError::NameTooLong { limit: 16 })
        );
        let mut index: Index<()> = Index::new(limits);
        for name in ["1", "2", "3", "4"] {
            index.insert_path(name, file(0)).unwrap();
        }
        assert_eq!(
            index.insert_path("5", file(0)),
            Err(IndexError::TooManyEntries { limit: 4 })
        );
        assert_eq!(index.add(0, "x/y", file(0)), Err(IndexError::UnsafeName));
        assert_eq!(index.add(0, "..", file(0)), Err(IndexError::UnsafeName));
    }
}
