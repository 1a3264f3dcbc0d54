//! TCP and UDP on the direct stack: smoltcp sockets behind the `tcp` and `udp` signatures.

use alloc::rc::Rc;
use alloc::vec;
use core::future::poll_fn;
use core::net::SocketAddrV4;
use core::task::{Context, Poll};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp, AnySocket};
use smoltcp::wire::{IpAddress, IpEndpoint};

use super::connections::Conn;
use super::driver::{Core, Inner};
use super::pool::TcpLimits;
use super::Ipv4;
use crate::network::Network;
use crate::tcp::TcpError;
use crate::udp::UdpError;

/// Datagrams a UDP socket buffers each way.
const UDP_PACKETS: usize = 32;
/// Bytes of datagrams a UDP socket buffers each way: room for the largest datagram the
/// stack reassembles.
const UDP_BUFFER: usize = 64 * 1024;

fn v4(endpoint: IpEndpoint) -> SocketAddrV4 {
    let IpAddress::Ipv4(ip) = endpoint.addr;
    SocketAddrV4::new(ip, endpoint.port)
}

/// `Tcp<N>` is TCP on the direct stack over `N`.
pub struct Tcp<N: Network> {
    core: Rc<Core<N>>,
}

impl<N: Network> Clone for Tcp<N> {
    fn clone(&self) -> Self {
        Tcp {
            core: self.core.clone(),
        }
    }
}

impl<N: Network> Tcp<N> {
    /// `new(ip)` is TCP over `ip`, with the default [`TcpLimits`].
    pub fn new(ip: Ipv4<N>) -> Tcp<N> {
        Tcp::with_limits(ip, TcpLimits::default())
    }

    /// `with_limits(ip, limits)` is TCP over `ip`, bounded by `limits` (a connection count of
    /// 0 is sized from the heap the image has).
    pub fn with_limits(ip: Ipv4<N>, limits: TcpLimits) -> Tcp<N> {
        let limits = limits.resolve(mirage_runtime::resources::heap());
        ip.core.set_tcp_limits(limits);
        log::info!(
            target: "tcp",
            "up to {} connections, {} B buffers each way, {} s handshakes",
            limits.max_connections,
            limits.buffer,
            limits.handshake_timeout_s
        );
        Tcp { core: ip.core }
    }

    pub(crate) fn core(&self) -> &Core<N> {
        &self.core
    }
}

