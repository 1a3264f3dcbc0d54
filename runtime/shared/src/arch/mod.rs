//! The machine layer: the `mem*` functions (images only) and RDRAND, in assembly.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::random_u64;
