//! Attaching a tap interface as both Solo5 tenders do (`tenders/common/tap_attach.c`, 0.12.1):
//! the interface must exist and be up; `/dev/net/tun` is opened non-blocking and bound to it
//! as a tap without packet information (`IFF_TAP | IFF_NO_PI`: one Ethernet frame per read
//! and write); the guest is told the interface's MTU; and generic receive and segmentation
//! offload are turned off, so that the kernel never hands the guest a frame larger than the
//! MTU. The caller must be in the interface's network namespace.

use std::io::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::Link;

const IFNAMSIZ: usize = 16;
const IFF_UP: u16 = 0x1;
const IFF_RUNNING: u16 = 0x40;
const IFF_TAP: u16 = 0x2;
const IFF_NO_PI: u16 = 0x1000;
const TUNSETIFF: u64 = 0x4004_54ca;
const SIOCGIFFLAGS: u64 = 0x8913;
const SIOCGIFMTU: u64 = 0x8921;
const SIOCETHTOOL: u64 = 0x8946;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_SGRO: u32 = 0x2c;

/// `struct ifreq`: the interface's name, then a 24-byte union.
#[repr(C)]
struct Ifreq {
    name: [u8; IFNAMSIZ],
    union: [u8; 24],
}

impl Ifreq {
    fn new(iface: &str) -> Ifreq {
        let mut r = Ifreq {
            name: [0; IFNAMSIZ],
            union: [0; 24],
        };
        r.name[..iface.len()].copy_from_slice(iface.as_bytes());
        r
    }
}

fn ioctl(fd: &OwnedFd, request: u64, arg: *mut Ifreq) -> Result<(), Error> {
    // SAFETY: each caller passes a request that reads or writes one `struct ifreq` (or, for
    // SIOCETHTOOL, the `ethtool_value` its union points to), which lives for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if r < 0 {
        return Err(Error::last_os_error());
    }
    Ok(())
}

fn owned(fd: i32) -> Result<OwnedFd, Error> {
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `attach(iface)` is the tap interface `iface` of the caller's network namespace, opened as
/// the tenders' `--net:NAME=IFACE` opens it, with its MTU.
pub fn attach(iface: &str) -> Result<Link, Error> {
    if iface.is_empty() || iface.len() >= IFNAMSIZ {
        return Err(Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    // SAFETY: socket(2) takes no pointers.
    let sock = owned(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) })?;
    let mut req = Ifreq::new(iface);
    ioctl(&sock, SIOCGIFFLAGS, &mut req).map_err(|_| Error::from_raw_os_error(libc::ENOENT))?;
    let flags = u16::from_le_bytes([req.union[0], req.union[1]]);
    if flags & (IFF_UP | IFF_RUNNING) == 0 {
        return Err(Error::from_raw_os_error(libc::ENETDOWN));
    }
    // SAFETY: a NUL-terminated path, and flags.
    let tun =
        owned(unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK) })?;
    let mut req = Ifreq::new(iface);
    req.union[..2].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_le_bytes());
    ioctl(&tun, TUNSETIFF, &mut req)?;
    if req.name != Ifreq::new(iface).name {
        return Err(Error::from_raw_os_error(libc::EINVAL));
    }
    let mut req = Ifreq::new(iface);
    ioctl(&sock, SIOCGIFMTU, &mut req)?;
    let mtu = i32::from_le_bytes(req.union[..4].try_into().unwrap());
    for cmd in [ETHTOOL_SGRO, ETHTOOL_SGSO] {
        // struct ethtool_value { cmd, data }: the offload off. Failures are ignored, as the
        // tenders ignore them.
        let mut value = [cmd, 0u32];
        let mut req = Ifreq::new(iface);
        req.union[..8].copy_from_slice(&(value.as_mut_ptr() as u64).to_le_bytes());
        let _ = ioctl(&sock, SIOCETHTOOL, &mut req);
    }
    Ok(Link {
        fd: tun,
        mtu: u16::try_from(mtu).map_err(|_| Error::from_raw_os_error(libc::EINVAL))?,
    })
}
