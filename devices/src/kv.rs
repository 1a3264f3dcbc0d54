//! Portable [`KvRo`](crate::KvRo) implementations: [`Crunch`] (files embedded in the image)
//! and [`Tar`] (an archive on a [`Block`](crate::Block) device).

#[cfg(feature = "crunch")]
mod crunch;
#[cfg(any(feature = "tar", feature = "fat"))]
mod index;
#[cfg(feature = "tar")]
mod tar;

#[cfg(feature = "crunch")]
pub use crunch::{Crunch, Entry};
#[cfg(feature = "tar")]
pub use tar::{Tar, TarError};
