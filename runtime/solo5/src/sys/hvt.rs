//! The hvt ABI (Solo5's `include/hvt_abi.h`): the guest runs in a KVM virtual machine that the
//! `solo5-hvt` tender set up, and asks the tender for everything by *hypercall*: a 32-bit
//! `out` to port `0x500 + nr` whose value is the guest-physical address of the call's
//! argument structure (guest-physical = virtual here: the tender maps memory 1:1). Calls are
//! synchronous; the tender writes results back into the structure.
//!
//! The monotonic clock is the time-stamp counter, at the rate the boot info gives.

use core::ptr::addr_of_mut;

use mirage_bare_metal::tsc::{ticks_since, Monotonic, TscScale};
use spin::Once;

use super::{Device, IoError};
use crate::arch;

/// The first hypercall port (`HVT_HYPERCALL_PIO_BASE`).
const PIO_BASE: u16 = 0x500;
const WALLTIME: u16 = 1;
const PUTS: u16 = 2;
const POLL: u16 = 3;
const BLOCK_WRITE: u16 = 4;
const BLOCK_READ: u16 = 5;
const NET_WRITE: u16 = 6;
const NET_READ: u16 = 7;
const HALT: u16 = 8;

/// `SOLO5_R_AGAIN`.
const R_AGAIN: i32 = 1;

/// The clock's state, set once at boot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    /// The time-stamp counter at boot.
    pub(crate) boot_tsc: u64,
    /// Its rate (`cpu_cycle_freq`).
    pub(crate) scale: TscScale,
}

static CLOCK: Once<Clock> = Once::new();

/// The floor that keeps [`now_ns`] from going back.
static FLOOR: Monotonic = Monotonic::new();

/// `set_clock(hz)` starts the monotonic clock at 0 now, for a counter of `hz` ticks a second.
pub(crate) fn set_clock(hz: u64) {
    CLOCK.call_once(|| Clock {
        boot_tsc: mirage_bare_metal::rdtsc(),
        scale: TscScale::new(hz),
    });
}

/// `hypercall(nr, arg)` makes hypercall `nr` with `arg`.
///
/// Only called on hvt images, where the tender serves the port; `arg` is a `#[repr(C)]`
/// structure of the layout hypercall `nr` takes, whose pointers (if any) point into memory
/// valid for the transfer they describe.
fn hypercall<T>(nr: u16, arg: &mut T) {
    let addr = addr_of_mut!(*arg) as u64;
    // SAFETY: the tender maps guest memory (at most 4 GiB) 1:1, so `addr` is the 32-bit
    // guest-physical address of `arg`, which is the structure hypercall `nr` reads and writes
    // (each caller passes the right one); it lives on this stack frame for the call.
    unsafe { arch::outl(PIO_BASE + nr, addr as u32) };
}

#[repr(C)]
struct Puts {
    data: u64,
    len: u64,
}

/// `console_write(bytes)` writes `bytes` on the tender's standard output (`PUTS`).
pub(crate) fn console_write(bytes: &[u8]) {
    if !cfg!(mirage_solo5_image) {
        return;
    }
    let mut arg = Puts {
        data: bytes.as_ptr() as u64,
        len: bytes.len() as u64,
    };
    hypercall(PUTS, &mut arg);
}

/// `now_ns()` is the time since boot, from the time-stamp counter: never less than before,
/// and 0 rather than centuries for a counter behind its boot reading.
pub(crate) fn now_ns() -> u64 {
    match CLOCK.get() {
        Some(c) => FLOOR.clamp(
            c.scale
                .ns(ticks_since(c.boot_tsc, mirage_bare_metal::rdtsc())),
        ),
        None => 0,
    }
}

#[repr(C)]
struct Walltime {
    nsecs: u64,
}

/// `wall_ns()` is the host's wall clock in ns since the epoch (`WALLTIME`).
pub(crate) fn wall_ns() -> u64 {
    if !cfg!(mirage_solo5_image) {
        return 0;
    }
    let mut arg = Walltime { nsecs: 0 };
    hypercall(WALLTIME, &mut arg);
    arg.nsecs
}

#[repr(C)]
struct Poll {
    timeout_nsecs: u64,
    ready_set: u64,
    ret: i32,
}

/// `yield_until(deadline, now)` blocks in the tender (`POLL`, a relative timeout) until a net
/// device has input or `deadline` passes; it returns the ready devices as a bit set of handles.
pub(crate) fn yield_until(deadline: Option<u64>, now: u64) -> u64 {
    if !cfg!(mirage_solo5_image) {
        return 0;
    }
    // Without a deadline, wake once a minute anyway: the executor calls again.
    let timeout = deadline.map_or(60_000_000_000, |d| d.saturating_sub(now).max(1));
    let mut arg = Poll {
        timeout_nsecs: timeout,
        ready_set: 0,
        ret: 0,
    };
    hypercall(POLL, &mut arg);
    arg.ready_set
}

