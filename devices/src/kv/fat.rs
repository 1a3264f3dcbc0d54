//! `Fat`: a read-only [`KvRo`] over a FAT12, FAT16 or FAT32 filesystem on a [`Block`] device
//! (Mirage's `fat` kv_ro), with long file names (VFAT) and subdirectories.
//!
//! [`Fat::connect`] reads the boot sector, then walks every directory once and builds an
//! [`Index`] of the tree; reads then follow each file's cluster chain, one device read per run
//! of consecutive clusters. The filesystem is untrusted input, and everything is checked
//! before it is believed:
//!
//! - the boot sector's geometry (sector and cluster sizes, FAT count and size, the root
//!   directory, the volume fitting the device); a volume without a 16-bit FAT size is FAT32,
//!   as Linux decides, and FAT12 and FAT16 follow from the cluster count, as the specification
//!   says;
//! - every cluster chain: a chain that reaches a free, reserved, bad or out-of-volume cluster,
//!   or does not end exactly where the file's size says, is a [`FatError`]; since a chain is
//!   followed at most as far as the file's size (and a directory cluster is read at most
//!   once), a looping chain can neither hang the reader nor grow its memory;
//! - the tree: a directory cluster reached twice (a directory chain that loops, a directory
//!   holding an ancestor, two directories sharing clusters) is [`FatError::DirectoryCycle`];
//!   names that are not keys, duplicate names and trees past the [`Limits`] are refused.
//!
//! Memory is the index (linear in entries and name bytes), one directory's entries while it is
//! read, and a 4 KiB window of the FAT. Names are the long names when present and valid (their
//! checksum matches the short entry), otherwise the 8.3 short name, lower-cased where the
//! entry's case flags say so; short-name bytes above 0x7f, which FAT leaves to a code page,
//! are read as Latin-1. Keys are case-sensitive: a file is found under the name it is listed
//! with. Modification times are the entries' local date and time, taken as UTC.

use alloc::collections::BTreeSet;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;

use super::index::{self, Contents, File, Index, IndexError, Limits, Node, NodeId};
use crate::block::{read_bytes, Block, BlockError};
use crate::kv_ro::KvError;
use crate::pclock::Timestamp;

/// The size of a directory entry.
const ENTRY: usize = 32;

/// The largest cluster accepted (the specification allows 32 KiB; some tools write 64 KiB).
const MAX_CLUSTER_BYTES: u32 = 64 * 1024;

/// The bytes of the FAT kept in memory at once.
const FAT_WINDOW: u64 = 4096;

/// `FatError` is why a FAT filesystem was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatError {
    /// The block device failed while reading the filesystem.
    Block(BlockError),
    /// A field of the boot sector is missing or impossible.
    BadBootSector {
        /// The field, such as `bytes per sector`.
        field: &'static str,
    },
    /// The volume is larger than the device holding it.
    BeyondDevice {
        /// The volume's size in bytes.
        volume: u64,
        /// The device's size in bytes.
        device: u64,
    },
    /// A cluster chain reaches a cluster that is free, reserved, bad or outside the volume.
    BadCluster {
        /// The first cluster of the chain.
        chain: u32,
        /// The offending cluster number.
        cluster: u32,
    },
    /// A file's cluster chain is shorter or longer than its size, or a directory's chain does
    /// not end (it loops).
    ChainLength {
        /// The first cluster of the chain.
        chain: u32,
    },
    /// A directory cluster is reached twice: a directory chain that loops, a directory holding
    /// an ancestor, or two directories sharing clusters.
    DirectoryCycle {
        /// The directory's first cluster.
        cluster: u32,
    },
    /// An entry cannot be a key of the store: an unsafe or duplicate name, or past the
    /// store's [`Limits`].
    Entry {
        /// The first cluster of the directory holding it (0 for the root).
        dir: u32,
        /// What is wrong with it.
        error: IndexError,
    },
}

