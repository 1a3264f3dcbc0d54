//! x86_64: the PV and PVH entries ([`boot`]), `memcpy` and friends ([`mem`]), and the few
//! instructions the runtime needs ([`cpu`]).

#[cfg(mirage_xen_image)]
pub(crate) mod boot;
pub(crate) mod cpu;
pub(crate) use cpu::*;
#[cfg(mirage_xen_image)]
mod mem;
