//! x86_64: `memcpy` and friends (`mem`, images only) and RDRAND ([`rdrand`]).

#[cfg(any(mirage_xen_image, mirage_solo5_image))]
mod mem;
mod rdrand;

pub use rdrand::random_u64;
