//! The disks a plan's read-only stores need, made from their folders at build time (Mirage's
//! `make-fat-images`): a tar archive for `tar_archive("DIR")`, a FAT filesystem for
//! `fat_image("DIR")`, each from the same files crunch would embed.
//!
//! Images are deterministic: entries sorted by name, fixed times, owners, modes, volume id and
//! label, so the same folder gives the same bytes on every machine. A plan lists its disks in
//! its nodes' `disk` field; [`disks`] makes them all.

mod fat;
mod tar;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plan::{DiskFormat, Plan};

/// Why a disk could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The folder could not be read.
    #[error("cannot make a disk of `{dir}`: {reason}")]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file or folder cannot be stored in the disk's format.
    #[error("cannot store `{name}` in a disk image: {reason}")]
    Name {
        /// The file's path in the folder.
        name: String,
        /// Why not.
        reason: String,
    },
}

/// A folder's contents: entries by name (sorted), files with their bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Node>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Dir(Tree),
}

impl Tree {
    /// `read(dir)` is the files of `dir`, as crunch embeds them: regular files only (a
    /// symbolic link is an error), directories implied by their files.
    pub fn read(dir: &Path) -> Result<Tree, DiskError> {
        let mut budget = super::MAX_EMBEDDED_BYTES;
        let files = super::embedded_files(dir, &mut budget).map_err(|e| DiskError::Folder {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut tree = Tree::default();
        for (key, path) in files {
            let data = super::read_embedded(&path, super::MAX_EMBEDDED_BYTES).map_err(|e| {
                DiskError::Folder {
                    dir: dir.to_path_buf(),
                    reason: format!("cannot read {}: {e}", path.display()),
                }
            })?;
            tree.insert(&key, data);
        }
        Ok(tree)
    }

    /// `insert(key, data)` adds the file `key` (`/`-separated) and its directories.
    pub fn insert(&mut self, key: &str, data: Vec<u8>) {
        match key.split_once('/') {
            None => {
                self.entries.insert(key.to_string(), Node::File(data));
            }
            Some((dir, rest)) => {
                let node = self
                    .entries
                    .entry(dir.to_string())
                    .or_insert_with(|| Node::Dir(Tree::default()));
                if let Node::Dir(sub) = node {
                    sub.insert(rest, data);
                }
            }
        }
    }

    /// `largest()` is the path and size of the largest file, if any.
    fn largest(&self) -> Option<(String, u64)> {
        self.entries
            .iter()
            .filter_map(|(name, node)| match node {
                Node::File(data) => Some((name.clone(), data.len() as u64)),
                Node::Dir(sub) => sub.largest().map(|(n, s)| (format!("{name}/{n}"), s)),
            })
            .max_by_key(|(_, size)| *size)
    }
}

/// `image(tree, format)` is the disk image of `tree` in `format`.
pub fn image(tree: &Tree, format: DiskFormat) -> Result<Vec<u8>, DiskError> {
    match format {
        DiskFormat::Tar => tar::archive(tree),
        DiskFormat::Fat => fat::image(tree),
    }
}

/// `disks(plan, unikernel)` is every disk `plan` needs, as `(file name, bytes)`, made from the
/// folders of the unikernel in `unikernel`.
pub fn disks(plan: &Plan, unikernel: &Path) -> Result<Vec<(String, Vec<u8>)>, DiskError> {
    plan.nodes
        .iter()
        .filter_map(|n| n.disk.as_ref())
        .map(|d| {
            let tree = Tree::read(&unikernel.join(&d.dir))?;
            Ok((d.file.clone(), image(&tree, d.format)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_devices::block::Ramdisk;
    use mirage_devices::kv::{Fat, FatType, Tar};
    use mirage_devices::testing::block_on;
    use mirage_devices::KvRo;
    use std::process::Command;

    /// A tree with long and short names, names that collide in 8.3, nested folders, an empty
    /// file and `size` bytes in one file.
    fn tree(size: usize) -> Tree {
        let mut t = Tree::default();
        t.insert("README", b"short upper-case name".to_vec());
        t.insert("index.html", b"<h1>hi</h1>".to_vec());
        t.insert("empty", Vec::new());
        t.insert("big.bin", (0..size).map(|i| (i * 7 % 251) as u8).collect());
        for i in 0..12 {
            t.insert(
                &format!("a long name number {i}.text"),
                format!("{i}").into_bytes(),
            );
        }
        t.insert(
            "d\u{e9}j\u{e0} vu/deep/er/caf\u{e9}.txt",
            b"unicode".to_vec(),
        );
        t.insert(&format!("{}/x", "n".repeat(120)), b"long path".to_vec());
        t
    }

    fn files(t: &Tree, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
        for (name, node) in &t.entries {
            match node {
                Node::File(d) => out.push((format!("{prefix}{name}"), d.clone())),
                Node::Dir(sub) => files(sub, &format!("{prefix}{name}/"), out),
            }
        }
    }

    /// `read_back(store, tree)` checks that `store` lists and reads every file of `tree`.
    fn read_back<K: KvRo>(store: &K, t: &Tree) {
        let mut all = Vec::new();
        files(t, "", &mut all);
        for (key, data) in &all {
            assert_eq!(&block_on(store.get(key)).unwrap(), data, "{key}");
        }
        let root: Vec<String> = block_on(store.list(""))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let expect: Vec<&String> = t.entries.keys().collect();
        assert_eq!(root.iter().collect::<Vec<_>>(), expect);
    }

    #[test]
    fn fat_images_read_back_and_are_deterministic() {
        for (size, kind) in [(10_000, FatType::Fat12), (3_000_000, FatType::Fat16)] {
            let t = tree(size);
            let img = image(&t, DiskFormat::Fat).unwrap();
            assert_eq!(img, image(&t, DiskFormat::Fat).unwrap(), "deterministic");
            let fat = block_on(Fat::connect(Ramdisk::with_contents("fat", &img))).unwrap();
            assert_eq!(fat.fat_type(), kind);
            read_back(&fat, &t);
            check_with_dosfstools(&img, &t);
        }
    }

    /// Reading at the very end of a file whose size is a whole number of clusters follows no
    /// cluster past its chain.
    #[test]
    fn reads_end_exactly_at_cluster_boundaries() {
        let mut t = Tree::default();
        t.insert("whole", vec![1u8; 4096]);
        for format in [DiskFormat::Fat, DiskFormat::Tar] {
            let img = image(&t, format).unwrap();
            let disk = Ramdisk::with_contents("d", &img);
            let check = |kv: &dyn Fn(u64) -> Vec<u8>| {
                assert!(kv(4096).is_empty());
                assert_eq!(kv(4095), [1]);
                assert_eq!(kv(3584).len(), 512);
            };
            match format {
                DiskFormat::Fat => {
                    let fat = block_on(Fat::connect(disk)).unwrap();
                    check(&|at| block_on(fat.get_partial("whole", at, 1 << 20)).unwrap());
                }
                DiskFormat::Tar => {
                    let tar = block_on(Tar::connect(disk)).unwrap();
                    check(&|at| block_on(tar.get_partial("whole", at, 1 << 20)).unwrap());
                }
            }
        }
    }

    #[test]
    fn tar_archives_read_back_and_are_deterministic() {
        let t = tree(5000);
        let img = image(&t, DiskFormat::Tar).unwrap();
        assert_eq!(img, image(&t, DiskFormat::Tar).unwrap());
        let tar = block_on(Tar::connect(Ramdisk::with_contents("tar", &img))).unwrap();
        read_back(&tar, &t);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tar");
        std::fs::write(&path, &img).unwrap();
        let listed = Command::new("tar").arg("-tf").arg(&path).output().unwrap();
        assert!(listed.status.success());
        let listed = String::from_utf8(listed.stdout).unwrap();
        assert!(
            listed.contains(&format!("{}/x\n", "n".repeat(120))),
            "GNU tar reads the long names: {listed}"
        );
    }

    #[test]
    fn names_fat_cannot_hold_are_refused() {
        let mut t = Tree::default();
        t.insert("what?", b"x".to_vec());
        let e = image(&t, DiskFormat::Fat).unwrap_err().to_string();
        assert!(e.contains("`what?`"), "{e}");
    }

    /// Linux's own tools agree: `fsck.fat -n` finds nothing to fix and mtools reads each file.
    fn check_with_dosfstools(img: &[u8], t: &Tree) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fat");
        std::fs::write(&path, img).unwrap();
        let fsck = Command::new("fsck.fat").arg("-n").arg(&path).output();
        let Ok(fsck) = fsck else {
            panic!("fsck.fat is missing: scripts/setup installs dosfstools and mtools");
        };
        let report = String::from_utf8_lossy(&fsck.stdout);
        assert!(fsck.status.success(), "{report}");
        assert!(
            !report.contains("Auto-") && !report.contains("Fix"),
            "{report}"
        );
        let mut all = Vec::new();
        files(t, "", &mut all);
        for (key, data) in all {
            // mtools reads names in the locale's encoding: non-ASCII names need UTF-8
            // whatever the caller's locale (a bare root has none, so "C").
            let out = Command::new("mtype")
                .env("MTOOLS_SKIP_CHECK", "1")
                .env("LC_ALL", "C.UTF-8")
                .arg("-i")
                .arg(&path)
                .arg(format!("::/{key}"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "mtype {key}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, data, "mtype {key}");
        }
    }
}