impl fmt::Display for FatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Block(e) => write!(f, "reading the FAT filesystem failed: {e}"),
            Self::BadBootSector { field } => {
                write!(f, "not a FAT filesystem: bad boot sector field `{field}`")
            }
            Self::BeyondDevice { volume, device } => write!(
                f,
                "the FAT volume ({volume} bytes) is larger than its device ({device} bytes)"
            ),
            Self::BadCluster { chain, cluster } => write!(
                f,
                "FAT chain from cluster {chain} reaches cluster {cluster}, which is free, bad or outside the volume"
            ),
            Self::ChainLength { chain } => write!(
                f,
                "FAT chain from cluster {chain} does not match its file's size, or loops"
            ),
            Self::DirectoryCycle { cluster } => {
                write!(f, "FAT directory at cluster {cluster} is reached twice (a cycle)")
            }
            Self::Entry { dir: 0, error } => write!(f, "FAT root directory: an entry's {error}"),
            Self::Entry { dir, error } => {
                write!(f, "FAT directory at cluster {dir}: an entry's {error}")
            }
        }
    }
}

impl core::error::Error for FatError {}

impl From<BlockError> for FatError {
    fn from(e: BlockError) -> Self {
        Self::Block(e)
    }
}

/// Which FAT: the width of its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit entries, fewer than 4085 clusters.
    Fat12,
    /// 16-bit entries, fewer than 65525 clusters.
    Fat16,
    /// 28-bit entries, the boot sector's 16-bit FAT size being 0.
    Fat32,
}

/// Where a volume's regions are, from its boot sector.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    kind: FatType,
    cluster_bytes: u32,
    /// Byte offset of the FAT in use.
    fat: u64,
    /// The number of data clusters; valid cluster numbers are `2..clusters + 2`.
    clusters: u32,
    /// Byte offset of cluster 2.
    data: u64,
    /// The root directory: a fixed region (FAT12/16) or a cluster chain (FAT32).
    root: DirAt,
}

/// Where a directory's entries are.
#[derive(Clone, Copy, Debug)]
enum DirAt {
    /// A fixed region: byte offset and number of entries.
    Region { offset: u64, entries: u32 },
    /// A cluster chain from its first cluster.
    Chain(u32),
}

/// `le16(b, at)` and `le32(b, at)` read little-endian fields of a boot sector or entry.
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Geometry {
    /// `parse(boot, device)` checks the boot sector `boot` (its first 512 bytes) of a volume on
    /// a device of `device` bytes.
    fn parse(boot: &[u8; 512], device: u64) -> Result<Geometry, FatError> {
        let bad = |field| FatError::BadBootSector { field };
        if boot[510..512] != [0x55, 0xaa] {
            return Err(bad("signature"));
        }
        let sector = u64::from(le16(boot, 11));
        if !matches!(sector, 512 | 1024 | 2048 | 4096) {
            return Err(bad("bytes per sector"));
        }
        let per_cluster = u32::from(boot[13]);
        let cluster_bytes = per_cluster * sector as u32;
        if !per_cluster.is_power_of_two() || cluster_bytes > MAX_CLUSTER_BYTES {
            return Err(bad("sectors per cluster"));
        }
        let reserved = u64::from(le16(boot, 14));
        if reserved == 0 {
            return Err(bad("reserved sectors"));
        }
        let fats = u64::from(boot[16]);
        if fats == 0 {
            return Err(bad("number of FATs"));
        }
        let root_entries = u32::from(le16(boot, 17));
        let total = match le16(boot, 19) {
            0 => u64::from(le32(boot, 32)),
            n => u64::from(n),
        };
        let fat_sectors = match le16(boot, 22) {
            0 => u64::from(le32(boot, 36)),
            n => u64::from(n),
        };
        if fat_sectors == 0 {
            return Err(bad("sectors per FAT"));
        }
        let root_sectors = (u64::from(root_entries) * ENTRY as u64).div_ceil(sector);
        let meta = reserved + fats * fat_sectors + root_sectors;
        let clusters =
            total.checked_sub(meta).ok_or(bad("total sectors"))? / u64::from(per_cluster);
        if clusters == 0 {
            return Err(bad("total sectors"));
        }
        // FAT32 has no 16-bit FAT size (as Linux decides; tools make small FAT32 volumes too);
        // FAT12 and FAT16 are told apart by their cluster count, as the specification says.
        let kind = match (le16(boot, 22), clusters) {
            (0, _) => FatType::Fat32,
            (_, 0..4085) => FatType::Fat12,
            (_, 4085..65525) => FatType::Fat16,
            _ => return Err(bad("total sectors")),
        };
        let clusters = u32::try_from(clusters)
            .ok()
            .filter(|&c| c < 0x0fff_fff5)
            .ok_or(bad("total sectors"))?;
        let entry_bits = match kind {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        if (u64::from(clusters) + 2) * entry_bits > fat_sectors * sector * 8 {
            return Err(bad("sectors per FAT"));
        }
        let volume = total * sector;
        if volume > device {
            return Err(FatError::BeyondDevice { volume, device });
        }
        let mut active = 0;
        let root = if kind == FatType::Fat32 {
            if root_entries != 0 {
                return Err(bad("root directory entries"));
            }
            let flags = le16(boot, 40);
            if flags & 0x80 != 0 {
                active = u64::from(flags & 0x0f);
                if active >= fats {
                    return Err(bad("active FAT"));
                }
            }
            let root = le32(boot, 44);
            if !(2..clusters + 2).contains(&root) {
                return Err(bad("root cluster"));
            }
            DirAt::Chain(root)
        } else {
            if root_entries == 0 {
                return Err(bad("root directory entries"));
            }
            DirAt::Region {
                offset: (reserved + fats * fat_sectors) * sector,
                entries: root_entries,
            }
        };
        Ok(Geometry {
            kind,
            cluster_bytes,
            fat: (reserved + active * fat_sectors) * sector,
            clusters,
            data: meta * sector,
            root,
        })
    }

    /// `cluster_offset(cluster)` is the byte offset of a valid data cluster.
    fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data + u64::from(cluster - 2) * u64::from(self.cluster_bytes)
    }

    /// `valid(cluster)` is true for the clusters of the data area.
    fn valid(&self, cluster: u32) -> bool {
        (2..self.clusters + 2).contains(&cluster)
    }
}

