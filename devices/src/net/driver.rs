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
use smoltcp::time::Duration;
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, HardwareAddress, IpCidr, IpEndpoint, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket,
};

use crate::arp::ArpError;
use crate::ethernet::{EtherType, EthernetError};
use crate::ipv4::{Ipv4Error, Proto};
use crate::network::{Mac, Network};

use super::connections::{Conn, Connections};
use super::pool::{Pool, TcpLimits};

/// Frames smoltcp may queue for the driver to send before it is told to wait.
const TX_QUEUE: usize = 128;
/// Copies of received frames (or datagrams) kept for a layer reader that is behind.
const TAP_QUEUE: usize = 64;
/// ARP requests sent for one query before it fails, one a second.
const ARP_TRIES: u32 = 3;
/// Rounds the driver runs before it lets the other tasks run, when frames keep coming.
const FRAME_BUDGET: u32 = 32;
/// Frames the driver takes from the device, when they are there, before it lets the tasks
/// that use the stack run: each frame goes through smoltcp as it comes (with the socket it is
/// for alone), and the tasks then answer a batch of requests at once.
const FRAME_BATCH: usize = 1024;
/// How long smoltcp keeps a socket silent after it found its neighbour's address missing: an
/// ARP frame makes the driver poll the sockets whose timer falls within it.
const NEIGHBOUR_WAIT: Duration = Duration::from_millis(1000);
/// Frame buffers the driver keeps for reuse; beyond them, the allocator's size-class caches
/// serve a frame in constant time (and do not count as heap in use).
const SPARE_FRAMES: usize = 16;
/// How often the driver frees the sockets of finished connections, in nanoseconds.
const REAP_INTERVAL_NS: u64 = 250_000_000;
/// How often, at most, the driver logs that it evicted or refused connections.
const PRESSURE_REPORT_NS: u64 = 1_000_000_000;
/// Fragmented TCP segments whose socket the driver remembers, for their later fragments (as
/// many as smoltcp reassembles at once, and more).
const FRAGMENTED: usize = 4;
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
    /// The UDP and DHCP sockets: every frame that is not a TCP segment for a connection goes
    /// through smoltcp with these (ARP, ICMP, UDP, resets for unknown connections).
    pub(crate) sockets: SocketSet<'static>,
    /// The TCP sockets, each polled alone.
    pub(crate) conns: Connections,
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
    /// Whether a socket may have changed state since the listeners were last told.
    changed: bool,
    /// Where the first fragments of the last fragmented TCP segments went.
    fragments: VecDeque<(FragmentKey, Option<Conn>)>,
    /// The TCP sockets the driver polls in this round (kept for its room).
    dirty: Vec<Conn>,
}

