//! Reads and writes sectors of a block device and checks them, as Mirage's
//! `device-usage/block`: the same code runs over a file on unix and a virtual disk elsewhere.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use mirage_devices::{Block, BlockError, BlockInfo};

/// How many sectors at the start of the disk are written and checked, at most.
pub const CHECKED: u64 = 16;

/// `Error` is why the check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The disk has no sectors to check.
    Empty,
    /// A transfer failed.
    Block(BlockError),
    /// A sector read back differs from what was written.
    Mismatch {
        /// The first differing sector.
        sector: u64,
    },
    /// Reading past the end of the disk did not fail as it must.
    EndNotEnforced,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the disk has no sectors"),
            Self::Block(e) => write!(f, "{e}"),
            Self::Mismatch { sector } => write!(f, "sector {sector} did not read back"),
            Self::EndNotEnforced => f.write_str("a read past the end of the disk succeeded"),
        }
    }
}

impl core::error::Error for Error {}

impl From<BlockError> for Error {
    fn from(e: BlockError) -> Self {
        Self::Block(e)
    }
}

/// `pattern(sector, size)` is the content written to `sector`: different in every sector
/// and every byte, so that a misplaced or torn write shows.
pub fn pattern(sector: u64, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (sector as u8).wrapping_mul(31) ^ (i as u8) ^ ((i >> 8) as u8))
        .collect()
}

/// `start(block)` says whether the disk holds what a previous run left, writes a pattern to
/// the first sectors (one at a time, then all at once), reads them back, checks them and that
/// the end of the disk is enforced. A read-only disk is only read.
pub async fn start<B: Block>(block: B) -> Result<(), Error> {
    let info = block.info();
    describe(&info);
    let n = info.sectors.min(CHECKED);
    if n == 0 {
        return Err(Error::Empty);
    }
    let size = info.sector_size as usize;
    if previous_run(&block, n, size).await? {
        log::info!("the disk holds what a previous run wrote: {n} sectors read back");
    } else {
        log::info!("the disk holds no previous run's sectors");
    }
    if info.read_write {
        for sector in 0..n {
            block.write(sector, &pattern(sector, size)).await?;
        }
        check(&block, n, size).await?;
        log::info!("wrote {n} sectors one by one and read them back: all match");
        let all: Vec<u8> = (0..n).flat_map(|s| pattern(n - 1 - s, size)).collect();
        block.write(0, &all).await?;
        let mut back = vec![0u8; all.len()];
        block.read(0, &mut back).await?;
        if let Some(i) =
            (0..n as usize).find(|&i| all[i * size..][..size] != back[i * size..][..size])
        {
            return Err(Error::Mismatch { sector: i as u64 });
        }
        log::info!("wrote {n} sectors in one transfer and read them back: all match");
    } else {
        let mut buf = vec![0u8; size];
        for sector in 0..n {
            block.read(sector, &mut buf).await?;
        }
        log::info!("the disk is read-only: read {n} sectors");
    }
    let mut buf = vec![0u8; size];
    match block.read(info.sectors, &mut buf).await {
        Err(BlockError::OutOfRange { .. }) => {
            log::info!("reading past the end fails as it must");
            Ok(())
        }
        Err(e) => Err(e.into()),
        Ok(()) => Err(Error::EndNotEnforced),
    }
}

fn describe(info: &BlockInfo) {
    let mode = if info.read_write {
        "read-write"
    } else {
        "read-only"
    };
    log::info!(
        "disk: {} sectors of {} bytes ({} KiB), {mode}",
        info.sectors,
        info.sector_size,
        info.size_bytes() / 1024
    );
}

/// `previous_run(block, n, size)` is whether sectors `0..n` hold what a run of [`start`] left
/// there: the pattern of its last write, one transfer with sector `s` holding
/// `pattern(n - 1 - s)`.
pub async fn previous_run<B: Block>(block: &B, n: u64, size: usize) -> Result<bool, Error> {
    let mut all = vec![0u8; n as usize * size];
    block.read(0, &mut all).await?;
    Ok((0..n).all(|s| all[s as usize * size..][..size] == pattern(n - 1 - s, size)[..]))
}

/// `check(block, n, size)` reads back sectors `0..n` one by one and compares them with
/// their pattern.
async fn check<B: Block>(block: &B, n: u64, size: usize) -> Result<(), Error> {
    let mut buf = vec![0u8; size];
    for sector in 0..n {
        block.read(sector, &mut buf).await?;
        if buf != pattern(sector, size) {
            return Err(Error::Mismatch { sector });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_devices::block::Ramdisk;
    use mirage_devices::testing::block_on;

    #[test]
    fn passes_on_a_ramdisk_and_leaves_the_last_pattern() {
        let disk = Ramdisk::new("disk", 64);
        assert_eq!(block_on(previous_run(&disk, CHECKED, 512)), Ok(false));
        assert_eq!(block_on(start(disk.clone())), Ok(()));
        let bytes = disk.to_vec();
        assert_eq!(&bytes[..512], &pattern(CHECKED - 1, 512)[..]);
        assert_eq!(block_on(previous_run(&disk, CHECKED, 512)), Ok(true));
    }

    #[test]
    fn small_read_only_and_empty_disks() {
        assert_eq!(block_on(start(Ramdisk::new("small", 3))), Ok(()));
        assert_eq!(block_on(start(Ramdisk::new("ro", 4).read_only())), Ok(()));
        assert_eq!(block_on(start(Ramdisk::new("empty", 0))), Err(Error::Empty));
    }

    #[test]
    fn patterns_differ_between_sectors() {
        assert_ne!(pattern(0, 512), pattern(1, 512));
        assert_ne!(pattern(1, 512)[..256], pattern(1, 512)[256..]);
    }
}
