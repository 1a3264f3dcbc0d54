//! The machine layer: boot entries, ELF notes, the `mem*` functions and CPU instructions.
//!
//! Only x86_64 exists; another architecture would be a sibling module exporting the same
//! names. Everything here is `unsafe` at heart and documented block by block.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;