/// What follows a cluster in its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Cluster(u32),
    End,
}

/// The device and its geometry, with a window of the FAT.
#[derive(Debug)]
struct Volume<B> {
    block: B,
    geometry: Geometry,
    /// The FAT bytes last read: their byte offset and contents.
    window: RefCell<(u64, Vec<u8>)>,
    /// Where the last read ended: a file's first cluster, the index of a cluster in its chain
    /// and that cluster, so that reading a file in pieces, in order, follows its chain once.
    cursor: Cell<(u32, u64, u32)>,
}

impl<B: Block> Volume<B> {
    /// `fat_byte(offset)` is the byte at `offset` on the device, read through the window.
    async fn fat_byte(&self, offset: u64) -> Result<u8, BlockError> {
        {
            let window = self.window.borrow();
            if let Some(&b) = offset
                .checked_sub(window.0)
                .and_then(|i| window.1.get(i as usize))
            {
                return Ok(b);
            }
        }
        let size = FAT_WINDOW.max(u64::from(self.block.info().sector_size));
        let start = offset - offset % size;
        let end = (start + size).min(self.block.info().size_bytes());
        let mut bytes = vec![0u8; end.saturating_sub(start) as usize];
        read_bytes(&self.block, start, &mut bytes).await?;
        let b = bytes.get((offset - start) as usize).copied();
        // The window is only replaced between awaits, so another task never sees it borrowed.
        *self.window.borrow_mut() = (start, bytes);
        b.ok_or(BlockError::OutOfRange {
            sector: offset / size,
        })
    }

    /// `next(chain, cluster)` is what follows `cluster` in the chain from `chain`.
    async fn next(&self, chain: u32, cluster: u32) -> Result<Next, FatError> {
        let g = &self.geometry;
        let c = u64::from(cluster);
        let (value, end, bad) = match g.kind {
            FatType::Fat12 => {
                let at = g.fat + c + c / 2;
                let pair =
                    u16::from_le_bytes([self.fat_byte(at).await?, self.fat_byte(at + 1).await?]);
                let v = if cluster & 1 == 0 {
                    pair & 0xfff
                } else {
                    pair >> 4
                };
                (u32::from(v), 0xff8, 0xff7)
            }
            FatType::Fat16 => {
                let at = g.fat + c * 2;
                let v =
                    u16::from_le_bytes([self.fat_byte(at).await?, self.fat_byte(at + 1).await?]);
                (u32::from(v), 0xfff8, 0xfff7)
            }
            FatType::Fat32 => {
                let at = g.fat + c * 4;
                let mut b = [0u8; 4];
                for (i, byte) in b.iter_mut().enumerate() {
                    *byte = self.fat_byte(at + i as u64).await?;
                }
                (
                    u32::from_le_bytes(b) & 0x0fff_ffff,
                    0x0fff_fff8,
                    0x0fff_fff7,
                )
            }
        };
        if value >= end {
            Ok(Next::End)
        } else if value != bad && g.valid(value) {
            Ok(Next::Cluster(value))
        } else {
            Err(FatError::BadCluster {
                chain,
                cluster: value,
            })
        }
    }

