//! A folder as a FAT filesystem image (Mirage's `make-fat-images`, without its tools).
//!
//! The image is the smallest FAT12 or FAT16 volume that holds the files (FAT32 past 2 GiB):
//! 512-byte sectors, two FATs, clusters from 512 bytes up to 32 KiB, chosen so that the
//! cluster count gives the FAT type by the specification's rule, as mtools and Linux read it.
//! Every file and directory is one run of consecutive clusters, allocated in sorted order;
//! every entry carries a long name (VFAT) unless its name is already an upper-case 8.3 name;
//! every time is 1980-01-01 00:00, the FAT epoch; the volume id is a constant and there is no
//! label. The same folder gives the same bytes.

use super::{DiskError, Tree};

/// The sector size of every image.
const SECTOR: usize = 512;
/// The size of a directory entry.
const ENTRY: usize = 32;
/// The volume id of every image ("MIRA").
const VOLUME_ID: u32 = 0x4152_494d;
/// FAT's epoch, 1980-01-01, as a FAT date; times are 00:00.
const DATE: u16 = (1 << 5) | 1;

/// The FAT type, from the cluster count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fat12,
    Fat16,
    Fat32,
}

/// A directory entry to write: the long-name records (if any) and the short entry.
struct Named {
    short: [u8; 11],
    long: Option<Vec<u16>>,
}

impl Named {
    fn records(&self) -> usize {
        1 + self.long.as_ref().map_or(0, |l| l.len().div_ceil(13))
    }
}

/// One directory of the tree being laid out.
struct Dir {
    /// Entries in order: name, short and long names, and what it is.
    entries: Vec<(Named, Item)>,
    /// Its first cluster (0 for a FAT12/16 root, which lives in its fixed region).
    cluster: u32,
    /// Its size in records, `.` and `..` included.
    records: usize,
}

enum Item {
    File { data: Vec<u8>, cluster: u32 },
    Dir(Box<Dir>),
}

/// `image(tree)` is the FAT image holding `tree`.
pub fn image(tree: &Tree) -> Result<Vec<u8>, DiskError> {
    let mut root = layout(tree, true)?;
    // The smallest cluster size whose count fits FAT12 or FAT16, else FAT32 in 4 KiB clusters.
    let (kind, cluster, clusters) = (0..=6)
        .map(|k| SECTOR << k)
        .find_map(|size| {
            let n = clusters_needed(&root, size, false).max(1);
            match n {
                0..4085 => Some((Kind::Fat12, size, n)),
                4085..65525 => Some((Kind::Fat16, size, n)),
                _ => None,
            }
        })
        .unwrap_or_else(|| {
            let n = clusters_needed(&root, 4096, true).max(65525);
            (Kind::Fat32, 4096, n)
        });
    let per_cluster = cluster / SECTOR;
    let (reserved, root_entries) = match kind {
        Kind::Fat32 => (32, 0),
        _ => (1, root.records.max(1).next_multiple_of(SECTOR / ENTRY)),
    };
    let bits = match kind {
        Kind::Fat12 => 12,
        Kind::Fat16 => 16,
        Kind::Fat32 => 32,
    };
    let fat_sectors = ((clusters + 2) * bits).div_ceil(8 * SECTOR);
    let root_sectors = root_entries * ENTRY / SECTOR;
    let data = reserved + 2 * fat_sectors + root_sectors;
    let total = data + clusters * per_cluster;
    let mut img = vec![0u8; total * SECTOR];

    let mut next = 2u32;
    allocate(&mut root, cluster, kind == Kind::Fat32, &mut next);
    let mut fat = vec![0u32; clusters + 2];
    fat[0] = 0x0fff_ff00 | 0xf8;
    fat[1] = 0x0fff_ffff;
    let geometry = Geometry {
        cluster,
        data: data * SECTOR,
        root: (reserved + 2 * fat_sectors) * SECTOR,
    };
    write_dir(&root, None, &geometry, &mut img, &mut fat);

    boot_sector(
        &mut img[..SECTOR],
        kind,
        BootFields {
            per_cluster,
            reserved,
            root_entries,
            total,
            fat_sectors,
            root_cluster: root.cluster,
        },
    );
    if kind == Kind::Fat32 {
        fs_info(&mut img[SECTOR..2 * SECTOR]);
        let (head, tail) = img.split_at_mut(6 * SECTOR);
        tail[..2 * SECTOR].copy_from_slice(&head[..2 * SECTOR]);
    }
    for copy in 0..2 {
        let at = (reserved + copy * fat_sectors) * SECTOR;
        write_fat(&mut img[at..at + fat_sectors * SECTOR], kind, &fat);
    }
    Ok(img)
}

