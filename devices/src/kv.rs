//! Portable [`KvRo`](crate::KvRo) implementations: [`Crunch`] (files embedded in the image),
//! [`Tar`] (a tar archive on a [`Block`](crate::Block) device) and [`Fat`] (a FAT filesystem on
//! a block device). Tar and FAT share one tree index, whose [`Limits`] bound what a hostile
//! archive or filesystem can make them hold.

#[cfg(feature = "crunch")]
mod crunch;
#[cfg(feature = "fat")]
mod fat;
#[cfg(any(feature = "tar", feature = "fat"))]
mod index;
#[cfg(feature = "tar")]
mod tar;

#[cfg(feature = "crunch")]
pub use crunch::{Crunch, Entry};
#[cfg(feature = "fat")]
pub use fat::{Fat, FatError, FatType};
#[cfg(any(feature = "tar", feature = "fat"))]
pub use index::{IndexError, Limits};
#[cfg(feature = "tar")]
pub use tar::{Tar, TarError};
