//! `Tar`: a read-only [`KvRo`] over a ustar archive stored on a [`Block`] device (Mirage's
//! `tar-mirage`).
//!
//! [`Tar::connect`] reads every header once and builds an index; reads then go straight to
//! the data's sectors. The archive is untrusted input: a header with a bad checksum or a bad
//! number, data running past the device, a member path that is absolute or contains `..`, or
//! a file and a directory under one name are all refused with a [`TarError`] naming the
//! header's byte offset. Besides plain ustar (and old V7) headers, GNU long names (`L`) and
//! pax `path` records (`x`) are understood; links, devices and FIFOs are skipped.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;

use sha2::{Digest, Sha256};

use crate::block::{Block, BlockError};
use crate::kv_ro::{normalize, Kind, KvError, KvRo};
use crate::pclock::Timestamp;

/// The size of a tar header and the unit of tar data.
const RECORD: u64 = 512;

/// The largest GNU long name or pax header accepted, to bound memory on hostile input.
const MAX_META: u64 = 64 * 1024;

/// `TarError` is why an archive was refused. `offset` is the byte offset of the offending
/// header in the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TarError {
    /// The block device failed while reading the archive.
    Block(BlockError),
    /// The header's checksum does not match its contents.
    BadChecksum {
        /// The header's offset.
        offset: u64,
    },
    /// A numeric field is not a valid octal (or base-256) number.
    BadNumber {
        /// The header's offset.
        offset: u64,
        /// The field's name, such as `size`.
        field: &'static str,
    },
    /// The member's data runs past the end of the device.
    BeyondDevice {
        /// The header's offset.
        offset: u64,
    },
    /// The member's path is absolute, contains `..`, or is otherwise not a store key.
    UnsafePath {
        /// The header's offset.
        offset: u64,
    },
    /// The member's path is a file in one place and a directory in another.
    Conflict {
        /// The header's offset.
        offset: u64,
    },
    /// A GNU long-name or pax extended header is malformed or too large.
    BadExtendedHeader {
        /// The header's offset.
        offset: u64,
    },
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Block(e) => write!(f, "reading the archive failed: {e}"),
            Self::BadChecksum { offset } => {
                write!(f, "tar header at byte {offset}: bad checksum")
            }
            Self::BadNumber { offset, field } => {
                write!(
                    f,
                    "tar header at byte {offset}: field `{field}` is not a number"
                )
            }
            Self::BeyondDevice { offset } => {
                write!(
                    f,
                    "tar member at byte {offset}: data runs past the end of the device"
                )
            }
            Self::UnsafePath { offset } => write!(
                f,
                "tar member at byte {offset}: path is absolute, has `..` or is not a valid key"
            ),
            Self::Conflict { offset } => write!(
                f,
                "tar member at byte {offset}: path is both a file and a directory"
            ),
            Self::BadExtendedHeader { offset } => {
                write!(
                    f,
                    "tar header at byte {offset}: malformed long-name or pax header"
                )
            }
        }
    }
}

impl core::error::Error for TarError {}

impl From<BlockError> for TarError {
    fn from(e: BlockError) -> Self {
        Self::Block(e)
    }
}

/// One indexed file.
#[derive(Debug)]
struct File {
    /// Byte offset of the data on the device.
    data: u64,
    size: u64,
    mtime: i64,
    /// The SHA-256 of the data, once [`KvRo::digest`] has computed it.
    digest: Cell<Option<[u8; 32]>>,
}

/// One indexed member.
#[derive(Debug)]
enum Node {
    File(File),
    Dir { mtime: i64 },
}

/// `Tar<B>` serves the members of a ustar archive on the block device `B`. Clones share the
/// index.
#[derive(Clone, Debug)]
pub struct Tar<B: Block> {
    block: B,
    index: Rc<BTreeMap<String, Node>>,
}

/// A parsed header, before the member is indexed.
struct Header {
    name: String,
    size: u64,
    mtime: i64,
    typeflag: u8,
}

