//! x86_64: `memcpy` and friends (`mem`, images only), RDRAND ([`rdrand`]), the ordered
//! time-stamp counter ([`tsc`]), exception entry ([`trap`], images only) and the system calls
//! of an image executed as a Linux process ([`linux`]).

pub(crate) mod linux;
#[cfg(any(mirage_xen_image, mirage_solo5_image))]
mod mem;
mod rdrand;
#[cfg(any(mirage_xen_image, mirage_solo5_image))]
pub mod trap;
mod tsc;

pub use rdrand::random_u64;
pub use tsc::rdtsc;
