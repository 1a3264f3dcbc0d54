//! The `stack` signature: a whole TCP/IP stack (Mirage's `STACKV4`), either the target's own
//! sockets or the direct stack over a [`Network`](crate::Network).

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::tcp::Tcp;
use crate::udp::Udp;

/// A `Stack` gives what a conduit or an application needs: TCP and UDP over IPv4.
pub trait Stack: Clone {
    /// The stack's TCP layer.
    type Tcp: Tcp;
    /// The stack's UDP layer.
    type Udp: Udp;

    /// `tcp()` is a handle on the stack's TCP layer.
    fn tcp(&self) -> Self::Tcp;

    /// `udp()` is a handle on the stack's UDP layer.
    fn udp(&self) -> Self::Udp;

    /// `ips()` is the stack's configured IPv4 addresses (empty until DHCP has answered).
    fn ips(&self) -> Vec<Ipv4Addr>;
}
