//! Raw IPv4 inside a test's network namespace: forged TCP SYNs (a SYN flood from addresses
//! that never answer) and the SYN-ACKs they draw. Each call runs on a thread of its own that
//! joins the namespace (`setns` changes only the calling thread's), so the test process stays
//! in the host's namespace and nothing leaves the one the test made.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// `in_netns(name, f)` runs `f` on a thread inside network namespace `name`.
fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{name}");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace descriptor changes this thread's network
        // namespace only; the descriptor outlives the call.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("the namespace thread")
}

/// `raw_socket(protocol)` is a raw IPv4 socket of `protocol`, closed when dropped.
fn raw_socket(protocol: i32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) has no memory arguments; a negative result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, protocol) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just opened and is owned by nothing else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// `checksum(words)` is the Internet checksum of `bytes` (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `syn(src, sport, dst, dport, seq)` is an IPv4 datagram carrying a TCP SYN.
fn syn(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, seq: u32) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    pseudo.extend_from_slice(&tcp);
    let sum = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&tcp);
    ip
}

/// `send(fd, datagram, dst)` sends one IPv4 datagram (header included) on raw socket `fd`.
fn send(fd: &std::os::fd::OwnedFd, datagram: &[u8], dst: Ipv4Addr) -> bool {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(dst.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: the buffer and the address are valid for reads of the lengths given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            datagram.as_ptr().cast(),
            datagram.len(),
            0,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    n == datagram.len() as isize
}

/// `syn_flood(netns, dst, port, count)` sends `count` SYNs to `dst:port` from addresses of
/// 10.0.0.100-249 that no host holds (so no handshake ever completes), about 20 µs apart;
/// it returns how many were sent.
pub fn syn_flood(netns: &str, dst: Ipv4Addr, port: u16, count: u32) -> u32 {
    in_netns(netns, move || {
        let fd = raw_socket(libc::IPPROTO_RAW);
        let mut sent = 0;
        for i in 0..count {
            let src = Ipv4Addr::new(10, 0, 0, 100 + (i % 150) as u8);
            let sport = 1024 + (i / 150) as u16;
            if send(&fd, &syn(src, sport, dst, port, i.wrapping_mul(7919)), dst) {
                sent += 1;
            }
            if i % 64 == 63 {
                std::thread::sleep(Duration::from_micros(1000));
            }
        }
        sent
    })
}

/// `initial_sequence(netns, src, dst, port)` sends a SYN from `src:40000` (an address of the
/// namespace's host side, which receives the answer) to `dst:port` and returns the sequence
/// number of the SYN-ACK, the server's initial sequence number.
pub fn initial_sequence(netns: &str, src: Ipv4Addr, dst: Ipv4Addr, port: u16) -> Option<u32> {
    in_netns(netns, move || {
        let rx = raw_socket(libc::IPPROTO_TCP);
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: SO_RCVTIMEO reads one timeval from the pointer, valid for its size.
        unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        let tx = raw_socket(libc::IPPROTO_RAW);
        let start = Instant::now();
        let mut buf = [0u8; 1500];
        while start.elapsed() < Duration::from_secs(10) {
            send(&tx, &syn(src, 40000, dst, port, 1), dst);
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until {
                // SAFETY: the buffer is valid for writes of its length.
                let n =
                    unsafe { libc::recv(rx.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                let Ok(n) = usize::try_from(n) else { break };
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                if n < ihl + 20 || buf[12..16] != dst.octets() {
                    continue;
                }
                let tcp = &buf[ihl..n];
                let (sport, dport) = (
                    u16::from_be_bytes([tcp[0], tcp[1]]),
                    u16::from_be_bytes([tcp[2], tcp[3]]),
                );
                if sport == port && dport == 40000 && tcp[13] & 0x12 == 0x12 {
                    return Some(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]));
                }
            }
        }
        None
    })
}
