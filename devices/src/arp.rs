//! The `arp` signature: IPv4-to-Ethernet address resolution, as Mirage's `Arp.S`.

use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

use crate::ethernet::EthernetError;
use crate::network::Mac;

/// `ArpError` is why an address could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpError {
    /// No host answered the queries for the address before the retries ran out.
    Timeout {
        /// The address that was queried.
        addr: Ipv4Addr,
    },
    /// The Ethernet layer failed.
    Ethernet(EthernetError),
}

impl fmt::Display for ArpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { addr } => write!(f, "no ARP reply for {addr}"),
            Self::Ethernet(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ArpError {}

/// An `Arp` resolver answers for the interface's own addresses and finds the hardware
/// address of neighbours.
pub trait Arp: Clone {
    /// `ips()` is the addresses this interface answers ARP requests for.
    fn ips(&self) -> Vec<Ipv4Addr>;

    /// `query(addr)` is the hardware address of neighbour `addr`, from the cache or by asking.
    async fn query(&self, addr: Ipv4Addr) -> Result<Mac, ArpError>;
}
