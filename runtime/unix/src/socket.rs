//! [`SocketStack`]: the host's TCP/IP through non-blocking sockets, driven by the reactor's
//! `poll(2)` (Mirage's `--net=socket`, `Tcpip_stack_socket`).
//!
//! Every socket is in non-blocking mode; an operation that would block awaits
//! [`reactor::ready`](crate::reactor::ready) on its descriptor, so a thousand connections are a thousand
//! descriptors in one `poll(2)`, not a thousand threads. Writes apply back-pressure: a flow's
//! [`write`](mirage_devices::Flow::write) returns only once the kernel has taken every byte.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use mirage_devices::{TcpError, UdpError};
use mirage_runtime::Interest;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::reactor::{forget, retry};

/// How many connections the kernel queues for [`Tcp::listen`] before `accept`.
const BACKLOG: i32 = 1024;

/// `SocketStack` is the host's own TCP/IP stack. It listens on every host address.
#[derive(Clone, Copy, Debug, Default)]
pub struct SocketStack;

impl SocketStack {
    /// `new()` is the socket stack.
    pub fn new() -> SocketStack {
        SocketStack
    }
}

impl mirage_devices::Stack for SocketStack {
    type Tcp = Tcp;
    type Udp = Udp;

    fn tcp(&self) -> Tcp {
        Tcp
    }

    fn udp(&self) -> Udp {
        Udp
    }

    /// The socket stack binds the unspecified address, so this is `[0.0.0.0]`.
    fn ips(&self) -> Vec<Ipv4Addr> {
        vec![Ipv4Addr::UNSPECIFIED]
    }
}

/// `tcp_error(e, port)` is the [`TcpError`] for the host error `e` on local port `port`.
fn tcp_error(e: &io::Error, port: u16) -> TcpError {
    match e.kind() {
        io::ErrorKind::AddrInUse => TcpError::AddrInUse { port },
        io::ErrorKind::ConnectionRefused => TcpError::Refused,
        io::ErrorKind::TimedOut => TcpError::TimedOut,
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => TcpError::Unreachable,
        _ if matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        ) =>
        {
            TcpError::Exhausted
        }
        _ => TcpError::Reset,
    }
}

/// `udp_error(e, port, len)` is the [`UdpError`] for the host error `e`.
fn udp_error(e: &io::Error, port: u16, len: usize) -> UdpError {
    match e.kind() {
        io::ErrorKind::AddrInUse => UdpError::AddrInUse { port },
        _ if e.raw_os_error() == Some(libc::EMSGSIZE) => UdpError::TooBig { len },
        _ if matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        ) =>
        {
            UdpError::Exhausted
        }
        _ => UdpError::Unreachable,
    }
}

/// `v4(addr)` is `addr` if it is IPv4 (the stack only opens IPv4 sockets).
fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => SocketAddrV4::new(
            a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            a.port(),
        ),
    }
}

/// `Tcp` opens and accepts host TCP connections.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tcp;

impl mirage_devices::Tcp for Tcp {
    type Flow = Flow;
    type Listener = Listener;

    async fn listen(&self, port: u16) -> Result<Listener, TcpError> {
        let open = || -> io::Result<TcpListener> {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&SockAddr::from(SocketAddrV4::new(
                Ipv4Addr::UNSPECIFIED,
                port,
            )))?;
            socket.listen(BACKLOG)?;
            Ok(socket.into())
        };
        let listener = open().map_err(|e| tcp_error(&e, port))?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        Ok(Listener { listener, port })
    }

    async fn connect(&self, dst: SocketAddrV4) -> Result<Flow, TcpError> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| tcp_error(&e, 0))?;
        match socket.connect(&SockAddr::from(dst)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                crate::reactor::ready(socket.as_raw_fd(), Interest::WRITE).await;
                if let Some(e) = socket.take_error().map_err(|e| tcp_error(&e, 0))? {
                    return Err(tcp_error(&e, 0));
                }
            }
            Err(e) => return Err(tcp_error(&e, 0)),
        }
        Flow::new(socket.into(), dst)
    }
}

/// A `Listener` accepts connections on one host TCP port.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    port: u16,
}

impl Listener {
    /// `port()` is the local port, the one the kernel chose when `listen(0)` asked for any.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl mirage_devices::Listener for Listener {
    type Flow = Flow;

