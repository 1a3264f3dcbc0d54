//! The `ethernet` signature: Ethernet II framing over a [`Network`](crate::Network), as
//! Mirage's `Ethernet.S`.

use core::fmt;

use crate::network::{Mac, NetError};

/// An `EtherType` is the protocol carried in an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// IPv4, 0x0800.
    Ipv4,
    /// ARP, 0x0806.
    Arp,
    /// IPv6, 0x86dd.
    Ipv6,
    /// Any other protocol number.
    Other(u16),
}

impl EtherType {
    /// `to_u16()` is the protocol number as carried on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Ipv4 => 0x0800,
            Self::Arp => 0x0806,
            Self::Ipv6 => 0x86dd,
            Self::Other(n) => n,
        }
    }

    /// `from_u16(n)` is the protocol with wire number `n`.
    pub fn from_u16(n: u16) -> EtherType {
        match n {
            0x0800 => Self::Ipv4,
            0x0806 => Self::Arp,
            0x86dd => Self::Ipv6,
            n => Self::Other(n),
        }
    }
}

/// `EthernetError` is why an Ethernet operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EthernetError {
    /// The payload is larger than the link's MTU.
    TooBig {
        /// The payload's length in bytes.
        len: usize,
    },
    /// The underlying network device failed.
    Net(NetError),
}

impl fmt::Display for EthernetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooBig { len } => write!(f, "a {len}-byte payload exceeds the MTU"),
            Self::Net(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for EthernetError {}

impl From<NetError> for EthernetError {
    fn from(e: NetError) -> Self {
        Self::Net(e)
    }
}

/// An `Ethernet` layer frames and unframes payloads for the protocols above it.
pub trait Ethernet: Clone {
    /// `mac()` is the interface's own address.
    fn mac(&self) -> Mac;

    /// `mtu()` is the largest payload one frame carries.
    fn mtu(&self) -> usize;

    /// `write(dst, proto, payload)` sends `payload` to `dst` in one frame.
    async fn write(&self, dst: Mac, proto: EtherType, payload: &[u8]) -> Result<(), EthernetError>;

    /// `read(buf)` waits for the next frame addressed to this interface (or broadcast), puts
    /// its payload at the start of `buf` and returns `(source, protocol, payload length)`.
    async fn read(&self, buf: &mut [u8]) -> Result<(Mac, EtherType, usize), EthernetError>;
}
