//! The machine layer: the `mem*` functions (images only), RDRAND and the time-stamp counter,
//! in assembly.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{random_u64, rdtsc};