/// `layout(tree, is_root)` names the entries of `tree` (short and long names).
fn layout(tree: &Tree, is_root: bool) -> Result<Dir, DiskError> {
    let mut used = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for (name, child) in &tree.entries {
        let named = names(name, &mut used)?;
        let item = match child {
            super::Node::File(data) => Item::File {
                data: data.clone(),
                cluster: 0,
            },
            super::Node::Dir(sub) => Item::Dir(Box::new(layout(sub, false)?)),
        };
        entries.push((named, item));
    }
    let records =
        entries.iter().map(|(n, _)| n.records()).sum::<usize>() + if is_root { 0 } else { 2 };
    Ok(Dir {
        entries,
        cluster: 0,
        records,
    })
}

/// `clusters_needed(dir, size, root_in_clusters)` counts the clusters of `dir` and below, in
/// clusters of `size` bytes (the root's only on FAT32).
fn clusters_needed(dir: &Dir, size: usize, root_in_clusters: bool) -> usize {
    let own = if root_in_clusters {
        (dir.records.max(1) * ENTRY).div_ceil(size)
    } else {
        0
    };
    own + dir
        .entries
        .iter()
        .map(|(_, item)| match item {
            Item::File { data, .. } => data.len().div_ceil(size),
            Item::Dir(d) => clusters_needed(d, size, true),
        })
        .sum::<usize>()
}

/// `allocate(dir, size, in_clusters, next)` gives `dir` (if `in_clusters`) and everything
/// below it consecutive clusters from `next`, in order.
fn allocate(dir: &mut Dir, size: usize, in_clusters: bool, next: &mut u32) {
    if in_clusters {
        dir.cluster = *next;
        *next += (dir.records.max(1) * ENTRY).div_ceil(size) as u32;
    }
    for (_, item) in &mut dir.entries {
        match item {
            Item::File { data, cluster } if !data.is_empty() => {
                *cluster = *next;
                *next += data.len().div_ceil(size) as u32;
            }
            Item::File { .. } => {}
            Item::Dir(d) => allocate(d, size, true, next),
        }
    }
}

/// Where the regions of the image are, in bytes.
struct Geometry {
    cluster: usize,
    data: usize,
    root: usize,
}

impl Geometry {
    fn cluster_at(&self, cluster: u32) -> usize {
        self.data + (cluster as usize - 2) * self.cluster
    }
}

/// `chain(fat, first, bytes, size)` links the clusters of a run of `bytes` bytes.
fn chain(fat: &mut [u32], first: u32, bytes: usize, size: usize) {
    let n = bytes.div_ceil(size).max(1) as u32;
    for c in first..first + n - 1 {
        fat[c as usize] = c + 1;
    }
    fat[(first + n - 1) as usize] = 0x0fff_ffff;
}

/// `write_dir(dir, parent, g, img, fat)` writes `dir`'s entries, its files and its
/// subdirectories into `img`, and their chains into `fat`. `parent` is the first cluster of
/// the parent directory (0 for the root, as `..` says it), `None` for the root itself.
fn write_dir(dir: &Dir, parent: Option<u32>, g: &Geometry, img: &mut [u8], fat: &mut [u32]) {
    let mut records: Vec<[u8; ENTRY]> = Vec::with_capacity(dir.records);
    if let Some(up) = parent {
        records.push(short_entry(b".          ", true, dir.cluster, 0));
        records.push(short_entry(b"..         ", true, up, 0));
    }
    let here = if parent.is_none() { 0 } else { dir.cluster };
    for (named, item) in &dir.entries {
        if let Some(long) = &named.long {
            records.extend(long_entries(long, &named.short));
        }
        match item {
            Item::File { data, cluster } => {
                records.push(short_entry(
                    &named.short,
                    false,
                    *cluster,
                    data.len() as u32,
                ));
                if !data.is_empty() {
                    let at = g.cluster_at(*cluster);
                    img[at..at + data.len()].copy_from_slice(data);
                    chain(fat, *cluster, data.len(), g.cluster);
                }
            }
            Item::Dir(sub) => {
                records.push(short_entry(&named.short, true, sub.cluster, 0));
                write_dir(sub, Some(here), g, img, fat);
            }
        }
    }
    let at = if dir.cluster == 0 {
        g.root
    } else {
        chain(fat, dir.cluster, records.len() * ENTRY, g.cluster);
        g.cluster_at(dir.cluster)
    };
    for (i, r) in records.iter().enumerate() {
        img[at + i * ENTRY..at + (i + 1) * ENTRY].copy_from_slice(r);
    }
}

