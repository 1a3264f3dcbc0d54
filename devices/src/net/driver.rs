//! The direct stack's core: one smoltcp interface, its sockets, and the task that drives it.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::{poll_fn, Future};
use core::net::Ipv4Addr;
use core::pin::pin;
use core::task::{Poll, Waker};

use mirage_runtime::Ipv4Prefix;
use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, HardwareAddress, IpCidr, IpEndpoint, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket,
};

use crate::arp::ArpError;
use crate::ethernet::{EtherType, EthernetError};
use crate::ipv4::{Ipv4Error, Proto};
use crate::network::{Mac, Network};

use super::pool::{Pool, TcpLimits};

/// Frames smoltcp may queue for the driver to send before it is told to wait.
const TX_QUEUE: usize = 128;
/// Copies of received frames (or datagrams) kept for a layer reader that is behind.
const TAP_QUEUE: usize = 64;
/// ARP requests sent for one query before it fails, one a second.
const ARP_TRIES: u32 = 3;
/// Rounds the driver runs before it lets the other tasks run, when frames keep coming.
const FRAME_BUDGET: u32 = 32;
/// Frames the driver takes from the device, when they are there, before smoltcp runs: each
/// run of smoltcp visits every socket, so batching is what keeps many connections cheap.
const FRAME_BATCH: usize = 32;
/// Frame buffers kept for reuse, so that steady traffic allocates nothing per frame.
const SPARE_FRAMES: usize = 256;
/// How often the driver frees the sockets of finished connections, in nanoseconds.
const REAP_INTERVAL_NS: u64 = 250_000_000;
/// How often, at most, the driver logs that it evicted or refused connections.
const PRESSURE_REPORT_NS: u64 = 1_000_000_000;
/// The Ethernet header length.
const ETHERNET_HEADER: usize = 14;

/// `now()` is the executor's clock as smoltcp's.
pub(crate) fn now() -> Instant {
    Instant::from_micros(i64::try_from(mirage_runtime::executor::now_ns() / 1000).unwrap_or(0))
}

/// `Queues` is smoltcp's view of the device: frames received and not yet processed, frames
/// produced and not yet sent. The driver task fills one and drains the other.
pub(crate) struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    /// Buffers of frames smoltcp has consumed, for the next frames received.
    spare_rx: Vec<Vec<u8>>,
    /// Buffers of frames sent, for the next frames smoltcp produces.
    spare_tx: Vec<Vec<u8>>,
    mtu: usize,
}

impl Queues {
    /// `frame_buffer()` is an empty buffer for a received frame, reused if one is spare.
    fn frame_buffer(&mut self) -> Vec<u8> {
        self.spare_rx
            .pop()
            .or_else(|| self.spare_tx.pop())
            .unwrap_or_default()
    }

    /// `recycle(frame)` keeps a sent frame's buffer for reuse.
    fn recycle(&mut self, mut frame: Vec<u8>) {
        if self.spare_tx.len() < SPARE_FRAMES {
            frame.clear();
            self.spare_tx.push(frame);
        }
    }
}

/// A received frame handed to smoltcp; its buffer goes back to the spares once consumed.
pub(crate) struct Rx<'a> {
    frame: Vec<u8>,
    spare: &'a mut Vec<Vec<u8>>,
}

/// Room for one frame in the transmit queue.
pub(crate) struct Tx<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
    spare: &'a mut Vec<Vec<u8>>,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(mut self, f: F) -> R {
        let r = f(&self.frame);
        if self.spare.len() < SPARE_FRAMES {
            let mut frame = core::mem::take(&mut self.frame);
            frame.clear();
            self.spare.push(frame);
        }
        r
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.spare.pop().unwrap_or_default();
        frame.resize(len, 0);
        let r = f(&mut frame);
        self.queue.push_back(frame);
        r
    }
}

