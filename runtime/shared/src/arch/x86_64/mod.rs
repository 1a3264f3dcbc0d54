//! x86_64: `memcpy` and friends (`mem`, images only), RDRAND ([`rdrand`]) and the ordered
//! time-stamp counter ([`tsc`]).

#[cfg(any(mirage_xen_image, mirage_solo5_image))]
mod mem;
mod rdrand;
mod tsc;

pub use rdrand::random_u64;
pub use tsc::rdtsc;