/// `short_entry(name, dir, cluster, size)` is a short directory entry.
fn short_entry(name: &[u8; 11], dir: bool, cluster: u32, size: u32) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..11].copy_from_slice(name);
    e[11] = if dir { 0x10 } else { 0x20 };
    e[16..18].copy_from_slice(&DATE.to_le_bytes()); // created
    e[18..20].copy_from_slice(&DATE.to_le_bytes()); // accessed
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[24..26].copy_from_slice(&DATE.to_le_bytes()); // modified; the times stay 00:00
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

/// The byte positions of the 13 UTF-16 units in a long-name entry.
const LFN_UNITS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// `long_entries(name, short)` are the long-name entries of `name`, last part first, as they
/// precede the short entry on disk.
fn long_entries(name: &[u16], short: &[u8; 11]) -> Vec<[u8; ENTRY]> {
    let sum = short
        .iter()
        .fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b));
    let parts = name.len().div_ceil(13);
    let mut units = name.to_vec();
    if units.len() % 13 != 0 {
        units.push(0);
        units.resize(parts * 13, 0xffff);
    }
    (1..=parts)
        .rev()
        .map(|ord| {
            let mut e = [0u8; ENTRY];
            e[0] = ord as u8 | if ord == parts { 0x40 } else { 0 };
            e[11] = 0x0f;
            e[13] = sum;
            for (i, &at) in LFN_UNITS.iter().enumerate() {
                e[at..at + 2].copy_from_slice(&units[(ord - 1) * 13 + i].to_le_bytes());
            }
            e
        })
        .collect()
}

/// The characters an 8.3 name may hold besides letters and digits.
const SHORT_EXTRA: &[u8] = b"$%'-_@~`!(){}^#&";

/// `names(name, used)` is the short name (unique in its directory: `used`) and, unless `name`
/// is a short name already, the long name of the entry `name`.
fn names(name: &str, used: &mut std::collections::BTreeSet<[u8; 11]>) -> Result<Named, DiskError> {
    let bad = |reason: &str| DiskError::Name {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.chars().any(|c| c < ' ' || "\"*/:<>?\\|".contains(c)) {
        return Err(bad(
            "FAT names cannot hold control characters or any of \" * / : < > ? \\ |",
        ));
    }
    if name.ends_with(['.', ' ']) {
        return Err(bad("FAT names cannot end with a dot or a space"));
    }
    let long: Vec<u16> = name.encode_utf16().collect();
    if long.len() > 255 {
        return Err(bad("FAT names are at most 255 UTF-16 units"));
    }
    let short_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || SHORT_EXTRA.contains(&b))
    };
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    if short_ok(base, 8) && (ext.is_empty() || short_ok(ext, 3)) {
        let short = pad(base, ext);
        if used.insert(short) {
            return Ok(Named { short, long: None });
        }
    }
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .filter(|c| *c != ' ' && *c != '.')
            .map(|c| {
                let u = c.to_ascii_uppercase();
                if u.is_ascii() && (u.is_ascii_alphanumeric() || SHORT_EXTRA.contains(&(u as u8))) {
                    u
                } else {
                    '_'
                }
            })
            .take(max)
            .collect()
    };
    let (base, ext) = if name.starts_with('.') && !name[1..].contains('.') {
        (clean(name, 8), String::new())
    } else {
        (clean(base, 8), clean(ext, 3))
    };
    let base = if base.is_empty() {
        "_".to_string()
    } else {
        base
    };
    for n in 1u32.. {
        let tail = format!("~{n}");
        let keep = 8usize.saturating_sub(tail.len()).min(base.len());
        let short = pad(&format!("{}{tail}", &base[..keep]), &ext);
        if used.insert(short) {
            return Ok(Named {
                short,
                long: Some(long),
            });
        }
    }
    unreachable!("a directory has fewer than 2^32 entries")
}