impl phy::Device for Queues {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let frame = self.rx.pop_front()?;
        let rx = Rx {
            frame,
            spare: &mut self.spare_rx,
        };
        let tx = Tx {
            queue: &mut self.tx,
            spare: &mut self.spare_tx,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        (self.tx.len() < TX_QUEUE).then_some(Tx {
            queue: &mut self.tx,
            spare: &mut self.spare_tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETHERNET_HEADER;
        caps
    }
}

/// The mutable state of the core.
pub(crate) struct Inner {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) device: Queues,
    /// The TCP sockets' budget, the listeners' backlogs and the sockets closing.
    pub(crate) pool: Pool,
    #[cfg(feature = "dhcp")]
    dhcp: Option<smoltcp::iface::SocketHandle>,
    address: Option<Ipv4Prefix>,
    gateway: Option<Ipv4Addr>,
    neighbours: BTreeMap<Ipv4Addr, Mac>,
    frames: Option<VecDeque<Vec<u8>>>,
    datagrams: Option<VecDeque<(Ipv4Addr, Proto, Vec<u8>)>>,
    next_port: u16,
    /// When the driver last freed finished connections' sockets.
    reaped_at: u64,
    /// Whether connections were open at the last reaping.
    busy: bool,
    /// When the driver last logged evictions and refusals.
    pressure_at: u64,
}

impl Inner {
    /// `dhcp_handle()` is the DHCP client's socket, if it has one.
    fn dhcp_handle(&self) -> Option<smoltcp::iface::SocketHandle> {
        #[cfg(feature = "dhcp")]
        return self.dhcp;
        #[cfg(not(feature = "dhcp"))]
        None
    }

    /// `move_dhcp(to)` moves the DHCP client's socket to the set `to`.
    fn move_dhcp(&mut self, to: &mut SocketSet<'static>) {
        #[cfg(feature = "dhcp")]
        if let Some(h) = self.dhcp {
            if let smoltcp::socket::Socket::Dhcpv4(s) = self.sockets.remove(h) {
                self.dhcp = Some(to.add(s));
            }
        }
        #[cfg(not(feature = "dhcp"))]
        let _ = to;
    }
}

/// `Core<N>` is the shared state of a direct stack over `N`.
pub(crate) struct Core<N> {
    pub(crate) net: N,
    pub(crate) inner: RefCell<Inner>,
    /// Set when a socket has something for the driver to do before its next timer.
    kicked: Cell<bool>,
    driver: RefCell<Option<Waker>>,
    /// Futures waiting for any change: accepts, configuration, ARP answers, layer reads.
    changed: RefCell<Vec<Waker>>,
}

impl<N: Network + 'static> Core<N> {
    /// `start(net)` is a new core over `net`, with its driver task spawned.
    pub(crate) fn start(net: N) -> Rc<Core<N>> {
        let mut device = Queues {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            spare_rx: Vec::new(),
            spare_tx: Vec::new(),
            mtu: net.mtu(),
        };
        let mac = net.mac();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac.0)));
        let seed = random_seed(mac);
        config.random_seed = seed;
        let iface = Interface::new(config, &mut device, now());
        let core = Rc::new(Core {
            net,
            inner: RefCell::new(Inner {
                iface,
                sockets: SocketSet::new(Vec::new()),
                device,
                pool: Pool::new(TcpLimits::default().resolve(mirage_runtime::resources::heap())),
                #[cfg(feature = "dhcp")]
                dhcp: None,
                address: None,
                gateway: None,
                neighbours: BTreeMap::new(),
                frames: None,
                datagrams: None,
                next_port: 49152 + (seed % 16384) as u16,
                reaped_at: 0,
                busy: false,
                pressure_at: 0,
            }),
            kicked: Cell::new(false),
            driver: RefCell::new(None),
            changed: RefCell::new(Vec::new()),
        });
        log::info!(target: "net", "direct stack on {mac}, MTU {}", core.net.mtu());
        mirage_runtime::spawn(drive(core.clone()));
        core
    }
}

impl<N: Network> Core<N> {
    /// `kick()` makes the driver poll the interface now (a socket has data to send).
    pub(crate) fn kick(&self) {
        self.kicked.set(true);
        if let Some(w) = self.driver.borrow_mut().take() {
            w.wake();
        }
    }

    /// `on_change(waker)` wakes `waker` after the driver's next poll.
    pub(crate) fn on_change(&self, waker: &Waker) {
        let mut changed = self.changed.borrow_mut();
        if !changed.iter().any(|w| w.will_wake(waker)) {
            changed.push(waker.clone());
        }
    }

    fn wake_changed(&self) {
        let wakers = core::mem::take(&mut *self.changed.borrow_mut());
        wakers.into_iter().for_each(Waker::wake);
    }

    /// `ephemeral_port()` is a local port for an outgoing connection.
    pub(crate) fn ephemeral_port(&self) -> u16 {
        let mut inner = self.inner.borrow_mut();
        let port = inner.next_port;
        inner.next_port = if port == u16::MAX { 49152 } else { port + 1 };
        port
    }

