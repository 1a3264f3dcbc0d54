//! The system calls the safe API needs and std does not offer: `poll(2)`, unbuffered `read(2)`
//! on a borrowed descriptor, `O_NONBLOCK`, the TUN/TAP `ioctl(2)`s, `RLIMIT_NOFILE`, and the
//! counting global allocator.
#![allow(unsafe_code)]

pub(crate) mod heap;
mod tap;

pub(crate) use tap::{mtu, open_tap};

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use mirage_runtime::Interest;

/// `poll(fds, timeout)` waits until one of `fds` is ready or `timeout` passes (`None`:
/// forever) and returns each descriptor's readiness, in the same order. An interrupted wait
/// returns no readiness.
pub(crate) fn poll(
    fds: &[(RawFd, Interest)],
    timeout: Option<Duration>,
) -> io::Result<Vec<Interest>> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, interest)| libc::pollfd {
            fd,
            events: (if interest.read { libc::POLLIN } else { 0 })
                | (if interest.write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    // Round up so that a wait never ends before its deadline and spins.
    let timeout_ms = match timeout {
        None => -1,
        Some(d) => i32::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
    };
    let nfds = libc::nfds_t::try_from(pollfds.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `pollfds` is a live, exclusively borrowed array of exactly `nfds` initialised
    // `pollfd`s; poll(2) writes only their `revents` fields and keeps no pointer after it
    // returns.
    let n = unsafe { libc::poll(pollfds.as_mut_ptr(), nfds, timeout_ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![Interest::default(); fds.len()]);
        }
        return Err(err);
    }
    Ok(pollfds
        .iter()
        .map(|p| {
            let broken = p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
            Interest {
                read: broken || p.revents & (libc::POLLIN | libc::POLLPRI) != 0,
                write: broken || p.revents & libc::POLLOUT != 0,
            }
        })
        .collect())
}

/// `read(fd, buf)` is one unbuffered `read(2)` from `fd` into `buf`.
///
/// Used for standard input, whose std handle buffers: data left in a user-space buffer would
/// be invisible to `poll(2)`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, exclusively borrowed byte buffer of `buf.len()` bytes, which is
    // all read(2) writes to. An invalid `fd` makes read(2) fail with EBADF, not misbehave.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `set_nonblocking(fd)` sets `O_NONBLOCK` on `fd`, for descriptors std has no method for
/// (a tap device).
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags; an invalid `fd`
    // fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFL with an int argument only changes the descriptor's status flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `raise_open_files_limit()` lifts the soft limit on open descriptors to the hard one, so that
/// a server's connections are bounded by its own budget rather than by the default soft limit
/// (often 1024); it returns the limit now in force.
pub(crate) fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` to the pointer, which is valid for writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads one `rlimit` from the pointer, which is valid for reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}