    /// `check_chain(first, size)` checks that the chain from `first` has exactly the clusters
    /// a file of `size` bytes needs (none for an empty file).
    async fn check_chain(&self, first: u32, size: u64) -> Result<(), FatError> {
        let g = &self.geometry;
        let needed = size.div_ceil(u64::from(g.cluster_bytes));
        if needed == 0 {
            return Ok(());
        }
        let bad = FatError::ChainLength { chain: first };
        if needed > u64::from(g.clusters) {
            return Err(bad);
        }
        if !g.valid(first) {
            return Err(FatError::BadCluster {
                chain: first,
                cluster: first,
            });
        }
        let mut cluster = first;
        for _ in 1..needed {
            match self.next(first, cluster).await? {
                Next::Cluster(n) => cluster = n,
                Next::End => return Err(bad),
            }
        }
        match self.next(first, cluster).await? {
            Next::End => Ok(()),
            Next::Cluster(_) => Err(bad),
        }
    }

    /// `read_dir(at, seen, limit)` is the entries of the directory at `at`, at most `limit` of
    /// them. `seen` holds every directory cluster read so far: meeting one again (a chain that
    /// loops, a directory that contains an ancestor, two directories sharing clusters) is
    /// [`FatError::DirectoryCycle`], so each cluster of the volume is read at most once.
    async fn read_dir(
        &self,
        at: DirAt,
        seen: &mut BTreeSet<u32>,
        limit: usize,
    ) -> Result<Vec<DirEntry>, FatError> {
        let mut parser = DirParser::default();
        let mut entries = Vec::new();
        match at {
            DirAt::Region { offset, entries: n } => {
                let mut buf = vec![0u8; (n as usize * ENTRY).min(FAT_WINDOW as usize)];
                let total = u64::from(n) * ENTRY as u64;
                let mut done = 0;
                while done < total {
                    let len = (total - done).min(buf.len() as u64) as usize;
                    read_bytes(&self.block, offset + done, &mut buf[..len]).await?;
                    if parser.feed(&buf[..len], &mut entries) {
                        break;
                    }
                    check_count(&entries, limit, 0)?;
                    done += len as u64;
                }
            }
            DirAt::Chain(first) => {
                let g = &self.geometry;
                let mut buf = vec![0u8; g.cluster_bytes as usize];
                let mut cluster = first;
                loop {
                    if !seen.insert(cluster) {
                        return Err(FatError::DirectoryCycle { cluster });
                    }
                    read_bytes(&self.block, g.cluster_offset(cluster), &mut buf).await?;
                    if parser.feed(&buf, &mut entries) {
                        break;
                    }
                    check_count(&entries, limit, first)?;
                    match self.next(first, cluster).await? {
                        Next::Cluster(n) => cluster = n,
                        Next::End => break,
                    }
                }
            }
        }
        Ok(entries)
    }
}

/// `check_count(entries, limit)` refuses a directory of more than `limit` entries while it is
/// read, before its entries take more memory.
fn check_count(entries: &[DirEntry], limit: usize, dir: u32) -> Result<(), FatError> {
    if entries.len() > limit {
        return Err(FatError::Entry {
            dir,
            error: IndexError::TooManyEntries { limit },
        });
    }
    Ok(())
}

/// One entry of a directory, as found on disk.
#[derive(Debug)]
struct DirEntry {
    name: String,
    dir: bool,
    cluster: u32,
    size: u64,
    mtime: i64,
}

/// `DirParser` turns a directory's 32-byte entries into [`DirEntry`]s, assembling long names.
#[derive(Debug)]
struct DirParser {
    /// The long name so far: 13 UTF-16 units per entry, up to 20 entries.
    lfn: [u16; 260],
    /// The ordinal of the long-name entry expected next (counting down to 1); 0 for none.
    expect: u8,
    /// The checksum every entry of the long name carries.
    checksum: u8,
    /// Whether the long name is complete (its entry 1 was read).
    complete: bool,
}

