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

mod connections;
mod driver;
mod pool;
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
pub use self::pool::TcpLimits;
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
        match (address, gateway) {
            (Some(a), Some(gw)) => log::info!(target: "ipv4", "address {a}, gateway {gw}"),
            (Some(a), None) => log::info!(target: "ipv4", "address {a}, no gateway"),
            (None, _) => log::warn!(target: "ipv4", "no address: --ipv4 is unset"),
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
        match eth.core.gateway() {
            Some(gw) => log::info!(target: "dhcp", "leased {address}, gateway {gw}"),
            None => log::info!(target: "dhcp", "leased {address}, no gateway"),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use core::cell::{Cell, RefCell};
    use core::future::poll_fn;
    use core::net::SocketAddrV4;
    use core::task::{Poll, Waker};

    use crate::{Flow as _, Listener as _, Tcp as _, Udp as _, UdpSocket as _};
    use alloc::string::ToString;
    use alloc::vec;
    use smoltcp::wire::{EthernetAddress, EthernetFrame, EthernetProtocol};

    /// One direction of a link: frames in flight and the receiver's waker.
    #[derive(Default)]
    struct Lane {
        frames: VecDeque<Vec<u8>>,
        waker: Option<Waker>,
    }

    /// One end of an in-memory Ethernet link.
    #[derive(Clone)]
    struct Wire {
        mac: Mac,
        rx: Rc<RefCell<Lane>>,
        tx: Rc<RefCell<Lane>>,
    }

    fn link() -> (Wire, Wire) {
        let (ab, ba) = (Rc::default(), Rc::default());
        let a = Wire {
            mac: Mac([2, 0, 0, 0, 0, 1]),
            rx: Rc::clone(&ba),
            tx: Rc::clone(&ab),
        };
        let b = Wire {
            mac: Mac([2, 0, 0, 0, 0, 2]),
            rx: ab,
            tx: ba,
        };
        (a, b)
    }

    impl Network for Wire {
        fn mac(&self) -> Mac {
            self.mac
        }

        fn mtu(&self) -> usize {
            1500
        }

        async fn send(&self, frame: &[u8]) -> Result<(), crate::NetError> {
            let mut lane = self.tx.borrow_mut();
            lane.frames.push_back(frame.to_vec());
            if let Some(w) = lane.waker.take() {
                w.wake();
            }
            Ok(())
        }

        async fn recv(&self, buf: &mut [u8]) -> Result<usize, crate::NetError> {
            poll_fn(|cx| {
                let mut lane = self.rx.borrow_mut();
                match lane.frames.pop_front() {
                    Some(f) => {
                        buf[..f.len()].copy_from_slice(&f);
                        Poll::Ready(Ok(f.len()))
                    }
                    None => {
                        lane.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            })
            .await
        }
    }

    /// Virtual time: waiting jumps to the deadline.
    struct Virtual(Cell<u64>);

    impl mirage_runtime::Platform for Virtual {
        fn now_ns(&self) -> u64 {
            self.0.get()
        }

        fn wait(&self, deadline: Option<u64>) {
            let deadline = deadline.expect("every task waits and no timer is set");
            self.0.set(self.0.get().max(deadline));
        }
    }

    fn host(net: Wire, address: &str) -> (Arp<Wire>, Tcp<Wire>, Udp<Wire>) {
        host_with(net, address, TcpLimits::default())
    }

    fn host_with(net: Wire, address: &str, limits: TcpLimits) -> (Arp<Wire>, Tcp<Wire>, Udp<Wire>) {
        let eth = Ethernet::new(net);
        let arp = Arp::new(eth.clone());
        let prefix = address.parse().ok();
        let ip = Ipv4::new_static(eth, arp.clone(), prefix, None);
        (arp, Tcp::with_limits(ip.clone(), limits), Udp::new(ip))
    }

    /// `tcp_sockets(tcp)` is how many TCP sockets the stack holds.
    fn tcp_sockets(tcp: &Tcp<Wire>) -> usize {
        tcp.core().inner.borrow().pool.open()
    }

    /// `syn(src, dst)` is an Ethernet frame carrying a TCP SYN from `src` to `dst`, as an
    /// attacker forges them (to the MAC of host 2 of `link()`).
    fn syn(src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
        segment(src, dst, smoltcp::wire::TcpControl::Syn, 7, None)
    }

    /// `segment(src, dst, control, seq, ack)` is an Ethernet frame carrying a TCP segment
    /// without payload from `src` (MAC 02:00:00:00:00:09) to `dst` (the MAC of host 2 of
    /// `link()`).
    fn segment(
        src: SocketAddrV4,
        dst: SocketAddrV4,
        control: smoltcp::wire::TcpControl,
        seq: u32,
        ack: Option<u32>,
    ) -> Vec<u8> {
        segment_with(src, dst, control, seq, ack, &[])
    }

    /// `segment_with(src, dst, control, seq, ack, payload)` is `segment(...)` carrying
    /// `payload`.
    fn segment_with(
        src: SocketAddrV4,
        dst: SocketAddrV4,
        control: smoltcp::wire::TcpControl,
        seq: u32,
        ack: Option<u32>,
        payload: &[u8],
    ) -> Vec<u8> {
        use smoltcp::wire::{
            EthernetRepr, IpAddress, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr, TcpSeqNumber,
        };
        let tcp = TcpRepr {
            src_port: src.port(),
            dst_port: dst.port(),
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: (control == smoltcp::wire::TcpControl::Syn).then_some(1460),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let ip = Ipv4Repr {
            src_addr: *src.ip(),
            dst_addr: *dst.ip(),
            next_header: smoltcp::wire::IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut frame = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let caps = smoltcp::phy::ChecksumCapabilities::default();
        let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.emit(&mut e);
        let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut p, &caps);
        let mut t = TcpPacket::new_unchecked(p.payload_mut());
        tcp.emit(
            &mut t,
            &IpAddress::Ipv4(*src.ip()),
            &IpAddress::Ipv4(*dst.ip()),
            &caps,
        );
        frame
    }

    /// `echo(listener)` echoes every connection `listener` accepts, one at a time.
    async fn echo(listener: Listener<Wire>) {
        loop {
            let flow = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                match flow.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => flow.write(&buf[..n]).await.unwrap(),
                }
            }
        }
    }

    /// `ping_pong(tcp, dst)` connects to `dst`, sends a word and reads it back.
    async fn ping_pong(tcp: &Tcp<Wire>, dst: SocketAddrV4) -> Result<(), crate::TcpError> {
        let flow = tcp.connect(dst).await?;
        flow.write(b"ping").await?;
        let mut buf = [0u8; 4];
        let n = flow.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"ping");
        Ok(())
    }

    fn sleep(ns: u64) -> mirage_runtime::Sleep {
        mirage_runtime::sleep_until(mirage_runtime::executor::now_ns() + ns)
    }

    #[test]
    fn a_syn_flood_leaves_the_listener_listening_and_its_memory_bounded() {
        let limits = TcpLimits {
            max_connections: 40,
            buffer: 2048,
            handshake_timeout_s: 5,
        };
        mirage_runtime::block_on(&Virtual(Cell::new(1)), async {
            let (a, b) = link();
            let flood = Rc::clone(&a.tx);
            let (_, client, _) = host(a, "10.0.0.1/24");
            let (_, server, _) = host_with(b, "10.0.0.2/24", limits);
            let dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
            mirage_runtime::spawn(echo(server.listen(80).await.unwrap()));
            ping_pong(&client, dst).await.unwrap();

            // 5,000 SYNs from addresses that never answer, in bursts.
            for i in 0..5000u32 {
                let src = Ipv4Addr::new(10, 0, 0, 100 + (i % 100) as u8);
                let port = 1024 + (i / 100) as u16;
                {
                    let mut lane = flood.borrow_mut();
                    lane.frames
                        .push_back(syn(SocketAddrV4::new(src, port), dst));
                    if let Some(w) = lane.waker.take() {
                        w.wake();
                    }
                }
                if i % 50 == 49 {
                    mirage_runtime::yield_now().await;
                    assert!(tcp_sockets(&server) <= 40, "{}", tcp_sockets(&server));
                }
            }
            // Mid-flood, a real client still gets through...
            ping_pong(&client, dst).await.unwrap();
            assert!(tcp_sockets(&server) <= 40);
            // ...and once the half-open connections time out, their sockets are freed: the
            // two kept listening are all that is left.
            sleep(7_000_000_000).await;
            assert_eq!(tcp_sockets(&server), pool::SPARE_LISTENERS);
            ping_pong(&client, dst).await.unwrap();
        });
    }

    /// A peer of the test's own at 10.0.0.9 (MAC 02:00:00:00:00:09), speaking raw frames to
    /// the host at the other end of its link.
    struct RawPeer(Wire);

    impl RawPeer {
        /// `send(frame)` puts `frame` on the link.
        fn send(&self, frame: Vec<u8>) {
            let mut lane = self.0.tx.borrow_mut();
            lane.frames.push_back(frame);
            if let Some(w) = lane.waker.take() {
                w.wake();
            }
        }

        /// `clear()` forgets what the host sent.
        fn clear(&self) {
            self.0.rx.borrow_mut().frames.clear();
        }

        /// `next_segment()` is the host's next TCP segment (SYN?, FIN?, seq, payload length),
        /// answering ARP on the way.
        async fn next_segment(&self) -> (bool, bool, u32, u32) {
            use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, Ipv4Packet, TcpPacket};
            for _ in 0..1000 {
                sleep(1_000_000).await;
                let Some(frame) = self.0.rx.borrow_mut().frames.pop_front() else {
                    continue;
                };
                let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
                if eth.ethertype() == EthernetProtocol::Arp {
                    let reply = ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Reply,
                        source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
                        source_protocol_addr: Ipv4Addr::new(10, 0, 0, 9),
                        target_hardware_addr: eth.src_addr(),
                        target_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
                    };
                    let mut f = vec![0u8; 14 + reply.buffer_len()];
                    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
                    e.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 9]));
                    e.set_dst_addr(eth.src_addr());
                    e.set_ethertype(EthernetProtocol::Arp);
                    reply.emit(&mut ArpPacket::new_unchecked(e.payload_mut()));
                    self.send(f);
                    continue;
                }
                let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
                let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
                let seq = tcp.seq_number().0 as u32;
                return (tcp.syn(), tcp.fin(), seq, tcp.payload().len() as u32);
            }
            panic!("the host sent nothing");
        }
    }

    /// `fragments(frame, ident)` is the IPv4 datagram in Ethernet `frame` cut in two
    /// fragments, datagram `ident`, its payload split after 24 bytes.
    fn fragments(frame: &[u8], ident: u16) -> [Vec<u8>; 2] {
        use smoltcp::wire::Ipv4Packet;
        let (head, payload) = frame.split_at(14 + 20);
        let (first, second) = payload.split_at(24);
        [(0, first, true), (24, second, false)].map(|(offset, part, more)| {
            let mut f = [head, part].concat();
            let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
            ip.set_total_len(20 + part.len() as u16);
            ip.set_ident(ident);
            ip.set_dont_frag(false);
            ip.set_more_frags(more);
            ip.set_frag_offset(offset);
            ip.fill_checksum();
            f
        })
    }

    #[test]
    fn a_fragmented_segment_reaches_its_connection_whichever_fragment_comes_last() {
        use smoltcp::wire::TcpControl;
        let (peer, server_end) = link();
        let peer = RawPeer(peer);
        let src = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 4000);
        let dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
        mirage_runtime::block_on(&Virtual(Cell::new(1)), async {
            let (_, server, _) = host(server_end, "10.0.0.2/24");
            mirage_runtime::spawn(echo(server.listen(80).await.unwrap()));
            peer.send(syn(src, dst));
            let (syn_ack, _, isn, _) = peer.next_segment().await;
            assert!(syn_ack);
            let data = b"fragmented!!";
            let (mut seq, mut ack) = (8, isn + 1);
            for (ident, last_first) in [(1, false), (2, true)] {
                let frame = segment_with(src, dst, TcpControl::Psh, seq, Some(ack), data);
                let [first, last] = fragments(&frame, ident);
                let order = if last_first {
                    [last, first]
                } else {
                    [first, last]
                };
                order.into_iter().for_each(|f| peer.send(f));
                // The echo, not a retransmission of the one before.
                let echo = loop {
                    let (_, _, at, len) = peer.next_segment().await;
                    if len > 0 {
                        break (at, len);
                    }
                };
                assert_eq!(echo, (ack, data.len() as u32));
                seq += data.len() as u32;
                ack += data.len() as u32;
            }
        });
    }

    #[test]
    fn a_reset_without_ack_ends_the_connection_not_a_listener_on_its_port() {
        use smoltcp::wire::TcpControl;
        let (peer, server_end) = link();
        let peer = RawPeer(peer);
        let dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
        let (open, left) = mirage_runtime::block_on(&Virtual(Cell::new(1)), async {
            let (_, server, _) = host(server_end, "10.0.0.2/24");
            let listener = server.listen(80).await.unwrap();
            // The server answers each connection and closes it.
            mirage_runtime::spawn(async move {
                loop {
                    let flow = listener.accept().await.unwrap();
                    flow.write(b"hello").await.unwrap();
                }
            });
            // Two connections, from ports 4000 and 4001; the first ends cleanly, so that the
            // second's socket comes after a listening one in smoltcp's socket set (freed
            // slots are reused first), as it happens after the first moments of any server.
            for port in [4000, 4001] {
                let src = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), port);
                peer.send(syn(src, dst));
                let (syn_ack, _, isn, _) = peer.next_segment().await;
                assert!(syn_ack);
                peer.send(segment(src, dst, TcpControl::None, 8, Some(isn + 1)));
                let (mut fin, mut end) = (false, isn + 1);
                while !fin {
                    let (_, f, seq, len) = peer.next_segment().await;
                    (fin, end) = (f, seq + len + u32::from(f));
                }
                if port == 4000 {
                    // Acknowledge all and close too: the server's socket is freed.
                    peer.send(segment(src, dst, TcpControl::Fin, 8, Some(end)));
                    sleep(1_000_000_000).await;
                    peer.clear();
                } else {
                    // The peer is gone and resets, without ACK, as Linux does.
                    peer.send(segment(src, dst, TcpControl::Rst, 8, None));
                }
            }
            let open = tcp_sockets(&server);
            // Well within the close timeout (30 s), the connection's socket is freed.
            sleep(2_000_000_000).await;
            (open, tcp_sockets(&server))
        });
        assert!(open > pool::SPARE_LISTENERS, "{open}");
        assert_eq!(left, pool::SPARE_LISTENERS);
    }

    #[test]
    fn connections_beyond_the_budget_are_refused_at_once_and_served_again_after() {
        let limits = TcpLimits {
            max_connections: 6,
            ..TcpLimits::default()
        };
        mirage_runtime::block_on(&Virtual(Cell::new(1)), async {
            let (a, b) = link();
            let (_, client, _) = host(a, "10.0.0.1/24");
            let (_, server, _) = host_with(b, "10.0.0.2/24", limits);
            let dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
            let listener = server.listen(80).await.unwrap();
            let held = mirage_runtime::spawn(async move {
                let mut flows = Vec::new();
                loop {
                    flows.push(listener.accept().await.unwrap());
                }
            });
            let mut open = Vec::new();
            let started = mirage_runtime::executor::now_ns();
            let refused = loop {
                match client.connect(dst).await {
                    Ok(flow) => open.push(flow),
                    Err(e) => break e,
                }
                assert!(open.len() <= 6);
            };
            assert_eq!(refused, crate::TcpError::Refused);
            assert!(mirage_runtime::executor::now_ns() - started < 1_000_000_000);
            assert!(tcp_sockets(&server) <= 6);
            drop(held);
            drop(open);
        });
    }

    #[test]
    fn connecting_to_a_silent_peer_times_out() {
        let limits = TcpLimits {
            handshake_timeout_s: 3,
            ..TcpLimits::default()
        };
        let (got, waited) = mirage_runtime::block_on(&Virtual(Cell::new(1)), async {
            let (a, _b) = link();
            let (_, client, _) = host_with(a, "10.0.0.1/24", limits);
            let started = mirage_runtime::executor::now_ns();
            let got = client
                .connect(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 80))
                .await
                .map(drop);
            (got, mirage_runtime::executor::now_ns() - started)
        });
        assert_eq!(got, Err(crate::TcpError::TimedOut));
        assert!((3_000_000_000..4_000_000_000).contains(&waited), "{waited}");
    }

    #[test]
    fn limits_come_from_the_keys_or_the_heap() {
        assert_eq!(
            TcpLimits::from_keys(0, 4096, 7),
            Ok(TcpLimits {
                max_connections: 0,
                buffer: 4096,
                handshake_timeout_s: 7
            })
        );
        let e = TcpLimits::from_keys(-1, 4096, 7).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--tcp-connections=-1 is out of range (0 to 1048576)"
        );
        assert!(TcpLimits::from_keys(0, 10, 7).is_err());
        assert!(TcpLimits::from_keys(0, 4096, 0).is_err());
        let heap = |size| mirage_runtime::Heap { size, used: 0 };
        let sized = TcpLimits::default().resolve(Some(heap(Some(64 << 20))));
        // Half of 64 MiB in connections of two 8 KiB buffers and their overhead.
        assert_eq!(sized.max_connections, (32 << 20) / (22 * 1024));
        let unix = TcpLimits::default().resolve(Some(heap(None)));
        assert_eq!(unix.max_connections, 16_384);
        let given = TcpLimits {
            max_connections: 9,
            ..TcpLimits::default()
        };
        assert_eq!(given.resolve(Some(heap(Some(1 << 20)))).max_connections, 9);
    }

    #[test]
    fn raw_ipv4_and_ethernet_reads_see_what_the_peer_writes() {
        let (ip_got, frame_got) = mirage_runtime::block_on(&Virtual(Cell::new(1)), async {
            let (a, b) = link();
            let eth_a = Ethernet::new(a);
            let eth_b = Ethernet::new(b);
            let prefix = |p: &str| p.parse().ok();
            let ip_a = Ipv4::new_static(
                eth_a.clone(),
                Arp::new(eth_a.clone()),
                prefix("10.0.0.1/24"),
                None,
            );
            let ip_b = Ipv4::new_static(
                eth_b.clone(),
                Arp::new(eth_b.clone()),
                prefix("10.0.0.2/24"),
                None,
            );
            let reader = mirage_runtime::spawn(async move {
                let mut buf = [0u8; 64];
                let (src, proto, n) = crate::Ipv4::read(&ip_b, &mut buf).await.unwrap();
                (src, proto, buf[..n].to_vec())
            });
            let frames = mirage_runtime::spawn(async move {
                let mut buf = [0u8; 1514];
                loop {
                    let (src, proto, n) = crate::Ethernet::read(&eth_b, &mut buf).await.unwrap();
                    if proto == EtherType::Other(0x88b5) {
                        break (src, buf[..n].to_vec());
                    }
                }
            });
            mirage_runtime::yield_now().await;
            crate::Ipv4::write(&ip_a, Ipv4Addr::new(10, 0, 0, 2), 253, b"raw")
                .await
                .unwrap();
            let local = crate::Ethernet::write(
                &eth_a,
                Mac([2, 0, 0, 0, 0, 2]),
                EtherType::Other(0x88b5),
                b"experimental",
            );
            local.await.unwrap();
            let too_far = crate::Ipv4::write(&ip_a, Ipv4Addr::new(192, 0, 2, 1), 253, b"x").await;
            assert_eq!(
                too_far,
                Err(Ipv4Error::NoRoute {
                    dst: Ipv4Addr::new(192, 0, 2, 1)
                })
            );
            (reader.await, frames.await)
        });
        assert_eq!(ip_got, (Ipv4Addr::new(10, 0, 0, 1), 253, b"raw".to_vec()));
        assert_eq!(frame_got.0, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(frame_got.1, b"experimental");
    }

    #[test]
    fn two_stacks_resolve_each_other_and_carry_tcp_and_udp() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let expected = data.clone();
        let (mac, echoed, datagram) = mirage_runtime::block_on(&Virtual(Cell::new(1)), async {
            let (a, b) = link();
            let (arp_a, tcp_a, udp_a) = host(a, "10.0.0.1/24");
            let (_, tcp_b, udp_b) = host(b, "10.0.0.2/24");
            let mac = crate::Arp::query(&arp_a, Ipv4Addr::new(10, 0, 0, 2)).await;
            let listener = tcp_b.listen(80).await.unwrap();
            let twice = tcp_b.listen(80).await.map(drop);
            assert_eq!(twice, Err(crate::TcpError::AddrInUse { port: 80 }));
            let any = tcp_b.listen(0).await.unwrap();
            assert!(any.port() >= 49152);
            drop(any);
            mirage_runtime::spawn(async move {
                let flow = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                loop {
                    let n = flow.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    flow.write(&buf[..n]).await.unwrap();
                }
                flow.close().await.unwrap();
            });
            let flow = tcp_a
                .connect(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80))
                .await
                .unwrap();
            let mut echoed = Vec::new();
            let mut buf = [0u8; 4096];
            // Each chunk goes and comes back before the next, so neither window fills.
            for chunk in data.chunks(10_000) {
                flow.write(chunk).await.unwrap();
                let want = echoed.len() + chunk.len();
                while echoed.len() < want {
                    let n = flow.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the echo ended early");
                    echoed.extend_from_slice(&buf[..n]);
                }
            }
            flow.shutdown().await.unwrap();
            loop {
                let n = flow.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                echoed.extend_from_slice(&buf[..n]);
            }
            let sa = udp_a.bind(5000).await.unwrap();
            let sb = udp_b.bind(6000).await.unwrap();
            sa.send_to(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 6000), b"hi")
                .await
                .unwrap();
            let mut dgram = [0u8; 16];
            let (n, from) = sb.recv_from(&mut dgram).await.unwrap();
            assert_eq!(from, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000));
            (mac, echoed, dgram[..n].to_vec())
        });
        assert_eq!(mac, Ok(Mac([2, 0, 0, 0, 0, 2])));
        assert!(
            echoed == expected,
            "{} of {} bytes",
            echoed.len(),
            expected.len()
        );
        assert_eq!(datagram, b"hi");
    }
}
