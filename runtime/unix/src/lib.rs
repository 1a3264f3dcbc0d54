//! The unix target of mirage-nix: a unikernel runs as an ordinary process.
//!
//! A rendered crate's `main.rs` for this target is:
//!
//! ```no_run
//! use mirage_runtime::{BootArgs, Failure, JobOutput, KeyKind, KeySpec};
//!
//! static RUNTIME_KEYS: &[KeySpec] = &[KeySpec {
//!     name: "hello",
//!     kind: KeyKind::String,
//!     default: Some("Hello World!"),
//!     doc: "The message to log.",
//! }];
//! mirage_unix::main!("hello", RUNTIME_KEYS, unikernel);
//! async fn unikernel(args: BootArgs) -> Result<(), Failure> {
//!     let default_time_0 = mirage_unix::Time::new();
//!     JobOutput::into_outcome(start(default_time_0, args.string("hello")).await)
//! }
//!
//! // The unikernel's code, usually in its own crate:
//! async fn start<T: mirage_devices::Time>(time: T, hello: String) {
//!     time.sleep_ns(1_000_000_000).await;
//!     println!("{hello}");
//! }
//! ```
//!
//! [`main!`] parses the command line against the keys, runs `unikernel` on the shared
//! executor with the [`Unix`] platform (`poll(2)`), and turns the outcome into Mirage's exit
//! codes. The devices of this target are the process's [`Console`], the host clocks
//! ([`Time`], [`Mclock`], [`Pclock`]), [`Random`] (`getrandom(2)`), [`Passthrough`] (a
//! host directory as a key-value store), [`BlockFile`] (a host file as a disk), the
//! [`SocketStack`] (the host's TCP/IP through non-blocking sockets) and [`Tap`] (a tap
//! interface, the network device of the direct stack).
//!
//! Devices that do I/O on descriptors use [`reactor::retry`] and [`reactor::ready`]; every
//! `unsafe` block of the crate is in its `sys` module.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod block_file;
mod clock;
mod console;
mod error;
mod passthrough;
mod random;
pub mod reactor;
pub mod socket;
mod sys;
mod tap;
#[cfg(test)]
mod test_util;

use std::future::Future;
use std::process::ExitCode;

use mirage_runtime::{exit, BootArgs, Failure, KeySpec};

pub use block_file::BlockFile;
pub use clock::{now_ns, Mclock, Pclock, Time};
pub use console::Console;
pub use error::OpenError;
pub use passthrough::Passthrough;
pub use random::Random;
pub use reactor::Unix;
pub use socket::SocketStack;
pub use sys::set_nonblocking;
pub use tap::Tap;

/// `main!(NAME, KEYS, unikernel)` defines the process's `fn main`: it runs
/// [`run`]`(NAME, KEYS, unikernel)` with the command line and exits with its status.
#[macro_export]
macro_rules! main {
    ($name:expr, $keys:expr, $unikernel:expr $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::run($name, $keys, $unikernel)
        }
    };
}

/// `run(name, keys, unikernel)` is [`run_with`] on the process's arguments, as an
/// [`ExitCode`].
pub fn run<F, Fut>(name: &str, keys: &'static [KeySpec], unikernel: F) -> ExitCode
where
    F: FnOnce(BootArgs) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let code = run_with(name, keys, args, unikernel);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `run_with(name, keys, args, unikernel)` parses `args` against `keys` and runs
/// `unikernel` with the result on the executor; it returns the exit status:
///
/// - `--help`: the usage on standard output, [`exit::HELP`] (63);
/// - bad arguments: the error, naming the key, and a hint on standard error,
///   [`exit::BAD_ARGUMENTS`] (64);
/// - a [`Failure`]: `error: ...` on standard error, [`exit::FAILURE`] (1);
/// - success: [`exit::SUCCESS`] (0).
pub fn run_with<F, Fut, S>(
    name: &str,
    keys: &'static [KeySpec],
    args: impl IntoIterator<Item = S>,
    unikernel: F,
) -> i32
where
    F: FnOnce(BootArgs) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
    S: AsRef<str>,
{
    let args = match BootArgs::parse(keys, args) {
        Ok(args) => args,
        Err(e @ mirage_runtime::ArgError::Help) => {
            print!("{}", mirage_runtime::usage(name, keys));
            return e.exit_code();
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            eprintln!("Run `{name} --help` for the list of keys.");
            return e.exit_code();
        }
    };
    install_resources();
    match mirage_runtime::block_on(&Unix, unikernel(args)) {
        Ok(()) => exit::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            exit::FAILURE
        }
    }
}

/// `install_resources()` tells the portable devices what this process has: `getrandom(2)` for
/// entropy and the counting allocator's total (the heap grows on demand: no fixed size). It also
/// lifts the soft limit on open descriptors, which would otherwise cap a server's connections
/// below its own budget.
fn install_resources() {
    mirage_runtime::resources::install(mirage_runtime::Resources {
        entropy: || {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).ok()?;
            Some(u64::from_le_bytes(bytes))
        },
        heap: || {
            Some(mirage_runtime::Heap {
                size: None,
                used: sys::heap::used(),
            })
        },
    });
    // Best effort: where it cannot be raised, the default limit stays.
    let _ = sys::raise_open_files_limit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_runtime::{connected, KeyKind};

    static KEYS: &[KeySpec] = &[KeySpec {
        name: "n",
        kind: KeyKind::Int,
        default: Some("2"),
        doc: "How many.",
    }];

    async fn count(args: BootArgs) -> Result<(), Failure> {
        match args.int("n") {
            n if n >= 0 => Ok(()),
            _ => Err(Failure::Job("negative".into())),
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(run_with("t", KEYS, ["--n=3"], count), 0);
        assert_eq!(run_with("t", KEYS, ["--n=-1"], count), 1);
        assert_eq!(run_with("t", KEYS, ["--help"], count), 63);
        assert_eq!(run_with("t", KEYS, ["--n=x"], count), 64);
        assert_eq!(run_with("t", KEYS, ["--m=1"], count), 64);
        let connect_fails = |_| async {
            connected("block_of_file_2", BlockFile::connect("/nonexistent")).map(drop)
        };
        assert_eq!(run_with("t", KEYS, [""; 0], connect_fails), 1);
    }
}
