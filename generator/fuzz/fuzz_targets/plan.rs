//! Fuzzes plan JSON given to `render`: `mirage_nix::oracle::check_plan` panics if a plan that
//! render accepts gives a crate whose Cargo.toml or main.rs does not parse, or whose main.rs
//! holds more than the plan says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mirage_nix::oracle;

fuzz_target!(|data: &[u8]| {
    oracle::check_plan(oracle::scratch(), data);
});