    /// `set_tcp_limits(limits)` bounds TCP by `limits` (resolved) and gives the socket set room
    /// for all of its sockets up front, so that a burst of connections does not grow it: its
    /// slots are never given back, and they would hold memory after the burst.
    pub(crate) fn set_tcp_limits(&self, limits: TcpLimits) {
        let mut inner = self.inner.borrow_mut();
        inner.pool.set_limits(limits);
        // Only before any socket but DHCP's exists: handles are indices into the set.
        let others = inner
            .sockets
            .iter()
            .filter(|(h, _)| Some(*h) != inner.dhcp_handle())
            .count();
        if others > 0 {
            return;
        }
        let mut slots = Vec::new();
        if slots
            .try_reserve_exact(limits.max_connections + 16)
            .is_err()
        {
            return;
        }
        let mut sockets = SocketSet::new(slots);
        inner.move_dhcp(&mut sockets);
        inner.sockets = sockets;
    }

    /// `configure(address, gateway)` sets the interface's address and default route.
    pub(crate) fn configure(&self, address: Option<Ipv4Prefix>, gateway: Option<Ipv4Addr>) {
        let mut inner = self.inner.borrow_mut();
        inner.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some(p) = address {
                // One address fits any capacity smoltcp is built with.
                let _ = addrs.push(IpCidr::new(p.address().into(), p.prefix_len()));
            }
        });
        let routes = inner.iface.routes_mut();
        routes.remove_default_ipv4_route();
        if let Some(gw) = gateway {
            // The route table has room for the default route once the old one is removed.
            let _ = routes.add_default_ipv4_route(gw);
        }
        inner.address = address;
        inner.gateway = gateway;
        drop(inner);
        self.wake_changed();
    }

    /// `address()` is the interface's address, if configured.
    pub(crate) fn address(&self) -> Option<Ipv4Prefix> {
        self.inner.borrow().address
    }

    /// `gateway()` is the default gateway, if any.
    pub(crate) fn gateway(&self) -> Option<Ipv4Addr> {
        self.inner.borrow().gateway
    }

    /// `start_dhcp()` adds a DHCP client to the interface.
    #[cfg(feature = "dhcp")]
    pub(crate) fn start_dhcp(&self) {
        let mut inner = self.inner.borrow_mut();
        if inner.dhcp.is_none() {
            let handle = inner.sockets.add(smoltcp::socket::dhcpv4::Socket::new());
            inner.dhcp = Some(handle);
        }
        drop(inner);
        self.kick();
    }

    /// `configured()` completes with the interface's address once it has one.
    #[cfg(feature = "dhcp")]
    pub(crate) async fn configured(&self) -> Ipv4Prefix {
        poll_fn(|cx| match self.address() {
            Some(a) => Poll::Ready(a),
            None => {
                self.on_change(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// `dhcp_events(inner)` applies what the DHCP client learnt since the last poll.
    #[cfg(feature = "dhcp")]
    fn dhcp_events(&self) {
        use smoltcp::socket::dhcpv4::{Event, Socket};
        let change = {
            let mut inner = self.inner.borrow_mut();
            let Some(handle) = inner.dhcp else { return };
            match inner.sockets.get_mut::<Socket>(handle).poll() {
                Some(Event::Configured(config)) => {
                    let a = config.address;
                    Some((Ipv4Prefix::new(a.address(), a.prefix_len()), config.router))
                }
                Some(Event::Deconfigured) => Some((None, None)),
                None => None,
            }
        };
        match change {
            Some((None, _)) => {
                log::warn!(target: "dhcp", "lease lost");
                self.configure(None, None);
            }
            Some((address, router)) => self.configure(address, router),
            None => {}
        }
    }

    /// `observe(frame)` learns neighbours from ARP and keeps copies for the layer readers.
    fn observe(&self, frame: &[u8]) {
        let mut inner = self.inner.borrow_mut();
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        match eth.ethertype() {
            EthernetProtocol::Arp => {
                let arp = ArpPacket::new_checked(eth.payload()).and_then(|p| ArpRepr::parse(&p));
                if let Ok(ArpRepr::EthernetIpv4 {
                    source_hardware_addr,
                    source_protocol_addr,
                    ..
                }) = arp
                {
                    inner
                        .neighbours
                        .insert(source_protocol_addr, Mac(source_hardware_addr.0));
                }
            }
            EthernetProtocol::Ipv4 => {
                let ours = inner.address.map(|p| p.address());
                if let Some((port, peer)) = syn_to(eth.payload(), ours) {
                    let Inner { sockets, pool, .. } = &mut *inner;
                    pool.admit(sockets, port, peer);
                }
                if let Some(queue) = inner.datagrams.as_mut() {
                    if let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) {
                        if Some(ip.dst_addr()) == ours {
                            push_bounded(
                                queue,
                                (
                                    ip.src_addr(),
                                    ip.next_header().into(),
                                    ip.payload().to_vec(),
                                ),
                            );
                        }
                    }
                }
            }
            _ => {}
        }
        if let Some(queue) = inner.frames.as_mut() {
            push_bounded(queue, frame.to_vec());
        }
    }

    /// `next_frame()` is a copy of the next frame received (copies start with the first call).
    pub(crate) async fn next_frame(&self) -> Vec<u8> {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            match inner.frames.get_or_insert_with(VecDeque::new).pop_front() {
                Some(f) => Poll::Ready(f),
                None => {
                    drop(inner);
                    self.on_change(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// `next_datagram()` is the next IPv4 datagram received for the interface's address.
    pub(crate) async fn next_datagram(&self) -> (Ipv4Addr, Proto, Vec<u8>) {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            match inner
                .datagrams
                .get_or_insert_with(VecDeque::new)
                .pop_front()
            {
                Some(d) => Poll::Ready(d),
                None => {
                    drop(inner);
                    self.on_change(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// `write_frame(dst, proto, payload)` sends one Ethernet frame beside smoltcp's.
    pub(crate) async fn write_frame(
        &self,
        dst: Mac,
        proto: EtherType,
        payload: &[u8],
    ) -> Result<(), EthernetError> {
        if payload.len() > self.net.mtu() {
            return Err(EthernetError::TooBig { len: payload.len() });
        }
        let repr = EthernetRepr {
            src_addr: EthernetAddress(self.net.mac().0),
            dst_addr: EthernetAddress(dst.0),
            ethertype: EthernetProtocol::from(proto.to_u16()),
        };
        let mut frame = vec![0u8; repr.buffer_len() + payload.len()];
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        repr.emit(&mut eth);
        eth.payload_mut().copy_from_slice(payload);
        self.net.send(&frame).await?;
        Ok(())
    }

    /// `resolve(addr)` is the hardware address of neighbour `addr`, asking with ARP requests.
    pub(crate) async fn resolve(&self, addr: Ipv4Addr) -> Result<Mac, ArpError> {
        if addr.is_broadcast() {
            return Ok(Mac::BROADCAST);
        }
        for _ in 0..ARP_TRIES {
            if let Some(mac) = self.inner.borrow().neighbours.get(&addr) {
                return Ok(*mac);
            }
            let ours = self
                .address()
                .map_or(Ipv4Addr::UNSPECIFIED, |p| p.address());
            let request = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr: EthernetAddress(self.net.mac().0),
                source_protocol_addr: ours,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: addr,
            };
            let mut payload = vec![0u8; request.buffer_len()];
            request.emit(&mut ArpPacket::new_unchecked(&mut payload[..]));
            self.write_frame(Mac::BROADCAST, EtherType::Arp, &payload)
                .await
                .map_err(ArpError::Ethernet)?;
            let deadline = mirage_runtime::executor::now_ns() + 1_000_000_000;
            let mut timer = pin!(mirage_runtime::sleep_until(deadline));
            poll_fn(|cx| {
                if self.inner.borrow().neighbours.contains_key(&addr) {
                    return Poll::Ready(());
                }
                self.on_change(cx.waker());
                timer.as_mut().poll(cx)
            })
            .await;
        }
        let known = self.inner.borrow().neighbours.get(&addr).copied();
        known.ok_or(ArpError::Timeout { addr })
    }

    /// `write_datagram(dst, proto, payload)` sends one raw IPv4 datagram to `dst`.
    pub(crate) async fn write_datagram(
        &self,
        dst: Ipv4Addr,
        proto: Proto,
        payload: &[u8],
    ) -> Result<(), Ipv4Error> {
        let prefix = self.address().ok_or(Ipv4Error::NotConfigured)?;
        let hop = if prefix.contains(dst) || dst.is_broadcast() {
            dst
        } else {
            self.gateway().ok_or(Ipv4Error::NoRoute { dst })?
        };
        let repr = Ipv4Repr {
            src_addr: prefix.address(),
            dst_addr: dst,
            next_header: IpProtocol::from(proto),
            payload_len: payload.len(),
            hop_limit: 64,
        };
        let len = repr.buffer_len() + payload.len();
        if len > self.net.mtu() {
            return Err(Ipv4Error::TooBig { len: payload.len() });
        }
        let mac = self
            .resolve(hop)
            .await
            .map_err(|_| Ipv4Error::NoRoute { dst })?;
        let mut datagram = vec![0u8; len];
        let mut packet = Ipv4Packet::new_unchecked(&mut datagram[..]);
        repr.emit(&mut packet, &smoltcp::phy::ChecksumCapabilities::default());
        packet.payload_mut().copy_from_slice(payload);
        self.write_frame(mac, EtherType::Ipv4, &datagram)
            .await
            .map_err(|_| Ipv4Error::Link)
    }

    /// `poll()` runs smoltcp once over the frames received, then lets the TCP pool wake the
    /// listeners and, every [`REAP_INTERVAL_NS`], free the sockets of finished connections.
    fn poll(&self) {
        let mut inner = self.inner.borrow_mut();
        let Inner {
            iface,
            sockets,
            device,
            pool,
            ..
        } = &mut *inner;
        let changed = iface.poll(now(), device, sockets) == PollResult::SocketStateChanged;
        pool.polled(changed);
        let now_ns = mirage_runtime::executor::now_ns();
        if now_ns >= inner.reaped_at.saturating_add(REAP_INTERVAL_NS) {
            self.reap(&mut inner, now_ns);
        }
    }

    /// `reap(inner, now_ns)` frees what the TCP pool no longer needs, and logs what it refused
    /// and, when the last connection is gone, how much heap is in use.
    fn reap(&self, inner: &mut Inner, now_ns: u64) {
        inner.reaped_at = now_ns;
        let Inner { sockets, pool, .. } = inner;
        let (remaining, touched) = pool.reap(sockets);
        let busy = remaining > 0;
        if (inner.busy || touched) && !busy {
            match mirage_runtime::resources::heap() {
                Some(mirage_runtime::Heap {
                    size: Some(size),
                    used,
                }) => {
                    log::debug!(target: "net", "no connections left; heap: {used} of {size} bytes in use")
                }
                Some(heap) => {
                    log::debug!(target: "net", "no connections left; heap: {} bytes in use", heap.used)
                }
                None => log::debug!(target: "net", "no connections left"),
            }
        }
        inner.busy = busy;
        if now_ns >= inner.pressure_at.saturating_add(PRESSURE_REPORT_NS) {
            let pressure = inner.pool.take_pressure();
            if pressure.evicted > 0 {
                log::warn!(target: "tcp", "dropped {} half-open connections to admit new ones (a SYN flood?)", pressure.evicted);
            }
            if pressure.refused > 0 {
                let max = inner.pool.limits().max_connections;
                log::warn!(target: "tcp", "refused {} connections: all {max} sockets in use (--tcp-connections)", pressure.refused);
            }
            inner.pressure_at = now_ns;
        }
    }

    /// `due()` is when the driver must next run by itself: smoltcp's next timer, or the next
    /// reaping while sockets wait to be freed.
    fn due(&self) -> Option<u64> {
        let mut inner = self.inner.borrow_mut();
        let Inner {
            iface,
            sockets,
            pool,
            reaped_at,
            ..
        } = &mut *inner;
        let now_ns = mirage_runtime::executor::now_ns();
        let smoltcp = iface
            .poll_delay(now(), sockets)
            .map(|d| now_ns.saturating_add(d.total_micros().saturating_mul(1000)));
        let reap = pool
            .needs_reaping()
            .then(|| reaped_at.saturating_add(REAP_INTERVAL_NS).max(now_ns));
        match (smoltcp, reap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `received(frame)` hands a frame to smoltcp, after the layer readers' copies and the TCP
    /// pool's admission of a SYN.
    fn received(&self, frame: Vec<u8>) {
        self.observe(&frame);
        self.inner.borrow_mut().device.rx.push_back(frame);
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() >= TAP_QUEUE {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// `syn_to(datagram, ours)` is the destination port and the source of a TCP SYN (without
/// ACK) in IPv4 `datagram` addressed to `ours`, the first segment of a connection attempt.
fn syn_to(datagram: &[u8], ours: Option<Ipv4Addr>) -> Option<(u16, IpEndpoint)> {
    let ip = Ipv4Packet::new_checked(datagram).ok()?;
    if Some(ip.dst_addr()) != ours
        || ip.next_header() != IpProtocol::Tcp
        || ip.more_frags()
        || ip.frag_offset() != 0
    {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    (tcp.syn() && !tcp.ack()).then(|| {
        let src = IpEndpoint::new(ip.src_addr().into(), tcp.src_port());
        (tcp.dst_port(), src)
    })
}

/// `random_seed(mac)` is the seed of smoltcp's generator (initial sequence numbers, ephemeral
/// ports, DHCP transaction ids): the platform's entropy, or, on a machine without a source,
/// the MAC and the clock, with a warning that connections are then predictable.
fn random_seed(mac: Mac) -> u64 {
    if let Some(seed) = mirage_runtime::resources::entropy() {
        return seed;
    }
    log::warn!(target: "net", "no entropy source: TCP sequence numbers and ports are predictable");
    mac.0
        .iter()
        .fold(mirage_runtime::executor::now_ns(), |h, &b| {
            h.rotate_left(8) ^ u64::from(b)
        })
}

/// `split_frame(frame)` is a frame's source, protocol and payload, if it is long enough.
pub(crate) fn split_frame(frame: &[u8]) -> Option<(Mac, EtherType, &[u8])> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let src = Mac(eth.src_addr().0);
    let proto = EtherType::from_u16(u16::from(eth.ethertype()));
    Some((src, proto, &frame[ETHERNET_HEADER..]))
}

/// What woke the driver.
enum Event {
    Frame(Result<usize, crate::NetError>),
    Due,
}

/// `drive(core)` is the driver task: poll the interface, send what it produced, then wait
/// for frames, a kick or the next deadline.
async fn drive<N: Network>(core: Rc<Core<N>>) {
    let frame_len = core.net.mtu() + ETHERNET_HEADER + 4;
    let mut budget = FRAME_BUDGET;
    loop {
        // A flood of frames must not starve the tasks that use the stack.
        budget -= 1;
        if budget == 0 {
            budget = FRAME_BUDGET;
            mirage_runtime::yield_now().await;
        }
        core.kicked.set(false);
        core.poll();
        #[cfg(feature = "dhcp")]
        core.dhcp_events();
        core.wake_changed();
        loop {
            let frame = core.inner.borrow_mut().device.tx.pop_front();
            let Some(frame) = frame else { break };
            if let Err(e) = core.net.send(&frame).await {
                log::warn!(target: "net", "dropped an outgoing frame: {e}");
            }
            core.inner.borrow_mut().device.recycle(frame);
        }
        if core.kicked.get() || !core.inner.borrow().device.tx.is_empty() {
            continue;
        }
        let deadline = core.due();
        let mut buf = core.inner.borrow_mut().device.frame_buffer();
        buf.resize(frame_len, 0);
        let event = {
            let mut recv = pin!(core.net.recv(&mut buf));
            let mut timer = pin!(deadline.map(mirage_runtime::sleep_until));
            poll_fn(|cx| {
                if let Poll::Ready(r) = recv.as_mut().poll(cx) {
                    return Poll::Ready(Event::Frame(r));
                }
                if core.kicked.get() {
                    return Poll::Ready(Event::Due);
                }
                *core.driver.borrow_mut() = Some(cx.waker().clone());
                match timer.as_mut().as_pin_mut() {
                    Some(t) => t.poll(cx).map(|()| Event::Due),
                    None => Poll::Pending,
                }
            })
            .await
        };
        match event {
            Event::Frame(Ok(n)) => {
                buf.truncate(n);
                core.received(buf);
                receive_ready(&core, frame_len).await;
            }
            Event::Frame(Err(e)) => {
                log::warn!(target: "net", "receive failed: {e}");
                mirage_runtime::sleep_until(mirage_runtime::executor::now_ns() + 10_000_000).await;
            }
            Event::Due => {}
        }
    }
}

/// `receive_ready(core, frame_len)` takes up to [`FRAME_BATCH`] more frames that the device
/// already holds, without waiting for any.
async fn receive_ready<N: Network>(core: &Core<N>, frame_len: usize) {
    for _ in 1..FRAME_BATCH {
        let mut buf = core.inner.borrow_mut().device.frame_buffer();
        buf.resize(frame_len, 0);
        let got = {
            let mut recv = pin!(core.net.recv(&mut buf));
            poll_fn(|cx| Poll::Ready(recv.as_mut().poll(cx))).await
        };
        match got {
            Poll::Ready(Ok(n)) => {
                buf.truncate(n);
                core.received(buf);
            }
            // Nothing more now (the receive is cancel-safe), or an error the next wait reports.
            _ => break,
        }
    }
}
