//! What mirage-nix's test harnesses and benchmarks share, so that each test says only what it
//! checks:
//!
//! - [`tree`]: the tree and scratch folders under the cargo target directory;
//! - [`examples`]: what the examples print, the same on every target;
//! - [`fault`]: the crash fixture's faults and how the runtimes report them;
//! - [`image`]: images built from plans as `nix build` builds them (render, then cargo with
//!   the plan's flags only), once per process;
//! - [`process`]: child processes with deadlines, killed with what they started, their output
//!   collected;
//! - [`netns`]: network namespaces with a tap device, and raw IPv4 inside them (SYN floods);
//! - [`direct`]: checks of the direct TCP/IP stack every target passes (SYN floods, initial
//!   sequence numbers, fragments) and the heap use it logs;
//! - [`equivalence`]: the cross-target equivalence matrix of the read-only stores (every
//!   file's SHA-256 on unix, spt, hvt and xen), its unix, spt and hvt rows, and its check;
//! - [`load`]: HTTP load with wrk, round after round, and whether a server held up;
//! - [`xen`]: the xen target's QEMU runs (dom0, PVH dom0, plain PVH) and the domU test bed
//!   ([`xen::testbed`]: a Linux dom0 with netback, blkback and a bridge, running scenarios);
//! - [`solo5`]: the Solo5 targets' images checked against the tenders' ELF rules, run under
//!   the real tenders or under minimal ones of the tests' own (spt loader, hvt monitor) with
//!   block and network devices, and Ethernet frames to talk to a guest.
//!
//! It is a dev-dependency of the runtimes' tests and a dependency of `bench/`.
//!
//! # A Xen test
//!
//! ```no_run
//! use mirage_test_support::{image::Builder, tree::scratch, xen};
//!
//! #[test]
//! fn hello_boots_as_dom0() {
//!     if let Some(why) = xen::skip_reason() {
//!         return eprintln!("skipped: {why}");
//!     }
//!     let image = Builder::new(scratch("xen-images")).committed("examples/hello", "xen");
//!     let run = xen::dom0(&image.path, "--hello=Hi");
//!     assert!(run.guest().contains("INF [hello] Hi"), "{}", run.serial);
//!     assert!(run.serial.contains(xen::REBOOTED), "{}", run.serial);
//! }
//! ```
//!
//! domU tests with devices, where several guests share one dom0 boot: [`xen::testbed`].
#![deny(unsafe_code)]

pub mod direct;
pub mod equivalence;
pub mod examples;
pub mod fault;
pub mod image;
pub mod load;
#[allow(unsafe_code)]
pub mod netns;
pub mod process;
pub mod solo5;
pub mod tree;
pub mod xen;
