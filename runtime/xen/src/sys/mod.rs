//! Everything that touches the machine or the hypervisor: boot, hypercalls, the shared-info
//! page and its event bits, shared pages, the grant table, the console ring, the PC devices of
//! a bare PVH boot, the heap and the panic handler.
//!
//! The rest of the crate sees a small safe surface: [`console_write`], [`now_ns`],
//! [`wall_clock`], [`wait`], [`cmdline`], [`exit`], the event-channel calls ([`notify`],
//! [`alloc_unbound`], [`close`]), [`xenstore_ring`], [`frame_of`], and the safe types
//! [`page::Page`] and [`grant::GrantTable`], all reading the [`Machine`] that boot code records
//! once.
#![allow(unsafe_code)]

#[cfg(mirage_xen_image)]
mod boot;
pub(crate) mod console;
#[cfg(mirage_xen_image)]
mod fault;
pub(crate) mod grant;
pub(crate) mod hypercall;
pub(crate) mod page;
#[cfg(mirage_xen_image)]
mod panic;
pub(crate) mod pc;
#[cfg(mirage_xen_image)]
mod pv_memory;
pub(crate) mod shared_info;

use core::sync::atomic::{AtomicU8, Ordering};

use mirage_devices::Timestamp;
use spin::Once;

use crate::arch;
use alloc::vec::Vec;
use console::Ring;
use hypercall::Reason;
use mirage_bare_metal::tsc::{ticks_since, Monotonic, TscScale};
use page::Page;
use shared_info::SharedInfo;

/// How the image was booted, and what it talks to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Machine {
    /// A guest of Xen (PV, or PVH with Xen detected).
    Xen {
        /// The shared-info page: clocks and event bits.
        shared: SharedInfo,
        /// The console: Xen's own for the initial domain, else the PV ring.
        console: Option<Ring>,
        /// Whether this is the initial domain (dom0), which has no toolstack to report to.
        initial: bool,
        /// PV: the virtual address of the physical-to-machine table (`start_info.mfn_list`);
        /// `None` for PVH, whose frames are guest frames.
        p2m: Option<u64>,
        /// The xenstore ring: its page's address and event channel (domUs only).
        store: Option<(usize, u32)>,
    },
    /// A PVH boot on a PC without Xen (`qemu -kernel`).
    Pc {
        /// The time-stamp counter at boot.
        boot_tsc: u64,
        /// Its rate.
        scale: TscScale,
        /// The CMOS clock's date at boot, in POSIX seconds.
        boot_wall: i64,
    },
}

static MACHINE: Once<Machine> = Once::new();
static CMDLINE: Once<&'static str> = Once::new();

/// How the image entered, known before the [`Machine`] is: what a failure during boot can use
/// to print and to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Entry {
    /// Not known yet.
    Unknown = 0,
    /// The PV entry, with a hypercall page Xen filled: `console_io` and `SCHEDOP_shutdown`
    /// work, port I/O does not.
    Pv = 1,
    /// The PVH entry with Xen underneath and the hypercall page filled.
    PvhXen = 2,
    /// The PVH entry on a bare PC (or before the hypercall page is known to work): COM1 and
    /// `isa-debug-exit`.
    Pc = 3,
}

static ENTRY: AtomicU8 = AtomicU8::new(Entry::Unknown as u8);

/// A PV domU's console ring, mapped before the machine is set up, for boot failures.
static EARLY_CONSOLE: Once<Ring> = Once::new();

/// `set_early_console(ring)` records the console ring as soon as it is mapped (boot code).
pub(crate) fn set_early_console(ring: Ring) {
    EARLY_CONSOLE.call_once(|| ring);
}

/// `set_entry(e)` records how the image entered (boot code only).
pub(crate) fn set_entry(e: Entry) {
    ENTRY.store(e as u8, Ordering::SeqCst);
}

/// `entry()` is how the image entered, as far as boot code knows yet.
pub(crate) fn entry() -> Entry {
    match ENTRY.load(Ordering::SeqCst) {
        1 => Entry::Pv,
        2 => Entry::PvhXen,
        3 => Entry::Pc,
        _ => Entry::Unknown,
    }
}

/// `set_machine(m)` records how the image booted (boot code only, once).
pub(crate) fn set_machine(m: Machine) {
    MACHINE.call_once(|| m);
}

/// `set_cmdline(c)` records the command line (boot code only, once).
pub(crate) fn set_cmdline(c: &'static str) {
    CMDLINE.call_once(|| c);
}

/// `cmdline()` is the domain's command line ("" before boot code set it).
pub(crate) fn cmdline() -> &'static str {
    CMDLINE.get().copied().unwrap_or("")
}

