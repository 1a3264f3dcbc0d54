//! A new mirage-nix unikernel, generic over the one device it needs: a [`Time`] to sleep on.
//! The message comes from the runtime key `--hello`; logging goes through the `log` facade,
//! which the generated code points at the console.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;
use mirage_devices::time::{Time, NS_PER_SEC};

/// `start(time, hello)` logs `hello` four times, a second apart.
pub async fn start<T: Time>(time: T, hello: String) {
    for _ in 0..4 {
        log::info!("{hello}");
        time.sleep_ns(NS_PER_SEC).await;
    }
}