    async fn accept(&self) -> Result<Flow, TcpError> {
        let fd = self.listener.as_raw_fd();
        loop {
            match retry(fd, Interest::READ, || self.listener.accept()).await {
                Ok((stream, peer)) => {
                    stream
                        .set_nonblocking(true)
                        .map_err(|e| tcp_error(&e, self.port))?;
                    return Flow::new(stream, v4(peer));
                }
                // The peer gave up while queued: not the listener's failure, wait for the next.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => return Err(tcp_error(&e, self.port)),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        forget(self.listener.as_raw_fd());
    }
}

/// The descriptor of a flow, closed (after waking its waiters) when the last handle goes.
#[derive(Debug)]
struct Stream(TcpStream);

impl Drop for Stream {
    fn drop(&mut self) {
        forget(self.0.as_raw_fd());
    }
}

/// A `Flow` is one host TCP connection.
#[derive(Clone, Debug)]
pub struct Flow {
    stream: Rc<Stream>,
    peer: SocketAddrV4,
}

impl Flow {
    fn new(stream: TcpStream, peer: SocketAddrV4) -> Result<Flow, TcpError> {
        // Requests and responses are written whole: send them at once.
        stream.set_nodelay(true).map_err(|e| tcp_error(&e, 0))?;
        Ok(Flow {
            stream: Rc::new(Stream(stream)),
            peer,
        })
    }

    fn fd(&self) -> RawFd {
        self.stream.0.as_raw_fd()
    }
}

impl mirage_devices::Flow for Flow {
    fn peer(&self) -> SocketAddrV4 {
        self.peer
    }

    async fn read(&self, buf: &mut [u8]) -> Result<usize, TcpError> {
        retry(self.fd(), Interest::READ, || (&self.stream.0).read(buf))
            .await
            .map_err(|e| tcp_error(&e, 0))
    }

    async fn write(&self, mut data: &[u8]) -> Result<(), TcpError> {
        while !data.is_empty() {
            let n = retry(self.fd(), Interest::WRITE, || (&self.stream.0).write(data))
                .await
                .map_err(|e| match e.kind() {
                    io::ErrorKind::BrokenPipe => TcpError::Closed,
                    _ => tcp_error(&e, 0),
                })?;
            data = &data[n..];
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), TcpError> {
        match self.stream.0.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(tcp_error(&e, 0)),
            _ => Ok(()),
        }
    }

    async fn close(self) -> Result<(), TcpError> {
        let result = mirage_devices::Flow::shutdown(&self).await;
        drop(self);
        result
    }
}

/// `Udp` binds host UDP sockets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Udp;

impl mirage_devices::Udp for Udp {
    type Socket = Datagrams;

    async fn bind(&self, port: u16) -> Result<Datagrams, UdpError> {
        let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| udp_error(&e, port, 0))?;
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(port);
        Ok(Datagrams { socket, port })
    }
}

/// `Datagrams` is a host UDP socket bound to one port.
#[derive(Debug)]
pub struct Datagrams {
    socket: UdpSocket,
    port: u16,
}

impl mirage_devices::UdpSocket for Datagrams {
    fn local_port(&self) -> u16 {
        self.port
    }

    async fn send_to(&self, dst: SocketAddrV4, data: &[u8]) -> Result<(), UdpError> {
        let fd = self.socket.as_raw_fd();
        retry(fd, Interest::WRITE, || self.socket.send_to(data, dst))
            .await
            .map(drop)
            .map_err(|e| udp_error(&e, self.port, data.len()))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), UdpError> {
        let fd = self.socket.as_raw_fd();
        retry(fd, Interest::READ, || self.socket.recv_from(buf))
            .await
            .map(|(n, from)| (n, v4(from)))
            .map_err(|e| udp_error(&e, self.port, buf.len()))
    }
}

impl Drop for Datagrams {
    fn drop(&mut self) {
        forget(self.socket.as_raw_fd());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Unix;
    use mirage_devices::{
        Flow as _, Listener as _, Stack as _, Tcp as _, Udp as _, UdpSocket as _,
    };

    #[test]
    fn tcp_echoes_a_large_buffer_through_back_pressure() {
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let got = mirage_runtime::block_on(&Unix, async move {
            let tcp = SocketStack::new().tcp();
            let listener = tcp.listen(0).await.unwrap();
            let dst = SocketAddrV4::new(Ipv4Addr::LOCALHOST, listener.port());
            mirage_runtime::spawn(async move {
                let flow = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = flow.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    flow.write(&buf[..n]).await.unwrap();
                }
                flow.close().await.unwrap();
            });
            let flow = tcp.connect(dst).await.unwrap();
            let writer = flow.clone();
            mirage_runtime::spawn(async move {
                writer.write(&data).await.unwrap();
                writer.shutdown().await.unwrap();
            });
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = flow.read(&mut buf).await.unwrap();
                if n == 0 {
                    break got;
                }
                got.extend_from_slice(&buf[..n]);
            }
        });
        assert!(got == expected, "echo differs ({} bytes)", got.len());
    }

    #[test]
    fn connecting_to_a_closed_port_is_refused() {
        let r = mirage_runtime::block_on(&Unix, async {
            let tcp = SocketStack::new().tcp();
            let port = tcp.listen(0).await.unwrap().port();
            tcp.connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
                .await
                .map(drop)
        });
        assert_eq!(r, Err(TcpError::Refused));
    }

    #[test]
    fn udp_round_trip_and_port_in_use() {
        let (got, in_use) = mirage_runtime::block_on(&Unix, async {
            let udp = SocketStack::new().udp();
            let a = udp.bind(0).await.unwrap();
            let b = udp.bind(0).await.unwrap();
            let in_use = udp.bind(a.local_port()).await.map(drop);
            let to_a = SocketAddrV4::new(Ipv4Addr::LOCALHOST, a.local_port());
            b.send_to(to_a, b"ping").await.unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!(from.port(), b.local_port());
            (buf[..n].to_vec(), in_use)
        });
        assert_eq!(got, b"ping");
        assert!(matches!(in_use, Err(UdpError::AddrInUse { .. })));
    }
}
