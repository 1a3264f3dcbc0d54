//! [`Tap`]: a Linux tap interface as the unikernel's network device, for the direct stack.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use mirage_devices::{Mac, NetError};
use mirage_runtime::Interest;

use crate::error::OpenError;
use crate::reactor::{forget, retry};
use crate::sys;

/// The MTU assumed when the interface's own cannot be read.
const DEFAULT_MTU: usize = 1500;

/// The Ethernet header length: a frame is at most this plus the MTU.
const ETHERNET_HEADER: usize = 14;

struct Inner {
    file: File,
    mac: Mac,
    mtu: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        forget(self.file.as_raw_fd());
    }
}

/// `Tap` is a host tap interface: the frames the host sends to the interface arrive here, and
/// the frames sent here appear on the interface. The unikernel has its own MAC address, a
/// random locally administered one, distinct from the host side's.
#[derive(Clone)]
pub struct Tap {
    inner: Rc<Inner>,
}

impl Tap {
    /// `connect(name)` attaches to tap interface `name` (such as `tap0`, made with
    /// `ip tuntap add mode tap tap0`); it fails if the interface cannot be opened.
    pub fn connect(name: &str) -> Result<Tap, OpenError> {
        let file = sys::open_tap(name).map_err(|e| OpenError::new(name, e))?;
        let mtu = sys::mtu(name).unwrap_or(DEFAULT_MTU);
        let mut mac = [0u8; 6];
        getrandom::fill(&mut mac)
            .map_err(|e| OpenError::new(name, io::Error::other(e.to_string())))?;
        // Unicast, locally administered.
        mac[0] = (mac[0] & 0xfc) | 0x02;
        Ok(Tap {
            inner: Rc::new(Inner {
                file,
                mac: Mac(mac),
                mtu,
            }),
        })
    }
}

fn net_error(e: &io::Error) -> NetError {
    match e.raw_os_error() {
        Some(errno) => NetError::Io { errno },
        None => NetError::Disconnected,
    }
}

impl mirage_devices::Network for Tap {
    fn mac(&self) -> Mac {
        self.inner.mac
    }

    fn mtu(&self) -> usize {
        self.inner.mtu
    }

    async fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        if frame.len() > self.inner.mtu + ETHERNET_HEADER {
            return Err(NetError::TooBig { len: frame.len() });
        }
        let fd = self.inner.file.as_raw_fd();
        retry(fd, Interest::WRITE, || (&self.inner.file).write(frame))
            .await
            .map(drop)
            .map_err(|e| net_error(&e))
    }

    async fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        let fd = self.inner.file.as_raw_fd();
        let n = retry(fd, Interest::READ, || (&self.inner.file).read(buf))
            .await
            .map_err(|e| net_error(&e))?;
        if n == 0 {
            return Err(NetError::Disconnected);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_system_call() {
        for name in ["", "a-name-longer-than-15", "nul\0"] {
            let e = Tap::connect(name).err().expect("refused");
            assert_eq!(e.source.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }
}
