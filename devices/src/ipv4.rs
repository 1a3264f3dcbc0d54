//! The `ipv4` signature: sending and receiving IPv4 datagrams, as Mirage's `Tcpip.Ip.S`.

use core::fmt;
use core::net::Ipv4Addr;

/// `Ipv4Error` is why a datagram could not be sent or received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4Error {
    /// No route leads to the destination (no gateway and not on the local network).
    NoRoute {
        /// The unreachable destination.
        dst: Ipv4Addr,
    },
    /// The payload does not fit one datagram.
    TooBig {
        /// The payload's length in bytes.
        len: usize,
    },
    /// The interface has no address yet (DHCP has not finished).
    NotConfigured,
    /// The link layer failed.
    Link,
}

impl fmt::Display for Ipv4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRoute { dst } => write!(f, "no route to {dst}"),
            Self::TooBig { len } => write!(f, "a {len}-byte payload does not fit a datagram"),
            Self::NotConfigured => f.write_str("the interface has no IPv4 address yet"),
            Self::Link => f.write_str("the link layer failed"),
        }
    }
}

impl core::error::Error for Ipv4Error {}

/// `Proto` is the protocol number in an IPv4 header (1 ICMP, 6 TCP, 17 UDP, ...).
pub type Proto = u8;

/// An `Ipv4` layer addresses datagrams: it knows its own address, netmask and gateway.
pub trait Ipv4: Clone {
    /// `address()` is the interface's address and prefix length, if configured.
    fn address(&self) -> Option<(Ipv4Addr, u8)>;

    /// `gateway()` is the default gateway, if any.
    fn gateway(&self) -> Option<Ipv4Addr>;

    /// `write(dst, proto, payload)` sends `payload` to `dst` as one datagram.
    async fn write(&self, dst: Ipv4Addr, proto: Proto, payload: &[u8]) -> Result<(), Ipv4Error>;

    /// `read(buf)` waits for the next datagram for this host, puts its payload at the start
    /// of `buf` and returns `(source, protocol, payload length)`.
    async fn read(&self, buf: &mut [u8]) -> Result<(Ipv4Addr, Proto, usize), Ipv4Error>;
}