impl<N: Network + 'static> crate::Tcp for Tcp<N> {
    type Flow = Flow<N>;
    type Listener = Listener<N>;

    async fn listen(&self, port: u16) -> Result<Listener<N>, TcpError> {
        let port = if port == 0 {
            self.core.ephemeral_port()
        } else {
            port
        };
        let opened = {
            let mut inner = self.core.inner.borrow_mut();
            let Inner { conns, pool, .. } = &mut *inner;
            pool.listen(conns, port)
        };
        match opened {
            Ok(true) => {}
            Ok(false) => return Err(TcpError::AddrInUse { port }),
            Err(()) => return Err(TcpError::Exhausted),
        }
        log::debug!(target: "tcp", "listening on port {port}");
        Ok(Listener {
            tcp: self.clone(),
            port,
        })
    }

    async fn connect(&self, dst: SocketAddrV4) -> Result<Flow<N>, TcpError> {
        let local = self.core.ephemeral_port();
        let (handle, timeout) = {
            let mut inner = self.core.inner.borrow_mut();
            let Inner {
                iface, conns, pool, ..
            } = &mut *inner;
            let handle = pool.socket(conns).ok_or(TcpError::Exhausted)?;
            let timeout = pool.connect_timeout();
            let socket = conns.get_mut(handle);
            socket.set_timeout(Some(timeout));
            let remote = IpEndpoint::new((*dst.ip()).into(), dst.port());
            if socket.connect(iface.context(), remote, local).is_err() {
                conns.remove(handle);
                pool.forget(1);
                return Err(TcpError::Unreachable);
            }
            conns.route(handle, remote, local);
            (handle, timeout)
        };
        // From here on, dropping the flow (an error, a cancelled connect) frees the socket.
        let flow = Flow {
            core: self.core.clone(),
            handle,
            peer: dst,
        };
        self.core.kick();
        // In smoltcp's clock (microseconds), which times the handshake out.
        let started = super::driver::now();
        poll_fn(|cx| {
            flow.with(|s| match s.state() {
                tcp::State::Established | tcp::State::CloseWait => Poll::Ready(Ok(())),
                tcp::State::Closed => {
                    let waited = super::driver::now() - started;
                    Poll::Ready(Err(if waited >= timeout {
                        TcpError::TimedOut
                    } else {
                        TcpError::Refused
                    }))
                }
                _ => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await?;
        {
            let mut inner = self.core.inner.borrow_mut();
            let Inner { conns, pool, .. } = &mut *inner;
            pool.established(conns, handle);
        }
        Ok(flow)
    }
}

/// A `Listener<N>` accepts connections to one port of the direct stack. The stack's TCP pool
/// holds its backlog (see the `pool` module): dropping the listener closes the port.
pub struct Listener<N: Network> {
    tcp: Tcp<N>,
    port: u16,
}

impl<N: Network> Listener<N> {
    /// `port()` is the local port, the one chosen when `listen(0)` asked for any.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Flow<N>, TcpError>> {
        let core = &self.tcp.core;
        let accepted = {
            let mut inner = core.inner.borrow_mut();
            let Inner { conns, pool, .. } = &mut *inner;
            pool.accept(conns, self.port, cx.waker())
        };
        match accepted {
            Some((handle, peer)) => {
                // Its keep-alive timer is new: the driver files it.
                core.kick();
                Poll::Ready(Ok(Flow {
                    core: core.clone(),
                    handle,
                    peer: v4(peer),
                }))
            }
            None => Poll::Pending,
        }
    }
}

impl<N: Network> crate::Listener for Listener<N> {
    type Flow = Flow<N>;

    async fn accept(&self) -> Result<Flow<N>, TcpError> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }
}

impl<N: Network> Drop for Listener<N> {
    fn drop(&mut self) {
        let mut inner = self.tcp.core.inner.borrow_mut();
        let Inner { conns, pool, .. } = &mut *inner;
        pool.unlisten(conns, self.port);
    }
}

/// A `Flow<N>` is one TCP connection on the direct stack. Dropping it closes it.
pub struct Flow<N: Network> {
    core: Rc<Core<N>>,
    handle: Conn,
    peer: SocketAddrV4,
}

impl<N: Network> Flow<N> {
    fn with<R>(&self, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> R {
        let mut inner = self.core.inner.borrow_mut();
        f(inner.conns.get_mut(self.handle))
    }
}

impl<N: Network> crate::Flow for Flow<N> {
    fn peer(&self) -> SocketAddrV4 {
        self.peer
    }

    async fn read(&self, buf: &mut [u8]) -> Result<usize, TcpError> {
        let n = poll_fn(|cx| {
            self.with(|s| match s.recv_slice(buf) {
                Ok(0) if s.may_recv() => {
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
                Ok(n) => Poll::Ready(Ok(n)),
                Err(tcp::RecvError::Finished) => Poll::Ready(Ok(0)),
                Err(tcp::RecvError::InvalidState) => Poll::Ready(Err(TcpError::Reset)),
            })
        })
        .await?;
        // Reading opened the receive window: tell the peer.
        self.core.kick();
        Ok(n)
    }

    async fn write(&self, mut data: &[u8]) -> Result<(), TcpError> {
        while !data.is_empty() {
            let n = poll_fn(|cx| {
                self.with(|s| {
                    if !s.may_send() {
                        return Poll::Ready(Err(match s.state() {
                            tcp::State::Closed => TcpError::Reset,
                            _ => TcpError::Closed,
                        }));
                    }
                    match s.send_slice(data) {
                        Ok(0) => {
                            s.register_send_waker(cx.waker());
                            Poll::Pending
                        }
                        Ok(n) => Poll::Ready(Ok(n)),
                        Err(_) => Poll::Ready(Err(TcpError::Closed)),
                    }
                })
            })
            .await?;
            data = &data[n..];
            self.core.kick();
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), TcpError> {
        self.with(|s| s.close());
        self.core.kick();
        Ok(())
    }

    async fn close(self) -> Result<(), TcpError> {
        drop(self);
        Ok(())
    }
}

impl<N: Network> Drop for Flow<N> {
    fn drop(&mut self) {
        {
            let mut inner = self.core.inner.borrow_mut();
            let Inner { conns, pool, .. } = &mut *inner;
            pool.close(conns, self.handle);
        }
        self.core.kick();
    }
}

/// `Udp<N>` is UDP on the direct stack over `N`.
pub struct Udp<N: Network> {
    core: Rc<Core<N>>,
}

impl<N: Network> Clone for Udp<N> {
    fn clone(&self) -> Self {
        Udp {
            core: self.core.clone(),
        }
    }
}

impl<N: Network> Udp<N> {
    /// `new(ip)` is UDP over `ip`.
    pub fn new(ip: Ipv4<N>) -> Udp<N> {
        Udp { core: ip.core }
    }
}

impl<N: Network> crate::Udp for Udp<N> {
    type Socket = Datagrams<N>;

    async fn bind(&self, port: u16) -> Result<Datagrams<N>, UdpError> {
        let port = if port == 0 {
            self.core.ephemeral_port()
        } else {
            port
        };
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0u8; UDP_BUFFER],
            )
        };
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket
            .bind(port)
            .map_err(|_| UdpError::AddrInUse { port })?;
        let mut inner = self.core.inner.borrow_mut();
        let taken = inner
            .sockets
            .iter()
            .any(|(_, s)| udp::Socket::downcast(s).is_some_and(|u| u.endpoint().port == port));
        if taken {
            return Err(UdpError::AddrInUse { port });
        }
        let handle = inner.sockets.add(socket);
        Ok(Datagrams {
            core: self.core.clone(),
            handle,
            port,
        })
    }
}

/// `Datagrams<N>` is a UDP socket bound to one port of the direct stack.
pub struct Datagrams<N: Network> {
    core: Rc<Core<N>>,
    handle: SocketHandle,
    port: u16,
}

impl<N: Network> Datagrams<N> {
    fn with<R>(&self, f: impl FnOnce(&mut udp::Socket<'static>) -> R) -> R {
        let mut inner = self.core.inner.borrow_mut();
        f(inner.sockets.get_mut::<udp::Socket>(self.handle))
    }
}

impl<N: Network> crate::UdpSocket for Datagrams<N> {
    fn local_port(&self) -> u16 {
        self.port
    }

    async fn send_to(&self, dst: SocketAddrV4, data: &[u8]) -> Result<(), UdpError> {
        if self.core.address().is_none() {
            return Err(UdpError::Unreachable);
        }
        poll_fn(|cx| {
            self.with(|s| match s.send_slice(data, (*dst.ip(), dst.port())) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(udp::SendError::BufferFull) if data.len() <= s.payload_send_capacity() => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                Err(udp::SendError::BufferFull) => {
                    Poll::Ready(Err(UdpError::TooBig { len: data.len() }))
                }
                Err(udp::SendError::Unaddressable) => Poll::Ready(Err(UdpError::Unreachable)),
            })
        })
        .await?;
        self.core.kick();
        Ok(())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), UdpError> {
        poll_fn(|cx| {
            self.with(|s| match s.recv_slice(buf) {
                Ok((n, meta)) => Poll::Ready(Ok((n, v4(meta.endpoint)))),
                Err(udp::RecvError::Truncated) => {
                    Poll::Ready(Err(UdpError::TooBig { len: buf.len() }))
                }
                Err(udp::RecvError::Exhausted) => {
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }
}

impl<N: Network> Drop for Datagrams<N> {
    fn drop(&mut self) {
        self.core.inner.borrow_mut().sockets.remove(self.handle);
    }
}
