//! [`Block`]: a Solo5 block device.

use core::fmt;

use mirage_devices::{BlockError, BlockInfo};

use crate::notes::Kind;
use crate::sys::{self, Device, IoError};

/// `ConnectError` is why a device of the manifest could not be connected: the tender did not
/// attach it (the tenders refuse to start an image with a declared device unattached, so this
/// means the name is not in the image's manifest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectError {
    kind: &'static str,
    name: [u8; 68],
    len: usize,
}

impl ConnectError {
    pub(crate) fn new(name: &str, kind: &'static str) -> ConnectError {
        let mut buf = [0u8; 68];
        let len = name.len().min(buf.len());
        buf[..len].copy_from_slice(&name.as_bytes()[..len]);
        ConnectError {
            kind,
            name: buf,
            len,
        }
    }

    /// `name()` is the device's name.
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.len]).unwrap_or("?")
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no {} device `{}` is attached (is it in the image's manifest?)",
            self.kind,
            self.name()
        )
    }
}

impl core::error::Error for ConnectError {}

/// `Block` is the tender's block device of one name (a host file, attached with
/// `--block:NAME=FILE`), read and written one Solo5 block at a time.
#[derive(Clone, Debug)]
pub struct Block {
    device: Device,
}

impl Block {
    /// `connect(name)` is the block device `name` of the manifest; it fails if the tender did
    /// not attach it.
    pub fn connect(name: &str) -> Result<Block, ConnectError> {
        sys::device(name, Kind::Block)
            .filter(|d| d.block_size > 0)
            .map(|device| Block { device })
            .ok_or_else(|| ConnectError::new(name, "block"))
    }
}

fn block_error(e: IoError) -> BlockError {
    match e {
        IoError::Again => BlockError::Io { errno: 11 },
        IoError::Failed(errno) => BlockError::Io { errno },
    }
}

impl mirage_devices::Block for Block {
    fn info(&self) -> BlockInfo {
        let size = u64::from(self.device.block_size);
        BlockInfo {
            sector_size: u32::from(self.device.block_size),
            sectors: self.device.capacity / size,
            read_write: true,
        }
    }

    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.info().check(sector, buf.len())?;
        let size = usize::from(self.device.block_size);
        for (i, chunk) in buf.chunks_mut(size).enumerate() {
            let offset = (sector + i as u64) * size as u64;
            sys::block_read(&self.device, offset, chunk).map_err(block_error)?;
        }
        Ok(())
    }

    async fn write(&self, sector: u64, data: &[u8]) -> Result<(), BlockError> {
        self.info().check(sector, data.len())?;
        let size = usize::from(self.device.block_size);
        for (i, chunk) in data.chunks(size).enumerate() {
            let offset = (sector + i as u64) * size as u64;
            sys::block_write(&self.device, offset, chunk).map_err(block_error)?;
        }
        Ok(())
    }
}
