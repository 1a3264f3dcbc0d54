//! The spt ABI (Solo5's `include/spt_abi.h`): the guest runs inside the `solo5-spt` tender's
//! process, under a seccomp filter that allows only a few Linux system calls, each for the
//! file descriptors the tender opened: `write(1)` for the console, `clock_gettime`, the
//! tender's timer fd and epoll fd to sleep, `read`/`write` on net devices, `pread64`/`pwrite64`
//! of one block on block devices, and `exit_group`. Anything else kills the process.

use core::sync::atomic::{AtomicBool, Ordering};

use spin::Once;

use super::{Device, IoError};
use crate::arch;

const SYS_READ: u64 = 0;
const SYS_WRITE: u64 = 1;
const SYS_PREAD64: u64 = 17;
const SYS_PWRITE64: u64 = 18;
const SYS_CLOCK_GETTIME: u64 = 228;
const SYS_EXIT_GROUP: u64 = 231;
const SYS_EPOLL_PWAIT: u64 = 281;
const SYS_TIMERFD_SETTIME: u64 = 286;

const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const TFD_TIMER_ABSTIME: u64 = 1;
const EAGAIN: i64 = 11;
const EINTR: i64 = 4;
/// The epoll data of the tender's timer fd (`SPT_INTERNAL_TIMERFD`, `~1U`).
const TIMERFD_DATA: u64 = 0xffff_fffe;

/// The tender's epoll and timer fds, set once at boot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fds {
    /// `epollfd`: the timer and every net device.
    pub(crate) epoll: i32,
    /// `timerfd`: armed with the deadline before each wait.
    pub(crate) timer: i32,
}

static FDS: Once<Fds> = Once::new();

fn syscall(nr: u64, a: [u64; 6]) -> i64 {
    if !cfg!(mirage_solo5_image) {
        return -38; // ENOSYS: host builds never run this.
    }
    // SAFETY: every caller passes a call the filter allows with arguments of the right kinds:
    // descriptors the tender opened, and pointers to buffers of the lengths given, alive for
    // the call.
    unsafe { arch::syscall6(nr, a) }
}

/// How long a console write waits for a standard output that takes nothing (a full
/// non-blocking pipe nobody reads) before it drops what is left.
const CONSOLE_GIVE_UP_NS: u64 = 1_000_000_000;
/// Set once a console write gave up: later writes that find standard output full drop at
/// once, until one gets through.
static CONSOLE_STALLED: AtomicBool = AtomicBool::new(false);

