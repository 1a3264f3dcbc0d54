//! x86_64: the PV and PVH entries ([`boot`]) and the few instructions the runtime needs
//! ([`cpu`]). `memcpy` and friends are `mirage-bare-metal`'s.

#[cfg(mirage_xen_image)]
pub(crate) mod boot;
pub(crate) mod cpu;
pub(crate) use cpu::*;
