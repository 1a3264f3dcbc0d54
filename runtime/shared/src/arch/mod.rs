//! The machine layer: the `mem*` functions and exception entry (images only), RDRAND and the
//! time-stamp counter, in assembly.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::linux;
#[cfg(all(target_arch = "x86_64", any(mirage_xen_image, mirage_solo5_image)))]
pub use x86_64::trap;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{random_u64, rdtsc};
