//! The `network` signature: a link that sends and receives whole Ethernet frames, as Mirage's
//! `Mirage_net.S` (a tap device on unix, netfront on Xen, a Solo5 net device).

use core::fmt;

/// A `Mac` is a 48-bit Ethernet address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `BROADCAST` is `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// `NetError` is why a frame could not be sent or received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The frame is larger than the link's MTU plus the Ethernet header.
    TooBig {
        /// The frame's length in bytes.
        len: usize,
    },
    /// The receive buffer is smaller than the frame that arrived (the frame is dropped).
    BufferTooSmall {
        /// The frame's length in bytes.
        len: usize,
    },
    /// The device's backend went away.
    Disconnected,
    /// The target reported an I/O error; `errno` is its own code.
    Io {
        /// The target's error number.
        errno: i32,
    },
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooBig { len } => write!(f, "a {len}-byte frame exceeds the link's MTU"),
            Self::BufferTooSmall { len } => {
                write!(f, "a {len}-byte frame does not fit the receive buffer")
            }
            Self::Disconnected => f.write_str("the network device is disconnected"),
            Self::Io { errno } => write!(f, "network I/O error (errno {errno})"),
        }
    }
}

impl core::error::Error for NetError {}

/// A `Network` device moves raw Ethernet frames (header included, no FCS) between the
/// unikernel and a link. The direct TCP/IP stack is built over it.
///
/// Sends wait while the device's transmit queue is full (back-pressure); receives wait for a
/// frame. Both are cancel-safe: dropping the future loses no frame that was not returned.
pub trait Network: Clone {
    /// `mac()` is the link's own hardware address.
    fn mac(&self) -> Mac;

    /// `mtu()` is the largest payload of one frame, without the 14-byte Ethernet header.
    fn mtu(&self) -> usize;

    /// `send(frame)` queues one whole frame for transmission.
    async fn send(&self, frame: &[u8]) -> Result<(), NetError>;

    /// `recv(buf)` waits for the next frame, copies it to the start of `buf` and returns its
    /// length.
    async fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError>;
}
