//! An in-memory [`Block`] device, for tests and for images that need scratch space.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::{Block, BlockError, BlockInfo};

/// The sector size of every ramdisk.
const SECTOR: usize = 512;

/// A `Ramdisk` is a sparse in-memory disk of 512-byte sectors: sectors never written read as
/// zeros and take no memory. Clones share the same contents.
#[derive(Clone, Debug)]
pub struct Ramdisk {
    name: Rc<str>,
    sectors: u64,
    read_write: bool,
    data: Rc<RefCell<BTreeMap<u64, [u8; SECTOR]>>>,
}

impl Ramdisk {
    /// `new(name, sectors)` is an empty (all-zero), writable ramdisk of `sectors` sectors.
    pub fn new(name: &str, sectors: u64) -> Ramdisk {
        Ramdisk {
            name: Rc::from(name),
            sectors,
            read_write: true,
            data: Rc::new(RefCell::new(BTreeMap::new())),
        }
    }

    /// `with_contents(name, image)` is a writable ramdisk holding `image`, padded with zeros
    /// to a whole number of sectors.
    pub fn with_contents(name: &str, image: &[u8]) -> Ramdisk {
        let sectors = image.len().div_ceil(SECTOR) as u64;
        let disk = Ramdisk::new(name, sectors);
        {
            let mut data = disk.data.borrow_mut();
            for (i, chunk) in image.chunks(SECTOR).enumerate() {
                let mut sector = [0u8; SECTOR];
                sector[..chunk.len()].copy_from_slice(chunk);
                data.insert(i as u64, sector);
            }
        }
        disk
    }

    /// `read_only(self)` is the same disk refusing writes through this handle and its clones.
    pub fn read_only(mut self) -> Ramdisk {
        self.read_write = false;
        self
    }

    /// `name()` is the name the disk was created with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `to_vec()` is the whole disk's contents.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let data = self.data.borrow();
        for sector in 0..self.sectors {
            match data.get(&sector) {
                Some(s) => out.extend_from_slice(s),
                None => out.resize(out.len() + SECTOR, 0),
            }
        }
        out
    }
}

impl Block for Ramdisk {
    fn info(&self) -> BlockInfo {
        BlockInfo {
            sector_size: SECTOR as u32,
            sectors: self.sectors,
            read_write: self.read_write,
        }
    }

    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.info().check(sector, buf.len())?;
        let data = self.data.borrow();
        for (s, chunk) in (sector..).zip(buf.chunks_mut(SECTOR)) {
            match data.get(&s) {
                Some(stored) => chunk.copy_from_slice(stored),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }

    async fn write(&self, sector: u64, data: &[u8]) -> Result<(), BlockError> {
        let info = self.info();
        info.check(sector, data.len())?;
        if !info.read_write {
            return Err(BlockError::ReadOnly);
        }
        let mut stored = self.data.borrow_mut();
        for (s, chunk) in (sector..).zip(data.chunks(SECTOR)) {
            let mut copy = [0u8; SECTOR];
            copy.copy_from_slice(chunk);
            stored.insert(s, copy);
        }
        Ok(())
    }
}

/// The name of a ramdisk, for diagnostics.
impl core::fmt::Display for Ramdisk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ramdisk {} ({} sectors)", self.name, self.sectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::block_on;

    #[test]
    fn unwritten_sectors_read_as_zero_and_writes_read_back() {
        let disk = Ramdisk::new("r", 8);
        let mut buf = [0xffu8; 1024];
        block_on(disk.read(6, &mut buf)).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        let data: Vec<u8> = (0..1024).map(|i| i as u8).collect();
        block_on(disk.clone().write(3, &data)).unwrap();
        block_on(disk.read(3, &mut buf)).unwrap();
        assert_eq!(&buf[..], &data[..]);
    }

    #[test]
    fn transfers_are_checked() {
        let disk = Ramdisk::new("r", 4);
        let mut buf = [0u8; 512];
        assert_eq!(
            block_on(disk.read(4, &mut buf)),
            Err(BlockError::OutOfRange { sector: 4 })
        );
        assert_eq!(
            block_on(disk.read(u64::MAX, &mut buf)),
            Err(BlockError::OutOfRange { sector: u64::MAX })
        );
        assert_eq!(
            block_on(disk.write(0, &buf[..100])),
            Err(BlockError::Unaligned { len: 100 })
        );
        let ro = disk.read_only();
        assert_eq!(block_on(ro.write(0, &buf)), Err(BlockError::ReadOnly));
    }

    #[test]
    fn with_contents_pads_to_sectors() {
        let disk = Ramdisk::with_contents("img", b"hello");
        assert_eq!(disk.info().sectors, 1);
        let bytes = disk.to_vec();
        assert_eq!(&bytes[..5], b"hello");
        assert!(bytes[5..].iter().all(|&b| b == 0));
        assert_eq!(bytes.len(), 512);
    }
}
