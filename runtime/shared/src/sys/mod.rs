//! The parts that own machine state: the heap.
#![allow(unsafe_code)]

pub mod heap;
