//! `Tar`: a read-only [`KvRo`] over a ustar archive stored on a [`Block`] device (Mirage's
//! `tar-mirage`).
//!
//! [`Tar::connect`] reads every header once and builds an [`Index`] of the members; reads then
//! go straight to the data's sectors. The archive is untrusted input: a header with a bad
//! checksum or a bad number, data running past the device, a member path that is absolute or
//! contains `..`, a file and a directory under one name, or an archive past the [`Limits`]
//! (entries, depth, name length) are all refused with a [`TarError`] naming the header's byte
//! offset. Memory is linear in the number of members and the bytes of their names (see
//! [`Index`]), and a value is read whole only up to [`Limits::value_bytes`].
//!
//! Besides plain ustar (and old V7) headers, GNU long names and link names (`L`, `K`) and pax
//! `path` and `linkpath` records (`x`) are understood. A later member replaces an earlier one
//! of the same name, as extraction would. A hard link (`1`) to an earlier regular file serves
//! that file's bytes; other links, devices and FIFOs are skipped, so no link can loop.

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::index::{self, Contents, File, Index, IndexError, Limits, Node};
use crate::block::{read_bytes, Block, BlockError};
use crate::kv_ro::KvError;

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
    /// The member cannot be a key of the store: its path is unsafe, conflicts with another
    /// member's, or goes past the store's [`Limits`].
    Member {
        /// The header's offset.
        offset: u64,
        /// What is wrong with it.
        error: IndexError,
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
            Self::Member { offset, error } => write!(f, "tar member at byte {offset}: {error}"),
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

/// `Tar<B>` serves the members of a ustar archive on the block device `B`. Clones share the
/// index.
#[derive(Clone, Debug)]
pub struct Tar<B: Block> {
    block: B,
    /// Files are located by the byte offset of their data on the device.
    index: Rc<Index<u64>>,
}

/// A parsed header, before the member is indexed.
struct Header {
    name: String,
    link: String,
    size: u64,
    mtime: i64,
    typeflag: u8,
}

/// Names given by the extended headers before a member, for that member only.
#[derive(Default)]
struct Pending {
    path: Option<String>,
    link: Option<String>,
}

impl<B: Block> Tar<B> {
    /// `connect(block)` indexes the archive on `block`, refusing malformed or hostile ones.
    pub async fn connect(block: B) -> Result<Tar<B>, TarError> {
        Self::connect_with(block, Limits::DEFAULT).await
    }

    /// `connect_with(block, limits)` is [`connect`](Self::connect) with other [`Limits`].
    pub async fn connect_with(block: B, limits: Limits) -> Result<Tar<B>, TarError> {
        let device_size = block.info().size_bytes();
        let mut index = Index::new(limits);
        let mut offset = 0;
        let mut pending = Pending::default();
        let mut ahead = ReadAhead::default();
        while offset + RECORD <= device_size {
            let raw = ahead.record(&block, offset, device_size).await?;
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
            let member = |error| TarError::Member { offset, error };
            match h.typeflag {
                b'L' | b'K' | b'x' => {
                    if h.size > MAX_META {
                        return Err(TarError::BadExtendedHeader { offset });
                    }
                    let mut meta = alloc::vec![0u8; h.size as usize];
                    read_bytes(&block, data, &mut meta).await?;
                    let bad = TarError::BadExtendedHeader { offset };
                    match h.typeflag {
                        b'L' => pending.path = Some(c_string(&meta).to_string()),
                        b'K' => pending.link = Some(c_string(&meta).to_string()),
                        _ => {
                            let (path, link) = pax_paths(&meta).ok_or(bad)?;
                            pending.path = path.or(pending.path);
                            pending.link = link.or(pending.link);
                        }
                    }
                }
                b'0' | b'\0' | b'7' | b'5' | b'1' => {
                    let name = pending.path.take().unwrap_or(h.name);
                    let link = pending.link.take().unwrap_or(h.link);
                    let node = match h.typeflag {
                        b'5' => Node::Dir {
                            mtime: h.mtime,
                            children: Default::default(),
                        },
                        // A hard link serves an earlier file; any other is skipped.
                        b'1' => match index.file_at(&link) {
                            Some(f) => Node::File(File::new(f.at, f.size, h.mtime)),
                            None => {
                                offset = next;
                                continue;
                            }
                        },
                        _ => Node::File(File::new(data, h.size, h.mtime)),
                    };
                    index.insert_path(&name, node).map_err(member)?;
                }
                // Symbolic links, devices, FIFOs, global pax headers.
                _ => pending = Pending::default(),
            }
            offset = next;
        }
        Ok(Tar {
            block,
            index: Rc::new(index),
        })
    }
}

impl<B: Block> Contents for Tar<B> {
    type At = u64;

    async fn read(&self, file: &File<u64>, offset: u64, buf: &mut [u8]) -> Result<(), KvError> {
        Ok(read_bytes(&self.block, file.at + offset, buf).await?)
    }
}

/// `ReadAhead` reads the archive's headers 64 KiB at a time, so that an archive of many small
/// members takes one device read per 64 KiB rather than one per header.
#[derive(Default)]
struct ReadAhead {
    /// The byte offset of `bytes` on the device.
    start: u64,
    bytes: Vec<u8>,
}

/// The bytes [`ReadAhead`] reads at once.
const AHEAD: u64 = 64 * 1024;

impl ReadAhead {
    /// `record(block, offset, device_size)` is the 512-byte record at `offset`.
    async fn record<B: Block>(
        &mut self,
        block: &B,
        offset: u64,
        device_size: u64,
    ) -> Result<[u8; RECORD as usize], BlockError> {
        let cached =
            offset >= self.start && offset + RECORD <= self.start + self.bytes.len() as u64;
        if !cached {
            let len = AHEAD.min(device_size - offset) as usize;
            self.bytes.resize(len, 0);
            read_bytes(block, offset, &mut self.bytes).await?;
            self.start = offset;
        }
        let at = (offset - self.start) as usize;
        let mut raw = [0u8; RECORD as usize];
        raw.copy_from_slice(&self.bytes[at..at + RECORD as usize]);
        Ok(raw)
    }
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
        link: c_string(&raw[157..257]).to_string(),
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

/// `pax_paths(records)` is the `path` and `linkpath` records of a pax extended header, or
/// `None` if the records are malformed (a length that is not a number, points past the
/// header or does not end a record).
fn pax_paths(mut records: &[u8]) -> Option<(Option<String>, Option<String>)> {
    let (mut path, mut link) = (None, None);
    while !records.is_empty() {
        let sp = records.iter().take(20).position(|&b| b == b' ')?;
        let len: usize = core::str::from_utf8(&records[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > records.len() || records[len - 1] != b'\n' {
            return None;
        }
        let record = core::str::from_utf8(&records[sp + 1..len - 1]).ok()?;
        let (key, value) = record.split_once('=')?;
        match key {
            "path" => path = Some(value.to_string()),
            "linkpath" => link = Some(value.to_string()),
            _ => {}
        }
        records = &records[len..];
    }
    Some((path, link))
}

index::kv_ro_over_index!(Tar);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Ramdisk;
    use crate::kv_ro::{Kind, KvRo};
    use crate::pclock::Timestamp;
    use crate::testing::block_on;
    use alloc::vec;
    use alloc::vec::Vec;
    use sha2::{Digest, Sha256};

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
                TarError::Member {
                    offset: 1024,
                    error: IndexError::UnsafeName
                },
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
            TarError::Member {
                offset: 512 * 2,
                error: IndexError::UnsafeName
            }
        );
    }

    #[test]
    fn refuses_file_directory_conflicts() {
        let image = archive(&[("a", b"1"), ("a/b", b"2")]);
        assert_eq!(
            connect(&image).unwrap_err(),
            TarError::Member {
                offset: 1024,
                error: IndexError::Conflict
            }
        );
        let image = archive(&[("a/b", b"2"), ("a", b"1")]);
        assert_eq!(
            connect(&image).unwrap_err(),
            TarError::Member {
                offset: 1024,
                error: IndexError::Conflict
            }
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
    fn hard_links_serve_earlier_files_and_never_loop() {
        let mut out = archive(&[("a", b"data")]);
        out.truncate(out.len() - 1024);
        for (name, target) in [("b", "a"), ("c", "c"), ("d", "missing"), ("e", "b")] {
            let mut h = header(name, 0, b'1');
            h[157..157 + target.len()].copy_from_slice(target.as_bytes());
            seal(&mut h);
            member(&mut out, h, b"");
        }
        let tar = connect(&out).unwrap();
        assert_eq!(block_on(tar.get("b")).unwrap(), b"data");
        assert_eq!(block_on(tar.get("e")).unwrap(), b"data");
        assert_eq!(block_on(tar.exists("c")), Ok(None));
        assert_eq!(block_on(tar.exists("d")), Ok(None));
    }

    #[test]
    fn duplicates_keep_the_last_member() {
        let tar = connect(&archive(&[("a", b"first"), ("a", b"second")])).unwrap();
        assert_eq!(block_on(tar.get("a")).unwrap(), b"second");
    }

    #[test]
    fn deep_and_long_names_are_refused_before_memory_grows() {
        for (long, error) in [
            (
                "d/".repeat(200) + "leaf",
                IndexError::TooDeep {
                    limit: Limits::DEFAULT.depth,
                },
            ),
            (
                "n".repeat(5000),
                IndexError::NameTooLong {
                    limit: Limits::DEFAULT.key_bytes,
                },
            ),
        ] {
            let mut out = Vec::new();
            member(
                &mut out,
                header("././@LongLink", long.len() as u64 + 1, b'L'),
                &[long.as_bytes(), b"\0"].concat(),
            );
            member(&mut out, header("x", 1, b'0'), b"L");
            assert_eq!(
                connect(&out).unwrap_err(),
                TarError::Member {
                    offset: 512 + (long.len() as u64 + 1).div_ceil(512) * 512,
                    error
                },
            );
        }
    }

    #[test]
    fn values_past_the_limit_are_read_in_pieces() {
        let big = vec![7u8; 3000];
        let limits = Limits {
            value_bytes: 2048,
            ..Limits::DEFAULT
        };
        let disk = Ramdisk::with_contents("tar", &archive(&[("big", &big)]));
        let tar = block_on(Tar::connect_with(disk, limits)).unwrap();
        assert_eq!(
            block_on(tar.get("big")),
            Err(KvError::TooLarge { size: 3000 })
        );
        assert_eq!(
            block_on(tar.get_partial("big", 1000, 2000)).unwrap(),
            &big[1000..]
        );
        let expect: [u8; 32] = Sha256::digest(&big).into();
        assert_eq!(block_on(tar.digest("big")), Ok(expect));
    }

    /// Damaged archives never panic: whatever connects is listed and read.
    #[test]
    fn random_damage_is_an_error_or_a_read_never_a_panic() {
        static GNU: &[u8] = include_bytes!("../../../tests/storage/good/gnu.tar");
        crate::kv::index::tests::mutations(GNU, 0x2000, 600, |m| {
            let Ok(tar) = connect(m) else { return };
            for (name, kind) in block_on(tar.list("")).unwrap() {
                if kind == Kind::Value {
                    let _ = block_on(tar.get(&name));
                    let _ = block_on(tar.digest(&name));
                }
            }
        });
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
