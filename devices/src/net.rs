//! The direct TCP/IP stack (feature `net`): smoltcp over any [`Network`] device, as Mirage's
//! `tcpip` over a netif.
//!
//! Functoria builds the stack as a chain of devices, `ethernet(net)`, `arp(eth)`,
//! `static_ipv4(eth, arp)` or `dhcp_ipv4(eth, arp)`, `udp(ip)`, `tcp(ip)`, and
//! `direct_stackv4(...)` over them. smoltcp is one interface, so here every layer is a handle
//! on one shared core: [`Ethernet::new`] creates the core (a smoltcp `Interface` with the
//! device's MAC and MTU) and spawns its driver task; the other constructors take handles on
//! the same core and configure it (the IPv4 address, DHCP).
//!
//! The driver task moves frames between the device and smoltcp: it waits for a frame, for a
//! socket to have something to send, or for smoltcp's next timer, then polls the interface
//! and sends what it produced. smoltcp answers ARP and ICMP echo requests itself. Handles'
//! futures wait on smoltcp's socket wakers, so a blocked read costs nothing until data comes.
//!
//! The layer traits' own operations work too: [`Ethernet`] reads copies of the frames that
//! arrive and writes frames beside smoltcp's, [`Arp`] resolves neighbours with its own
//! requests, [`Ipv4`] reads the datagrams addressed to the interface and writes raw ones.

mod driver;
mod sockets;

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use mirage_runtime::Ipv4Prefix;

use crate::arp::ArpError;
use crate::ethernet::{EtherType, EthernetError};
use crate::ipv4::{Ipv4Error, Proto};
use crate::network::{Mac, Network};

use self::driver::Core;
pub use self::sockets::{Datagrams, Flow, Listener, Tcp, Udp};

/// `Ethernet<N>` is Ethernet framing over network device `N`, and the owner of the direct
/// stack's core.
pub struct Ethernet<N: Network> {
    core: Rc<Core<N>>,
}

impl<N: Network> Clone for Ethernet<N> {
    fn clone(&self) -> Self {
        Ethernet {
            core: self.core.clone(),
        }
    }
}

impl<N: Network + 'static> Ethernet<N> {
    /// `new(net)` starts the direct stack over `net`: a smoltcp interface with `net`'s MAC and
    /// MTU, and no address yet, driven by a task of its own.
    pub fn new(net: N) -> Ethernet<N> {
        Ethernet {
            core: Core::start(net),
        }
    }
}

impl<N: Network> crate::Ethernet for Ethernet<N> {
    fn mac(&self) -> Mac {
        self.core.net.mac()
    }

    fn mtu(&self) -> usize {
        self.core.net.mtu()
    }

    async fn write(&self, dst: Mac, proto: EtherType, payload: &[u8]) -> Result<(), EthernetError> {
        self.core.write_frame(dst, proto, payload).await
    }

    async fn read(&self, buf: &mut [u8]) -> Result<(Mac, EtherType, usize), EthernetError> {
        let frame = self.core.next_frame().await;
        let (src, proto, payload) = driver::split_frame(&frame).ok_or(EthernetError::Net(
            crate::NetError::BufferTooSmall { len: frame.len() },
        ))?;
        let n = payload.len().min(buf.len());
        buf[..n].copy_from_slice(&payload[..n]);
        Ok((src, proto, n))
    }
}

/// `Arp<N>` resolves IPv4 neighbours on the direct stack's link; smoltcp answers the
/// requests for the interface's own address.
pub struct Arp<N: Network> {
    core: Rc<Core<N>>,
}

impl<N: Network> Clone for Arp<N> {
    fn clone(&self) -> Self {
        Arp {
            core: self.core.clone(),
        }
    }
}

impl<N: Network> Arp<N> {
    /// `new(eth)` is the resolver of `eth`'s link.
    pub fn new(eth: Ethernet<N>) -> Arp<N> {
        Arp { core: eth.core }
    }
}

impl<N: Network> crate::Arp for Arp<N> {
    fn ips(&self) -> Vec<Ipv4Addr> {
        self.core
            .address()
            .map(|p| p.address())
            .into_iter()
            .collect()
    }

