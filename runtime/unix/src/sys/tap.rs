//! Linux TUN/TAP: attaching to a tap interface and reading its MTU, with `ioctl(2)`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

/// `ifreq(name)` is an `ifreq` naming interface `name`, or `InvalidInput` if the name is empty,
/// too long for `IFNAMSIZ` or holds a NUL byte.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "`{name}` is not an interface name (1 to {} bytes, no NUL)",
                libc::IFNAMSIZ - 1
            ),
        ));
    }
    // SAFETY: `ifreq` is plain old data (a byte array and a union of integers, addresses and a
    // raw pointer), for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// `open_tap(name)` attaches to tap interface `name` (creating it if the process may), as a
/// non-blocking descriptor that reads and writes whole Ethernet frames without a packet-info
/// header.
pub(crate) fn open_tap(name: &str) -> io::Result<File> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, and `req` is a live, exclusively
    // borrowed, initialised `ifreq` for the whole call; the kernel keeps no pointer to it.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    super::set_nonblocking(file.as_raw_fd())?;
    Ok(file)
}

/// `mtu(name)` is the MTU of interface `name`, as `ip link` shows it.
pub(crate) fn mtu(name: &str) -> io::Result<usize> {
    let mut req = ifreq(name)?;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    // SAFETY: SIOCGIFMTU reads the name of and writes the MTU into one `ifreq`; `req` is live,
    // exclusively borrowed and initialised for the whole call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote the `ifru_mtu` member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    usize::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}
