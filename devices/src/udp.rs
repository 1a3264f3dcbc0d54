//! The `udp` signature: datagram sockets, as Mirage's `Tcpip.Udp.S`.

use core::fmt;
use core::net::SocketAddrV4;

/// `UdpError` is why a UDP operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpError {
    /// The local port is already bound.
    AddrInUse {
        /// The port asked for.
        port: u16,
    },
    /// The datagram does not fit (the payload is too large, or the receive buffer too small).
    TooBig {
        /// The datagram's payload length in bytes.
        len: usize,
    },
    /// The destination cannot be reached.
    Unreachable,
    /// The stack ran out of socket buffers.
    Exhausted,
}

impl fmt::Display for UdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddrInUse { port } => write!(f, "UDP port {port} is already in use"),
            Self::TooBig { len } => write!(f, "a {len}-byte datagram does not fit"),
            Self::Unreachable => f.write_str("the destination is unreachable"),
            Self::Exhausted => f.write_str("no socket buffers are left"),
        }
    }
}

impl core::error::Error for UdpError {}

/// A `UdpSocket` is bound to one local port.
pub trait UdpSocket {
    /// `local_port()` is the port this socket is bound to.
    fn local_port(&self) -> u16;

    /// `send_to(dst, data)` sends one datagram.
    async fn send_to(&self, dst: SocketAddrV4, data: &[u8]) -> Result<(), UdpError>;

    /// `recv_from(buf)` waits for one datagram, copies its payload to the start of `buf` and
    /// returns `(length, source)`.
    async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), UdpError>;
}

/// A `Udp` layer hands out sockets.
pub trait Udp: Clone {
    /// The sockets this layer hands out.
    type Socket: UdpSocket;

    /// `bind(port)` is a socket on local port `port` (0 picks a free ephemeral port).
    async fn bind(&self, port: u16) -> Result<Self::Socket, UdpError>;
}
