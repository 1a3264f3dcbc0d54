//! One network device shared by two users, as Mirage's ping6 example shares `net`: `start`
//! reads the device itself (its MTU and MAC) and runs a UDP echo service on `--port` through
//! the IPv4 layer built over the same device, whose stack answers ICMP echo (ping) on its own.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use core::fmt;

use mirage_devices::{Ipv4, Network, Udp, UdpError, UdpSocket};

/// `Error` is why the echo service stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The UDP layer failed.
    Udp(UdpError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp(e) => write!(f, "UDP echo failed: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// `start(net, ip, udp, port)` logs the device's MTU and MAC and the interface's address,
/// then echoes every UDP datagram sent to `port` back to its sender.
pub async fn start<N: Network, I: Ipv4, U: Udp>(
    net: N,
    ip: I,
    udp: U,
    port: u16,
) -> Result<(), Error> {
    log::info!("network device: MTU {}, MAC {}", net.mtu(), net.mac());
    match ip.address() {
        Some((addr, len)) => log::info!("IPv4 {addr}/{len}, answering ping"),
        None => log::warn!("IPv4 is not configured"),
    }
    let socket = udp.bind(port).await.map_err(Error::Udp)?;
    log::info!("UDP echo on port {port}");
    // Room for the largest datagram the direct stack reassembles from fragments.
    let mut buf = alloc::vec![0u8; 16 * 1024];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if let Err(e) = socket.send_to(from, &buf[..n]).await {
                    log::warn!("echo to {from} failed: {e}");
                }
            }
            Err(UdpError::TooBig { len }) => log::warn!("dropped a datagram over {len} bytes"),
            Err(e) => return Err(Error::Udp(e)),
        }
    }
}
