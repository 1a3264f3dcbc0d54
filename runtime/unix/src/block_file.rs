//! [`BlockFile`]: a [`Block`](mirage_devices::Block) device over a host file, in 512-byte
//! sectors (Mirage's `block_of_file`).
//!
//! A disk the build makes for a read-only store (`DIR.tar`, `DIR.fat`) is found **beside the
//! image**: in the directory of the running executable (`/proc/self/exe`, symbolic links
//! resolved, so `result/bin/kv_ro` finds the disk beside the image in the Nix store), whatever
//! the working directory, and it is opened read-only ([`BlockFile::open_beside_image`]). A disk
//! named by the unikernel (`block_of_file("disk.img")`) is a path relative to the working
//! directory, opened read-write when the host allows ([`BlockFile::connect`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::rc::Rc;

use mirage_devices::{BlockError, BlockInfo};

use crate::error::OpenError;

/// The sector size of every block file.
const SECTOR: u32 = 512;

/// `BlockFile` reads and writes a host file as a disk; a trailing partial sector is not part
/// of the disk. Clones share the open file.
#[derive(Clone, Debug)]
pub struct BlockFile {
    file: Rc<File>,
    info: BlockInfo,
}

/// `beside_image(name)` is the path of `name` in the directory of the running executable.
pub fn beside_image(name: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| io::Error::other("the running image has no directory"))?;
    Ok(dir.join(name))
}

/// `block_error(e, sector)` classifies a host I/O error on a transfer at `sector`.
fn block_error(e: io::Error, sector: u64) -> BlockError {
    match e.kind() {
        // The file shrank under us.
        io::ErrorKind::UnexpectedEof => BlockError::OutOfRange { sector },
        _ => BlockError::Io {
            errno: e.raw_os_error().unwrap_or(0),
        },
    }
}

impl BlockFile {
    /// `connect(path)` opens `path` read-write, or read-only if the host allows no more.
    pub fn connect(path: &str) -> Result<BlockFile, OpenError> {
        let rw = OpenOptions::new().read(true).write(true).open(path);
        let (file, read_write) = match rw {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => (
                File::open(path).map_err(|e| OpenError::new(path, e))?,
                false,
            ),
            Err(e) => return Err(OpenError::new(path, e)),
        };
        Self::over(file, path, read_write)
    }

    /// `connect_read_only(path)` opens `path` for reading only: writes fail with
    /// [`BlockError::ReadOnly`].
    pub fn connect_read_only(path: &str) -> Result<BlockFile, OpenError> {
        let file = File::open(path).map_err(|e| OpenError::new(path, e))?;
        Self::over(file, path, false)
    }

    /// `open_beside_image(name)` opens the file `name` in the running image's own directory,
    /// read-only: the disk of a read-only store that the build put beside the image.
    pub fn open_beside_image(name: &str) -> Result<BlockFile, OpenError> {
        let path = beside_image(name).map_err(|e| OpenError::new(name, e))?;
        Self::connect_read_only(&path.to_string_lossy())
    }

    /// `over(file, path, read_write)` is the disk of the open `file`, which must be a regular
    /// file or a block device.
    fn over(file: File, path: &str, read_write: bool) -> Result<BlockFile, OpenError> {
        let meta = file.metadata().map_err(|e| OpenError::new(path, e))?;
        if meta.is_dir() {
            let e = io::Error::from(io::ErrorKind::IsADirectory);
            return Err(OpenError::new(path, e));
        }
        Ok(BlockFile {
            file: Rc::new(file),
            info: BlockInfo {
                sector_size: SECTOR,
                sectors: meta.len() / u64::from(SECTOR),
                read_write,
            },
        })
    }
}

