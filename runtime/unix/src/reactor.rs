//! The unix [`Platform`]: the executor's clock and its wait, `poll(2)` over the descriptors
//! that futures registered interest in.
//!
//! Device code does non-blocking I/O on a descriptor and, when it would block, awaits
//! [`ready`] on it; [`retry`] packages that loop. This is the API the socket stack and the tap
//! device build on: any descriptor in non-blocking mode works.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mirage_runtime::{Interest, Platform, Readiness};

use crate::clock;
use crate::sys;

thread_local! {
    static WAITERS: RefCell<Readiness<RawFd>> = const { RefCell::new(Readiness::new()) };
}

/// `Unix` is the platform of the unix target: the monotonic clock of [`clock::now_ns`] and a
/// wait in `poll(2)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unix;

impl Platform for Unix {
    fn now_ns(&self) -> u64 {
        clock::now_ns()
    }

    fn wait(&self, deadline: Option<u64>) {
        let sources = WAITERS.with(|w| w.borrow().sources());
        if sources.is_empty() && deadline.is_none() {
            // Nothing can ever wake a task: Lwt would hang here; say so instead.
            eprintln!(
                "error: deadlock: every task is waiting, and no timer or I/O source can wake one"
            );
            std::process::exit(mirage_runtime::exit::FAILURE);
        }
        let timeout = deadline.map(|d| Duration::from_nanos(d.saturating_sub(self.now_ns())));
        match sys::poll(&sources, timeout) {
            Ok(ready) => WAITERS.with(|w| {
                let mut w = w.borrow_mut();
                for (&(fd, _), &r) in sources.iter().zip(&ready) {
                    w.ready(fd, r);
                }
            }),
            Err(e) => {
                // poll(2) fails only on resource exhaustion or a bug in the descriptor list.
                eprintln!("error: poll(2) failed: {e}");
                std::process::exit(mirage_runtime::exit::FAILURE);
            }
        }
    }
}

/// `ready(fd, interest)` completes once `fd` may be ready for `interest` (it may also
/// complete spuriously): retry the operation after it.
pub fn ready(fd: RawFd, interest: Interest) -> Ready {
    Ready {
        fd,
        interest,
        waker: None,
    }
}

/// The future returned by [`ready`]. Dropping it withdraws its interest.
pub struct Ready {
    fd: RawFd,
    interest: Interest,
    waker: Option<Waker>,
}

impl Future for Ready {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waker.is_some() {
            // Registrations are one-shot: being polled again means we were woken.
            self.waker = None;
            return Poll::Ready(());
        }
        WAITERS.with(|w| w.borrow_mut().register(self.fd, self.interest, cx.waker()));
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        if let Some(waker) = &self.waker {
            // `try_with`: the thread-local may already be gone at thread exit.
            let _ = WAITERS.try_with(|w| w.borrow_mut().deregister(self.fd, waker));
        }
    }
}

/// `retry(fd, interest, op)` runs the non-blocking operation `op` on `fd` until it does not
/// fail with `WouldBlock`, waiting for `interest` readiness in between.
pub async fn retry<T>(
    fd: RawFd,
    interest: Interest,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready(fd, interest).await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// `forget(fd)` wakes every task waiting on `fd`; call it before closing `fd` so that the
/// waiters retry and see the error instead of waiting on a reused descriptor.
pub fn forget(fd: RawFd) {
    WAITERS.with(|w| w.borrow_mut().forget(fd));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_task_waits_for_a_socket_to_become_readable() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let fd = b.as_raw_fd();
        let got = mirage_runtime::block_on(&Unix, async move {
            mirage_runtime::spawn(async move {
                mirage_runtime::sleep_until(clock::now_ns() + 20_000_000).await;
                a.write_all(b"ping").unwrap();
            });
            let mut buf = [0u8; 16];
            let n = retry(fd, Interest::READ, || b.read(&mut buf))
                .await
                .unwrap();
            buf[..n].to_vec()
        });
        assert_eq!(got, b"ping");
    }
}