impl Inner {
    /// `poll_frame(to, now)` runs smoltcp over the frame just queued: with the TCP socket
    /// `to`, or with the UDP and DHCP sockets.
    fn poll_frame(&mut self, to: Option<Conn>, now: Instant) {
        let Inner {
            iface,
            sockets,
            conns,
            device,
            changed,
            ..
        } = self;
        *changed |= match to {
            Some(conn) => conns.poll(conn, iface, device, now),
            None => iface.poll(now, device, sockets) == PollResult::SocketStateChanged,
        };
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
                conns: Connections::default(),
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
                changed: false,
                fragments: VecDeque::new(),
                dirty: Vec::new(),
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

    /// `set_tcp_limits(limits)` bounds TCP by `limits` (resolved) and gives the TCP sockets'
    /// table room for all of them up front, so that a burst of connections does not grow it:
    /// its room is never given back, and it would hold memory after the burst.
    pub(crate) fn set_tcp_limits(&self, limits: TcpLimits) {
        let mut inner = self.inner.borrow_mut();
        inner.pool.set_limits(limits);
        if inner.conns.is_empty() {
            // Without room, the table grows as connections come.
            let _ = inner.conns.reserve(limits.max_connections)
                && inner
                    .dirty
                    .try_reserve_exact(2 * limits.max_connections)
                    .is_ok();
        }
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

    /// `observe(frame)` learns neighbours from ARP, keeps copies for the layer readers, and
    /// says which TCP socket the frame is for (`None`: the UDP and DHCP sockets' set), with
    /// the TCP pool's admission of a SYN.
    fn observe(&self, frame: &[u8]) -> Option<Conn> {
        let mut inner = self.inner.borrow_mut();
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return None;
        };
        let mut to = None;
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
                // Sockets that found a neighbour missing wait for their timer: the answer
                // may be here.
                inner.conns.due(now() + NEIGHBOUR_WAIT);
            }
            EthernetProtocol::Ipv4 => {
                let ours = inner.address.map(|p| p.address());
                match tcp_route(eth.payload(), ours) {
                    Some(TcpRoute::Segment {
                        peer,
                        port,
                        syn,
                        fragment,
                    }) => {
                        let Inner { conns, pool, .. } = &mut *inner;
                        to = conns.lookup(peer, port, syn).or_else(|| {
                            let conn = syn.then(|| pool.admit(conns, port, peer)).flatten()?;
                            conns.route(conn, peer, port);
                            Some(conn)
                        });
                        if let Some(key) = fragment {
                            push_bounded(&mut inner.fragments, (key, to), FRAGMENTED);
                        }
                    }
                    Some(TcpRoute::Fragment(key)) => {
                        to = inner
                            .fragments
                            .iter()
                            .find(|(k, _)| *k == key)
                            .and_then(|&(_, to)| to);
                    }
                    None => {}
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
                                TAP_QUEUE,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
        if let Some(queue) = inner.frames.as_mut() {
            push_bounded(queue, frame.to_vec(), TAP_QUEUE);
        }
        to
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

    /// `poll()` runs smoltcp over the TCP sockets that tasks touched or whose timer is due
    /// (until the transmit queue is full: the rest wait for the next round, after the queue is
    /// sent), and over the UDP and DHCP sockets, then lets the TCP pool wake the listeners
    /// and, every [`REAP_INTERVAL_NS`], free the sockets of finished connections.
    fn poll(&self) {
        let mut inner = self.inner.borrow_mut();
        let now = now();
        inner.conns.due(now);
        let mut dirty = core::mem::take(&mut inner.dirty);
        inner.conns.take_dirty(&mut dirty);
        let mut polled = 0;
        for &conn in &dirty {
            if inner.device.tx.len() >= TX_QUEUE {
                break;
            }
            inner.poll_frame(Some(conn), now);
            polled += 1;
        }
        inner.conns.put_back(&dirty[polled..]);
        inner.dirty = dirty;
        inner.poll_frame(None, now);
        if core::mem::take(&mut inner.changed) {
            inner.pool.polled();
        }
        let now_ns = mirage_runtime::executor::now_ns();
        if now_ns >= inner.reaped_at.saturating_add(REAP_INTERVAL_NS) {
            self.reap(&mut inner, now_ns);
        }
    }

    /// `reap(inner, now_ns)` frees what the TCP pool no longer needs, and logs what it refused
    /// and, when the last connection is gone, how much heap is in use.
    fn reap(&self, inner: &mut Inner, now_ns: u64) {
        inner.reaped_at = now_ns;
        let Inner { conns, pool, .. } = inner;
        let (remaining, touched) = pool.reap(conns);
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

    /// `due()` is when the driver must next run by itself: a socket's next timer, or the next
    /// reaping while sockets wait to be freed.
    fn due(&self) -> Option<u64> {
        let mut inner = self.inner.borrow_mut();
        let Inner {
            iface,
            sockets,
            conns,
            pool,
            reaped_at,
            ..
        } = &mut *inner;
        let now_ns = mirage_runtime::executor::now_ns();
        let now = now();
        let timer = match (iface.poll_at(now, sockets), conns.next_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let smoltcp = timer.map(|at| {
            let wait = if at > now {
                (at - now).total_micros()
            } else {
                0
            };
            now_ns.saturating_add(wait.saturating_mul(1000))
        });
        // Sockets left for the next round: at once, but after the frames waiting.
        let smoltcp = if conns.has_dirty() {
            Some(now_ns)
        } else {
            smoltcp
        };
        let reap = pool
            .needs_reaping()
            .then(|| reaped_at.saturating_add(REAP_INTERVAL_NS).max(now_ns));
        match (smoltcp, reap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `received(frame)` hands a frame to smoltcp, with the one socket it is for, after the
    /// layer readers' copies and the TCP pool's admission of a SYN.
    fn received(&self, mut frame: Vec<u8>) {
        acknowledge_bare_reset(&mut frame);
        let to = self.observe(&frame);
        let mut inner = self.inner.borrow_mut();
        inner.device.rx.push_back(frame);
        inner.poll_frame(to, now());
    }
}

/// `acknowledge_bare_reset(frame)` sets the ACK flag of a TCP reset that has none, in an
/// IPv4 `frame` with a good checksum, so that smoltcp gives it to the connection it ends.
///
/// Linux answers a segment of a connection it no longer has with such a reset (sequence
/// number = the segment's acknowledgement), as for every connection a client closed with a
/// response still on its way. smoltcp offers a segment without ACK to the first socket that
/// accepts it, a socket listening on the port accepts it, and a listening socket ignores a
/// reset: the connection's socket never saw it, and kept retransmitting to a peer that kept
/// resetting it until its timeout (30 s once closed, more while established), holding its
/// buffers; under load, every round left such connections behind. With the flag set,
/// listening sockets refuse the segment, and the connection's socket checks the reset as
/// smoltcp checks every reset outside SYN-SENT, by its sequence number alone (in SYN-SENT,
/// where the acknowledgement matters, a reset without ACK is refused either way).
fn acknowledge_bare_reset(frame: &mut [u8]) {
    use smoltcp::wire::IpAddress;
    let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) else {
        return;
    };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
        return;
    };
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return;
    }
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    let Ok(mut tcp) = TcpPacket::new_checked(ip.payload_mut()) else {
        return;
    };
    if tcp.rst() && !tcp.ack() && tcp.verify_checksum(&src, &dst) {
        tcp.set_ack(true);
        tcp.fill_checksum(&src, &dst);
    }
}

/// `push_bounded(queue, item, max)` appends `item` to `queue`, dropping the oldest beyond `max`.
fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, max: usize) {
    if queue.len() >= max {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// A fragmented IPv4 datagram: its source and identification.
type FragmentKey = (Ipv4Addr, u16);

/// What routes an IPv4 datagram for the interface's address to a TCP socket.
enum TcpRoute {
    /// A segment from `peer` to local `port` (a SYN without ACK, a connection attempt, if
    /// `syn`), or the first fragment of one, the datagram `fragment`.
    Segment {
        peer: IpEndpoint,
        port: u16,
        syn: bool,
        fragment: Option<FragmentKey>,
    },
    /// A later fragment: it goes where its first one went, so that smoltcp finds the socket
    /// whichever fragment completes the segment.
    Fragment(FragmentKey),
}

/// `tcp_route(datagram, ours)` is how IPv4 `datagram` is routed to a TCP socket, if it is a
/// TCP segment (or a fragment of one) addressed to `ours`.
fn tcp_route(datagram: &[u8], ours: Option<Ipv4Addr>) -> Option<TcpRoute> {
    let ip = Ipv4Packet::new_checked(datagram).ok()?;
    if Some(ip.dst_addr()) != ours || ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let key = (ip.src_addr(), ip.ident());
    if ip.frag_offset() != 0 {
        return Some(TcpRoute::Fragment(key));
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(TcpRoute::Segment {
        peer: IpEndpoint::new(ip.src_addr().into(), tcp.src_port()),
        port: tcp.dst_port(),
        syn: tcp.syn() && !tcp.ack(),
        fragment: ip.more_frags().then_some(key),
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
        send_queued(&core).await;
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

/// `send_queued(core)` sends the frames smoltcp produced.
async fn send_queued<N: Network>(core: &Core<N>) {
    loop {
        let frame = core.inner.borrow_mut().device.tx.pop_front();
        let Some(frame) = frame else { break };
        if let Err(e) = core.net.send(&frame).await {
            log::warn!(target: "net", "dropped an outgoing frame: {e}");
        }
        core.inner.borrow_mut().device.recycle(frame);
    }
}

/// `receive_ready(core, frame_len)` takes up to [`FRAME_BATCH`] more frames that the device
/// already holds, without waiting for any, and sends the answers as they fill the queue.
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
                if core.inner.borrow().device.tx.len() >= TX_QUEUE {
                    send_queued(core).await;
                }
            }
            // Nothing more now (the receive is cancel-safe), or an error the next wait reports.
            _ => break,
        }
    }
}