impl mirage_devices::Block for BlockFile {
    fn info(&self) -> BlockInfo {
        self.info
    }

    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.info.check(sector, buf.len())?;
        self.file
            .read_exact_at(buf, sector * u64::from(SECTOR))
            .map_err(|e| block_error(e, sector))
    }

    async fn write(&self, sector: u64, data: &[u8]) -> Result<(), BlockError> {
        self.info.check(sector, data.len())?;
        if !self.info.read_write {
            return Err(BlockError::ReadOnly);
        }
        self.file
            .write_all_at(data, sector * u64::from(SECTOR))
            .map_err(|e| block_error(e, sector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{block_on, TempDir};
    use mirage_devices::kv::Tar;
    use mirage_devices::{Block, KvRo};
    use std::process::Command;

    #[test]
    fn reads_back_what_it_wrote() {
        let tmp = TempDir::new("blockfile");
        let path = tmp.path().join("disk.img");
        std::fs::write(&path, vec![0u8; 4096 + 100]).unwrap();
        let disk = BlockFile::connect(path.to_str().unwrap()).unwrap();
        assert_eq!(disk.info().sectors, 8);
        let data: Vec<u8> = (0..1024).map(|i| (i * 7) as u8).collect();
        block_on(disk.write(6, &data)).unwrap();
        let mut back = vec![0u8; 1024];
        block_on(disk.clone().read(6, &mut back)).unwrap();
        assert_eq!(back, data);
        assert_eq!(
            block_on(disk.read(7, &mut back)),
            Err(BlockError::OutOfRange { sector: 7 })
        );
        assert_eq!(std::fs::read(&path).unwrap()[3072..4096], data[..]);
    }

    #[test]
    fn read_only_disks_refuse_writes() {
        let tmp = TempDir::new("blockfile-ro");
        let path = tmp.path().join("disk.img");
        std::fs::write(&path, vec![7u8; 1024]).unwrap();
        let disk = BlockFile::connect_read_only(path.to_str().unwrap()).unwrap();
        assert!(!disk.info().read_write);
        assert_eq!(
            block_on(disk.write(0, &[0u8; 512])),
            Err(BlockError::ReadOnly)
        );
        let mut back = [0u8; 512];
        block_on(disk.read(1, &mut back)).unwrap();
        assert_eq!(back, [7u8; 512]);
    }

    #[test]
    fn disks_beside_the_image_are_looked_up_beside_the_executable() {
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            beside_image("t.tar").unwrap(),
            exe.parent().unwrap().join("t.tar")
        );
        let e = BlockFile::open_beside_image("no-such-disk.tar").unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains(
                &exe.parent()
                    .unwrap()
                    .join("no-such-disk.tar")
                    .display()
                    .to_string()
            ),
            "the error names the full path: {shown}"
        );
    }

    #[test]
    fn connect_names_the_missing_file() {
        let e = BlockFile::connect("/nonexistent/disk.img").unwrap_err();
        assert!(e.to_string().contains("`/nonexistent/disk.img`"), "{e}");
    }

    /// The portable tar reader understands what the host's GNU tar writes.
    #[test]
    fn tar_over_a_block_file_made_by_gnu_tar() {
        let tmp = TempDir::new("tar");
        let src = tmp.path().join("t");
        std::fs::create_dir_all(src.join("dir")).unwrap();
        std::fs::write(src.join("secret"), "s3cr3t\n").unwrap();
        let long = "n".repeat(150);
        std::fs::write(src.join("dir").join(&long), "long name").unwrap();
        let image = tmp.path().join("t.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(&image)
            .arg(".")
            .status();
        let Ok(status) = status else {
            eprintln!("skipped: no `tar` program on this host");
            return;
        };
        assert!(status.success());
        let disk = BlockFile::connect(image.to_str().unwrap()).unwrap();
        let kv = block_on(Tar::connect(disk)).unwrap();
        assert_eq!(block_on(kv.get("secret")).unwrap(), b"s3cr3t\n");
        assert_eq!(
            block_on(kv.get(&format!("dir/{long}"))).unwrap(),
            b"long name"
        );
    }
}
