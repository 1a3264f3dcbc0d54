//! The parts that own machine state: the heap, and the process an image finds itself in
//! when Linux executed it.
#![allow(unsafe_code)]

pub mod heap;
pub mod linux;