impl Default for DirParser {
    fn default() -> Self {
        DirParser {
            lfn: [0; 260],
            expect: 0,
            checksum: 0,
            complete: false,
        }
    }
}

/// The byte positions of the 13 UTF-16 units in a long-name entry.
const LFN_UNITS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

impl DirParser {
    /// `feed(bytes, out)` parses whole entries of `bytes` into `out`; it returns true at the
    /// end-of-directory mark.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<DirEntry>) -> bool {
        for raw in bytes.chunks_exact(ENTRY) {
            match raw[0] {
                0x00 => return true,
                0xe5 => self.reset(),
                _ if raw[11] & 0x3f == 0x0f => self.long_name(raw),
                _ if raw[11] & 0x08 != 0 => self.reset(), // The volume label.
                _ => {
                    if let Some(e) = self.short_entry(raw) {
                        out.push(e);
                    }
                    self.reset();
                }
            }
        }
        false
    }

    fn reset(&mut self) {
        self.expect = 0;
        self.complete = false;
    }

    fn long_name(&mut self, raw: &[u8]) {
        let ord = raw[0] & 0x3f;
        if raw[0] & 0x40 != 0 {
            if !(1..=20).contains(&ord) {
                return self.reset();
            }
            self.lfn = [0xffff; 260];
            self.checksum = raw[13];
        } else if ord == 0 || ord != self.expect || raw[13] != self.checksum || self.complete {
            return self.reset();
        }
        let base = (usize::from(ord) - 1) * 13;
        for (i, &at) in LFN_UNITS.iter().enumerate() {
            self.lfn[base + i] = le16(raw, at);
        }
        self.expect = ord - 1;
        self.complete = ord == 1;
    }

    fn short_entry(&self, raw: &[u8]) -> Option<DirEntry> {
        let short = &raw[..11];
        if short == b".          " || short == b"..         " {
            return None;
        }
        let name = self
            .long_name_for(short)
            .unwrap_or_else(|| short_name(short, raw[12]));
        Some(DirEntry {
            name,
            dir: raw[11] & 0x10 != 0,
            cluster: (u32::from(le16(raw, 20)) << 16) | u32::from(le16(raw, 26)),
            size: u64::from(le32(raw, 28)),
            mtime: fat_time(le16(raw, 24), le16(raw, 22)),
        })
    }

    /// `long_name_for(short)` is the long name just read, if it is complete, belongs to the
    /// short name `short` (its checksum) and is valid UTF-16.
    fn long_name_for(&self, short: &[u8]) -> Option<String> {
        let sum = short
            .iter()
            .fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b));
        if !self.complete || sum != self.checksum {
            return None;
        }
        let len = self
            .lfn
            .iter()
            .position(|&u| u == 0 || u == 0xffff)
            .unwrap_or(self.lfn.len());
        let name: String = char::decode_utf16(self.lfn[..len].iter().copied())
            .collect::<Result<_, _>>()
            .ok()?;
        (!name.is_empty()).then_some(name)
    }
}

/// `short_name(raw, case)` is the 8.3 name `raw`, lower-cased as the case flags `case` say.
fn short_name(raw: &[u8], case: u8) -> String {
    let part = |bytes: &[u8], lower: bool| -> String {
        let trimmed = &bytes[..bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1)];
        trimmed
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let b = if i == 0 && b == 0x05 { 0xe5 } else { b };
                let c = char::from(b);
                if lower {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect()
    };
    let mut name = part(&raw[..8], case & 0x08 != 0);
    let ext = part(&raw[8..11], case & 0x10 != 0);
    if !ext.is_empty() {
        name.push('.');
        name.push_str(&ext);
    }
    name
}

/// `fat_time(date, time)` is a FAT date and time, taken as UTC, in seconds since the epoch.
/// Impossible months and days are clamped, so that any bytes give a time.
fn fat_time(date: u16, time: u16) -> i64 {
    let month = ((date >> 5) & 0x0f).clamp(1, 12) as u8;
    let day = (date & 0x1f).max(1) as u8;
    let (hour, minute, second) = (
        (time >> 11) as u8,
        ((time >> 5) & 0x3f) as u8,
        (time & 0x1f) as u8 * 2,
    );
    Timestamp::from_utc(
        1980 + i64::from(date >> 9),
        month,
        day,
        hour,
        minute,
        second,
    )
    .secs
}

