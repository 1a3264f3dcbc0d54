//! Ethernet frames to and from a guest's network device over a datagram socket (one frame a
//! datagram, as the minimal loaders attach it): ARP, TCP segments in IPv4, and an HTTP GET
//! driven frame by frame. The test's side is 10.0.0.1 ([`HOST_MAC`]), the guest 10.0.0.2
//! ([`GUEST_MAC`]).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The MAC address the minimal loader gives the guest's network device.
pub const GUEST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// The test's side of the link.
pub const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// The test's address.
pub const HOST_IP: [u8; 4] = [10, 0, 0, 1];
/// The guest's address.
pub const GUEST_IP: [u8; 4] = [10, 0, 0, 2];

/// `checksum(parts)` is the Internet checksum of the concatenated `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `ethernet(dst, ethertype, payload)` is a frame from [`HOST_MAC`] to `dst`.
pub fn ethernet(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `arp(op, dst, target_mac, target_ip)` is an ARP frame (`op` 1 request, 2 reply) from the
/// test's side to `dst`.
pub fn arp(op: u16, dst: [u8; 6], target_mac: [u8; 6], target_ip: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&HOST_MAC);
    a.extend_from_slice(&HOST_IP);
    a.extend_from_slice(&target_mac);
    a.extend_from_slice(&target_ip);
    ethernet(dst, 0x0806, &a)
}

/// The test's TCP port.
pub const HOST_PORT: u16 = 40000;

/// `tcp(port, flags, seq, ack, payload)` is a TCP segment from 10.0.0.1:40000 to the guest's
/// `port`, in an IPv4 packet in an Ethernet frame.
pub fn tcp(port: u16, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&HOST_PORT.to_be_bytes());
    tcp.extend_from_slice(&port.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags]); // 5 words of header
    tcp.extend_from_slice(&8192u16.to_be_bytes()); // window
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    tcp.extend_from_slice(payload);
    let len = (tcp.len() as u16).to_be_bytes();
    let pseudo = [&HOST_IP[..], &GUEST_IP[..], &[0, 6], &len[..]].concat();
    let sum = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(20 + tcp.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, 64, 6, 0, 0]);
    ip.extend_from_slice(&HOST_IP);
    ip.extend_from_slice(&GUEST_IP);
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&tcp);
    ethernet(GUEST_MAC, 0x0800, &ip)
}

/// TCP flags.
pub const SYN: u8 = 0x02;
/// TCP flags.
pub const ACK: u8 = 0x10;
/// TCP flags.
pub const PSH: u8 = 0x08;
/// TCP flags.
pub const FIN: u8 = 0x01;

/// A TCP segment from the guest: flags, sequence and acknowledgement numbers, payload.
pub struct Segment {
    /// Its flags.
    pub flags: u8,
    /// Its sequence number.
    pub seq: u32,
    /// Its acknowledgement number.
    pub ack: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// `segment(frame, port)` is the TCP segment in `frame` from the guest's `port` to ours.
pub fn segment(f: &[u8], port: u16) -> Option<Segment> {
    if f.len() < 54 || f[12..14] != [8, 0] || f[23] != 6 {
        return None;
    }
    let ip_len = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let ip = &f[14..(14 + ip_len).min(f.len())];
    let t = &ip[usize::from(ip[0] & 0xf) * 4..];
    let from = u16::from_be_bytes([t[0], t[1]]);
    let to = u16::from_be_bytes([t[2], t[3]]);
    if from != port || to != HOST_PORT {
        return None;
    }
    let data = usize::from(t[12] >> 4) * 4;
    Some(Segment {
        flags: t[13],
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        payload: t[data..].to_vec(),
    })
}

/// `http_get(host)` is the response to `GET /` from the guest at 10.0.0.2:8080, reached
/// through `host`, the test's end of the guest's link: the test answers and sends ARP, opens
/// the TCP connection, sends the request, acknowledges the response and closes. It returns
/// whether ARP and the handshake succeeded, and the response's bytes.
pub fn http_get(host: &UnixDatagram) -> (bool, bool, Vec<u8>) {
    http_get_path(host, "/")
}

/// `http_get_path(host, path)` is [`http_get`] of `path` instead of `/`.
pub fn http_get_path(host: &UnixDatagram, path: &str) -> (bool, bool, Vec<u8>) {
    host.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    // ARP, then a TCP handshake, GET PATH and the response until the server's FIN.
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 10.0.0.2\r\nConnection: close\r\n\r\n").into_bytes();
    let request = request.as_slice();
    let iss = 1000u32;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut arp_reply = false;
    let mut syn_ack = false;
    let mut rcv_nxt = 0u32; // the next byte expected from the server
    let mut response = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 2048];
    while !closed && std::time::Instant::now() < deadline {
        let frame = if !arp_reply {
            arp(1, [0xff; 6], [0; 6], GUEST_IP)
        } else if !syn_ack {
            tcp(8080, SYN, iss, 0, &[])
        } else {
            // (Re)send the request with the acknowledgement of what we have.
            tcp(8080, ACK | PSH, iss + 1, rcv_nxt, request)
        };
        if host.send(&frame).is_err() {
            break; // the guest is gone
        }
        while let Ok(n) = host.recv(&mut buf) {
            let f = &buf[..n];
            if n >= 42 && f[12..14] == [8, 6] {
                let op = u16::from_be_bytes([f[20], f[21]]);
                if op == 2 && f[22..28] == GUEST_MAC && f[28..32] == GUEST_IP {
                    arp_reply = true;
                } else if op == 1 && f[38..42] == HOST_IP {
                    // The guest asks for us.
                    let _ = host.send(&arp(2, GUEST_MAC, GUEST_MAC, GUEST_IP));
                }
                continue;
            }
            let Some(seg) = segment(f, 8080) else {
                continue;
            };
            if seg.flags & (SYN | ACK) == SYN | ACK && !syn_ack {
                syn_ack = true;
                rcv_nxt = seg.seq.wrapping_add(1);
                let _ = host.send(&tcp(8080, ACK | PSH, iss + 1, rcv_nxt, request));
                continue;
            }
            if !syn_ack {
                continue;
            }
            let acked_request = seg.ack == iss + 1 + request.len() as u32;
            if seg.seq == rcv_nxt && !seg.payload.is_empty() {
                response.extend_from_slice(&seg.payload);
                rcv_nxt = rcv_nxt.wrapping_add(seg.payload.len() as u32);
            }
            let fin =
                seg.flags & FIN != 0 && seg.seq.wrapping_add(seg.payload.len() as u32) == rcv_nxt;
            if fin {
                rcv_nxt = rcv_nxt.wrapping_add(1);
            }
            let seq = if acked_request {
                iss + 1 + request.len() as u32
            } else {
                iss + 1
            };
            let _ = host.send(&tcp(
                8080,
                ACK | if fin { FIN } else { 0 },
                seq,
                rcv_nxt,
                &[],
            ));
            if fin {
                closed = true;
                break;
            }
        }
    }
    (arp_reply, syn_ack, response)
}