#[repr(C)]
struct Halt {
    cookie: u64,
    status: i32,
}

/// `exit(code)` ends the guest; the tender exits with status `code` (`HALT`).
pub(crate) fn exit(code: i32) -> ! {
    if cfg!(mirage_solo5_image) {
        let mut arg = Halt {
            cookie: 0,
            status: code,
        };
        hypercall(HALT, &mut arg);
    }
    // The tender does not return from HALT.
    loop {
        core::hint::spin_loop();
    }
}

#[repr(C)]
struct Net {
    handle: u64,
    data: u64,
    len: u64,
    ret: i32,
}

/// `net_read(dev, buf)` reads a frame if one is waiting (`NET_READ`).
pub(crate) fn net_read(dev: &Device, buf: &mut [u8]) -> Result<usize, IoError> {
    let mut arg = Net {
        handle: dev.handle as u64,
        data: buf.as_mut_ptr() as u64,
        len: buf.len() as u64,
        ret: 0,
    };
    hypercall(NET_READ, &mut arg);
    match arg.ret {
        0 => Ok(arg.len as usize),
        R_AGAIN => Err(IoError::Again),
        r => Err(IoError::Failed(r)),
    }
}

/// `net_write(dev, frame)` sends `frame` (`NET_WRITE`).
pub(crate) fn net_write(dev: &Device, frame: &[u8]) -> Result<(), IoError> {
    let mut arg = Net {
        handle: dev.handle as u64,
        data: frame.as_ptr() as u64,
        len: frame.len() as u64,
        ret: 0,
    };
    hypercall(NET_WRITE, &mut arg);
    match arg.ret {
        0 => Ok(()),
        R_AGAIN => Err(IoError::Again),
        r => Err(IoError::Failed(r)),
    }
}

#[repr(C)]
struct Block {
    handle: u64,
    offset: u64,
    data: u64,
    len: u64,
    ret: i32,
}

fn block(nr: u16, dev: &Device, offset: u64, data: u64, len: usize) -> Result<(), IoError> {
    let mut arg = Block {
        handle: dev.handle as u64,
        offset,
        data,
        len: len as u64,
        ret: 0,
    };
    hypercall(nr, &mut arg);
    match arg.ret {
        0 => Ok(()),
        r => Err(IoError::Failed(r)),
    }
}

/// `block_read(dev, offset, buf)` reads one block (`BLOCK_READ`).
pub(crate) fn block_read(dev: &Device, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
    block(BLOCK_READ, dev, offset, buf.as_mut_ptr() as u64, buf.len())
}

/// `block_write(dev, offset, data)` writes one block (`BLOCK_WRITE`).
pub(crate) fn block_write(dev: &Device, offset: u64, data: &[u8]) -> Result<(), IoError> {
    block(BLOCK_WRITE, dev, offset, data.as_ptr() as u64, data.len())
}

/// `read_boot_info(addr)` reads `struct hvt_boot_info` at `addr` and starts the clock.
///
/// # Safety
///
/// `addr` must be the boot info the tender passed in `%rdi`.
pub(crate) unsafe fn read_boot_info(addr: u64) -> super::BootInfo {
    let at = |off: u64| {
        // SAFETY: the caller guarantees `addr` holds the 56-byte boot info; `off` < 40.
        unsafe { core::ptr::read_volatile((addr + off) as *const u64) }
    };
    set_clock(at(16));
    super::BootInfo {
        mem_size: at(0),
        cmdline: at(24),
        mft: at(32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn hypercall_structures_match_hvt_abi_h() {
        assert_eq!(size_of::<Walltime>(), 8);
        assert_eq!((size_of::<Puts>(), offset_of!(Puts, len)), (16, 8));
        assert_eq!(size_of::<Poll>(), 24);
        assert_eq!(
            (offset_of!(Poll, ready_set), offset_of!(Poll, ret)),
            (8, 16)
        );
        assert_eq!(size_of::<Block>(), 40);
        assert_eq!(
            (
                offset_of!(Block, offset),
                offset_of!(Block, data),
                offset_of!(Block, len),
                offset_of!(Block, ret)
            ),
            (8, 16, 24, 32)
        );
        assert_eq!(size_of::<Net>(), 32);
        assert_eq!(
            (
                offset_of!(Net, data),
                offset_of!(Net, len),
                offset_of!(Net, ret)
            ),
            (8, 16, 24)
        );
        assert_eq!((size_of::<Halt>(), offset_of!(Halt, status)), (16, 8));
    }
}