/// How the image runs, as devices care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MachineKind {
    /// A PV domU.
    Pv,
    /// A PVH domU.
    Pvh,
    /// The initial domain (no toolstack, no xenstore at boot).
    Initial,
    /// No Xen underneath.
    Pc,
}

/// `machine_kind()` is how the image runs.
pub(crate) fn machine_kind() -> MachineKind {
    match MACHINE.get() {
        Some(Machine::Xen { initial: true, .. }) => MachineKind::Initial,
        Some(Machine::Xen { p2m: Some(_), .. }) => MachineKind::Pv,
        Some(Machine::Xen { .. }) => MachineKind::Pvh,
        Some(Machine::Pc { .. }) | None => MachineKind::Pc,
    }
}

/// `frame_of(addr)` is the frame number other domains and Xen know the page at virtual
/// address `addr` by: its machine frame for PV (through the physical-to-machine table), its
/// guest frame for PVH (memory is identity-mapped).
pub(crate) fn frame_of(addr: usize) -> u64 {
    let pfn = (addr >> 12) as u64;
    match MACHINE.get() {
        Some(Machine::Xen {
            p2m: Some(list), ..
        }) => {
            // SAFETY: the P2M table, mapped by Xen for PV guests, has an entry for each of
            // the domain's pages, and `addr` is one of ours (virtual = pseudo-physical).
            unsafe { core::ptr::read_volatile((list + 8 * pfn) as *const u64) }
        }
        Some(_) => pfn,
        // Host tests have no Xen: any 32-bit number stands for the frame of a heap page.
        None if cfg!(test) => pfn & 0xffff_ffff,
        None => pfn,
    }
}

/// `xenstore_ring()` is the xenstore ring's page and event channel, if this is a domU.
pub(crate) fn xenstore_ring() -> Option<(Page, u32)> {
    match MACHINE.get() {
        Some(Machine::Xen {
            store: Some((addr, port)),
            shared,
            ..
        }) => {
            shared.mask(*port);
            // SAFETY: boot code records the address where the store page is mapped for good
            // (PV: inside the bootstrap region; PVH: inside the identity map).
            Some((unsafe { Page::mapped(*addr) }, *port))
        }
        _ => None,
    }
}

/// `notify(port)` signals the other end of event channel `port` (nothing without Xen: host
/// tests drive devices against simulated backends).
pub(crate) fn notify(port: u32) {
    if let Some(Machine::Xen { .. }) = MACHINE.get() {
        hypercall::notify(port);
    }
}

/// `alloc_unbound(remote)` is a new event channel port for domain `remote` to bind, masked
/// (this runtime polls, it takes no upcalls), or Xen's error.
pub(crate) fn alloc_unbound(remote: u16) -> Result<u32, i64> {
    let port = hypercall::alloc_unbound(remote)?;
    if let Some(Machine::Xen { shared, .. }) = MACHINE.get() {
        shared.mask(port);
    }
    Ok(port)
}

/// `close(port)` closes event channel `port`.
pub(crate) fn close(port: u32) {
    hypercall::close(port);
}

/// `console_write(bytes)` writes `bytes` to the console, waiting until it took them all (a
/// console daemon that makes no room costs a bounded wait, see [`console`]). Before boot
/// code has set the console up: the console ring without waiting if it is mapped, else Xen's
/// `console_io` under PV (which only the initial domain's output reaches), else COM1.
pub(crate) fn console_write(bytes: &[u8]) {
    match MACHINE.get() {
        Some(Machine::Xen {
            shared,
            console: Some(ring),
            ..
        }) => ring.write(bytes, shared),
        Some(Machine::Xen { console: None, .. }) => hypercall::console_write(bytes),
        Some(Machine::Pc { .. }) => pc::serial_write(bytes),
        None => match (EARLY_CONSOLE.get(), entry()) {
            (Some(ring), _) => ring.write_unwaited(bytes),
            (None, Entry::Pv) => hypercall::console_write(bytes),
            (None, _) => pc::serial_write(bytes),
        },
    }
}

/// The floor that keeps [`now_ns`] from going back.
static CLOCK: Monotonic = Monotonic::new();

/// `now_ns()` is the monotonic clock: Xen's system time, or the time since boot on a PC,
/// never less than it was before (Xen's samples are extrapolated from the counter, and a new
/// sample can land a little behind the old one's extrapolation).
pub(crate) fn now_ns() -> u64 {
    let raw = match MACHINE.get() {
        Some(Machine::Xen { shared, .. }) => shared.system_time_ns(),
        Some(Machine::Pc {
            boot_tsc, scale, ..
        }) => scale.ns(ticks_since(*boot_tsc, mirage_bare_metal::rdtsc())),
        None => 0,
    };
    CLOCK.clamp(raw)
}

