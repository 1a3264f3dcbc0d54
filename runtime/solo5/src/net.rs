//! [`Net`]: a Solo5 network device, for the direct stack.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use mirage_devices::{Mac, NetError};

use crate::block::ConnectError;
use crate::notes::Kind;
use crate::sys::{self, Device, IoError};

/// The Ethernet header length: a frame is at most this plus the MTU.
const ETHERNET_HEADER: usize = 14;
/// How long a frame waits for room in a full transmit queue before it is dropped.
const SEND_PATIENCE_NS: u64 = 100_000_000;
/// Linux's `EAGAIN`: the error of a frame dropped on a full queue.
const EAGAIN: i32 = 11;

/// `Net` is the tender's network device of one name (a tap interface on the host, attached
/// with `--net:NAME=TAP`): frames sent here appear on the tap, and the host's frames arrive
/// here. The MAC address and MTU are the ones the tender put in the manifest.
#[derive(Clone, Debug)]
pub struct Net {
    device: Device,
}

impl Net {
    /// `connect(name)` is the network device `name` of the manifest; it fails if the tender
    /// did not attach it.
    pub fn connect(name: &str) -> Result<Net, ConnectError> {
        sys::device(name, Kind::Net)
            .map(|device| Net { device })
            .ok_or_else(|| ConnectError::new(name, "network"))
    }
}

fn net_error(e: IoError) -> NetError {
    match e {
        IoError::Again => NetError::Io { errno: 11 },
        IoError::Failed(errno) => NetError::Io { errno },
    }
}

/// A future that completes once the device may have a frame (possibly spuriously).
struct Readable {
    handle: usize,
    waker: Option<Waker>,
}

impl Future for Readable {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waker.take().is_some() {
            // Registrations are one-shot: being polled again means we were woken.
            return Poll::Ready(());
        }
        sys::register(self.handle, cx.waker());
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Readable {
    fn drop(&mut self) {
        if let Some(w) = &self.waker {
            sys::deregister(self.handle, w);
        }
    }
}

impl mirage_devices::Network for Net {
    fn mac(&self) -> Mac {
        Mac(self.device.mac)
    }

    fn mtu(&self) -> usize {
        usize::from(self.device.mtu)
    }

    async fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        if frame.len() > self.mtu() + ETHERNET_HEADER {
            return Err(NetError::TooBig { len: frame.len() });
        }
        // A full transmit queue (spt's tap fd is non-blocking) is retried a millisecond
        // later, sleeping rather than spinning, for at most `SEND_PATIENCE_NS`; then the
        // frame is dropped, as a NIC's full queue drops it.
        let give_up = sys::now_ns().saturating_add(SEND_PATIENCE_NS);
        loop {
            match sys::net_write(&self.device, frame) {
                Err(IoError::Again) if sys::now_ns() < give_up => {
                    mirage_runtime::sleep_until(sys::now_ns().saturating_add(1_000_000)).await
                }
                Err(IoError::Again) => return Err(NetError::Io { errno: EAGAIN }),
                r => return r.map_err(net_error),
            }
        }
    }

    async fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        loop {
            match sys::net_read(&self.device, buf) {
                Ok(n) if n > buf.len() => return Err(NetError::BufferTooSmall { len: n }),
                Ok(n) => return Ok(n),
                Err(IoError::Again) => {
                    Readable {
                        handle: self.device.handle,
                        waker: None,
                    }
                    .await
                }
                Err(e) => return Err(net_error(e)),
            }
        }
    }
}
