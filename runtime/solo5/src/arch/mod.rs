//! The machine layer: the entry `_start`, the instructions the runtime needs (time-stamp
//! counter, port output for hvt hypercalls, `syscall` for spt). Only x86_64 exists.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;
