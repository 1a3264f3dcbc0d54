//! The `tcp` signature: reliable byte streams with back-pressure, as Mirage's `Tcpip.Tcp.S`
//! and `Mirage_flow.S`.

use core::fmt;
use core::net::SocketAddrV4;

/// `TcpError` is why a TCP operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// The local port is already bound.
    AddrInUse {
        /// The port asked for.
        port: u16,
    },
    /// The peer refused the connection (RST in reply to SYN).
    Refused,
    /// The peer reset the connection.
    Reset,
    /// The connection timed out (no answer to retransmissions).
    TimedOut,
    /// The flow was closed for writing by [`Flow::shutdown`] or [`Flow::close`].
    Closed,
    /// The destination cannot be reached.
    Unreachable,
    /// The stack ran out of sockets or buffers.
    Exhausted,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddrInUse { port } => write!(f, "TCP port {port} is already in use"),
            Self::Refused => f.write_str("connection refused"),
            Self::Reset => f.write_str("connection reset by peer"),
            Self::TimedOut => f.write_str("connection timed out"),
            Self::Closed => f.write_str("the flow is closed for writing"),
            Self::Unreachable => f.write_str("the destination is unreachable"),
            Self::Exhausted => f.write_str("no sockets or buffers are left"),
        }
    }
}

impl core::error::Error for TcpError {}

/// A `Flow` is one established connection.
///
/// Writes apply back-pressure: [`write`](Flow::write) waits until the send buffer has taken
/// every byte, so a slow peer slows the writer instead of growing memory.
pub trait Flow {
    /// `peer()` is the remote endpoint.
    fn peer(&self) -> SocketAddrV4;

    /// `read(buf)` waits for data and returns how many bytes it put at the start of `buf`;
    /// `Ok(0)` means the peer has finished sending.
    async fn read(&self, buf: &mut [u8]) -> Result<usize, TcpError>;

    /// `write(data)` sends all of `data`, waiting for buffer space as needed.
    async fn write(&self, data: &[u8]) -> Result<(), TcpError>;

    /// `shutdown()` finishes the sending side (FIN) once buffered data is sent; reading goes on.
    async fn shutdown(&self) -> Result<(), TcpError>;

    /// `close()` finishes sending and releases the connection.
    async fn close(self) -> Result<(), TcpError>;
}

/// A `Listener` accepts connections on one local port.
pub trait Listener {
    /// The flows this listener yields.
    type Flow: Flow;

    /// `accept()` waits for the next incoming connection.
    async fn accept(&self) -> Result<Self::Flow, TcpError>;
}

/// A `Tcp` layer opens connections and listens for them.
pub trait Tcp: Clone {
    /// The connections of this layer.
    type Flow: Flow;
    /// The listeners of this layer.
    type Listener: Listener<Flow = Self::Flow>;

    /// `listen(port)` accepts connections to local port `port`.
    async fn listen(&self, port: u16) -> Result<Self::Listener, TcpError>;

    /// `connect(dst)` opens a connection to `dst`.
    async fn connect(&self, dst: SocketAddrV4) -> Result<Self::Flow, TcpError>;
}
