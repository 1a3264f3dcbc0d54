//! Device signatures for mirage-nix unikernels, and the portable devices built over them.
//!
//! This crate is the Rust counterpart of `mirage-types`: a unikernel is plain Rust code
//! generic over these traits (`async fn start<C: Console, T: Time>(console: C, time: T)`),
//! and the generator picks, per target, the implementations that the device graph names.
//!
//! The crate is layered:
//!
//! 1. **Signatures**, one per module: [`Console`], [`Time`], [`Mclock`], [`Pclock`],
//!    [`Random`], [`KvRo`], [`Block`], [`Network`], [`Ethernet`], [`Arp`], [`Ipv4`], [`Udp`],
//!    [`Tcp`], [`Stack`], [`Conduit`] and [`HttpServer`]. Each trait uses `async fn` and is
//!    meant for a single-threaded executor, so no method requires `Send`. Each module holds its
//!    own small error enum: `Copy`, [`Display`](core::fmt::Display), no heap, no panics.
//! 2. **Portable implementations**, functors over other signatures, each behind a feature so
//!    that an image only carries what its graph uses:
//!    [`block::Ramdisk`] (always), [`kv::Crunch`] (`crunch`), [`kv::Tar`] (`tar`) and
//!    [`logs::Reporter`] (`logs`), the direct TCP/IP stack [`net`] (`net`, `dhcp`: smoltcp),
//!    [`conduit::Direct`] and the HTTP/1.1 [`http::Server`] (`http`).
//!
//! 3. **Test doubles** in [`testing`] (feature `testing`), to unit-test unikernel code.
//!
//! Target-specific devices (a unix console, a Xen netfront, a Solo5 block device) live in the
//! runtime crates under `runtime/`; nothing here knows about a target.
//!
//! Device handles are cheap to [`Clone`]: when the graph shares one device between several
//! consumers, the generated code passes each a clone of the same handle.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The executor is single-threaded on every target: futures never need to be `Send`, which is
// what this lint warns about.
#![allow(async_fn_in_trait)]

extern crate alloc;

pub mod arp;
pub mod block;
pub mod conduit;
pub mod console;
pub mod ethernet;
pub mod http;
pub mod ipv4;
pub mod kv;
pub mod kv_ro;
pub mod limit;
#[cfg(feature = "logs")]
pub mod logs;
pub mod mclock;
#[cfg(feature = "net")]
pub mod net;
pub mod network;
pub mod pclock;
pub mod random;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod udp;

pub use arp::{Arp, ArpError};
pub use block::{Block, BlockError, BlockInfo};
pub use conduit::{Conduit, ConduitError};
pub use console::{Console, ConsoleError};
pub use ethernet::{EtherType, Ethernet, EthernetError};
pub use http::{HttpServer, Request, Response};
pub use ipv4::{Ipv4, Ipv4Error};
pub use kv_ro::{Kind, KvError, KvRo};
pub use limit::LimitError;
pub use mclock::Mclock;
pub use network::{Mac, NetError, Network};
pub use pclock::{Pclock, Timestamp};
pub use random::{Random, RandomError};
pub use stack::Stack;
pub use tcp::{Flow, Listener, Tcp, TcpError};
pub use time::Time;
pub use udp::{Udp, UdpError, UdpSocket};

#[cfg(any(test, feature = "testing"))]
pub mod testing;
