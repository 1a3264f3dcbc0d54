//! x86_64: the PV and PVH entries ([`boot`]), `memcpy` and friends ([`mem`]), and the few
//! instructions the runtime needs ([`cpu`]).

#[cfg(not(test))]
pub(crate) mod boot;
pub(crate) mod cpu;
pub(crate) use cpu::*;
#[cfg(not(test))]
mod mem;