/// `pad(base, ext)` is an 8.3 name's 11 bytes.
fn pad(base: &str, ext: &str) -> [u8; 11] {
    let mut s = [b' '; 11];
    s[..base.len()].copy_from_slice(base.as_bytes());
    s[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    s
}

/// The boot sector's variable fields.
struct BootFields {
    per_cluster: usize,
    reserved: usize,
    root_entries: usize,
    total: usize,
    fat_sectors: usize,
    root_cluster: u32,
}

/// `boot_sector(b, kind, f)` writes the boot sector.
fn boot_sector(b: &mut [u8], kind: Kind, f: BootFields) {
    let jump = if kind == Kind::Fat32 { 0x58 } else { 0x3c };
    b[..3].copy_from_slice(&[0xeb, jump, 0x90]);
    b[3..11].copy_from_slice(b"MIRAGENX");
    b[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    b[13] = f.per_cluster as u8;
    b[14..16].copy_from_slice(&(f.reserved as u16).to_le_bytes());
    b[16] = 2;
    b[17..19].copy_from_slice(&(f.root_entries as u16).to_le_bytes());
    if f.total < 0x10000 {
        b[19..21].copy_from_slice(&(f.total as u16).to_le_bytes());
    } else {
        b[32..36].copy_from_slice(&(f.total as u32).to_le_bytes());
    }
    b[21] = 0xf8;
    b[24..26].copy_from_slice(&32u16.to_le_bytes()); // sectors per track
    b[26..28].copy_from_slice(&64u16.to_le_bytes()); // heads
    let ext = if kind == Kind::Fat32 {
        b[36..40].copy_from_slice(&(f.fat_sectors as u32).to_le_bytes());
        b[44..48].copy_from_slice(&f.root_cluster.to_le_bytes());
        b[48..50].copy_from_slice(&1u16.to_le_bytes()); // FSInfo sector
        b[50..52].copy_from_slice(&6u16.to_le_bytes()); // backup boot sector
        64
    } else {
        b[22..24].copy_from_slice(&(f.fat_sectors as u16).to_le_bytes());
        36
    };
    b[ext] = 0x80;
    b[ext + 2] = 0x29;
    b[ext + 3..ext + 7].copy_from_slice(&VOLUME_ID.to_le_bytes());
    b[ext + 7..ext + 18].copy_from_slice(b"NO NAME    ");
    b[ext + 18..ext + 26].copy_from_slice(match kind {
        Kind::Fat12 => b"FAT12   ",
        Kind::Fat16 => b"FAT16   ",
        Kind::Fat32 => b"FAT32   ",
    });
    b[510..512].copy_from_slice(&[0x55, 0xaa]);
}

/// `fs_info(b)` writes FAT32's FSInfo sector: free count and next free unknown.
fn fs_info(b: &mut [u8]) {
    b[..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    b[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    b[488..492].copy_from_slice(&u32::MAX.to_le_bytes());
    b[492..496].copy_from_slice(&u32::MAX.to_le_bytes());
    b[508..512].copy_from_slice(&0xaa55_0000u32.to_le_bytes());
}

/// `write_fat(out, kind, fat)` encodes the table `fat` (28-bit values) for `kind`.
fn write_fat(out: &mut [u8], kind: Kind, fat: &[u32]) {
    for (c, &v) in fat.iter().enumerate() {
        match kind {
            Kind::Fat12 => {
                let v = (v & 0xfff) as u16;
                let at = c + c / 2;
                let old = u16::from_le_bytes([out[at], out[at + 1]]);
                let new = if c & 1 == 0 {
                    (old & 0xf000) | v
                } else {
                    (old & 0x000f) | (v << 4)
                };
                out[at..at + 2].copy_from_slice(&new.to_le_bytes());
            }
            Kind::Fat16 => {
                out[c * 2..c * 2 + 2].copy_from_slice(&((v & 0xffff) as u16).to_le_bytes())
            }
            Kind::Fat32 => out[c * 4..c * 4 + 4].copy_from_slice(&v.to_le_bytes()),
        }
    }
}