impl<B: Block> Tar<B> {
    /// `connect(block)` indexes the archive on `block`, refusing malformed or hostile ones.
    pub async fn connect(block: B) -> Result<Tar<B>, TarError> {
        let device_size = block.info().size_bytes();
        let mut index = BTreeMap::new();
        index.insert(String::new(), Node::Dir { mtime: 0 });
        let mut offset = 0;
        let mut long_name: Option<String> = None;
        while offset + RECORD <= device_size {
            let raw = read_bytes(&block, offset, RECORD as usize).await?;
            if raw.iter().all(|&b| b == 0) {
                break; // The end-of-archive marker.
            }
            let h = parse_header(&raw, offset)?;
            let data = offset + RECORD;
            let padded = h.size.div_ceil(RECORD) * RECORD;
            let next = data
                .checked_add(padded)
                .filter(|&end| end <= device_size)
                .ok_or(TarError::BeyondDevice { offset })?;
            match h.typeflag {
                b'L' | b'x' => {
                    if h.size > MAX_META {
                        return Err(TarError::BadExtendedHeader { offset });
                    }
                    let meta = read_bytes(&block, data, h.size as usize).await?;
                    let name = if h.typeflag == b'L' {
                        Some(c_string(&meta).to_string())
                    } else {
                        pax_path(&meta).ok_or(TarError::BadExtendedHeader { offset })?
                    };
                    long_name = name.or(long_name);
                }
                b'0' | b'\0' | b'7' | b'5' => {
                    let name = long_name.take().unwrap_or(h.name);
                    let dir = h.typeflag == b'5';
                    insert(&mut index, &name, dir, h.mtime, data, h.size, offset)?;
                }
                _ => long_name = None, // Links, devices, FIFOs, global pax headers.
            }
            offset = next;
        }
        Ok(Tar {
            block,
            index: Rc::new(index),
        })
    }

    fn node(&self, key: &str) -> Result<&Node, KvError> {
        self.index.get(normalize(key)?).ok_or(KvError::NotFound)
    }

    fn file(&self, key: &str) -> Result<&File, KvError> {
        match self.node(key)? {
            Node::File(f) => Ok(f),
            Node::Dir { .. } => Err(KvError::IsDictionary),
        }
    }
}

/// `read_bytes(block, offset, len)` is `len` bytes of `block` from byte `offset`, reading the
/// sectors that cover them.
async fn read_bytes<B: Block>(block: &B, offset: u64, len: usize) -> Result<Vec<u8>, BlockError> {
    let sector_size = u64::from(block.info().sector_size.max(1));
    let first = offset / sector_size;
    let end = offset
        .checked_add(len as u64)
        .ok_or(BlockError::OutOfRange { sector: first })?;
    let last = end.div_ceil(sector_size);
    let span = usize::try_from((last - first) * sector_size)
        .map_err(|_| BlockError::OutOfRange { sector: first })?;
    let mut buf = vec![0u8; span];
    block.read(first, &mut buf).await?;
    let skip = (offset - first * sector_size) as usize;
    buf.drain(..skip);
    buf.truncate(len);
    Ok(buf)
}

/// `parse_header(raw, offset)` checks and decodes the 512-byte header `raw`.
fn parse_header(raw: &[u8], offset: u64) -> Result<Header, TarError> {
    let stored = number(&raw[148..156]).ok_or(TarError::BadChecksum { offset })?;
    let unsigned: u64 = raw
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    let signed: i64 = raw
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(TarError::BadChecksum { offset });
    }
    let bad = |field| TarError::BadNumber { offset, field };
    let size = number(&raw[124..136]).ok_or(bad("size"))?;
    let mtime = number(&raw[136..148]).ok_or(bad("mtime"))?;
    let mtime = i64::try_from(mtime).map_err(|_| bad("mtime"))?;
    let mut name = String::new();
    let ustar = &raw[257..262] == b"ustar";
    let prefix = c_string(&raw[345..500]);
    if ustar && !prefix.is_empty() {
        name.push_str(prefix);
        name.push('/');
    }
    name.push_str(c_string(&raw[0..100]));
    Ok(Header {
        name,
        size,
        mtime,
        typeflag: raw[156],
    })
}

/// `number(field)` decodes a numeric header field: octal digits padded with spaces or NULs,
/// or GNU base-256 when the top bit of the first byte is set.
fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] != 0x80 {
            return None; // Negative or huge base-256 values are not sizes or times we accept.
        }
        return field[1..].iter().try_fold(0u64, |acc, &b| {
            acc.checked_mul(256)?.checked_add(u64::from(b))
        });
    }
    let text = field
        .iter()
        .position(|&b| b != b' ')
        .map_or(&field[..0], |start| &field[start..]);
    let digits = text
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(b))
        .count();
    if !text[digits..].iter().all(|&b| b == 0 || b == b' ') {
        return None;
    }
    text[..digits].iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(8)?.checked_add(u64::from(b - b'0'))
    })
}

/// `c_string(field)` is the text of a NUL-terminated header field (lossy: a name that is not
/// UTF-8 becomes empty and is then refused as a path).
fn c_string(field: &[u8]) -> &str {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    core::str::from_utf8(&field[..end]).unwrap_or("")
}