/// `wall_clock()` is the current POSIX time.
pub(crate) fn wall_clock() -> Timestamp {
    let (secs, nanos) = match MACHINE.get() {
        Some(Machine::Xen { shared, .. }) => {
            let (secs, nsec) = shared.wall_clock_base();
            let ns = u128::from(secs) * 1_000_000_000 + u128::from(nsec) + u128::from(now_ns());
            (ns / 1_000_000_000, (ns % 1_000_000_000) as u32)
        }
        Some(Machine::Pc { boot_wall, .. }) => {
            let ns = now_ns();
            (
                *boot_wall as u128 + u128::from(ns / 1_000_000_000),
                (ns % 1_000_000_000) as u32,
            )
        }
        None => (0, 0),
    };
    Timestamp {
        secs: i64::try_from(secs).unwrap_or(i64::MAX),
        nanos,
    }
}

/// `wait(ports, deadline)` blocks until an event is pending on one of `ports` or the
/// monotonic clock reaches `deadline` (forever if `None`), and returns the ports that had an
/// event, their pending bits cleared. On Xen it takes the pending bits first and polls
/// (`SCHEDOP_poll`, the vCPU sleeps) only if none was set; an event arriving after the take
/// ends the poll at once, so none is lost. On a PC (no ports) the processor halts until the
/// deadline, woken by the PIT every 55 ms at most; without a deadline it halts for good
/// (nothing could wake it: a bare PC gives the image no device).
pub(crate) fn wait(ports: &[u32], deadline: Option<u64>) -> Vec<u32> {
    let take = |shared: &SharedInfo| -> Vec<u32> {
        ports
            .iter()
            .copied()
            .filter(|&p| shared.take_pending(p))
            .collect()
    };
    match MACHINE.get() {
        Some(Machine::Xen { shared, .. }) => {
            let ready = take(shared);
            if !ready.is_empty() || deadline.is_some_and(|d| d <= now_ns()) {
                return ready;
            }
            // Ports beyond what one poll watches are checked again within a millisecond.
            let deadline = if ports.len() > hypercall::MAX_POLL_PORTS {
                Some(
                    deadline
                        .unwrap_or(u64::MAX)
                        .min(now_ns().saturating_add(1_000_000)),
                )
            } else {
                deadline
            };
            hypercall::poll(ports, hypercall::poll_timeout(deadline));
            take(shared)
        }
        Some(Machine::Pc { .. }) | None => {
            match deadline {
                Some(d) => pc::sleep_until(d, now_ns),
                None => arch::halt_forever(),
            }
            Vec::new()
        }
    }
}

/// `exit(code)` ends the image: on Xen, `code` 0 shuts the domain down with reason poweroff
/// (reboot for the initial domain, whose poweroff would only halt the machine) and any other
/// code with reason crash, so that the toolstack's `on_crash` and Xen's log tell the failure;
/// on a PC, QEMU exits with status `(code << 1) | 1` through `isa-debug-exit`.
pub(crate) fn exit(code: i32) -> ! {
    match MACHINE.get() {
        Some(Machine::Xen { initial, .. }) => hypercall::shutdown(shutdown_reason(code, *initial)),
        Some(Machine::Pc { .. }) | None => pc::exit(u8::try_from(code).unwrap_or(1)),
    }
}

/// The exit code of a CPU fault on a PC (QEMU's status 255 through `isa-debug-exit`), as
/// Solo5's `solo5_abort` gives 255.
pub(crate) const FAULT_EXIT: u8 = 255;

/// `crash(code)` ends the image after a failure it cannot report through [`exit`]'s usual
/// path (a panic, a fault, a failed boot step): Xen's crash shutdown if hypercalls work (the
/// machine is set up, or the entry got that far), else `code` through `isa-debug-exit`.
pub(crate) fn crash(code: u8) -> ! {
    match (MACHINE.get(), entry()) {
        (Some(Machine::Xen { .. }), _) | (None, Entry::Pv | Entry::PvhXen) => {
            hypercall::shutdown(Reason::Crash)
        }
        _ => pc::exit(code),
    }
}

/// `shutdown(reason)` stops the domain for `reason`.
pub(crate) fn shutdown(reason: Reason) -> ! {
    hypercall::shutdown(reason)
}

/// `shutdown_reason(code, initial)` is the reason a Xen domain that ends with `code` gives.
pub(crate) fn shutdown_reason(code: i32, initial: bool) -> Reason {
    match (code, initial) {
        (0, false) => Reason::Poweroff,
        (0, true) => Reason::Reboot,
        _ => Reason::Crash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_powers_off_and_failure_crashes() {
        assert_eq!(shutdown_reason(0, false), Reason::Poweroff);
        assert_eq!(shutdown_reason(0, true), Reason::Reboot);
        assert_eq!(shutdown_reason(64, false), Reason::Crash);
        assert_eq!(shutdown_reason(1, true), Reason::Crash);
    }
}