    async fn query(&self, addr: Ipv4Addr) -> Result<Mac, ArpError> {
        self.core.resolve(addr).await
    }
}

/// `Ipv4<N>` is the direct stack's IPv4 layer: its address, its gateway, raw datagrams.
pub struct Ipv4<N: Network> {
    core: Rc<Core<N>>,
}

impl<N: Network> Clone for Ipv4<N> {
    fn clone(&self) -> Self {
        Ipv4 {
            core: self.core.clone(),
        }
    }
}

impl<N: Network> Ipv4<N> {
    /// `new_static(eth, arp, address, gateway)` gives the interface `address` (none: the
    /// interface stays unconfigured) and the default route through `gateway`.
    pub fn new_static(
        eth: Ethernet<N>,
        arp: Arp<N>,
        address: Option<Ipv4Prefix>,
        gateway: Option<Ipv4Addr>,
    ) -> Ipv4<N> {
        drop(arp);
        eth.core.configure(address, gateway);
        if let Some(address) = address {
            log::info!(target: "ipv4", "address {address}, gateway {gateway:?}");
        }
        Ipv4 { core: eth.core }
    }

    /// `new_dhcp(eth, arp)` asks a DHCP server on the link for an address and completes once
    /// one is leased; the lease is renewed (or the address dropped) in the background.
    #[cfg(feature = "dhcp")]
    pub async fn new_dhcp(eth: Ethernet<N>, arp: Arp<N>) -> Ipv4<N> {
        drop(arp);
        eth.core.start_dhcp();
        let address = eth.core.configured().await;
        log::info!(target: "dhcp", "leased {address}, gateway {:?}", eth.core.gateway());
        Ipv4 { core: eth.core }
    }
}

impl<N: Network> crate::Ipv4 for Ipv4<N> {
    fn address(&self) -> Option<(Ipv4Addr, u8)> {
        self.core.address().map(|p| (p.address(), p.prefix_len()))
    }

    fn gateway(&self) -> Option<Ipv4Addr> {
        self.core.gateway()
    }

    async fn write(&self, dst: Ipv4Addr, proto: Proto, payload: &[u8]) -> Result<(), Ipv4Error> {
        self.core.write_datagram(dst, proto, payload).await
    }

    async fn read(&self, buf: &mut [u8]) -> Result<(Ipv4Addr, Proto, usize), Ipv4Error> {
        let (src, proto, payload) = self.core.next_datagram().await;
        let n = payload.len().min(buf.len());
        buf[..n].copy_from_slice(&payload[..n]);
        Ok((src, proto, n))
    }
}

/// `DirectStack<N>` is the whole direct stack: TCP and UDP over smoltcp over `N`.
pub struct DirectStack<N: Network> {
    tcp: Tcp<N>,
    udp: Udp<N>,
}

impl<N: Network> Clone for DirectStack<N> {
    fn clone(&self) -> Self {
        DirectStack {
            tcp: self.tcp.clone(),
            udp: self.udp.clone(),
        }
    }
}

impl<N: Network> DirectStack<N> {
    /// `new(net, eth, arp, ip, udp, tcp)` is the stack made of these layers (all handles on
    /// one core; Functoria passes each so that the graph shows them).
    pub fn new(
        net: N,
        eth: Ethernet<N>,
        arp: Arp<N>,
        ip: Ipv4<N>,
        udp: Udp<N>,
        tcp: Tcp<N>,
    ) -> DirectStack<N> {
        drop((net, eth, arp, ip));
        DirectStack { tcp, udp }
    }
}

impl<N: Network + 'static> crate::Stack for DirectStack<N> {
    type Tcp = Tcp<N>;
    type Udp = Udp<N>;

    fn tcp(&self) -> Tcp<N> {
        self.tcp.clone()
    }

    fn udp(&self) -> Udp<N> {
        self.udp.clone()
    }

    fn ips(&self) -> Vec<Ipv4Addr> {
        self.tcp
            .core()
            .address()
            .map(|p| p.address())
            .into_iter()
            .collect()
    }
}