/// `pax_path(records)` is the `path` record of a pax extended header, `Some(None)` if it has
/// none, or `None` if the records are malformed.
fn pax_path(mut records: &[u8]) -> Option<Option<String>> {
    let mut path = None;
    while !records.is_empty() {
        let sp = records.iter().position(|&b| b == b' ')?;
        let len: usize = core::str::from_utf8(&records[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > records.len() || records[len - 1] != b'\n' {
            return None;
        }
        let record = core::str::from_utf8(&records[sp + 1..len - 1]).ok()?;
        let (key, value) = record.split_once('=')?;
        if key == "path" {
            path = Some(value.to_string());
        }
        records = &records[len..];
    }
    Some(path)
}

/// `member_key(name)` is the store key of archive member `name`: `.` segments, a trailing `/`
/// and doubled slashes are dropped; absolute paths and `..` are refused.
fn member_key(name: &str) -> Option<String> {
    if name.is_empty() || name.starts_with('/') {
        return None;
    }
    let mut key = String::new();
    for seg in name.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(seg);
    }
    match normalize(&key) {
        Ok(k) if k == key => Some(key),
        _ => None,
    }
}

/// `insert(index, name, dir, ...)` adds a member and its implied parent directories.
fn insert(
    index: &mut BTreeMap<String, Node>,
    name: &str,
    dir: bool,
    mtime: i64,
    data: u64,
    size: u64,
    offset: u64,
) -> Result<(), TarError> {
    let key = member_key(name).ok_or(TarError::UnsafePath { offset })?;
    let conflict = TarError::Conflict { offset };
    for (i, _) in key.match_indices('/') {
        let parent = &key[..i];
        match index.get(parent) {
            Some(Node::File(_)) => return Err(conflict),
            Some(Node::Dir { .. }) => {}
            None => {
                index.insert(parent.to_string(), Node::Dir { mtime: 0 });
            }
        }
    }
    let has_children = || {
        let prefix = alloc::format!("{key}/");
        index
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    };
    let node = match (dir, index.get(&key)) {
        (true, Some(Node::File(_))) | (false, Some(Node::Dir { .. })) => return Err(conflict),
        (false, None) if has_children() => return Err(conflict),
        (true, _) => Node::Dir { mtime },
        (false, _) => Node::File(File {
            data,
            size,
            mtime,
            digest: Cell::new(None),
        }),
    };
    index.insert(key, node);
    Ok(())
}

impl<B: Block> KvRo for Tar<B> {
    async fn exists(&self, key: &str) -> Result<Option<Kind>, KvError> {
        match self.node(key) {
            Ok(Node::File(_)) => Ok(Some(Kind::Value)),
            Ok(Node::Dir { .. }) => Ok(Some(Kind::Dictionary)),
            Err(KvError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError> {
        let f = self.file(key)?;
        let len = usize::try_from(f.size).map_err(|_| KvError::Corrupt)?;
        Ok(read_bytes(&self.block, f.data, len).await?)
    }

    async fn get_partial(&self, key: &str, offset: u64, length: usize) -> Result<Vec<u8>, KvError> {
        let f = self.file(key)?;
        let start = offset.min(f.size);
        let len = (f.size - start).min(length as u64) as usize;
        Ok(read_bytes(&self.block, f.data + start, len).await?)
    }

    async fn list(&self, key: &str) -> Result<Vec<(String, Kind)>, KvError> {
        let key = normalize(key)?;
        match self.node(key)? {
            Node::File(_) => return Err(KvError::NotDictionary),
            Node::Dir { .. } => {}
        }
        let prefix = if key.is_empty() {
            String::new()
        } else {
            alloc::format!("{key}/")
        };
        Ok(self
            .index
            .range(prefix.clone()..)
            .skip_while(|(k, _)| k.is_empty())
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, node)| {
                let name = &k[prefix.len()..];
                let kind = match node {
                    Node::File(_) => Kind::Value,
                    Node::Dir { .. } => Kind::Dictionary,
                };
                (!name.contains('/')).then(|| (name.to_string(), kind))
            })
            .collect())
    }

    async fn size(&self, key: &str) -> Result<u64, KvError> {
        self.file(key).map(|f| f.size)
    }

    async fn last_modified(&self, key: &str) -> Result<Timestamp, KvError> {
        let secs = match self.node(key)? {
            Node::File(File { mtime, .. }) | Node::Dir { mtime } => *mtime,
        };
        Ok(Timestamp { secs, nanos: 0 })
    }

    async fn digest(&self, key: &str) -> Result<[u8; 32], KvError> {
        let f = self.file(key)?;
        if let Some(d) = f.digest.get() {
            return Ok(d);
        }
        const CHUNK: u64 = 64 * 1024;
        let mut hasher = Sha256::new();
        let mut done = 0;
        while done < f.size {
            let n = (f.size - done).min(CHUNK) as usize;
            hasher.update(read_bytes(&self.block, f.data + done, n).await?);
            done += n as u64;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        f.digest.set(Some(digest));
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Ramdisk;
    use crate::testing::block_on;

    /// `header(name, size, typeflag)` is a valid ustar header.
    fn header(name: &str, size: u64, typeflag: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        put_octal(&mut h[124..136], size);
        put_octal(&mut h[136..148], 1_700_000_000);
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        seal(&mut h);
        h
    }

    fn put_octal(field: &mut [u8], v: u64) {
        let s = alloc::format!("{:0width$o}\0", v, width = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    }

    /// `seal(h)` recomputes the checksum after a test edits a header.
    fn seal(h: &mut [u8; 512]) {
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        let s = alloc::format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
    }

    /// `pax_record(key, value)` is one pax record, its length prefix counting itself.
    fn pax_record(key: &str, value: &str) -> String {
        let body = alloc::format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while alloc::format!("{len}").len() + body.len() != len {
            len += 1;
        }
        alloc::format!("{len}{body}")
    }

    fn member(out: &mut Vec<u8>, h: [u8; 512], data: &[u8]) {
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in members {
            let flag = if name.ends_with('/') { b'5' } else { b'0' };
            member(&mut out, header(name, data.len() as u64, flag), data);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn connect(image: &[u8]) -> Result<Tar<Ramdisk>, TarError> {
        block_on(Tar::connect(Ramdisk::with_contents("tar", image)))
    }

    #[test]
    fn reads_members_and_implied_directories() {
        let big: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
        let tar = connect(&archive(&[
            ("./", b""),
            ("./secret", b"s3cr3t\n"),
            ("./dir/", b""),
            ("./dir/big", &big),
            ("deep/er/file", b"x"),
        ]))
        .unwrap();
        assert_eq!(block_on(tar.get("secret")).unwrap(), b"s3cr3t\n");
        assert_eq!(block_on(tar.get("dir/big")).unwrap(), big);
        assert_eq!(
            block_on(tar.get_partial("dir/big", 510, 4)).unwrap(),
            &big[510..514]
        );
        assert!(block_on(tar.get_partial("dir/big", 5000, 4))
            .unwrap()
            .is_empty());
        assert_eq!(block_on(tar.size("dir/big")), Ok(1500));
        assert_eq!(block_on(tar.exists("deep/er")), Ok(Some(Kind::Dictionary)));
        assert_eq!(block_on(tar.exists("nothing")), Ok(None));
        assert_eq!(block_on(tar.get("dir")), Err(KvError::IsDictionary));
        assert_eq!(block_on(tar.list("secret")), Err(KvError::NotDictionary));
        assert_eq!(
            block_on(tar.last_modified("secret")),
            Ok(Timestamp {
                secs: 1_700_000_000,
                nanos: 0
            })
        );
        let root = block_on(tar.list("/")).unwrap();
        let names: Vec<&str> = root.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["deep", "dir", "secret"]);
        let expect: [u8; 32] = Sha256::digest(&big).into();
        assert_eq!(block_on(tar.digest("dir/big")), Ok(expect));
        assert_eq!(block_on(tar.digest("dir/big")), Ok(expect));
    }

    #[test]
    fn empty_device_and_missing_end_marker_are_empty_or_complete() {
        assert!(block_on(connect(&[]).unwrap().list("")).unwrap().is_empty());
        let mut image = archive(&[("a", b"1")]);
        image.truncate(1024);
        assert_eq!(block_on(connect(&image).unwrap().get("a")).unwrap(), b"1");
    }

    #[test]
    fn long_names_and_pax_paths() {
        let long = "d/".repeat(80) + "leaf";
        let mut out = Vec::new();
        member(
            &mut out,
            header("././@LongLink", long.len() as u64 + 1, b'L'),
            &[long.as_bytes(), b"\0"].concat(),
        );
        member(&mut out, header("truncated", 1, b'0'), b"L");
        let rec = pax_record("path", "pax/named");
        member(
            &mut out,
            header("PaxHeader", rec.len() as u64, b'x'),
            rec.as_bytes(),
        );
        member(&mut out, header("short", 1, b'0'), b"P");
        out.extend_from_slice(&[0u8; 1024]);
        let tar = connect(&out).unwrap();
        assert_eq!(block_on(tar.get(&long)).unwrap(), b"L");
        assert_eq!(block_on(tar.get("pax/named")).unwrap(), b"P");
        assert_eq!(block_on(tar.exists("short")), Ok(None));
    }

    #[test]
    fn prefix_field_is_joined() {
        let mut h = header("name", 2, b'0');
        h[345..351].copy_from_slice(b"prefix");
        seal(&mut h);
        let mut out = Vec::new();
        member(&mut out, h, b"ok");
        let tar = connect(&out).unwrap();
        assert_eq!(block_on(tar.get("prefix/name")).unwrap(), b"ok");
    }

    #[test]
    fn refuses_bad_checksum() {
        let mut image = archive(&[("a", b"1"), ("b", b"2")]);
        image[1024] ^= 1; // Flip a bit in the second header's name.
        assert_eq!(
            connect(&image).unwrap_err(),
            TarError::BadChecksum { offset: 1024 }
        );
    }

    #[test]
    fn refuses_bad_numbers() {
        let mut h = header("a", 1, b'0');
        h[124..136].copy_from_slice(b"00000000009\0");
        seal(&mut h);
        let mut image = Vec::new();
        member(&mut image, h, b"1");
        assert_eq!(
            connect(&image).unwrap_err(),
            TarError::BadNumber {
                offset: 0,
                field: "size"
            }
        );
    }

    #[test]
    fn refuses_sizes_beyond_the_device() {
        let mut image = Vec::new();
        let mut h = header("a", 0, b'0');
        h[124..136].copy_from_slice(b"77777777777\0");
        seal(&mut h);
        member(&mut image, h, b"1");
        assert_eq!(
            connect(&image).unwrap_err(),
            TarError::BeyondDevice { offset: 0 }
        );
        let mut h = header("a", 0, b'0');
        h[124..136].copy_from_slice(&[
            0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        seal(&mut h);
        let mut image = Vec::new();
        member(&mut image, h, b"");
        assert_eq!(
            connect(&image).unwrap_err(),
            TarError::BadNumber {
                offset: 0,
                field: "size"
            }
        );
    }

    #[test]
    fn refuses_hostile_paths() {
        for name in ["../escape", "a/../../b", "/etc/passwd", "a\\b", "dir/.."] {
            let image = archive(&[("ok", b"1"), (name, b"evil")]);
            assert_eq!(
                connect(&image).unwrap_err(),
                TarError::UnsafePath { offset: 1024 },
                "{name}"
            );
        }
        let mut out = Vec::new();
        let rec = pax_record("path", "../../escape");
        member(
            &mut out,
            header("PaxHeader", rec.len() as u64, b'x'),
            rec.as_bytes(),
        );
        member(&mut out, header("innocent", 1, b'0'), b"x");
        assert_eq!(
            connect(&out).unwrap_err(),
            TarError::UnsafePath { offset: 512 * 2 }
        );
    }

    #[test]
    fn refuses_file_directory_conflicts() {
        let image = archive(&[("a", b"1"), ("a/b", b"2")]);
        assert_eq!(
            connect(&image).unwrap_err(),
            TarError::Conflict { offset: 1024 }
        );
        let image = archive(&[("a/b", b"2"), ("a", b"1")]);
        assert_eq!(
            connect(&image).unwrap_err(),
            TarError::Conflict { offset: 1024 }
        );
    }

    #[test]
    fn refuses_malformed_pax_and_oversized_long_names() {
        let mut out = Vec::new();
        member(&mut out, header("PaxHeader", 5, b'x'), b"junk\n");
        assert_eq!(
            connect(&out).unwrap_err(),
            TarError::BadExtendedHeader { offset: 0 }
        );
        let mut out = Vec::new();
        member(
            &mut out,
            header("././@LongLink", MAX_META + 1, b'L'),
            &vec![b'a'; MAX_META as usize + 1],
        );
        assert_eq!(
            connect(&out).unwrap_err(),
            TarError::BadExtendedHeader { offset: 0 }
        );
    }

    #[test]
    fn number_fields() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"   644 \0"), Some(0o644));
        assert_eq!(number(b"\0\0\0\0"), Some(0));
        assert_eq!(number(b"64 4"), None);
        assert_eq!(number(b"0x12"), None);
        assert_eq!(number(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(number(&[0xff, 0xff]), None);
        assert_eq!(number(b"77777777777777777777777"), None);
    }
}