/// `Fat<B>` serves the files of a FAT filesystem on the block device `B`. Clones share the
/// index and the FAT window.
#[derive(Clone, Debug)]
pub struct Fat<B: Block> {
    volume: Rc<Volume<B>>,
    /// Files are located by their first cluster.
    index: Rc<Index<u32>>,
}

impl<B: Block> Fat<B> {
    /// `connect(block)` reads the filesystem on `block`, refusing malformed or hostile ones.
    pub async fn connect(block: B) -> Result<Fat<B>, FatError> {
        Self::connect_with(block, Limits::DEFAULT).await
    }

    /// `connect_with(block, limits)` is [`connect`](Self::connect) with other [`Limits`].
    pub async fn connect_with(block: B, limits: Limits) -> Result<Fat<B>, FatError> {
        let mut boot = [0u8; 512];
        read_bytes(&block, 0, &mut boot).await?;
        let geometry = Geometry::parse(&boot, block.info().size_bytes())?;
        let volume = Volume {
            block,
            geometry,
            window: RefCell::new((0, Vec::new())),
            cursor: Cell::new((0, 0, 0)),
        };
        let mut index = Index::new(limits);
        let mut seen = BTreeSet::new();
        // Directories still to read: where, their node, their depth and key length.
        let mut todo = vec![(geometry.root, Index::<u32>::ROOT, 0usize, 0usize)];
        while let Some((at, node, depth, key_len)) = todo.pop() {
            let dir = match at {
                DirAt::Chain(c) if node != Index::<u32>::ROOT => c,
                _ => 0,
            };
            let refuse = |error| FatError::Entry { dir, error };
            for e in volume.read_dir(at, &mut seen, limits.entries).await? {
                let key_len = key_len + usize::from(key_len > 0) + e.name.len();
                if key_len > limits.key_bytes {
                    return Err(refuse(IndexError::NameTooLong {
                        limit: limits.key_bytes,
                    }));
                }
                if depth + 1 > limits.depth {
                    return Err(refuse(IndexError::TooDeep {
                        limit: limits.depth,
                    }));
                }
                if e.dir {
                    if !geometry.valid(e.cluster) {
                        return Err(FatError::BadCluster {
                            chain: e.cluster,
                            cluster: e.cluster,
                        });
                    }
                    let id: NodeId = index.add_dir(node, &e.name, e.mtime).map_err(refuse)?;
                    todo.push((DirAt::Chain(e.cluster), id, depth + 1, key_len));
                } else {
                    volume.check_chain(e.cluster, e.size).await?;
                    let file = Node::File(File::new(e.cluster, e.size, e.mtime));
                    index.add(node, &e.name, file).map_err(refuse)?;
                }
            }
        }
        Ok(Fat {
            volume: Rc::new(volume),
            index: Rc::new(index),
        })
    }

    /// `fat_type()` is the volume's FAT type.
    pub fn fat_type(&self) -> FatType {
        self.volume.geometry.kind
    }
}

impl<B: Block> Contents for Fat<B> {
    type At = u32;

    async fn read(&self, file: &File<u32>, offset: u64, buf: &mut [u8]) -> Result<(), KvError> {
        if buf.is_empty() {
            // Nothing to follow: `offset` may be the end of a chain.
            return Ok(());
        }
        let v = &*self.volume;
        let g = &v.geometry;
        let size = u64::from(g.cluster_bytes);
        // Chains were checked at connect time; a change since is corruption.
        let next = |cluster| async move {
            match v.next(file.at, cluster).await {
                Ok(Next::Cluster(n)) => Ok(n),
                Ok(Next::End) | Err(FatError::BadCluster { .. }) => Err(KvError::Corrupt),
                Err(FatError::Block(e)) => Err(KvError::Block(e)),
                Err(_) => Err(KvError::Corrupt),
            }
        };
        // Start from where the last read of this file ended, if that is not past `offset`.
        let target = offset / size;
        let (mut index, mut cluster) = match v.cursor.get() {
            (first, i, c) if first == file.at && i <= target => (i, c),
            _ => (0, file.at),
        };
        while index < target {
            cluster = next(cluster).await?;
            index += 1;
        }
        let mut within = offset % size;
        let mut rest = buf;
        loop {
            // One device read for the run of consecutive clusters starting here.
            let (mut last, mut last_index) = (cluster, index);
            let mut run = size - within;
            while run < rest.len() as u64 {
                match next(last).await? {
                    n if n == last + 1 => {
                        last = n;
                        last_index += 1;
                        run += size;
                    }
                    _ => break,
                }
            }
            let n = run.min(rest.len() as u64) as usize;
            let (head, tail) = rest.split_at_mut(n);
            read_bytes(&v.block, g.cluster_offset(cluster) + within, head).await?;
            rest = tail;
            v.cursor.set((file.at, last_index, last));
            if rest.is_empty() {
                break;
            }
            within = 0;
            cluster = next(last).await?;
            index = last_index + 1;
        }
        Ok(())
    }
}