/// `console_write(bytes)` writes all of `bytes` to standard output. A full non-blocking
/// output is retried every millisecond (sleeping in the tender: the filter allows no wait on
/// fd 1), for at most [`CONSOLE_GIVE_UP_NS`] once, after which output that does not fit is
/// dropped until the reader catches up, rather than hanging the guest.
pub(crate) fn console_write(mut bytes: &[u8]) {
    let mut since = None;
    while !bytes.is_empty() {
        let n = syscall(
            SYS_WRITE,
            [1, bytes.as_ptr() as u64, bytes.len() as u64, 0, 0, 0],
        );
        match n {
            n if n > 0 => {
                bytes = &bytes[n as usize..];
                since = None;
                CONSOLE_STALLED.store(false, Ordering::Relaxed);
            }
            n if n == -EINTR => {}
            n if n == -EAGAIN => {
                let now = now_ns();
                let since = *since.get_or_insert(now);
                if CONSOLE_STALLED.load(Ordering::Relaxed)
                    || now.saturating_sub(since) >= CONSOLE_GIVE_UP_NS
                {
                    CONSOLE_STALLED.store(true, Ordering::Relaxed);
                    return;
                }
                // Epoll is level-triggered: a net device's readiness this sleep reports
                // is reported again by the executor's next wait.
                yield_until(Some(now.saturating_add(1_000_000)), now);
            }
            _ => return,
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

fn clock(id: u64) -> u64 {
    let mut ts = Timespec::default();
    syscall(
        SYS_CLOCK_GETTIME,
        [id, &mut ts as *mut Timespec as u64, 0, 0, 0, 0],
    );
    (ts.sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.nsec as u64)
}

/// `now_ns()` is `CLOCK_MONOTONIC`.
pub(crate) fn now_ns() -> u64 {
    clock(CLOCK_MONOTONIC)
}

/// `wall_ns()` is `CLOCK_REALTIME`.
pub(crate) fn wall_ns() -> u64 {
    clock(CLOCK_REALTIME)
}

#[repr(C)]
struct Itimerspec {
    interval: Timespec,
    value: Timespec,
}

/// `struct epoll_event`, packed on x86_64.
#[repr(C, packed)]
#[derive(Clone, Copy, Default)]
struct EpollEvent {
    events: u32,
    data: u64,
}

/// `yield_until(deadline, now)` arms the timer fd with `deadline` (absolute, monotonic) and
/// waits on the epoll fd; it returns the net devices with input as a bit set of handles.
pub(crate) fn yield_until(deadline: Option<u64>, now: u64) -> u64 {
    let Some(fds) = FDS.get() else { return 0 };
    // Without a deadline, wake a minute from now anyway: the executor calls again.
    let at = deadline.unwrap_or(now.saturating_add(60_000_000_000));
    let spec = Itimerspec {
        interval: Timespec::default(),
        value: Timespec {
            sec: (at / 1_000_000_000) as i64,
            // Never zero, which would disarm the timer.
            nsec: ((at % 1_000_000_000) | 1) as i64,
        },
    };
    syscall(
        SYS_TIMERFD_SETTIME,
        [
            fds.timer as u64,
            TFD_TIMER_ABSTIME,
            &spec as *const Itimerspec as u64,
            0,
            0,
            0,
        ],
    );
    let mut events = [EpollEvent::default(); 64];
    let n = loop {
        let n = syscall(
            SYS_EPOLL_PWAIT,
            [
                fds.epoll as u64,
                events.as_mut_ptr() as u64,
                events.len() as u64,
                u64::MAX, // -1: no timeout of its own, the timer fd wakes it
                0,
                0,
            ],
        );
        if n != -EINTR {
            break n;
        }
    };
    let mut ready = 0u64;
    for e in events.iter().take(n.max(0) as usize) {
        let data = e.data;
        if data != TIMERFD_DATA && data < 64 {
            ready |= 1 << data;
        }
    }
    ready
}

/// `exit(code)` ends the process with status `code` (`exit_group`).
pub(crate) fn exit(code: i32) -> ! {
    syscall(SYS_EXIT_GROUP, [code as u32 as u64, 0, 0, 0, 0, 0]);
    loop {
        core::hint::spin_loop();
    }
}

fn result(n: i64) -> Result<u64, IoError> {
    match n {
        n if n >= 0 => Ok(n as u64),
        n if n == -EAGAIN => Err(IoError::Again),
        n => Err(IoError::Failed((-n) as i32)),
    }
}

/// `net_read(dev, buf)` reads a frame from the tap fd if one is waiting.
pub(crate) fn net_read(dev: &Device, buf: &mut [u8]) -> Result<usize, IoError> {
    let n = syscall(
        SYS_READ,
        [
            dev.hostfd as u64,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            0,
            0,
            0,
        ],
    );
    result(n).map(|n| n as usize)
}

/// `net_write(dev, frame)` writes `frame` to the tap fd.
pub(crate) fn net_write(dev: &Device, frame: &[u8]) -> Result<(), IoError> {
    let n = syscall(
        SYS_WRITE,
        [
            dev.hostfd as u64,
            frame.as_ptr() as u64,
            frame.len() as u64,
            0,
            0,
            0,
        ],
    );
    result(n).map(drop)
}

/// `block_read(dev, offset, buf)` reads one block (`pread64`).
pub(crate) fn block_read(dev: &Device, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
    let n = syscall(
        SYS_PREAD64,
        [
            dev.hostfd as u64,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            offset,
            0,
            0,
        ],
    );
    match result(n)? {
        n if n as usize == buf.len() => Ok(()),
        _ => Err(IoError::Failed(5)), // EIO: a short read
    }
}

/// `block_write(dev, offset, data)` writes one block (`pwrite64`).
pub(crate) fn block_write(dev: &Device, offset: u64, data: &[u8]) -> Result<(), IoError> {
    let n = syscall(
        SYS_PWRITE64,
        [
            dev.hostfd as u64,
            data.as_ptr() as u64,
            data.len() as u64,
            offset,
            0,
            0,
        ],
    );
    match result(n)? {
        n if n as usize == data.len() => Ok(()),
        _ => Err(IoError::Failed(5)),
    }
}

/// `read_boot_info(addr)` reads `struct spt_boot_info` at `addr` and keeps the tender's fds.
///
/// # Safety
///
/// `addr` must be the boot info the tender passed in `%rdi`.
pub(crate) unsafe fn read_boot_info(addr: u64) -> super::BootInfo {
    let u64_at = |off: u64| {
        // SAFETY: the caller guarantees `addr` holds the 40-byte boot info; `off` < 32.
        unsafe { core::ptr::read_volatile((addr + off) as *const u64) }
    };
    let i32_at = |off: u64| {
        // SAFETY: as above; `off` < 40.
        unsafe { core::ptr::read_volatile((addr + off) as *const i32) }
    };
    FDS.call_once(|| Fds {
        epoll: i32_at(32),
        timer: i32_at(36),
    });
    super::BootInfo {
        mem_size: u64_at(0),
        cmdline: u64_at(16),
        mft: u64_at(24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn kernel_structures_have_linux_x86_64_layouts() {
        // `struct epoll_event` is packed on x86_64.
        assert_eq!(size_of::<EpollEvent>(), 12);
        assert_eq!(size_of::<Timespec>(), 16);
        assert_eq!(size_of::<Itimerspec>(), 32);
    }

    #[test]
    fn system_call_results() {
        assert_eq!(result(5), Ok(5));
        assert_eq!(result(-EAGAIN), Err(IoError::Again));
        assert_eq!(result(-5), Err(IoError::Failed(5)));
    }
}
