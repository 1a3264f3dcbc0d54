//! The `block` signature: a disk of fixed-size sectors, as Mirage's `Mirage_block.S`.

use alloc::vec;
use core::fmt;

mod ramdisk;
pub use ramdisk::Ramdisk;

/// `BlockInfo` describes a block device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// The size of one sector in bytes; every transfer is a whole number of sectors.
    pub sector_size: u32,
    /// The number of sectors on the device.
    pub sectors: u64,
    /// Whether [`Block::write`] is allowed.
    pub read_write: bool,
}

impl BlockInfo {
    /// `size_bytes()` is the capacity of the device in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.sectors.saturating_mul(u64::from(self.sector_size))
    }

    /// `check(sector, len)` accepts a transfer of `len` bytes starting at `sector` if `len` is a
    /// whole number of sectors and the transfer ends on the device.
    pub fn check(&self, sector: u64, len: usize) -> Result<(), BlockError> {
        let size = self.sector_size as usize;
        if size == 0 || len % size != 0 {
            return Err(BlockError::Unaligned { len });
        }
        let count = (len / size) as u64;
        match sector.checked_add(count) {
            Some(end) if end <= self.sectors => Ok(()),
            _ => Err(BlockError::OutOfRange { sector }),
        }
    }
}

/// `BlockError` is why a block transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The buffer's length is not a whole number of sectors.
    Unaligned {
        /// The buffer's length in bytes.
        len: usize,
    },
    /// The transfer starting at `sector` would run past the end of the device.
    OutOfRange {
        /// The first sector of the transfer.
        sector: u64,
    },
    /// The device is read-only.
    ReadOnly,
    /// The device's backend went away.
    Disconnected,
    /// The target reported an I/O error; `errno` is its own code.
    Io {
        /// The target's error number (`errno` on unix).
        errno: i32,
    },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned { len } => {
                write!(
                    f,
                    "a transfer of {len} bytes is not a whole number of sectors"
                )
            }
            Self::OutOfRange { sector } => {
                write!(
                    f,
                    "the transfer at sector {sector} runs past the end of the device"
                )
            }
            Self::ReadOnly => f.write_str("the device is read-only"),
            Self::Disconnected => f.write_str("the device is disconnected"),
            Self::Io { errno } => write!(f, "block I/O error (errno {errno})"),
        }
    }
}

impl core::error::Error for BlockError {}

/// A `Block` device reads and writes whole sectors: a file on unix, a virtual disk on Xen or
/// Solo5, a [`Ramdisk`] anywhere.
pub trait Block: Clone {
    /// `info()` is the device's geometry and access mode.
    fn info(&self) -> BlockInfo;

    /// `read(sector, buf)` fills `buf`, a whole number of sectors, from the device starting
    /// at `sector`.
    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError>;

    /// `write(sector, data)` writes `data`, a whole number of sectors, to the device starting
    /// at `sector`.
    async fn write(&self, sector: u64, data: &[u8]) -> Result<(), BlockError>;
}

/// `read_bytes(block, offset, buf)` fills `buf` with the bytes of `block` from byte `offset`,
/// whatever the sector size: whole sectors go straight into `buf`, a partial sector at either
/// end through one sector of scratch space.
pub async fn read_bytes<B: Block>(
    block: &B,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), BlockError> {
    let size = u64::from(block.info().sector_size);
    let out_of_range = BlockError::OutOfRange {
        sector: offset / size.max(1),
    };
    if size == 0 {
        return Err(BlockError::Unaligned { len: buf.len() });
    }
    offset.checked_add(buf.len() as u64).ok_or(out_of_range)?;
    let mut sector = offset / size;
    let mut skip = (offset % size) as usize;
    let mut rest = buf;
    let mut scratch = vec![];
    while !rest.is_empty() {
        let whole = if skip == 0 {
            rest.len() - rest.len() % size as usize
        } else {
            0
        };
        if whole > 0 {
            let (head, tail) = rest.split_at_mut(whole);
            block.read(sector, head).await?;
            sector += (whole as u64) / size;
            rest = tail;
            continue;
        }
        if scratch.is_empty() {
            scratch = vec![0u8; size as usize];
        }
        block.read(sector, &mut scratch).await?;
        let n = (size as usize - skip).min(rest.len());
        let (head, tail) = rest.split_at_mut(n);
        head.copy_from_slice(&scratch[skip..skip + n]);
        sector += 1;
        skip = 0;
        rest = tail;
    }
    Ok(())
}