index::kv_ro_over_index!(Fat);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Ramdisk;
    use crate::kv::index::tests::mutations;
    use crate::kv_ro::{Kind, KvRo};
    use crate::testing::block_on;
    use alloc::string::ToString;
    use sha2::{Digest, Sha256};

    /// The corpus's FAT12 and FAT16 images of its good tree, made by mkfs.fat and mcopy
    /// (`tests/storage/make-corpus`).
    static FAT12: &[u8] = include_bytes!("../../../tests/storage/good/fat12.img");
    static FAT16: &[u8] = include_bytes!("../../../tests/storage/good/fat16.img");
    static EXPECTED: &str = include_str!("../../../tests/storage/good/expected.tsv");

    fn connect(image: &[u8]) -> Result<Fat<Ramdisk>, FatError> {
        block_on(Fat::connect(Ramdisk::with_contents("fat", image)))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
    }

    #[test]
    fn reads_every_file_that_mtools_wrote() {
        for (image, kind) in [(FAT12, FatType::Fat12), (FAT16, FatType::Fat16)] {
            let fat = connect(image).unwrap();
            assert_eq!(fat.fat_type(), kind);
            for line in EXPECTED.lines().filter(|l| !l.starts_with('#')) {
                let [key, size, sha]: [&str; 3] =
                    line.split('\t').collect::<Vec<_>>().try_into().unwrap();
                let data = block_on(fat.get(key)).unwrap();
                assert_eq!(data.len().to_string(), size, "{key}");
                assert_eq!(hex(&Sha256::digest(&data)), sha, "{key}");
                assert_eq!(hex(&block_on(fat.digest(key)).unwrap()), sha, "{key}");
                assert_eq!(block_on(fat.size(key)).unwrap().to_string(), size);
                assert_eq!(
                    block_on(fat.last_modified(key)).unwrap().secs,
                    1_700_000_000,
                    "{key}: mcopy -m kept the time (to FAT's 2 s)"
                );
            }
            let root = block_on(fat.list("")).unwrap();
            let names: Vec<&str> = root.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names,
                [
                    "A long file name with spaces.txt",
                    "caf\u{e9} \u{fc}n\u{ef}c\u{f6}de.txt",
                    "empty",
                    "hello.txt",
                    "multi",
                    "sub"
                ]
            );
            assert_eq!(
                block_on(fat.exists("sub/deeper")),
                Ok(Some(Kind::Dictionary))
            );
            assert_eq!(block_on(fat.exists("sub/nothing")), Ok(None));
            assert_eq!(block_on(fat.get("sub")), Err(KvError::IsDictionary));
            assert_eq!(block_on(fat.list("hello.txt")), Err(KvError::NotDictionary));
            let big = block_on(fat.get("multi/cluster.bin")).unwrap();
            assert_eq!(
                block_on(fat.get_partial("multi/cluster.bin", 1000, 3000)).unwrap(),
                &big[1000..4000]
            );
            assert!(block_on(fat.get_partial("multi/cluster.bin", 1 << 20, 10))
                .unwrap()
                .is_empty());
        }
    }

    /// Pieces read in any order give the file's bytes (the cursor only ever moves forward).
    #[test]
    fn pieces_in_any_order() {
        let fat = connect(FAT12).unwrap();
        let key = "multi/cluster.bin";
        let whole = block_on(fat.get(key)).unwrap();
        let mut offsets: Vec<u64> = (0..whole.len() as u64).step_by(777).collect();
        offsets.extend(offsets.clone().into_iter().rev());
        offsets.extend([69_999, 0, 512, 511, 70_000, 1024]);
        for at in offsets {
            let got = block_on(fat.get_partial(key, at, 1000)).unwrap();
            let end = (at as usize + 1000).min(whole.len());
            assert_eq!(got, &whole[at as usize..end], "at {at}");
        }
    }

    #[test]
    fn reads_through_devices_of_other_sector_sizes() {
        /// A device of 4096-byte sectors over a ramdisk of 512-byte ones.
        #[derive(Clone)]
        struct Big(Ramdisk);
        impl Block for Big {
            fn info(&self) -> crate::BlockInfo {
                let i = self.0.info();
                crate::BlockInfo {
                    sector_size: 4096,
                    sectors: i.sectors / 8,
                    read_write: false,
                }
            }
            async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
                self.info().check(sector, buf.len())?;
                self.0.read(sector * 8, buf).await
            }
            async fn write(&self, _: u64, _: &[u8]) -> Result<(), BlockError> {
                Err(BlockError::ReadOnly)
            }
        }
        let fat = block_on(Fat::connect(Big(Ramdisk::with_contents("fat", FAT12)))).unwrap();
        assert_eq!(block_on(fat.get("hello.txt")).unwrap(), b"hello, FAT\n");
    }

    #[test]
    fn refuses_what_is_not_a_fat_volume() {
        assert_eq!(
            connect(&[0u8; 4096]).unwrap_err(),
            FatError::BadBootSector { field: "signature" }
        );
        assert!(matches!(connect(&[]), Err(FatError::Block(_))));
        let mut small = FAT12.to_vec();
        small.truncate(4096);
        assert!(matches!(
            connect(&small),
            Err(FatError::BeyondDevice { device: 4096, .. })
        ));
    }

    /// Damaged filesystems never panic: every key of whatever connects is listed and read.
    #[test]
    fn random_damage_is_an_error_or_a_read_never_a_panic() {
        mutations(FAT12, 0x4000, 600, |m| {
            let Ok(fat) = connect(m) else { return };
            let mut todo = alloc::vec![String::new()];
            while let Some(dir) = todo.pop() {
                let Ok(entries) = block_on(fat.list(&dir)) else {
                    continue;
                };
                for (name, kind) in entries {
                    let key = if dir.is_empty() {
                        name
                    } else {
                        alloc::format!("{dir}/{name}")
                    };
                    match kind {
                        Kind::Dictionary => todo.push(key),
                        Kind::Value => {
                            let _ = block_on(fat.get(&key));
                            let _ = block_on(fat.get_partial(&key, 700, 5000));
                            let _ = block_on(fat.digest(&key));
                        }
                    }
                }
            }
        });
    }

    /// A long-name entry of ordinal 0 (no such part) is ignored, not indexed at part -1.
    #[test]
    fn long_name_parts_out_of_range_are_ignored() {
        let mut parser = DirParser::default();
        let mut entries = Vec::new();
        for first in [0x80u8, 0x40, 0x55, 0x41] {
            let mut raw = [0u8; ENTRY];
            raw[0] = first;
            raw[11] = 0x0f;
            assert!(!parser.feed(&raw, &mut entries));
        }
        let mut short = [0u8; ENTRY];
        short[..11].copy_from_slice(b"A       TXT");
        short[11] = 0x20;
        parser.feed(&short, &mut entries);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].name, "A.TXT",
            "the partial long name is not used"
        );
    }

    #[test]
    fn short_names_and_times() {
        assert_eq!(short_name(b"HELLO   TXT", 0x18), "hello.txt");
        assert_eq!(short_name(b"HELLO   TXT", 0x08), "hello.TXT");
        assert_eq!(short_name(b"NOEXT      ", 0), "NOEXT");
        assert_eq!(short_name(b"\x05\xe9T     TXT", 0), "\u{e5}\u{e9}T.TXT");
        // 2023-11-14 22:13:20: date (43 << 9 | 11 << 5 | 14), time (22 << 11 | 13 << 5 | 10).
        assert_eq!(
            fat_time(43 << 9 | 11 << 5 | 14, 22 << 11 | 13 << 5 | 10),
            1_700_000_000
        );
        assert_eq!(
            fat_time(0, 0),
            315_532_800,
            "1980-01-01, month and day clamped"
        );
        assert!(fat_time(u16::MAX, u16::MAX) > 0);
    }
}
