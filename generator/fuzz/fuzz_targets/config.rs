//! Fuzzes `unikernel.toml` text, with the target and keys of its first line when it is
//! `#! TARGET --KEY=VALUE ...`: `mirage_nix::oracle::check_config` panics on any broken
//! invariant (a panic, a plan that does not read back or render, generated code that does not
//! parse or holds more than the plan says).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mirage_nix::oracle;

fuzz_target!(|data: &[u8]| {
    oracle::check_config(oracle::scratch(), data);
});
